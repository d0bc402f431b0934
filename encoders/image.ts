import { readFile, stat } from 'node:fs/promises';
import sharp, { type Metadata, type Sharp } from 'sharp';
import { InputError, UsageError } from '../core/errors.js';
import { RESIZE_MODES, type ResizeMode, type RgbImage } from './types.js';

/**
 * Image preprocessing with sharp: decode any format sharp reads (JPEG, PNG,
 * WebP, AVIF, TIFF, GIF — first frame —, …), apply EXIF orientation, convert
 * to 8-bit sRGB without alpha, resize (squash / shortest side + centre crop /
 * letterbox), and normalise to NCHW float32 with a mean/std preset.
 */

import { DEFAULT_MAX_PIXELS } from '../core/pixels.js';
import { checkNumber, optionLabel } from '../core/validate.js';

export { DEFAULT_MAX_PIXELS };

export interface ReadImageOptions {
  /** Refuse images with more pixels than this (width × height before decoding). */
  maxPixels?: number;
}

/** A decoded image plus what the file said about itself. */
export interface DecodedImage extends RgbImage {
  /** Format sharp detected (jpeg, png, webp, heif, tiff, gif, …). */
  format: string;
}

/**
 * Reads and decodes an image file (or bytes) to oriented 8-bit RGB.
 * Missing, empty, corrupt and over-limit inputs fail with an InputError that names the file.
 *
 * @example
 * const image = await readImage('photo.jpg', { maxPixels: 50e6 });
 * image.width; image.height; image.data.length === image.width * image.height * 3;
 */
export async function readImage(input: string | Uint8Array, options: ReadImageOptions = {}): Promise<DecodedImage> {
  const name = typeof input === 'string' ? input : 'image bytes';
  const bytes = typeof input === 'string' ? await readImageFile(input) : input;
  if (bytes.length === 0) throw new InputError(`${name}: file is empty (0 bytes), expected an image`, 'E_EMPTY');
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkNumber(maxPixels, optionLabel('maxPixels'), { min: 1, where: 'readImage', code: 'E_RANGE' });
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new InputError(`${name}: not a readable image (${cleanSharpMessage(error)})`, 'E_IMAGE');
  }
  const { width, height } = metadata;
  if (!width || !height)
    throw new InputError(`${name}: image has no size (format ${metadata.format ?? 'unknown'})`, 'E_IMAGE');
  if (width * height > maxPixels) {
    throw new InputError(
      `${name}: image is ${width}x${height} = ${width * height} pixels, above the limit of ${maxPixels} (raise maxPixels / --max-pixels if this is intended)`,
      'E_PIXEL_LIMIT',
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .autoOrient()
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      format: metadata.format ?? 'unknown',
    };
  } catch (error) {
    throw new InputError(
      `${name}: cannot decode ${metadata.format ?? 'image'} (${cleanSharpMessage(error)})`,
      'E_IMAGE',
    );
  }
}

