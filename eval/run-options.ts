import { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { integer, oneOf, parseOptions } from '../core/schema.js';
import { getMethod } from './methods.js';

/**
 * The checks `vtc eval run` and the library (`runEval`,
 * `createEndpointModel`) share, so a library caller gets the error a CLI
 * user gets, with the same words, instead of a silent fallback.
 */

export const EMBEDS_FORMATS = ['npy', 'torch'] as const;

export const endpointModelSchema = z.object({
  endpoint: z.string(),
  model: z.string().min(1),
  embedsFormat: oneOf(EMBEDS_FORMATS).optional(),
  maxTokens: integer(1).optional(),
  retries: integer(0).optional(),
  timeoutMs: integer(1).optional(),
});

/** Validates endpoint-model options (UsageError naming the option). */
export function checkEndpointModelOptions(options: {
  endpoint?: unknown;
  model?: unknown;
  embedsFormat?: unknown;
  maxTokens?: unknown;
  retries?: unknown;
  timeoutMs?: unknown;
}): void {
  if (typeof options.endpoint !== 'string' || options.endpoint === '') {
    throw new UsageError(
      `eval run: model ${JSON.stringify(options.model)} needs endpoint (--endpoint), a URL ending in /v1 (or use --model ocr for the offline reader)`,
    );
  }
  parseOptions(endpointModelSchema, options, 'eval run');
}

const runSchema = z.object({ concurrency: integer(1), limit: integer(1).optional() });

/**
 * Validates a run's options: counts, and token-level methods (reducers
 * applied to encoder tokens, sent as image_embeds) need an endpoint model
 * and a vision encoder.
 *
 * @example
 * checkRunOptions({ methods: ['pool'], model: 'ocr', encoder: true, concurrency: 2 });
 * // throws 'eval run: token-level methods (pool) need an endpoint model served by vLLM with --enable-mm-embeds, not the ocr reader'
 */
export function checkRunOptions(options: {
  methods: readonly string[];
  model: string;
  encoder: boolean;
  concurrency: unknown;
  limit?: unknown;
}): void {
  parseOptions(runSchema, { concurrency: options.concurrency, limit: options.limit }, 'eval run');
  const tokenLevel = options.methods.filter((m) => getMethod(m).level === 'token');
  if (tokenLevel.length && options.model === 'ocr')
    throw new UsageError(
      `eval run: token-level methods (${tokenLevel.join(', ')}) need an endpoint model served by vLLM with --enable-mm-embeds, not the ocr reader`,
    );
  if (tokenLevel.length && !options.encoder)
    throw new UsageError(
      `eval run: token-level methods (${tokenLevel.join(', ')}) need a vision encoder (encoder or qwenEncoder; --encoder: patch, an ONNX encoder folder or a Qwen tower folder)`,
    );
}
