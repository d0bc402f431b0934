import { ShapeError } from '../core/errors.js';
import type { AnyResInfo } from '../core/tokenset.js';
import { unpadWindow } from '../core/anyres.js';

/** The valid (unpadded) rectangle of one crop, in that crop's own token grid. */
export interface CropValidRegion {
  /** First valid row / col inside the crop (0-based). */
  top: number;
  left: number;
  /** Valid rows × cols (0×0 when the crop is all padding). */
  height: number;
  width: number;
}

/** Where the original image lies in the full crop-grid token canvas. */
export interface UnpadLayout {
  /** Full token canvas: gridRows·patchRows × gridCols·patchCols. */
  canvasRows: number;
  canvasCols: number;
  /** Valid canvas rows [rowStart, rowEnd) and cols [colStart, colEnd). */
  rowStart: number;
  rowEnd: number;
  colStart: number;
  colEnd: number;
  /** Per crop, row-major over the crop grid. */
  crops: CropValidRegion[];
}

/**
 * LLaVA-NeXT's `unpad_image` arithmetic on the token canvas of an AnyRes
 * crop grid: the image was resized keeping its aspect ratio and centred with
 * black padding, so only a band of rows (wide images) or of columns (tall
 * images) holds image content. Float operations follow the Python order
 * (`scale = current / original; new = int(original_other * scale)`) so the
 * band edges match the reference bit for bit.
 *
 * @example
 * // 640×480 image on a 2×2 grid of 24×24 tiles: rows 6..41 of 48 are valid
 * const layout = anyresUnpadLayout({ gridRows: 2, gridCols: 2, imageWidth: 640, imageHeight: 480, patchRows: 24, patchCols: 24 });
 * layout.rowStart; // 6
 * layout.crops[0]; // { top: 6, left: 0, height: 18, width: 24 }
 */
export function anyresUnpadLayout(info: AnyResInfo): UnpadLayout {
  const { gridRows, gridCols, patchRows, patchCols, imageWidth, imageHeight } = info;
  if (!(imageWidth > 0 && imageHeight > 0))
    throw new ShapeError(`anyres unpad: image size must be positive, got ${imageWidth}x${imageHeight}`);
  const canvasRows = gridRows * patchRows;
  const canvasCols = gridCols * patchCols;
  const { rowStart, rowEnd, colStart, colEnd } = unpadWindow(imageWidth, imageHeight, canvasRows, canvasCols);
  const crops: CropValidRegion[] = [];
  for (let gr = 0; gr < gridRows; gr++) {
    for (let gc = 0; gc < gridCols; gc++) {
      const top = Math.max(rowStart, gr * patchRows);
      const bottom = Math.min(rowEnd, (gr + 1) * patchRows);
      const left = Math.max(colStart, gc * patchCols);
      const right = Math.min(colEnd, (gc + 1) * patchCols);
      // The reference reports (0, 0) for a crop with no valid token.
      if (bottom <= top || right <= left) crops.push({ top: 0, left: 0, height: 0, width: 0 });
      else
        crops.push({
          top: top - gr * patchRows,
          left: left - gc * patchCols,
          height: bottom - top,
          width: right - left,
        });
    }
  }
  return { canvasRows, canvasCols, rowStart, rowEnd, colStart, colEnd, crops };
}

/**
 * PyTorch `F.interpolate(mode='bilinear', align_corners=False)` of a
 * row-major inRows×inCols map to outRows×outCols (source index
 * (dst + 0.5)·in/out − 0.5, clamped at 0; neighbours clamped at the edge).
 *
 * @example
 * bilinearResize(Float64Array.of(0, 1, 2, 3), 2, 2, 4, 4)[0]; // 0 (corner clamps)
 */
export function bilinearResize(
  values: ArrayLike<number>,
  inRows: number,
  inCols: number,
  outRows: number,
  outCols: number,
): Float64Array {
  if (values.length !== inRows * inCols)
    throw new ShapeError(
      `bilinearResize: ${inRows}x${inCols} map needs ${inRows * inCols} values, got ${values.length}`,
    );
  const out = new Float64Array(outRows * outCols);
  const rowScale = inRows / outRows;
  const colScale = inCols / outCols;
  const y0 = new Int32Array(outRows);
  const y1 = new Int32Array(outRows);
  const wy = new Float64Array(outRows);
  for (let r = 0; r < outRows; r++) {
    const src = Math.max(0, (r + 0.5) * rowScale - 0.5);
    y0[r] = Math.min(Math.floor(src), inRows - 1);
    y1[r] = Math.min(y0[r]! + 1, inRows - 1);
    wy[r] = src - y0[r]!;
  }
  const x0 = new Int32Array(outCols);
  const x1 = new Int32Array(outCols);
  const wx = new Float64Array(outCols);
  for (let c = 0; c < outCols; c++) {
    const src = Math.max(0, (c + 0.5) * colScale - 0.5);
    x0[c] = Math.min(Math.floor(src), inCols - 1);
    x1[c] = Math.min(x0[c]! + 1, inCols - 1);
    wx[c] = src - x0[c]!;
  }
  for (let r = 0; r < outRows; r++) {
    const a = y0[r]! * inCols;
    const b = y1[r]! * inCols;
    const fy = wy[r]!;
    for (let c = 0; c < outCols; c++) {
      const fx = wx[c]!;
      const top = (1 - fx) * values[a + x0[c]!]! + fx * values[a + x1[c]!]!;
      const bottom = (1 - fx) * values[b + x0[c]!]! + fx * values[b + x1[c]!]!;
      out[r * outCols + c] = (1 - fy) * top + fy * bottom;
    }
  }
  return out;
}
