/**
 * The one piece of LLaVA-NeXT AnyRes arithmetic that both the image pipeline
 * (encoders/anyres.ts) and GlobalCom² (reducers/anyres-unpad.ts) need: which
 * window of the stitched crop feature map holds image content.
 */

/** Kept window [rowStart, rowEnd) × [colStart, colEnd) of a featureRows × featureCols map. */
export interface UnpadWindow {
  rowStart: number;
  rowEnd: number;
  colStart: number;
  colEnd: number;
  rows: number;
  cols: number;
}

/**
 * LLaVA-NeXT `unpad_image`: the image was resized keeping its aspect ratio and
 * centred with padding, so the rows (wide images) or columns (tall images) of
 * padding are cut symmetrically. Float operations follow the Python order
 * (`scale = current / original; new = int(original_other * scale)`) so the
 * window edges match the reference bit for bit. Sizes must be positive.
 *
 * @example
 * unpadWindow(640, 480, 48, 48); // { rowStart: 6, rowEnd: 42, colStart: 0, colEnd: 48, rows: 36, cols: 48 }
 */
export function unpadWindow(width: number, height: number, featureRows: number, featureCols: number): UnpadWindow {
  const originalAspect = width / height;
  const currentAspect = featureCols / featureRows;
  if (originalAspect > currentAspect) {
    const scale = featureCols / width;
    const newRows = Math.trunc(height * scale);
    const padding = Math.floor((featureRows - newRows) / 2);
    return {
      rowStart: padding,
      rowEnd: featureRows - padding,
      colStart: 0,
      colEnd: featureCols,
      rows: featureRows - 2 * padding,
      cols: featureCols,
    };
  }
  const scale = featureRows / height;
  const newCols = Math.trunc(width * scale);
  const padding = Math.floor((featureCols - newCols) / 2);
  return {
    rowStart: 0,
    rowEnd: featureRows,
    colStart: padding,
    colEnd: featureCols - padding,
    rows: featureRows,
    cols: featureCols - 2 * padding,
  };
}
