import { UsageError } from '../core/errors.js';
import { checkPixelBudget } from '../core/pixels.js';
import { unpadWindow as coreUnpadWindow, type UnpadWindow } from '../core/anyres.js';
import { checkInteger } from '../core/validate.js';

/**
 * LLaVA-NeXT AnyRes and Qwen2-VL dynamic-resolution arithmetic. Pure functions
 * (no pixels): the image encoders use the geometry, the renderer and token
 * accounting use the counts. Everything follows the reference implementation
 * (llava/mm_utils.py and llava_arch.py in LLaVA-NeXT; qwen_vl_utils.smart_resize),
 * including its integer truncations, so counts match the model exactly.
 */

/** A resolution as [width, height] in pixels. */
export type Resolution = [width: number, height: number];

/** LLaVA-NeXT's default grid pinpoints for 336-pixel tiles (width, height). */
export const LLAVA_NEXT_PINPOINTS: readonly Resolution[] = Object.freeze([
  [336, 672],
  [672, 336],
  [672, 672],
  [1008, 336],
  [336, 1008],
] as Resolution[]);

/**
 * The same pinpoints for any tile side (multiples of the tile: 1×2, 2×1, 2×2, 3×1, 1×3).
 *
 * @example
 * defaultPinpoints(384)[2]; // [768, 768]
 */
export function defaultPinpoints(tileSize = 336): Resolution[] {
  return LLAVA_NEXT_PINPOINTS.map(([w, h]) => [(w / 336) * tileSize, (h / 336) * tileSize]);
}

function checkSize(width: number, height: number, where: string): void {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
    throw new UsageError(`${where}: image size must be positive integers, got ${width}x${height}`, 'E_SIZE');
  }
}

/**
 * LLaVA-NeXT `select_best_resolution`: for each candidate (W, H) the image is
 * scaled by s = min(W/w, H/h); effective = min(int(w·s)·int(h·s), w·h),
 * waste = W·H − effective. Highest effective wins, ties go to least waste,
 * then to the earlier candidate.
 *
 * @example
 * selectBestResolution(640, 480); // [672, 672]
 * selectBestResolution(1000, 300); // [1008, 336]
 */
export function selectBestResolution(
  width: number,
  height: number,
  pinpoints: readonly Resolution[] = LLAVA_NEXT_PINPOINTS,
): Resolution {
  checkSize(width, height, 'selectBestResolution');
  if (pinpoints.length === 0) throw new UsageError('selectBestResolution: pinpoints list is empty', 'E_PINPOINTS');
  let best: Resolution | undefined;
  let bestEffective = 0;
  let leastWaste = Infinity;
  for (const [w, h] of pinpoints) {
    const scale = Math.min(w / width, h / height);
    const downW = Math.trunc(width * scale);
    const downH = Math.trunc(height * scale);
    const effective = Math.min(downW * downH, width * height);
    const waste = w * h - effective;
    if (effective > bestEffective || (effective === bestEffective && waste < leastWaste)) {
      best = [w, h];
      bestEffective = effective;
      leastWaste = waste;
    }
  }
  return best!;
}

/** Where the resized image sits inside the padded AnyRes canvas. */
export interface ResizePadGeometry {
  /** Canvas (the selected pinpoint). */
  targetWidth: number;
  targetHeight: number;
  /** Size of the aspect-preserving resize (ceil, clamped to the canvas). */
  resizedWidth: number;
  resizedHeight: number;
  /** Top-left corner of the resized image; the rest is black padding. */
  offsetX: number;
  offsetY: number;
}

/**
 * LLaVA-NeXT `resize_and_pad_image`: scale to fit the target keeping the aspect
 * ratio (the constrained side exactly, the other `ceil`, clamped), then centre.
 *
 * @example
 * resizeAndPadGeometry(640, 480, [672, 672]);
 * // { targetWidth: 672, targetHeight: 672, resizedWidth: 672, resizedHeight: 504, offsetX: 0, offsetY: 84 }
 */
