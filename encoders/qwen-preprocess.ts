import { InputError, ShapeError, UsageError } from '../core/errors.js';
import { qwenResize, roundHalfEven } from './anyres.js';
import { NORMALIZATION_PRESETS, resizeExact, toNchw, type Normalization } from './image.js';
import type { RgbImage } from './types.js';
import { checkInteger } from '../core/validate.js';

/**
 * Qwen2.5-VL / Qwen3-VL preprocessing, as the Hugging Face processors do it
 * (Qwen2VLImageProcessor, Qwen2VLVideoProcessor, Qwen3VLVideoProcessor):
 *
 * 1. smart_resize: sides become multiples of factor = patch × merge (28 for
 *    Qwen2.5-VL, 32 for Qwen3-VL) within [minPixels, maxPixels] (videos of
 *    Qwen3-VL count the frames in the budget);
 * 2. bicubic resize (libvips here, PIL/torchvision there: same geometry, pixel
 *    values differ by small rounding amounts), rescale by 1/255, normalise
 *    (Qwen2.5-VL: OpenAI CLIP mean/std; Qwen3-VL: 0.5/0.5);
 * 3. patchify with temporal_patch_size 2: an image is repeated to 2 frames;
 *    video frames are grouped in pairs, an odd count padded by repeating the
 *    last frame; rows ordered (t, h/2, w/2, 2, 2) — each 2×2 merge group is
 *    4 consecutive rows — and each row laid out (channel, frame, y, x), the
 *    Conv3d weight order.
 *
 * The tower's output then has one token per merge group, in raster order of
 * the merged grid (Qwen2.5-VL exports restore it after the window reorder).
 */

export type QwenFamily = 'qwen2.5-vl' | 'qwen3-vl';
export const QWEN_FAMILIES: readonly QwenFamily[] = ['qwen2.5-vl', 'qwen3-vl'];

/** Pixel bounds for smart_resize (the processor's `size.shortest_edge` / `size.longest_edge`). */
export interface QwenPixelLimits {
  minPixels: number;
  maxPixels: number;
}

export interface QwenFamilySpec {
  family: QwenFamily;
  patchSize: number;
  mergeSize: number;
  temporalPatchSize: number;
  normalization: Normalization;
  /** Released preprocessor_config.json bounds for images. */
  image: QwenPixelLimits;
  /** Video processor bounds (Qwen3-VL: per video, frames counted; Qwen2.5-VL: per frame). */
  video: QwenPixelLimits;
  /** Qwen2.5-VL window attention: window side in pixels (112 → 4×4 merged units); absent for Qwen3-VL. */
  windowSize?: number;
  /** Blocks with full attention (Qwen2.5-VL: fullatt_block_indexes; Qwen3-VL: every block). */
  fullAttentionBlocks?: readonly number[];
  /** Qwen3-VL deepstack_visual_indexes (blocks whose outputs feed the DeepStack mergers). */
  deepstackBlocks?: readonly number[];
}

/**
 * Facts of the released checkpoints. Sources: transformers' Qwen2VLImageProcessor
 * (OPENAI_CLIP_MEAN/STD; Qwen2.5-VL's preprocessor_config.json: min_pixels 3136,
 * max_pixels 12845056), Qwen2VLVideoProcessor (size 128·28·28 … 768·28·28),
 * Qwen3-VL's preprocessor_config.json (size 65536 … 16777216, mean/std 0.5) and
 * video_preprocessor_config.json (4096 … 25165824); vision configs:
 * Qwen2.5-VL window_size 112, fullatt_block_indexes [7, 15, 23, 31];
 * Qwen3-VL deepstack_visual_indexes [8, 16, 24].
 */
