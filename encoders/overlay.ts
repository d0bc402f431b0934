import { ShapeError } from '../core/errors.js';
import type { Reduction, TokenSet } from '../core/tokenset.js';
import type { RgbImage } from './types.js';

/**
 * Draws what a reduction did on the pixels the encoder saw: for selections,
 * kept patches stay as they are and dropped ones are dimmed; for merges, each
 * output token gets its own colour (tinting all the patches it covers) and
 * borders separate groups. Works from `origin`, so every reducer is covered.
 */

/** Where each token source (tile) sits on the overlay canvas. */
export interface OverlayLayout {
  canvas: RgbImage;
  /** Top-left pixel of source s's tile, and the patch side in pixels. */
  tiles: { x: number; y: number }[];
  patchSize: number;
}

const GAP = 8;
const BACKGROUND = 48;

/**
 * A single encoded tile at (0, 0).
 *
 * @example
 * const layout = imageLayout(tile, 14);
 */
export function imageLayout(tile: RgbImage, patchSize: number): OverlayLayout {
  return {
    canvas: { data: tile.data.slice(), width: tile.width, height: tile.height },
    tiles: [{ x: 0, y: 0 }],
    patchSize,
  };
}

/**
 * AnyRes: the thumbnail on the left, the padded crop canvas on the right;
 * crop c of a gridRows × gridCols grid at its place on that canvas.
 *
 * @example
 * const layout = anyresLayout(encoded.thumbnail, encoded.canvas, 2, 2, 14);
 */
export function anyresLayout(
  thumbnail: RgbImage,
  cropCanvas: RgbImage,
  gridRows: number,
  gridCols: number,
  patchSize: number,
): OverlayLayout {
  const tile = thumbnail.width;
  const width = tile + GAP + cropCanvas.width;
  const height = Math.max(tile, cropCanvas.height);
  const data = new Uint8Array(width * height * 3).fill(BACKGROUND);
  blit(data, width, thumbnail, 0, 0);
  blit(data, width, cropCanvas, tile + GAP, 0);
  const tiles = [{ x: 0, y: 0 }];
  for (let r = 0; r < gridRows; r++)
    for (let c = 0; c < gridCols; c++) tiles.push({ x: tile + GAP + c * tile, y: r * tile });
  return { canvas: { data, width, height }, tiles, patchSize };
}

/**
 * Video frames as a contact sheet: frame f at row ⌊f/C⌋, column f mod C of a
 * grid C = ⌈√F⌉ frames wide, GAP pixels apart; frame f is source f (as
 * encodeVideo numbers them).
 *
 * @example
 * const layout = framesLayout([tile0, tile1], 14); // 336 + 8 + 336 wide, 336 high
 */
export function framesLayout(frames: RgbImage[], patchSize: number): OverlayLayout {
  if (frames.length === 0) throw new ShapeError('overlay: no frames to lay out');
  const tile = frames[0]!;
  if (frames.some((f) => f.width !== tile.width || f.height !== tile.height))
    throw new ShapeError(`overlay: frames must share one size (the first is ${tile.width}×${tile.height})`);
  const columns = Math.ceil(Math.sqrt(frames.length));
  const rows = Math.ceil(frames.length / columns);
  const width = columns * tile.width + (columns - 1) * GAP;
  const height = rows * tile.height + (rows - 1) * GAP;
  const data = new Uint8Array(width * height * 3).fill(BACKGROUND);
  const tiles = frames.map((frame, f) => {
    const at = { x: (f % columns) * (tile.width + GAP), y: Math.floor(f / columns) * (tile.height + GAP) };
    blit(data, width, frame, at.x, at.y);
    return at;
  });
  return { canvas: { data, width, height }, tiles, patchSize };
}

function blit(target: Uint8Array, targetWidth: number, image: RgbImage, x: number, y: number): void {
  for (let r = 0; r < image.height; r++)
    target.set(image.data.subarray(r * image.width * 3, (r + 1) * image.width * 3), ((y + r) * targetWidth + x) * 3);
}

/**
 * A well-spread colour for group j (golden-angle hues).
 *
 * @example
 * groupColour(0); // [226, 54, 54]
 */
