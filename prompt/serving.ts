import { InputError } from '../core/errors.js';
import type { TokenSet } from '../core/tokenset.js';
import type { GridThw } from '../encoders/qwen-preprocess.js';
import { visualInput } from './qwen.js';

/**
 * What to send a server for one reduced Qwen image / video token set:
 * - `grid` set: the kept tokens still form a full lattice (every token
 *   unreduced, or a k×k pooling of every temporal patch): the embeddings in
 *   raster order with that `image_grid_thw` — what stock vLLM accepts
 *   (`image_embeds` + `image_grid_thw`); the server numbers the lattice as a
 *   smaller image, exactly like a downsampled input;
 * - `grid` unset: a pruned set; the embeddings in raster order and
 *   `positions` (t, h, w) per row in the original merged grid, for a server
 *   that places each embedding at its own position (docs/qwen.md).
 */
export interface QwenServingInput {
  /**
   * Embeddings in raster order of the kept positions: [n, d], or for
   * Qwen3-VL sets with DeepStack [n, d·(1 + k)] — each row the main features
   * then `extra.deepstack_0 … deepstack_{k−1}`, the layout vLLM splits back
   * into the main and multiscale parts.
   */
  data: Float32Array;
  shape: [number, number];
  /** The grid to send with the embeddings when the kept set is a full lattice. */
  grid?: GridThw;
  /** Per row (t, h, w) in the original merged grid, n×3 (always given). */
  positions: Int32Array;
  /** The original `image_grid_thw` / `video_grid_thw`. */
  sourceGrid: GridThw;
  /** Token-set row of each embedding row. */
  rows: Int32Array;
}

/**
 * Serving input of a Qwen token set (kind from its grid metadata).
 *
 * @example
 * const input = qwenServingInput(pooled); // 2×2-pooled 1×28×28 image → grid [1, 14, 14], 49 rows
 */
export function qwenServingInput(
  tokens: TokenSet,
  kind: 'image' | 'video' = tokens.meta.video_grid_thw !== undefined ? 'video' : 'image',
): QwenServingInput {
  const { grid: sourceGrid, positions } = visualInput(
    tokens,
    undefined,
    kind,
    { spatialMerge: 2, temporalPatch: 2 },
    `${kind} tokens`,
  );
  const rows = Int32Array.from({ length: tokens.n }, (_, i) => i).sort(
    (a, b) =>
      positions[3 * a]! - positions[3 * b]! ||
      positions[3 * a + 1]! - positions[3 * b + 1]! ||
      positions[3 * a + 2]! - positions[3 * b + 2]!,
  );
  const { d } = tokens;
  const parts = [{ values: tokens.data, width: d }, ...deepstackParts(tokens)];
  const width = parts.reduce((sum, part) => sum + part.width, 0);
  const data = new Float32Array(tokens.n * width);
  const ordered = new Int32Array(3 * tokens.n);
  rows.forEach((row, j) => {
    let at = j * width;
    for (const part of parts) {
      data.set(part.values.subarray(row * part.width, (row + 1) * part.width), at);
      at += part.width;
    }
    ordered.set(positions.subarray(3 * row, 3 * row + 3), 3 * j);
  });
  const input: QwenServingInput = { data, shape: [tokens.n, width], positions: ordered, sourceGrid, rows };
  const lattice = fullLattice(ordered, tokens.n, sourceGrid);
  if (lattice) input.grid = [sourceGrid[0], 2 * lattice.rows, 2 * lattice.cols];
  return input;
}

/** The DeepStack tensors of a Qwen3-VL set in level order (deepstack_0, deepstack_1, …), each n×width. */
function deepstackParts(tokens: TokenSet): { values: Float32Array; width: number }[] {
  const names = Object.keys(tokens.extra ?? {})
    .filter((name) => /^deepstack_\d+$/.test(name))
    .sort((a, b) => Number(a.slice(10)) - Number(b.slice(10)));
  return names.map((name) => {
    const values = tokens.extra![name]!;
    return { values, width: values.length / tokens.n };
  });
}

/**
 * Whether raster-ordered positions form a full lattice: every temporal patch
 * holds the same rows × cols cells, rows 0, s, 2s, … and cols 0, s', 2s', …
 * covering the whole merged grid (the unreduced set, or k×k pooling cells by
 * their top-left members), so the set is a smaller complete grid. Returns its
 * size, else undefined.
 */
function fullLattice(positions: Int32Array, n: number, grid: GridThw): { rows: number; cols: number } | undefined {
  const frames = grid[0];
  if (n === 0 || n % frames !== 0) return undefined;
  const perFrame = n / frames;
  const hs = [...new Set(Array.from({ length: perFrame }, (_, j) => positions[3 * j + 1]!))];
  const ws = [...new Set(Array.from({ length: perFrame }, (_, j) => positions[3 * j + 2]!))];
  if (hs.length * ws.length !== perFrame || !evenCover(hs, grid[1] / 2) || !evenCover(ws, grid[2] / 2))
    return undefined;
  for (let j = 0; j < n; j++) {
    const local = j % perFrame;
    if (positions[3 * j] !== Math.floor(j / perFrame)) return undefined;
    if (positions[3 * j + 1] !== hs[Math.floor(local / ws.length)] || positions[3 * j + 2] !== ws[local % ws.length])
      return undefined;
  }
  return { rows: hs.length, cols: ws.length };
}

/** values = 0, s, 2s, … with ⌈size/s⌉ entries (a pooling's cell origins along one axis). */
function evenCover(values: number[], size: number): boolean {
  const step = values.length > 1 ? values[1]! - values[0]! : size;
  return step >= 1 && values.length === Math.ceil(size / step) && values.every((v, i) => v === i * step);
}

/** True when a token set is a Qwen set (grid metadata and positions): what eval and exports test before sending grids. */
export function isQwenTokenSet(tokens: TokenSet): boolean {
  const hasGrid = tokens.meta.image_grid_thw !== undefined || tokens.meta.video_grid_thw !== undefined;
  if (hasGrid && !tokens.positions)
    throw new InputError(
      'Qwen token set (image_grid_thw / video_grid_thw metadata) without positions: cannot place its tokens',
      'E_PROMPT',
    );
  return hasGrid;
}
