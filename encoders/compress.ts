import type { Reduction, TokenSet } from '../core/tokenset.js';
import { getReducer } from '../reducers/index.js';
import { runReducer } from '../reducers/run.js';
import type { Resolution } from './anyres.js';
import { encodeAnyResDetailed, encodeImageDetailed, type ImageInput } from './encode.js';
import { encodePng } from './codecs.js';
import { resizeImage, type ResizeMode } from './image.js';
import {
  anyresLayout,
  drawReductionOverlay,
  framesLayout,
  imageLayout,
  type OverlayLayout,
  type OverlayStats,
} from './overlay.js';
import { createPatchEncoder } from './patch.js';
import { saveTokens } from './tokenfile.js';
import type { RgbImage, VisionEncoder } from './types.js';
import { encodeVideoFrames } from './video.js';
import type { AnyReducer } from '../reducers/types.js';

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
  /**
   * Reduce each frame on its own (runReducer's perFrame: budget split over
   * frames, no output mixes frames). Applies to videos (compressVideo); an
   * image is refused with a usage error. Default false.
   */
  perFrame?: boolean;
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
  return reduceAndDraw(reducer, tokens, layout, options);
}

/** Options of compressVideo: compressImage's, less the image-only fitting, plus frame sampling. */
export interface CompressVideoOptions
  extends Omit<CompressImageOptions, 'anyres' | 'pinpoints' | 'resize' | 'maxPixels'> {
  /** Uniform sampling rate (default 1 frame per second). */
  fps?: number;
  /** Frame cap (default 64); the rate drops so the cap still spans the whole video. */
  maxFrames?: number;
  /** Frames per encoder call (default 8). */
  batchSize?: number;
}

/**
 * Encode a video's sampled frames + reduce + overlay (what `vtc compress
 * <video>` runs): the overlay is a contact sheet, frame after frame in rows
 * of ⌈√F⌉, each frame as the encoder saw it with the reduction drawn on it.
 * With `perFrame`, every frame is reduced on its own.
 *
 * @example
 * const result = await compressVideo('clip.mp4', { method: 'tome', ratio: 0.25, perFrame: true, maxFrames: 8 });
 * result.stats.perSource.map((s) => s.outputs); // [144, 144, …]: no output mixes frames
 */
export async function compressVideo(path: string, options: CompressVideoOptions): Promise<CompressImageResult> {
  const reducer = getReducer(options.method);
  const encoder = options.encoder ?? createPatchEncoder();
  const { frames, tokens } = await encodeVideoFrames(path, {
    encoder,
    ...(options.fps !== undefined ? { fps: options.fps } : {}),
    ...(options.maxFrames !== undefined ? { maxFrames: options.maxFrames } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
  });
  // The pixels each frame's tokens came from: frames decoded at another size are fitted as encodeFrames fits them.
  const size = encoder.inputSize;
  const tiles = await Promise.all(
    frames.map((f) =>
      f.image.width === size && f.image.height === size
        ? f.image
        : resizeImage(f.image, size, size, { mode: encoder.preferredResize ?? 'squash' }),
    ),
  );
  return reduceAndDraw(reducer, tokens, framesLayout(tiles, encoder.patchSize), options);
}

/** The part compressImage and compressVideo share: run the method, draw the overlay, write the tokens. */
async function reduceAndDraw(
  reducer: AnyReducer,
  tokens: TokenSet,
  layout: OverlayLayout,
  options: CompressVideoOptions,
): Promise<CompressImageResult> {
  const spec = {
    ...(options.ratio !== undefined ? { ratio: options.ratio } : {}),
    ...(options.budget !== undefined ? { budget: options.budget } : {}),
  };
  const started = performance.now();
  const run = await runReducer(reducer, tokens, {
    ...options.methodOptions,
    ...spec,
    seed: options.seed ?? 0,
    ...(options.perFrame !== undefined ? { perFrame: options.perFrame } : {}),
  });
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