async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new InputError(`${path}: is a directory, expected an image file`, 'E_INPUT');
    return await readFile(path);
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${path}: file not found`, 'E_NOENT');
    throw new InputError(`${path}: cannot read (${(error as Error).message})`, 'E_READ');
  }
}

function cleanSharpMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.trim();
}

// Defined in types.ts (no sharp there, for the CLI's help); still exported from here as before.
export { RESIZE_MODES, type ResizeMode };

export interface ResizeOptions {
  /**
   * squash: stretch to w×h (LLaVA-NeXT thumbnail);
   * shortest: scale the shortest side to fit, centre-crop the rest (CLIP processor);
   * letterbox: fit inside, pad with `background` (LLaVA "pad").
   */
  mode?: ResizeMode;
  /** Pad colour for letterbox (default black). */
  background?: [number, number, number];
}

function checkResizeMode(mode: string): asserts mode is ResizeMode {
  if (!RESIZE_MODES.includes(mode as ResizeMode))
    throw new UsageError(
      `resize mode must be one of ${RESIZE_MODES.join(', ')}, got ${JSON.stringify(mode)}`,
      'E_RESIZE',
    );
}

function rawInput(image: RgbImage): Sharp {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
}

async function rawOutput(pipeline: Sharp): Promise<RgbImage> {
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/**
 * Bicubic resize to exactly width × height (aspect not kept).
 *
 * @example
 * const thumbnail = await resizeExact(image, 336, 336); // LLaVA-NeXT's squashed thumbnail
 */
export async function resizeExact(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (image.width === width && image.height === height) return image;
  return rawOutput(rawInput(image).resize(width, height, { fit: 'fill', kernel: 'cubic' }));
}

/**
 * Resizes an RGB image to width × height with the given mode.
 *
 * @example
 * const tile = await resizeImage(image, 336, 336, { mode: 'shortest' }); // CLIP-style
 */
export async function resizeImage(
  image: RgbImage,
  width: number,
  height: number,
  options: ResizeOptions = {},
): Promise<RgbImage> {
  const mode = options.mode ?? 'squash';
  checkResizeMode(mode);
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0))
    throw new UsageError(`resizeImage: target must be positive integers, got ${width}x${height}`, 'E_SIZE');
  if (mode === 'squash') return resizeExact(image, width, height);
  if (mode === 'shortest') {
    // HF CLIPImageProcessor: the short side becomes the target, the long side int(target·long/short); then centre crop.
    const { width: scaledWidth, height: scaledHeight } = shortestSideSize(image.width, image.height, width, height);
    const scaled = await resizeExact(image, scaledWidth, scaledHeight);
    return cropImage(
      scaled,
      Math.floor((scaledWidth - width) / 2),
      Math.floor((scaledHeight - height) / 2),
      width,
      height,
    );
  }
  const scale = Math.min(width / image.width, height / image.height);
  const innerWidth = Math.min(width, Math.max(1, Math.round(image.width * scale)));
  const innerHeight = Math.min(height, Math.max(1, Math.round(image.height * scale)));
  const inner = await resizeExact(image, innerWidth, innerHeight);
  return padImage(
    inner,
    width,
    height,
    Math.floor((width - innerWidth) / 2),
    Math.floor((height - innerHeight) / 2),
    options.background ?? [0, 0, 0],
  );
}

/**
 * Size after scaling so the image covers width × height: for a square target
 * exactly HF's get_resize_output_image_size (short → target, long → int(target·long/short)).
 *
 * @example
 * shortestSideSize(640, 480, 336, 336); // { width: 448, height: 336 }
 */
export function shortestSideSize(
  imageWidth: number,
  imageHeight: number,
  width: number,
  height: number,
): { width: number; height: number } {
  if (width === height) {
    const short = Math.min(imageWidth, imageHeight);
    const long = Math.max(imageWidth, imageHeight);
    const scaledLong = Math.max(width, Math.trunc((width * long) / short));
    return imageWidth <= imageHeight ? { width, height: scaledLong } : { width: scaledLong, height };
  }
  const scale = Math.max(width / imageWidth, height / imageHeight);
  return {
    width: Math.max(width, Math.trunc(imageWidth * scale)),
    height: Math.max(height, Math.trunc(imageHeight * scale)),
  };
}

/**
 * Copies the rectangle (x, y, width, height) out of an image (no resampling).
 *
 * @example
 * const crop = cropImage(canvas, 336, 0, 336, 336); // AnyRes crop 1 of a 2-wide grid
 */
export function cropImage(image: RgbImage, x: number, y: number, width: number, height: number): RgbImage {
  if (x < 0 || y < 0 || x + width > image.width || y + height > image.height) {
    throw new UsageError(
      `cropImage: rectangle ${width}x${height}+${x}+${y} is outside the ${image.width}x${image.height} image`,
      'E_SIZE',
    );
  }
  const data = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) {
    const from = ((y + r) * image.width + x) * 3;
    data.set(image.data.subarray(from, from + width * 3), r * width * 3);
  }
  return { data, width, height };
}

/**
 * Places an image on a width × height canvas of `background` at (x, y).
 *
 * @example
 * const canvas = padImage(resized, 672, 672, 0, 84); // 672x504 centred on black
 */
export function padImage(
  image: RgbImage,
  width: number,
  height: number,
  x: number,
  y: number,
  background: [number, number, number] = [0, 0, 0],
): RgbImage {
  if (x < 0 || y < 0 || x + image.width > width || y + image.height > height) {
    throw new UsageError(
      `padImage: a ${image.width}x${image.height} image at +${x}+${y} does not fit a ${width}x${height} canvas`,
      'E_SIZE',
    );
  }
  const data = new Uint8Array(width * height * 3);
  if (background.some((v) => v !== 0)) for (let p = 0; p < width * height; p++) data.set(background, p * 3);
  for (let r = 0; r < image.height; r++) {
    data.set(image.data.subarray(r * image.width * 3, (r + 1) * image.width * 3), ((y + r) * width + x) * 3);
  }
  return { data, width, height };
}

/** Per-channel normalisation constants (applied to pixel/255). */
export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/** OpenAI CLIP, SigLIP and ImageNet statistics. */
export const NORMALIZATION_PRESETS: Readonly<Record<'clip' | 'siglip' | 'imagenet', Normalization>> = Object.freeze({
  clip: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] },
  siglip: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
});

export type NormalizationPreset = keyof typeof NORMALIZATION_PRESETS;

/**
 * A preset name or explicit constants → constants (validated).
 *
 * @example
 * resolveNormalization('siglip'); // { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }
 */
export function resolveNormalization(spec: NormalizationPreset | Normalization | string): Normalization {
  if (typeof spec === 'string') {
    const preset = NORMALIZATION_PRESETS[spec as NormalizationPreset];
    if (!preset)
      throw new UsageError(
        `unknown normalisation preset ${JSON.stringify(spec)} (available: ${Object.keys(NORMALIZATION_PRESETS).join(', ')})`,
        'E_NORMALIZE',
      );
    return preset;
  }
  const ok = (v: unknown) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!ok(spec.mean) || !ok(spec.std) || spec.std.some((s) => s <= 0)) {
    throw new UsageError(
      `normalisation needs mean and std as 3 finite numbers each (std > 0), got mean ${JSON.stringify(spec.mean)}, std ${JSON.stringify(spec.std)}`,
      'E_NORMALIZE',
    );
  }
  return spec;
}

/**
 * Packs same-size RGB images into one NCHW float32 tensor: (pixel/255 − mean)/std.
 *
 * @example
 * const tensor = toNchw([tile], 'clip'); // Float32Array of 1·3·336·336
 */
export function toNchw(images: RgbImage[], normalization: NormalizationPreset | Normalization = 'clip'): Float32Array {
  const { mean, std } = resolveNormalization(normalization);
  if (images.length === 0) return new Float32Array(0);
  const { width, height } = images[0]!;
  const plane = width * height;
  const out = new Float32Array(images.length * 3 * plane);
  const scale = [0, 1, 2].map((c) => 1 / (255 * std[c]!));
  const shift = [0, 1, 2].map((c) => mean[c]! / std[c]!);
  images.forEach((image, b) => {
    if (image.width !== width || image.height !== height)
      throw new UsageError(
        `toNchw: image ${b} is ${image.width}x${image.height}, expected ${width}x${height} like image 0`,
        'E_SIZE',
      );
    const base = b * 3 * plane;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) out[base + c * plane + p] = image.data[p * 3 + c]! * scale[c]! - shift[c]!;
    }
  });
  return out;
}
