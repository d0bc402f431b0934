import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { InputError, UsageError } from '../core/errors.js';
import { encodeImage } from '../encoders/encode.js';
import { readFrames, type VideoFrame } from '../encoders/ffmpeg.js';
import { readImage } from '../encoders/image.js';
import { encodeQwenImage, type QwenEncoder } from '../encoders/qwen.js';
import { encodeFrames, tilesToFrameTokens } from '../encoders/video.js';
import type { RgbImage, VisionEncoder } from '../encoders/types.js';
import { getReducer, reducerNames } from '../reducers/index.js';
import { encodePage, parseConfig, renderText } from '../render/index.js';
import { planVideo } from '../video/pipeline.js';
import { planImage } from '../ask/plan.js';
import { getProfile } from '../profiles/index.js';
import type { EvalSample, ImageRef } from './datasets.js';
import { BASELINE_METHOD, keptFraction } from './groups.js';
import { embedsOf, type PreparedEmbeds } from './embeds.js';
import { PIXEL_METHODS, methodNames } from './method-names.js';

/**
 * Compression methods as `vtc eval run` applies them, at a downsample factor
 * K (visual budget 1/K²; K = 1 is the uncompressed input):
 *
 * - pixel level: `downsample` (the VTC-Bench baseline: every image, frame or
 *   rendered page shrunk by K per side), `glyph` (long text rendered to page
 *   images at 144/K dpi, so pixels fall as 1/K²), `keyframes` (video: N/K²
 *   keyframes chosen by video/ retrieval and temporal merging instead of N
 *   uniform frames);
 * - token level: any registered reducer, applied with ratio 1/K² to the
 *   encoder's tokens of each image and sent as embeddings (vLLM image_embeds).
 */

export interface PreparedImage {
  bytes: Uint8Array;
  mime: string;
  width: number;
  height: number;
}

// PreparedEmbeds and embedsOf live in eval/embeds.ts (no encoders there); exported from here as before.
export { embedsOf, type PreparedEmbeds };

export interface PreparedInput {
  images: PreparedImage[];
  /** Text given to the model as text (the uncompressed form of a text input). */
  text?: string;
  embeds: PreparedEmbeds[];
  /** Visual cost sent: total pixels of the images and the number of embedding rows. */
  pixels: number;
  tokens: number;
}

export interface MethodContext {
  /** Vision encoder for token-level methods (vLLM image_embeds). */
  encoder?: VisionEncoder;
  /**
   * A Qwen2.5-VL / Qwen3-VL tower for token-level methods instead of
   * `encoder`: each image is encoded at its dynamic resolution and sent with
   * `image_grid_thw` (full lattice) or positions (pruned), docs/qwen.md.
   */
  qwenEncoder?: QwenEncoder;
  /** Uniform frames of an uncompressed video input (default 16). */
  videoFrames?: number;
  /** Longest side of video frames (default 448). */
  videoMaxSide?: number;
  /** DPI of the uncompressed rendering of a text input (default 144): Glyph renders at this / K. */
  textDpi?: number;
  seed?: number;
  /** Vision profile whose billed tokens set the `focus` budget (default qwen2.5-vl). */
  profile?: string;
}

export interface EvalMethod {
  name: string;
  level: 'pixel' | 'token';
  /** Why the method cannot handle a sample, or undefined when it can. */
  unsupported(sample: EvalSample): string | undefined;
  prepare(sample: EvalSample, k: number, context: MethodContext): Promise<PreparedInput>;
}

// In eval/method-names.ts (no encoders there, for the CLI's help); exported from here as before.
export { PIXEL_METHODS, methodNames };

/** Formats every chat endpoint accepts as-is; others are re-encoded as PNG. */
const WEB_FORMATS: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
};

