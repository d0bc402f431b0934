import { join, resolve } from 'node:path';
import { encodeJpeg } from '../encoders/codecs.js';
import { UsageError } from '../core/errors.js';
import { ensureDir, writeFileAtomic } from '../io/write.js';
import { answerQuestion, userMessage, type ChatMessage } from '../client/openai.js';
import { contactSheet } from './contact-sheet.js';
import { planVideo, type VideoPlan, type VideoPlanOptions } from './pipeline.js';
import { z } from 'zod';
import { integer, number, parseOptions } from '../core/schema.js';

/**
 * Video question answering against any OpenAI-compatible chat-completions
 * endpoint (vLLM, llama.cpp server, Ollama's /v1): plan which frames to send
 * (video/pipeline.ts), send them as JPEG data URLs with their timestamps and
 * the question, and report the answer with the token saving.
 */

export interface VideoQaOptions extends VideoPlanOptions {
  question: string;
  /** Base URL ending in /v1; required unless dryRun. */
  endpoint?: string;
  /** Model name; required unless dryRun. */
  model?: string;
  apiKey?: string;
  /** Per-request timeout, ms (default 120000). */
  timeoutMs?: number;
  /** Retries for timeouts/5xx (refused connections never retry; default 1). */
  retries?: number;
  maxTokens?: number;
  /** JPEG quality of the frames sent (default 85). */
  jpegQuality?: number;
  /** Write the contact sheet and request.json here instead of calling the endpoint. */
  dryRun?: boolean;
  /** Folder for dry-run files (default ./vtc-video-qa). */
  outDir?: string;
}

/** The `--json` result: exactly the documented fields. */
export interface VideoQaResult {
  /** The model's answer; null in a dry run. */
  answer: string | null;
  clips: { start: number; end: number; score: number }[];
  frames: { t: number }[];
  tokens_sent: number;
  tokens_uniform: number;
}

export interface VideoQaRun {
  result: VideoQaResult;
  plan: VideoPlan;
  /** The chat-completions request body (model, messages, …). */
  request: { model: string; messages: ChatMessage[]; max_tokens: number; temperature: number };
  /** Dry run: where the contact sheet and request were written. */
  files?: { contactSheet: string; request: string };
}

/**
 * The prompt text: timestamps of the frames, then the question.
 *
 * @example
 * videoPrompt('What happens?', [0, 1.5]); // 'These 2 images are frames from one video, in order, taken at 0.0s, 1.5s.\nWhat happens?'
 */
export function videoPrompt(question: string, times: number[]): string {
  const when = times.map((t) => `${t.toFixed(1)}s`).join(', ');
  return `These ${times.length} images are frames from one video, in order, taken at ${when}.\n${question}`;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Builds the `--json` result from a plan and an answer (times rounded to ms, scores to 4 digits).
 *
 * @example
 * qaResult(plan, 'a boat'); // { answer: 'a boat', clips: [...], frames: [{ t: 1.5 }, ...], tokens_sent: 264, tokens_uniform: 396 }
 */
export function qaResult(plan: VideoPlan, answer: string | null): VideoQaResult {
  return {
    answer,
    clips: plan.clips
      .filter((c) => c.selected)
      .map((c) => ({ start: round(c.startTime), end: round(c.endTime), score: round(c.score, 4) })),
    frames: plan.keyframes.map((k) => ({ t: round(k.time) })),
    tokens_sent: plan.tokensSent,
    tokens_uniform: plan.tokensUniform,
  };
}

const videoQaSchema = z.object({
  frames: integer(1).optional(),
  tokenBudget: integer(1).optional(),
  maxTokens: integer(1).optional(),
  timeoutMs: number({ gt: 0 }).optional(),
  jpegQuality: integer(1, 100).optional(),
});

/**
 * The option checks `vtc video-qa` and `videoQa` share (UsageError, same
 * words for both): endpoint and model unless dry-run, frames or a token
 * budget (not both), counts in range.
 */
export function checkVideoQaOptions(
  options: Pick<VideoQaOptions, 'endpoint' | 'model' | 'dryRun' | 'maxTokens' | 'timeoutMs' | 'jpegQuality'> & {
    frames?: number;
    tokenBudget?: number;
  },
): void {
  if (options.frames !== undefined && options.tokenBudget !== undefined)
    throw new UsageError('video-qa: give either frames (--frames) or tokenBudget (--token-budget), not both');
  if (!options.dryRun && !options.endpoint)
    throw new UsageError('video-qa: endpoint (--endpoint) is required (or use dryRun, --dry-run)');
  if (!options.dryRun && !options.model)
    throw new UsageError('video-qa: model (--model) is required (or use dryRun, --dry-run)');
  parseOptions(
    videoQaSchema,
    {
      frames: options.frames,
      tokenBudget: options.tokenBudget,
      maxTokens: options.maxTokens,
      timeoutMs: options.timeoutMs,
      jpegQuality: options.jpegQuality,
    },
    'video-qa',
  );
}

/**
 * Answers a question about a video, or (dryRun) writes what it would send.
 *
 * @example
 * const { result } = await videoQa('movie.mp4', {
 *   question: 'What colour is the boat?', endpoint: 'http://127.0.0.1:8000/v1', model: 'Qwen/Qwen2.5-VL-3B-Instruct', frames: 8,
 * });
 * result.answer; result.tokens_sent; result.tokens_uniform;
 */
export async function videoQa(path: string, options: VideoQaOptions): Promise<VideoQaRun> {
  if (!options.question || options.question.trim() === '')
    throw new UsageError('video-qa: the question (-q) must not be empty');
  checkVideoQaOptions(options);
  const plan = await planVideo(path, options);
  const quality = options.jpegQuality ?? 85;
  const jpegs = await Promise.all(plan.keyframes.map((k) => encodeJpeg(k.image, quality)));
  const messages = [
    userMessage(
      videoPrompt(
        options.question,
        plan.keyframes.map((k) => k.time),
      ),
      jpegs.map((bytes) => ({ bytes, mime: 'image/jpeg' })),
    ),
  ];
  const maxTokens = options.maxTokens ?? 512;
  const request = { model: options.model ?? '(dry run)', messages, max_tokens: maxTokens, temperature: 0 };
  if (options.dryRun) {
    const outDir = resolve(options.outDir ?? 'vtc-video-qa');
    await ensureDir(outDir);
    const sheet = await contactSheet(
      plan.keyframes.map((k) => ({
        image: k.image,
        time: k.time,
        caption: k.members.length > 1 ? `(${k.members.length} merged)` : undefined,
      })),
      {
        title: `${path} — ${plan.keyframes.length} frames, ${plan.tokensSent} vs ${plan.tokensUniform} tokens (${plan.profile})`,
      },
    );
    const files = { contactSheet: join(outDir, 'contact-sheet.png'), request: join(outDir, 'request.json') };
    await writeFileAtomic(files.contactSheet, sheet);
    await writeFileAtomic(files.request, `${JSON.stringify(request, null, 1)}\n`);
    return { result: qaResult(plan, null), plan, request, files };
  }
  const answer = await answerQuestion({
    endpoint: options.endpoint!,
    model: options.model!,
    messages,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    maxTokens,
  });
  return { result: qaResult(plan, answer), plan, request };
}
