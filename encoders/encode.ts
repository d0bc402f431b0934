import { UsageError } from '../core/errors.js';
import { createTokenSet, gridPositions, type TokenSet, type TokenSource } from '../core/tokenset.js';
import { planAnyRes, type AnyResPlan, type Resolution } from './anyres.js';
import { cropImage, padImage, readImage, resizeExact, resizeImage, type ResizeMode } from './image.js';
import { createOnnxEncoder } from './onnx.js';
import { createPatchEncoder } from './patch.js';
import { isQwenModel } from './qwen.js';
import { QWEN_FAMILIES } from './qwen-preprocess.js';
import type { EncodedTile, RgbImage, VisionEncoder } from './types.js';

/**
 * Pixels → TokenSets: one image (one tile) or LLaVA-NeXT AnyRes (squashed
 * thumbnail + crops of the resized-and-padded image), with any VisionEncoder.
 */

/** An image file path, encoded bytes, or already-decoded RGB. */
export type ImageInput = string | Uint8Array | RgbImage;

export interface EncodeImageOptions {
  /** The encoder (default: the built-in `patch` encoder at 336 px / 14 px patches). */
  encoder?: VisionEncoder;
  /** Fit to the encoder's square input (default: the encoder's preferred mode, else squash). */
  resize?: ResizeMode;
  /** Pixel limit for decoding (decompression-bomb guard). */
  maxPixels?: number;
}

export interface EncodeAnyResOptions {
  encoder?: VisionEncoder;
  /** Candidate canvases [width, height]; default LLaVA-NeXT's pinpoints scaled to the encoder's input size. */
  pinpoints?: readonly Resolution[];
  maxPixels?: number;
  /** Called after each encoded batch of tiles (done, total). */
  onTiles?: (done: number, total: number) => void;
}

function isRgb(input: ImageInput): input is RgbImage {
  return typeof input === 'object' && !(input instanceof Uint8Array) && 'width' in input;
}

async function decode(input: ImageInput, maxPixels: number | undefined): Promise<RgbImage> {
  if (isRgb(input)) {
    if (input.data.length !== input.width * input.height * 3)
      throw new UsageError(
        `RGB image of ${input.width}x${input.height} needs ${input.width * input.height * 3} bytes, got ${input.data.length}`,
        'E_SIZE',
      );
    return input;
  }
  return readImage(input, maxPixels === undefined ? {} : { maxPixels });
}

function tileSource(kind: TokenSource['kind'], index: number, tile: EncodedTile): TokenSource {
  const source: TokenSource = { kind, index, rows: tile.rows, cols: tile.cols };
  if (tile.clsToken) source.cls = tile.clsToken;
  return source;
}

/** Concatenates tiles (each one source) into a TokenSet with scores, raster grid cells and (t, h, w) positions. */
function tilesToTokens(
  tiles: EncodedTile[],
  sources: TokenSource[],
  extra: Pick<Parameters<typeof createTokenSet>[0], 'anyres' | 'meta'>,
): TokenSet {
  const d = tiles[0]!.dim;
  const n = tiles.reduce((sum, t) => sum + t.rows * t.cols, 0);
  const data = new Float32Array(n * d);
  const score = new Float32Array(n);
  const source = new Int32Array(n);
  let offset = 0;
  tiles.forEach((tile, s) => {
    const count = tile.rows * tile.cols;
    data.set(tile.features, offset * d);
    score.set(tile.scores, offset);
    source.fill(s, offset, offset + count);
    offset += count;
  });
  const tokens = createTokenSet({ data, n, d, source, sources, score, ...extra });
  // LLaVA-family positions: (0, row, col) in each tile (frames: t = frame index).
  tokens.positions = gridPositions(tokens);
  return tokens;
}

/** An encoded single image plus the exact pixels the encoder saw (for overlays). */
export interface EncodedImage {
  tokens: TokenSet;
  /** The inputSize × inputSize tile. */
  tile: RgbImage;
  originalWidth: number;
  originalHeight: number;
}

/**
 * Encodes one image as one tile: decode, fit to the encoder's input, encode.
 * Tokens are in raster order with `score` (CLS or −cos scores) and the CLS
 * vector on `sources[0].cls` when the encoder has one.
 *
 * @example
 * const tokens = await encodeImage('photo.jpg');          // patch encoder, 576 tokens
 * const clip = await encodeImage('photo.jpg', { encoder: await loadEncoder('models/clip') });
 */
export async function encodeImage(input: ImageInput, options: EncodeImageOptions = {}): Promise<TokenSet> {
  return (await encodeImageDetailed(input, options)).tokens;
}

/**
 * encodeImage plus the tile the encoder saw and the original size.
 *
 * @example
 * const { tokens, tile } = await encodeImageDetailed('photo.jpg', { resize: 'shortest' });
 */
export async function encodeImageDetailed(input: ImageInput, options: EncodeImageOptions = {}): Promise<EncodedImage> {
  const encoder = options.encoder ?? createPatchEncoder();
  const image = await decode(input, options.maxPixels);
  const mode = options.resize ?? encoder.preferredResize ?? 'squash';
  const tile = await resizeImage(image, encoder.inputSize, encoder.inputSize, { mode });
  const [encoded] = await encoder.encode([tile]);
  const meta: Record<string, string> = {
    encoder: encoder.name,
    resize: mode,
    original_size: `${image.width},${image.height}`,
  };
  if (typeof input === 'string') meta.input = input;
  const tokens = tilesToTokens([encoded!], [tileSource('image', 0, encoded!)], { meta });
  return { tokens, tile, originalWidth: image.width, originalHeight: image.height };
}