/** The uncompressed image as sent: the original bytes when the format is web-safe, else a PNG of the decoded pixels. */
async function originalImage(ref: ImageRef): Promise<PreparedImage> {
  // Decoding validates the input (corrupt, truncated, over the pixel limit) and names the file.
  const decoded = await readImage('bytes' in ref ? ref.bytes : ref.path);
  const mime = WEB_FORMATS[decoded.format];
  if (!mime) return toPrepared(decoded);
  const bytes = 'bytes' in ref ? ref.bytes : new Uint8Array(await readFile(ref.path));
  return { bytes, mime, width: decoded.width, height: decoded.height };
}

async function pngFromRgb(image: RgbImage): Promise<Uint8Array> {
  const buffer = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .png({ compressionLevel: 3 })
    .toBuffer();
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
}

/** The size an image of width×height has after downsampling by K per side (at least 1×1). */
export function downsampledSize(width: number, height: number, k: number): { width: number; height: number } {
  if (k === 1) return { width, height };
  return { width: Math.max(1, Math.round(width / k)), height: Math.max(1, Math.round(height / k)) };
}

/** Downsamples RGB by K per side (area-averaging, as a resize to a smaller grid does), at least 1×1. */
export async function downsampleRgb(image: RgbImage, k: number): Promise<RgbImage> {
  if (k === 1) return image;
  const { width, height } = downsampledSize(image.width, image.height, k);
  return resizeRgb(image, width, height);
}