export function resizeAndPadGeometry(width: number, height: number, target: Resolution): ResizePadGeometry {
  checkSize(width, height, 'resizeAndPadGeometry');
  const [targetWidth, targetHeight] = target;
  const scaleW = targetWidth / width;
  const scaleH = targetHeight / height;
  let resizedWidth: number;
  let resizedHeight: number;
  if (scaleW < scaleH) {
    resizedWidth = targetWidth;
    resizedHeight = Math.min(Math.ceil(height * scaleW), targetHeight);
  } else {
    resizedHeight = targetHeight;
    resizedWidth = Math.min(Math.ceil(width * scaleH), targetWidth);
  }
  return {
    targetWidth,
    targetHeight,
    resizedWidth,
    resizedHeight,
    offsetX: Math.floor((targetWidth - resizedWidth) / 2),
    offsetY: Math.floor((targetHeight - resizedHeight) / 2),
  };
}

/** LLaVA-NeXT `unpad_image` on the stitched crop feature map (shared with reducers/ through core). */
export function unpadWindow(width: number, height: number, featureRows: number, featureCols: number): UnpadWindow {
  checkSize(width, height, 'unpadWindow');
  return coreUnpadWindow(width, height, featureRows, featureCols);
}

/** Everything about one image's AnyRes layout. */
export interface AnyResPlan {
  imageWidth: number;
  imageHeight: number;
  tileSize: number;
  /** The selected pinpoint [width, height]. */
  best: Resolution;
  gridRows: number;
  gridCols: number;
  geometry: ResizePadGeometry;
  /** Crop rectangles on the padded canvas, row-major over the grid. */
  crops: { x: number; y: number; width: number; height: number }[];
  /** Patch grid per tile (floor(tileSize / patchSize)). */
  patchRows: number;
  patchCols: number;
  /** The unpadded window of the stitched (gridRows·patchRows) × (gridCols·patchCols) feature map. */
  unpad: UnpadWindow;
  /** Tokens LLaVA-NeXT feeds the LLM: thumbnail + unpadded crop tokens + one newline per unpadded row. */
  tokenCount: number;
}

export interface AnyResOptions {
  /** Tile side in pixels (336 for CLIP ViT-L/14-336). */
  tileSize?: number;
  /** ViT patch side (14). */
  patchSize?: number;
  /** Candidate resolutions; default LLaVA-NeXT's pinpoints scaled to tileSize. */
  pinpoints?: readonly Resolution[];
  /** Largest canvas (pinpoint) in pixels, the same limit as input images (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
}

/**
 * The full AnyRes plan for an image of `width × height`.
 *
 * @example
 * const plan = planAnyRes(1280, 720);
 * plan.gridRows; plan.gridCols; // 2, 2
 * plan.tokenCount;               // 1948
 */
export function planAnyRes(width: number, height: number, options: AnyResOptions = {}): AnyResPlan {
  const tileSize = options.tileSize ?? 336;
  const patchSize = options.patchSize ?? 14;
  if (!(Number.isInteger(tileSize) && Number.isInteger(patchSize) && patchSize > 0 && tileSize >= patchSize)) {
    throw new UsageError(
      `planAnyRes: tile size ${tileSize} and patch size ${patchSize} must be positive integers with tile ≥ patch`,
      'E_SIZE',
    );
  }
  const pinpoints = options.pinpoints ?? defaultPinpoints(tileSize);
  for (const [w, h] of pinpoints) {
    if (!(w > 0 && h > 0 && w % tileSize === 0 && h % tileSize === 0)) {
      throw new UsageError(
        `planAnyRes: pinpoint ${w}x${h} must be positive multiples of the tile size ${tileSize}`,
        'E_PINPOINTS',
      );
    }
    // Checked for every pinpoint, not only the one this image picks: a bad list is a bad option whatever the image.
    checkPixelBudget(w, h, `planAnyRes: pinpoint ${w}x${h}`, options.maxPixels);
  }
  const best = selectBestResolution(width, height, pinpoints);
  const geometry = resizeAndPadGeometry(width, height, best);
  const gridCols = best[0] / tileSize;
  const gridRows = best[1] / tileSize;
  const crops = [];
  for (let r = 0; r < gridRows; r++)
    for (let c = 0; c < gridCols; c++)
      crops.push({ x: c * tileSize, y: r * tileSize, width: tileSize, height: tileSize });
  // Strided patch embeddings drop the remainder (384 px / 14 → 27 patches).
  const patchRows = Math.floor(tileSize / patchSize);
  const patchCols = patchRows;
  const unpad = unpadWindow(width, height, gridRows * patchRows, gridCols * patchCols);
  const tokenCount = patchRows * patchCols + unpad.rows * unpad.cols + unpad.rows;
  return {
    imageWidth: width,
    imageHeight: height,
    tileSize,
    best,
    gridRows,
    gridCols,
    geometry,
    crops,
    patchRows,
    patchCols,
    unpad,
    tokenCount,
  };
}

/**
 * Visual tokens LLaVA-NeXT (anyres, CLIP ViT-L/14-336, spatial_unpad) spends on a
 * `width × height` image: 576 thumbnail tokens + unpadded crop tokens + one
 * newline token per unpadded row.
 *
 * @example
 * anyresTokenCount(640, 480);   // 2340
 * anyresTokenCount(1280, 720);  // 1948
 * anyresTokenCount(2000, 2000); // 2928
 */
export function anyresTokenCount(width: number, height: number, options: AnyResOptions = {}): number {
  return planAnyRes(width, height, options).tokenCount;
}

/** Python's round(): half to even, as Qwen's (and GLM's) smart_resize uses it. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface QwenResizeOptions {
  /** Lower bound on resized pixels (Qwen2-VL preprocessor_config: 3136 = 56·56). */
  minPixels?: number;
  /** Upper bound on resized pixels (Qwen2-VL preprocessor_config: 12845056 = 28·28·16384). */
  maxPixels?: number;
  /** Sides become multiples of this (28 = 14-pixel patches merged 2×2). */
  factor?: number;
}