export const QWEN_FAMILY_SPECS: Readonly<Record<QwenFamily, QwenFamilySpec>> = Object.freeze({
  'qwen2.5-vl': {
    family: 'qwen2.5-vl',
    patchSize: 14,
    mergeSize: 2,
    temporalPatchSize: 2,
    normalization: NORMALIZATION_PRESETS.clip,
    image: { minPixels: 56 * 56, maxPixels: 28 * 28 * 16384 },
    video: { minPixels: 128 * 28 * 28, maxPixels: 768 * 28 * 28 },
    windowSize: 112,
    fullAttentionBlocks: [7, 15, 23, 31],
  },
  'qwen3-vl': {
    family: 'qwen3-vl',
    patchSize: 16,
    mergeSize: 2,
    temporalPatchSize: 2,
    normalization: NORMALIZATION_PRESETS.siglip,
    image: { minPixels: 65536, maxPixels: 16777216 },
    video: { minPixels: 4096, maxPixels: 25165824 },
    deepstackBlocks: [8, 16, 24],
  },
});

/**
 * The spec of a family by name (UsageError naming the choices otherwise).
 *
 * @example
 * qwenFamilySpec('qwen3-vl').patchSize; // 16
 */
export function qwenFamilySpec(family: string): QwenFamilySpec {
  const spec = QWEN_FAMILY_SPECS[family as QwenFamily];
  if (!spec)
    throw new UsageError(
      `unknown Qwen family ${JSON.stringify(family)} (expected one of: ${QWEN_FAMILIES.join(', ')})`,
      'E_FAMILY',
    );
  return spec;
}

/** (grid_t, grid_h, grid_w) in patches, as the processor's image_grid_thw / video_grid_thw rows. */
export type GridThw = [t: number, h: number, w: number];

/** Spatial factor: patch × merge (28 or 32). */
export function qwenFactor(spec: QwenFamilySpec): number {
  return spec.patchSize * spec.mergeSize;
}

/**
 * smart_resize for one image: [width, height] after resizing.
 *
 * @example
 * qwenImageSize('qwen2.5-vl', 640, 480); // [644, 476]
 * qwenImageSize('qwen3-vl', 640, 480);   // [640, 480]
 */
export function qwenImageSize(
  family: QwenFamily,
  width: number,
  height: number,
  limits: Partial<QwenPixelLimits> = {},
): [number, number] {
  const spec = qwenFamilySpec(family);
  const resized = qwenResize(width, height, {
    factor: qwenFactor(spec),
    minPixels: limits.minPixels ?? spec.image.minPixels,
    maxPixels: limits.maxPixels ?? spec.image.maxPixels,
  });
  return [resized.width, resized.height];
}

/**
 * smart_resize for a video of `frames` frames of width × height: [width, height].
 * Qwen2.5-VL (Qwen2VLVideoProcessor) resizes each frame within the bounds;
 * Qwen3-VL (Qwen3VLVideoProcessor) counts the frames, rounded to pairs, in the budget.
 *
 * @example
 * qwenVideoSize('qwen3-vl', 8, 1280, 720);    // [1280, 704]
 * qwenVideoSize('qwen2.5-vl', 8, 1920, 1080); // [1008, 560]
 */