async function resizeRgb(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  const { data, info } = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/** The image as is when it has at most `maxPixels` pixels, else scaled down (aspect kept, sizes floored) to fit. */
async function fitPixels(image: RgbImage, maxPixels: number): Promise<RgbImage> {
  if (image.width * image.height <= maxPixels) return image;
  const scale = Math.sqrt(maxPixels / (image.width * image.height));
  return resizeRgb(image, Math.max(1, Math.floor(image.width * scale)), Math.max(1, Math.floor(image.height * scale)));
}

async function toPrepared(image: RgbImage): Promise<PreparedImage> {
  return { bytes: await pngFromRgb(image), mime: 'image/png', width: image.width, height: image.height };
}

function pixelInput(images: PreparedImage[], text?: string): PreparedInput {
  return {
    images,
    ...(text !== undefined ? { text } : {}),
    embeds: [],
    pixels: images.reduce((s, i) => s + i.width * i.height, 0),
    tokens: 0,
  };
}

async function sampleImages(sample: EvalSample): Promise<RgbImage[]> {
  return Promise.all(sample.images.map(async (ref) => readImage('bytes' in ref ? ref.bytes : ref.path)));
}

async function uniformFrames(sample: EvalSample, context: MethodContext): Promise<RgbImage[]> {
  return (await uniformVideoFrames(sample, context)).map((f) => f.image);
}

/** The uncompressed video input's uniform frames, with their times. */
async function uniformVideoFrames(sample: EvalSample, context: MethodContext): Promise<VideoFrame[]> {
  const { frames } = await readFrames(sample.video!, {
    fps: 1,
    maxFrames: context.videoFrames ?? 16,
    maxSide: context.videoMaxSide ?? 448,
  });
  if (frames.length === 0) throw new InputError(`${sample.where}: video ${sample.video} gave no frames`);
  return frames;
}

/** Renders a text input to page images at the given DPI (Glyph's default layout otherwise). */
async function renderTextPages(text: string, dpi: number): Promise<RgbImage[]> {
  const { pages } = renderText(text, parseConfig({ dpi: Math.max(8, Math.round(dpi)) }));
  return Promise.all(
    pages.map(async (page) => {
      const { data, info } = await sharp(await encodePage(page, 'png'))
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      return {
        data: new Uint8Array(data.buffer, data.byteOffset, data.length),
        width: info.width,
        height: info.height,
      };
    }),
  );
}

const downsampleMethod: EvalMethod = {
  name: BASELINE_METHOD,
  level: 'pixel',
  unsupported: () => undefined,
  async prepare(sample, k, context) {
    if (sample.images.length > 0) {
      if (k === 1) {
        const images = await Promise.all(sample.images.map(originalImage));
        return pixelInput(images, sample.text);
      }
      const images = await Promise.all(
        (await sampleImages(sample)).map(async (image) => toPrepared(await downsampleRgb(image, k))),
      );
      return pixelInput(images, sample.text);
    }
    if (sample.video !== undefined) {
      const frames = await uniformFrames(sample, context);
      return pixelInput(await Promise.all(frames.map(async (f) => toPrepared(await downsampleRgb(f, k)))), sample.text);
    }
    // Text only: uncompressed is the text itself; at K > 1 its rendering at textDpi, shrunk by K.
    if (k === 1) return pixelInput([], sample.text);
    const pages = await renderTextPages(sample.text!, context.textDpi ?? 144);
    return pixelInput(await Promise.all(pages.map(async (p) => toPrepared(await downsampleRgb(p, k)))));
  },
};

const glyphMethod: EvalMethod = {
  name: 'glyph',
  level: 'pixel',
  unsupported: (sample) =>
    sample.text === undefined || sample.images.length > 0 || sample.video !== undefined
      ? 'glyph renders text-only inputs'
      : undefined,
  async prepare(sample, k, context) {
    if (k === 1) return pixelInput([], sample.text);
    const pages = await renderTextPages(sample.text!, (context.textDpi ?? 144) / k);
    return pixelInput(await Promise.all(pages.map(toPrepared)));
  },
};

const keyframesMethod: EvalMethod = {
  name: 'keyframes',
  level: 'pixel',
  unsupported: (sample) => (sample.video === undefined ? 'keyframes needs a video input' : undefined),
  async prepare(sample, k, context) {
    const uniform = context.videoFrames ?? 16;
    if (k === 1)
      return pixelInput(await Promise.all((await uniformFrames(sample, context)).map(toPrepared)), sample.text);
    // The same pixel budget as downsample at this K: the uniform frames it would send, each shrunk by K per side.
    const uniformImages = await uniformFrames(sample, context);
    const pixelBudget = uniformImages.reduce((sum, f) => {
      const size = downsampledSize(f.width, f.height, k);
      return sum + size.width * size.height;
    }, 0);
    const framePixels = uniformImages[0]!.width * uniformImages[0]!.height;
    const frames = Math.max(1, Math.floor(pixelBudget / framePixels));
    const plan = await planVideo(sample.video!, {
      question: sample.question,
      frames,
      maxSide: context.videoMaxSide ?? 448,
      maxFrames: Math.max(uniform, 32),
    });
    const images = await Promise.all(
      plan.keyframes.map((f) => fitPixels(f.image, pixelBudget / plan.keyframes.length)),
    );
    return pixelInput(await Promise.all(images.map(toPrepared)), sample.text);
  },
};

/**
 * focus (ask/plan.ts) at the same token budget as downsample at K: each image gets the
 * profile's billed tokens of the downsampled image (round(w/K) × round(h/K)) and sends
 * a thumbnail plus its highest-scoring regions within that budget. Region scores come
 * from `context.encoder` when given, else the patch encoder (query-free saliency).
 */
const focusMethod: EvalMethod = {
  name: 'focus',
  level: 'pixel',
  unsupported: (sample) => (sample.images.length === 0 ? 'focus needs image inputs' : undefined),
  async prepare(sample, k, context) {
    if (k === 1) return pixelInput(await Promise.all(sample.images.map(originalImage)), sample.text);
    const profile = getProfile(context.profile ?? 'qwen2.5-vl');
    const images: PreparedImage[] = [];
    let tokens = 0;
    for (const image of await sampleImages(sample)) {
      const budget = profile.tokens(
        Math.max(1, Math.round(image.width / k)),
        Math.max(1, Math.round(image.height / k)),
      );
      const plan = await planImage(image, {
        profile: profile.name,
        budget,
        method: 'focus',
        ...(context.encoder ? { encoder: context.encoder } : {}),
      });
      images.push(...plan.images.map(({ bytes, mime, width, height }) => ({ bytes, mime, width, height })));
      tokens += plan.tokens_sent;
    }
    return { ...pixelInput(images, sample.text), tokens };
  },
};

function reducerMethod(name: string): EvalMethod {
  const reducer = getReducer(name);
  if (reducer.scope === 'video') return videoReducerMethod(name);
  return {
    name,
    level: 'token',
    unsupported: (sample) => (sample.images.length === 0 ? `${name} (token level) needs image inputs` : undefined),
    async prepare(sample, k, context) {
      const { encoder, qwenEncoder } = context;
      if (!encoder && !qwenEncoder)
        throw new UsageError(
          `method ${name} is token level: give a vision encoder (--encoder) and an endpoint started with --enable-mm-embeds`,
        );
      const embeds: PreparedEmbeds[] = [];
      for (const ref of sample.images) {
        const input = 'bytes' in ref ? ref.bytes : ref.path;
        const tokens = qwenEncoder
          ? await encodeQwenImage(input, { encoder: qwenEncoder })
          : await encodeImage(input, { encoder: encoder! });
        const reduced =
          k === 1 ? tokens : (await reducer.run(tokens, { ratio: keptFraction(k), seed: context.seed ?? 0 })).tokens;
        embeds.push(embedsOf(reduced));
      }
      return {
        images: [],
        ...(sample.text !== undefined ? { text: sample.text } : {}),
        embeds,
        pixels: 0,
        tokens: embeds.reduce((s, e) => s + e.shape[0], 0),
      };
    },
  };
}

/**
 * A video reducer (evs, fastvid): the uniform frames of a video input are
 * encoded into one frame token set [frames, tokens, d], reduced with ratio
 * 1/K², and sent as one embedding block.
 */
function videoReducerMethod(name: string): EvalMethod {
  const reducer = getReducer(name);
  return {
    name,
    level: 'token',
    unsupported: (sample) =>
      sample.video === undefined ? `${name} (token level, video) needs a video input` : undefined,
    async prepare(sample, k, context) {
      if (context.qwenEncoder)
        throw new UsageError(
          `method ${name} (video, token level) with a Qwen tower is not supported by eval: Qwen videos are encoded as frame pairs with their own grid (use vtc encode + vtc reduce + vtc prompt)`,
        );
      if (!context.encoder)
        throw new UsageError(
          `method ${name} is token level: give a vision encoder (--encoder) and an endpoint started with --enable-mm-embeds`,
        );
      const frames = await uniformVideoFrames(sample, context);
      const tiles = await encodeFrames(
        frames.map((f) => f.image),
        context.encoder,
      );
      const tokens = tilesToFrameTokens(
        tiles,
        frames.map((f) => f.time),
      );
      const reduced =
        k === 1 ? tokens : (await reducer.run(tokens, { ratio: keptFraction(k), seed: context.seed ?? 0 })).tokens;
      const embeds: PreparedEmbeds[] = [embedsOf(reduced)];
      return {
        images: [],
        ...(sample.text !== undefined ? { text: sample.text } : {}),
        embeds,
        pixels: 0,
        tokens: reduced.n,
      };
    },
  };
}

/**
 * Looks a method up by name.
 *
 * @example
 * const method = getMethod('downsample');
 * const input = await method.prepare(sample, 2, {}); // images at half width and height
 */
export function getMethod(name: string): EvalMethod {
  if (name === BASELINE_METHOD) return downsampleMethod;
  if (name === 'glyph') return glyphMethod;
  if (name === 'keyframes') return keyframesMethod;
  if (name === 'focus') return focusMethod;
  if (reducerNames().includes(name)) return reducerMethod(name);
  throw new UsageError(`unknown method ${JSON.stringify(name)} (available: ${methodNames().join(', ')})`, 'E_METHOD');
}