export interface QwenResize {
  width: number;
  height: number;
  /** Visual tokens after the 2×2 merger: (width/factor)·(height/factor). */
  tokens: number;
  /** Token grid (rows, cols) after merging. */
  gridRows: number;
  gridCols: number;
}

/**
 * Qwen2-VL dynamic resolution (`smart_resize`): sides rounded to multiples of
 * `factor`, then scaled down (floor) above maxPixels or up (ceil) below
 * minPixels keeping the aspect ratio. One token per factor×factor pixels.
 *
 * @example
 * qwenResize(640, 480); // { width: 644, height: 476, tokens: 391, gridRows: 17, gridCols: 23 }
 * qwenResize(1280, 720, { maxPixels: 1003520 }).tokens; // 1196
 */
export function qwenResize(width: number, height: number, options: QwenResizeOptions = {}): QwenResize {
  checkSize(width, height, 'qwenResize');
  const factor = options.factor ?? 28;
  const minPixels = options.minPixels ?? 56 * 56;
  const maxPixels = options.maxPixels ?? 28 * 28 * 16384;
  checkInteger(factor, 'factor', { min: 1, where: 'qwenResize', code: 'E_SIZE' });
  if (!(minPixels > 0 && maxPixels >= minPixels))
    throw new UsageError(`qwenResize: need 0 < minPixels ≤ maxPixels, got ${minPixels} and ${maxPixels}`, 'E_SIZE');
  if (Math.max(width, height) / Math.min(width, height) > 200) {
    throw new UsageError(`qwenResize: aspect ratio must be below 200, got ${width}x${height}`, 'E_SIZE');
  }
  let h = Math.max(factor, roundHalfEven(height / factor) * factor);
  let w = Math.max(factor, roundHalfEven(width / factor) * factor);
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  const gridRows = h / factor;
  const gridCols = w / factor;
  return { width: w, height: h, tokens: gridRows * gridCols, gridRows, gridCols };
}

/**
 * Visual tokens Qwen2-VL / Qwen2.5-VL spends on an image (dynamic resolution).
 *
 * @example
 * qwenTokenCount(1280, 720, { maxPixels: 1003520 }); // 1196
 */
export function qwenTokenCount(width: number, height: number, options: QwenResizeOptions = {}): number {
  return qwenResize(width, height, options).tokens;
}