export function groupColour(j: number): [number, number, number] {
  const hue = (j * 137.508) % 360;
  const s = 0.75;
  const l = 0.55;
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs(((hue / 60) % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] =
    hue < 60
      ? [c, x, 0]
      : hue < 120
        ? [x, c, 0]
        : hue < 180
          ? [0, c, x]
          : hue < 240
            ? [0, x, c]
            : hue < 300
              ? [x, 0, c]
              : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/**
 * For every input token, the output token that covers it (−1 when dropped),
 * derived from output origins (which refer to the input's origin indices).
 *
 * @example
 * outputOfInput(tokens, selectionOf([3, 0])); // [1, -1, -1, 0] for 4 inputs
 */
export function outputOfInput(input: TokenSet, reduction: Reduction): Int32Array {
  if (reduction.assign && reduction.assign.length === input.n) return reduction.assign.slice();
  const byOrigin = new Map<number, number>();
  for (let i = 0; i < input.n; i++) for (const o of input.origin[i]!) byOrigin.set(o, i);
  const owner = new Int32Array(input.n).fill(-1);
  const out = reduction.tokens;
  for (let j = 0; j < out.n; j++) {
    for (const o of out.origin[j]!) {
      const i = byOrigin.get(o);
      if (i !== undefined) owner[i] = j;
    }
  }
  return owner;
}

export interface OverlayStats {
  /** Per source: input tokens, and how many of them survive (kept, or merged into some output). */
  perSource: { kind: string; index: number; tokens: number; covered: number; outputs: number }[];
  mode: 'select' | 'merge';
}

/**
 * Paints the reduction onto a copy of the layout canvas.
 *
 * @example
 * const layout = imageLayout(tile, 14);
 * const { image } = drawReductionOverlay(layout, tokens, reduction);
 * await writeFile('overlay.png', await encodePng(image));
 */
export function drawReductionOverlay(
  layout: OverlayLayout,
  input: TokenSet,
  reduction: Reduction,
): { image: RgbImage; stats: OverlayStats } {
  if (layout.tiles.length < input.sources.length)
    throw new ShapeError(
      `overlay: layout has ${layout.tiles.length} tiles but the tokens come from ${input.sources.length} sources`,
    );
  const owner = outputOfInput(input, reduction);
  const outputSize = new Int32Array(reduction.tokens.n);
  for (const j of owner) if (j >= 0) outputSize[j]!++;
  const merge = reduction.assign !== undefined || outputSize.some((size) => size > 1);
  const { canvas, patchSize: p } = layout;
  const data = canvas.data.slice();
  const W = canvas.width;
  // Token lookup by (source, row, col) for group borders.
  const at = new Map<string, number>();
  for (let i = 0; i < input.n; i++) at.set(`${input.source[i]},${input.row[i]},${input.col[i]}`, i);
  const perSource = input.sources.map((s) => ({
    kind: s.kind,
    index: s.index,
    tokens: 0,
    covered: 0,
    outputs: new Set<number>(),
  }));
  for (let i = 0; i < input.n; i++) {
    const s = input.source[i]!;
    const j = owner[i]!;
    const stats = perSource[s]!;
    stats.tokens++;
    if (j >= 0) {
      stats.covered++;
      stats.outputs.add(j);
    }
    const { x: tx, y: ty } = layout.tiles[s]!;
    const x0 = tx + input.col[i]! * p;
    const y0 = ty + input.row[i]! * p;
    // Only real merges are tinted: a token that stands alone in a merge result (e.g. a VisionZip dominant token) is kept as is.
    const colour = merge && j >= 0 && outputSize[j]! > 1 ? groupColour(j) : undefined;
    for (let y = y0; y < y0 + p && y < canvas.height; y++) {
      for (let x = x0; x < x0 + p && x < W; x++) {
        const q = (y * W + x) * 3;
        for (let c = 0; c < 3; c++) {
          const v = data[q + c]!;
          data[q + c] = j < 0 ? Math.round(v * 0.2 + 16) : colour ? Math.round(v * 0.45 + colour[c]! * 0.55) : v;
        }
      }
    }
    if (merge && j >= 0) {
      // Dark border on the right/bottom edge where the neighbour belongs to another group.
      const right = at.get(`${s},${input.row[i]},${input.col[i]! + 1}`);
      const below = at.get(`${s},${input.row[i]! + 1},${input.col[i]}`);
      if (right !== undefined && owner[right] !== j) for (let y = y0; y < y0 + p; y++) paint(data, W, x0 + p - 1, y);
      if (below !== undefined && owner[below] !== j) for (let x = x0; x < x0 + p; x++) paint(data, W, x, y0 + p - 1);
    }
  }
  return {
    image: { data, width: W, height: canvas.height },
    stats: {
      mode: merge ? 'merge' : 'select',
      perSource: perSource.map((s) => ({
        kind: s.kind,
        index: s.index,
        tokens: s.tokens,
        covered: s.covered,
        outputs: s.outputs.size,
      })),
    },
  };
}

function paint(data: Uint8Array, width: number, x: number, y: number): void {
  const q = (y * width + x) * 3;
  data[q] = 20;
  data[q + 1] = 20;
  data[q + 2] = 20;
}