/** An AnyRes encoding plus its layout and pixels (for overlays). */
export interface EncodedAnyRes {
  tokens: TokenSet;
  plan: AnyResPlan;
  /** The squashed inputSize² thumbnail. */
  thumbnail: RgbImage;
  /** The resized-and-padded canvas the crops were cut from. */
  canvas: RgbImage;
}

/**
 * LLaVA-NeXT AnyRes: picks the best pinpoint, resizes keeping the aspect ratio
 * (ceil), centres on a black canvas, cuts inputSize crops row-major, and
 * squashes the whole image to an inputSize thumbnail. Returns the bundle
 * TokenSet: thumbnail tokens first, then crop 0, crop 1, … (each raster order),
 * `anyres` set, `score` = per-tile CLS (or −cos) scores, `sources[i].cls` = CLS vectors.
 * `saveTokens(path, tokens, { bundle: true })` writes the AnyRes bundle (core/bundle.ts).
 *
 * @example
 * const bundle = await encodeAnyRes('page.png', { encoder });
 * bundle.anyres; // { gridRows: 2, gridCols: 2, imageWidth: 1280, imageHeight: 720, patchRows: 24, patchCols: 24 }
 * await saveTokens('b.safetensors', bundle, { bundle: true });
 */
export async function encodeAnyRes(input: ImageInput, options: EncodeAnyResOptions = {}): Promise<TokenSet> {
  return (await encodeAnyResDetailed(input, options)).tokens;
}

/**
 * encodeAnyRes plus the plan, the thumbnail and the padded crop canvas (for overlays).
 *
 * @example
 * const { tokens, plan, canvas } = await encodeAnyResDetailed('photo.jpg'); // plan.tokenCount === 2340 for 640x480
 */
export async function encodeAnyResDetailed(
  input: ImageInput,
  options: EncodeAnyResOptions = {},
): Promise<EncodedAnyRes> {
  const encoder = options.encoder ?? createPatchEncoder();
  const image = await decode(input, options.maxPixels);
  const size = encoder.inputSize;
  const plan = planAnyRes(image.width, image.height, {
    tileSize: size,
    patchSize: encoder.patchSize,
    ...(options.pinpoints ? { pinpoints: options.pinpoints } : {}),
    ...(options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {}),
  });
  const g = plan.geometry;
  const thumbnail = await resizeExact(image, size, size);
  const resized = await resizeExact(image, g.resizedWidth, g.resizedHeight);
  const canvas = padImage(resized, g.targetWidth, g.targetHeight, g.offsetX, g.offsetY);
  const tiles = [thumbnail, ...plan.crops.map((c) => cropImage(canvas, c.x, c.y, c.width, c.height))];
  const encoded: EncodedTile[] = [];
  // One encoder batch per call, so progress moves as tiles finish.
  const step = Math.max(1, encoder.batchSize ?? 1);
  for (let start = 0; start < tiles.length; start += step) {
    encoded.push(...(await encoder.encode(tiles.slice(start, start + step))));
    options.onTiles?.(encoded.length, tiles.length);
  }
  const sources = encoded.map((tile, i) =>
    i === 0 ? tileSource('thumbnail', 0, tile) : tileSource('crop', i - 1, tile),
  );
  const meta: Record<string, string> = {
    encoder: encoder.name,
    best_resolution: `${plan.best[0]},${plan.best[1]}`,
    anyres_tokens: String(plan.tokenCount),
  };
  if (typeof input === 'string') meta.input = input;
  const anyres = {
    gridRows: plan.gridRows,
    gridCols: plan.gridCols,
    imageWidth: image.width,
    imageHeight: image.height,
    patchRows: encoded[0]!.rows,
    patchCols: encoded[0]!.cols,
  };
  const tokens = tilesToTokens(encoded, sources, { anyres, meta });
  return { tokens, plan, thumbnail, canvas };
}

export interface LoadEncoderOptions {
  /** onnxruntime intra-op threads for ONNX encoders. */
  threads?: number;
  /** Tiles per ONNX run. */
  batchSize?: number;
  /** Patch encoder geometry (ignored for ONNX models, whose config decides). */
  inputSize?: number;
  patchSize?: number;
}

/**
 * `patch` → the built-in encoder; anything else is an ONNX model directory.
 *
 * @example
 * const encoder = await loadEncoder('patch');
 * const clip = await loadEncoder('models/clip-vit-l-14-336', { threads: 2 });
 */
export async function loadEncoder(spec: string, options: LoadEncoderOptions = {}): Promise<VisionEncoder> {
  if (spec === 'patch') {
    return createPatchEncoder({
      ...(options.inputSize ? { inputSize: options.inputSize } : {}),
      ...(options.patchSize ? { patchSize: options.patchSize } : {}),
    });
  }
  if ((QWEN_FAMILIES as readonly string[]).includes(spec) || (await isQwenModel(spec))) {
    throw new UsageError(
      `${spec}: a Qwen2.5-VL / Qwen3-VL tower works at dynamic resolution, not on square tiles; use loadQwenEncoder or \`vtc encode --encoder qwen2.5-vl|qwen3-vl --model …\``,
      'E_ENCODER',
    );
  }
  return createOnnxEncoder(spec, {
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
  });
}
