import type { Reduction, TokenSet } from '../core/tokenset.js';
import { getReducer } from '../reducers/index.js';
import { runReducer } from '../reducers/run.js';
import type { Resolution } from './anyres.js';
import { encodeAnyResDetailed, encodeImageDetailed, type ImageInput } from './encode.js';
import { encodePng } from './codecs.js';
import type { ResizeMode } from './image.js';
import { anyresLayout, drawReductionOverlay, imageLayout, type OverlayLayout, type OverlayStats } from './overlay.js';
import { createPatchEncoder } from './patch.js';
import { saveTokens } from './tokenfile.js';
import type { RgbImage, VisionEncoder } from './types.js';

/**
 * Encode + reduce + overlay in one call (what `vtc compress` runs).
 */

export interface CompressImageOptions {
  method: string;
  ratio?: number;
  budget?: number;
  seed?: number;
  /** Method-specific options passed to the reducer. */
  methodOptions?: Record<string, unknown>;
  encoder?: VisionEncoder;
  /** Encode as a LLaVA-NeXT AnyRes bundle (always on for methods of scope 'anyres', i.e. globalcom2). */
  anyres?: boolean;
  pinpoints?: readonly Resolution[];
  resize?: ResizeMode;
  maxPixels?: number;
  /** Also write the reduced tokens here (.safetensors / .npy). */
  tokensOut?: string;
}

export interface CompressImageResult {
  input: TokenSet;
  reduction: Reduction;
  budget: number;
  ratio: number;
  /** Tokens the method worked on (a bundle's thumbnail + unpadded crop tokens), and the padding left out. */
  nIn: number;
  nPadding: number;
  /** E.g. an output larger than the budget (pool with an explicit kernel). */
  warnings: string[];
  stats: OverlayStats;
  /** The overlay as raw RGB and as PNG bytes. */
  overlay: RgbImage;
  png: Uint8Array;
  /** Reduction time only. */
  ms: number;
}

/**
 * @example
 * const result = await compressImage('photo.jpg', { method: 'divprune', ratio: 0.25 });
 * result.reduction.tokens.n; // 144
 * await writeFile('overlay.png', result.png);
 */
export async function compressImage(input: ImageInput, options: CompressImageOptions): Promise<CompressImageResult> {
  const reducer = getReducer(options.method);
  const encoder = options.encoder ?? createPatchEncoder();
  const common = { encoder, ...(options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {}) };
  let tokens: TokenSet;
  let layout: OverlayLayout;
  // A method whose budget rule is defined on the AnyRes bundle (globalcom2) needs it: encode that way.
  if (options.anyres || reducer.scope === 'anyres') {
    const encoded = await encodeAnyResDetailed(input, {
      ...common,
      ...(options.pinpoints ? { pinpoints: options.pinpoints } : {}),
    });
    tokens = encoded.tokens;
    layout = anyresLayout(
      encoded.thumbnail,
      encoded.canvas,
      encoded.plan.gridRows,
      encoded.plan.gridCols,
      encoder.patchSize,
    );
  } else {
    const encoded = await encodeImageDetailed(input, {
      ...common,
      ...(options.resize ? { resize: options.resize } : {}),
    });
    tokens = encoded.tokens;
    layout = imageLayout(encoded.tile, encoder.patchSize);
  }
  const spec = {
    ...(options.ratio !== undefined ? { ratio: options.ratio } : {}),
    ...(options.budget !== undefined ? { budget: options.budget } : {}),
  };
  const started = performance.now();
  const run = await runReducer(reducer, tokens, { ...options.methodOptions, ...spec, seed: options.seed ?? 0 });
  const ms = performance.now() - started;
  const { reduction } = run;
  const { image, stats } = drawReductionOverlay(layout, tokens, reduction);
  if (options.tokensOut) await saveTokens(options.tokensOut, reduction.tokens);
  return {
    input: tokens,
    reduction,
    budget: run.budget,
    ratio: run.ratio,
    nIn: run.n_in,
    nPadding: run.n_padding,
    warnings: run.warnings,
    stats,
    overlay: image,
    png: await encodePng(image),
    ms,
  };
}