export function qwenVideoSize(
  family: QwenFamily,
  frames: number,
  width: number,
  height: number,
  limits: Partial<QwenPixelLimits> = {},
): [number, number] {
  const spec = qwenFamilySpec(family);
  const minPixels = limits.minPixels ?? spec.video.minPixels;
  const maxPixels = limits.maxPixels ?? spec.video.maxPixels;
  const factor = qwenFactor(spec);
  checkInteger(frames, 'frames', { min: 1, where: 'qwenVideoSize', code: 'E_SIZE' });
  if (family === 'qwen2.5-vl') {
    const resized = qwenResize(width, height, { factor, minPixels, maxPixels });
    return [resized.width, resized.height];
  }
  const temporal = spec.temporalPatchSize;
  if (frames < temporal)
    throw new InputError(
      `qwen3-vl video: ${frames} frame(s); the video processor needs at least temporal_patch_size = ${temporal} (encode a single frame as an image)`,
      'E_FRAMES',
    );
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0))
    throw new UsageError(`qwenVideoSize: frame size must be positive integers, got ${width}x${height}`, 'E_SIZE');
  if (height < factor || width < factor)
    throw new InputError(
      `qwen3-vl video: frames of ${width}x${height} are smaller than the factor ${factor} on one side (the video processor refuses them)`,
      'E_SIZE',
    );
  if (Math.max(width, height) / Math.min(width, height) > 200)
    throw new UsageError(`qwenVideoSize: aspect ratio must be below 200, got ${width}x${height}`, 'E_SIZE');
  if (!(minPixels > 0 && maxPixels >= minPixels))
    throw new UsageError(`qwenVideoSize: need 0 < minPixels ≤ maxPixels, got ${minPixels} and ${maxPixels}`, 'E_SIZE');
  let h = roundHalfEven(height / factor) * factor;
  let w = roundHalfEven(width / factor) * factor;
  const t = roundHalfEven(frames / temporal) * temporal;
  if (t * h * w > maxPixels) {
    const beta = Math.sqrt((frames * height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (t * h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (frames * height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [w, h];
}

/** Flattened patches and their grid, as the processor returns them. */
export interface QwenPatches {
  /** [t·h·w, 3 · temporal · patch · patch] row-major (the processor's pixel_values). */
  pixelValues: Float32Array;
  /** Row length: 3 · temporal_patch_size · patch² (1176 for Qwen2.5-VL, 1536 for Qwen3-VL). */
  patchDim: number;
  grid: GridThw;
}

/**
 * Patchifies normalised frames given as planar [frames, 3, height, width]
 * floats (toNchw's layout). One frame is repeated to temporal_patch_size
 * frames; an odd count is padded by repeating the last frame.
 *
 * @example
 * const { pixelValues, grid } = patchifyFrames(toNchw([image], 'clip'), 1, 56, 56, QWEN_FAMILY_SPECS['qwen2.5-vl']);
 * grid; // [1, 4, 4] — 16 rows of 1176 values
 */
export function patchifyFrames(
  planar: Float32Array,
  frames: number,
  height: number,
  width: number,
  spec: QwenFamilySpec,
): QwenPatches {
  const { patchSize: P, mergeSize: M, temporalPatchSize: TP } = spec;
  const factor = P * M;
  if (!(Number.isInteger(frames) && frames >= 1))
    throw new ShapeError(`patchify: frames must be an integer ≥ 1, got ${frames}`);
  if (height % factor !== 0 || width % factor !== 0 || height <= 0 || width <= 0) {
    throw new ShapeError(
      `patchify: frame size ${width}x${height} is not a positive multiple of ${factor} (patch ${P} × merge ${M}) on both sides; resize with smart_resize first`,
    );
  }
  const plane = height * width;
  if (planar.length !== frames * 3 * plane)
    throw new ShapeError(
      `patchify: pixels have ${planar.length} values, expected frames·3·height·width = ${frames}·3·${height}·${width} = ${frames * 3 * plane}`,
    );
  // An image is a clip of one frame: np.tile to temporal_patch_size; videos pad the last frame.
  const padded = Math.ceil(frames / TP) * TP;
  const gridT = padded / TP;
  const gridH = height / P;
  const gridW = width / P;
  const patchDim = 3 * TP * P * P;
  const pixelValues = new Float32Array(gridT * gridH * gridW * patchDim);
  let row = 0;
  for (let t = 0; t < gridT; t++) {
    for (let bh = 0; bh < gridH / M; bh++) {
      for (let bw = 0; bw < gridW / M; bw++) {
        for (let mh = 0; mh < M; mh++) {
          for (let mw = 0; mw < M; mw++) {
            const y0 = (bh * M + mh) * P;
            const x0 = (bw * M + mw) * P;
            let k = row * patchDim;
            for (let c = 0; c < 3; c++) {
              for (let tt = 0; tt < TP; tt++) {
                const frame = Math.min(t * TP + tt, frames - 1);
                if (tt > 0 && frame === Math.min(t * TP + tt - 1, frames - 1)) {
                  // A repeated frame (an image, or the padding of an odd clip): copy the block just written.
                  pixelValues.copyWithin(k, k - P * P, k);
                  k += P * P;
                  continue;
                }
                const base = (frame * 3 + c) * plane;
                for (let py = 0; py < P; py++) {
                  // A plain loop: 14 or 16 values per copy are too few for subarray views to pay off.
                  const from = base + (y0 + py) * width + x0;
                  for (let px = 0; px < P; px++) pixelValues[k++] = planar[from + px]!;
                }
              }
            }
            row++;
          }
        }
      }
    }
  }
  return { pixelValues, patchDim, grid: [gridT, gridH, gridW] };
}

export interface QwenPreprocessOptions {
  /** smart_resize bounds (default: the family's released processor config for images or videos). */
  minPixels?: number;
  maxPixels?: number;
  /** Override the family's normalisation. */
  normalization?: Normalization;
}

/** Preprocessed image or clip: patches plus the resized size. */
export interface QwenPreprocessed extends QwenPatches {
  width: number;
  height: number;
  /** Frames given (before padding to pairs). */
  frames: number;
}

function limitsOf(options: QwenPreprocessOptions): Partial<QwenPixelLimits> {
  return {
    ...(options.minPixels !== undefined ? { minPixels: options.minPixels } : {}),
    ...(options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {}),
  };
}

function checkRgb(image: RgbImage, where: string): void {
  if (image.data.length !== image.width * image.height * 3)
    throw new ShapeError(
      `${where}: RGB image of ${image.width}x${image.height} needs ${image.width * image.height * 3} bytes, got ${image.data.length}`,
    );
}

/**
 * One image → smart_resize, normalise, patchify (image_grid_thw = [1, h, w]).
 *
 * @example
 * const { pixelValues, grid, width, height } = await preprocessQwenImage(rgb, 'qwen2.5-vl'); // 640x480 → 644x476, grid [1, 34, 46]
 */
export async function preprocessQwenImage(
  image: RgbImage,
  family: QwenFamily,
  options: QwenPreprocessOptions = {},
): Promise<QwenPreprocessed> {
  const spec = qwenFamilySpec(family);
  checkRgb(image, `${family} image`);
  const [width, height] = qwenImageSize(family, image.width, image.height, limitsOf(options));
  const resized = await resizeExact(image, width, height);
  const planar = toNchw([resized], options.normalization ?? spec.normalization);
  return { ...patchifyFrames(planar, 1, height, width, spec), width, height, frames: 1 };
}

/**
 * Video frames (all the same size) → one smart_resize for the clip, normalise,
 * patchify in pairs (video_grid_thw = [ceil(frames/2), h, w]).
 *
 * @example
 * const clip = await preprocessQwenVideo(frames, 'qwen3-vl'); // 8 frames of 1280x720 → 1280x704, grid [4, 44, 80]
 */
export async function preprocessQwenVideo(
  frames: RgbImage[],
  family: QwenFamily,
  options: QwenPreprocessOptions = {},
): Promise<QwenPreprocessed> {
  const spec = qwenFamilySpec(family);
  if (frames.length === 0) throw new InputError(`${family} video: no frames`, 'E_FRAMES');
  const first = frames[0]!;
  for (const [i, frame] of frames.entries()) {
    checkRgb(frame, `${family} video frame ${i}`);
    if (frame.width !== first.width || frame.height !== first.height)
      throw new ShapeError(
        `${family} video: frame ${i} is ${frame.width}x${frame.height}, expected ${first.width}x${first.height} like frame 0`,
      );
  }
  const [width, height] = qwenVideoSize(family, frames.length, first.width, first.height, limitsOf(options));
  const resized = await Promise.all(frames.map((f) => resizeExact(f, width, height)));
  const planar = toNchw(resized, options.normalization ?? spec.normalization);
  return { ...patchifyFrames(planar, frames.length, height, width, spec), width, height, frames: frames.length };
}

/**
 * Checks a grid against the patches it describes: integer sides, h and w
 * divisible by the merge size, t·h·w = rows. Errors name the field.
 */
export function checkGrid(grid: readonly number[], rows: number, spec: QwenFamilySpec, field = 'grid_thw'): GridThw {
  if (grid.length !== 3 || !grid.every((v) => Number.isInteger(v) && v >= 1))
    throw new ShapeError(`${field}: expected 3 positive integers (t, h, w), got [${grid.join(', ')}]`);
  const [t, h, w] = grid as GridThw;
  if (h % spec.mergeSize !== 0 || w % spec.mergeSize !== 0)
    throw new ShapeError(`${field}: h = ${h} and w = ${w} must be multiples of the merge size ${spec.mergeSize}`);
  if (t * h * w !== rows)
    throw new ShapeError(
      `${field}: [${t}, ${h}, ${w}] describes t·h·w = ${t * h * w} patches, but pixel_values has ${rows} rows`,
    );
  return [t, h, w];
}

/**
 * Qwen2.5-VL `get_window_index`: the order in which the tower visits merged
 * units (2×2 patch groups). Per grid, the merged grid (h/2 × w/2) is padded
 * to whole windows of `windowSize / merge / patch` units (112 px → 4×4; the
 * padding is a full extra window when a side is already a multiple, as in the
 * reference) and read window by window (row-major windows, row-major inside a
 * window, padding skipped), frame by frame; several grids are concatenated
 * with offsets. `cuWindowSeqlens` are the cumulative window lengths in
 * patches (×4) with empty windows dropped (torch.unique_consecutive).
 *
 * @example
 * qwenWindowIndex([[1, 4, 10]]).windowIndex; // [0,1,2,3,5,6,7,8, 4,9] — 2×5 units, windows of 4 columns
 */
export function qwenWindowIndex(
  grids: readonly GridThw[],
  options: { windowSize?: number; patchSize?: number; mergeSize?: number } = {},
): { windowIndex: Int32Array; cuWindowSeqlens: Int32Array } {
  const windowSize = options.windowSize ?? 112;
  const patchSize = options.patchSize ?? 14;
  const mergeSize = options.mergeSize ?? 2;
  const side = Math.floor(Math.floor(windowSize / mergeSize) / patchSize);
  if (side < 1)
    throw new UsageError(
      `qwenWindowIndex: window ${windowSize} px is smaller than one merged unit (${mergeSize}×${patchSize} px)`,
      'E_RANGE',
    );
  const unit = mergeSize * mergeSize;
  const index: number[] = [];
  const cu: number[] = [0];
  let offset = 0;
  for (const [g, grid] of grids.entries()) {
    const [t, h, w] = grid;
    if (!(Number.isInteger(t) && t >= 1 && Number.isInteger(h) && h >= 1 && Number.isInteger(w) && w >= 1))
      throw new ShapeError(`grid_thw[${g}]: expected 3 positive integers, got [${grid.join(', ')}]`);
    if (h % mergeSize !== 0 || w % mergeSize !== 0)
      throw new ShapeError(`grid_thw[${g}]: h = ${h} and w = ${w} must be multiples of the merge size ${mergeSize}`);
    const lh = h / mergeSize;
    const lw = w / mergeSize;
    const windowsH = (lh + side - (lh % side)) / side;
    const windowsW = (lw + side - (lw % side)) / side;
    for (let f = 0; f < t; f++) {
      for (let wy = 0; wy < windowsH; wy++) {
        for (let wx = 0; wx < windowsW; wx++) {
          let count = 0;
          for (let r = 0; r < side; r++) {
            const y = wy * side + r;
            if (y >= lh) break;
            for (let c = 0; c < side; c++) {
              const x = wx * side + c;
              if (x >= lw) break;
              index.push(offset + (f * lh + y) * lw + x);
              count++;
            }
          }
          if (count > 0) cu.push(cu[cu.length - 1]! + count * unit);
        }
      }
    }
    offset += t * lh * lw;
  }
  return { windowIndex: Int32Array.from(index), cuWindowSeqlens: Int32Array.from(cu) };
}

/**
 * The inverse permutation (argsort) of a window index: `inverse[raster] = position in window order`.
 *
 * @example
 * inversePermutation(Int32Array.of(2, 0, 1)); // [1, 2, 0]
 */
export function inversePermutation(order: Int32Array): Int32Array {
  const inverse = new Int32Array(order.length).fill(-1);
  for (let i = 0; i < order.length; i++) {
    const j = order[i]!;
    if (!(j >= 0 && j < order.length) || inverse[j] !== -1)
      throw new ShapeError(
        `inversePermutation: entry ${i} = ${j} is out of range or repeated (not a permutation of 0..${order.length - 1})`,
      );
    inverse[j] = i;
  }
  return inverse;
}
