import { ShapeError } from '../core/errors.js';
import { groupByAssignment, mergeTokens, resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { meanPoolNative } from '../core/linalg-kernels.js';
import { tileBudgets, tokensBySource } from './tiles.js';
import type { BaseReduceOptions, Reducer } from './types.js';
import { checkInteger } from '../core/validate.js';

/** Options of `pool`. */
export interface PoolOptions extends BaseReduceOptions {
  /** Square pool kernel k ≥ 1; overrides the kernel derived from ratio/budget (the output may then exceed the budget: stats.warnings says so). */
  kernel?: number;
}

/** A pool kernel: kr rows × kc columns of tokens per cell. */
export type PoolKernel = [rows: number, cols: number];

/**
 * `pool` — average pooling of each tile's token grid with a kr×kc kernel:
 * the token-space twin of VTC-Bench's image downsampling by K.
 *
 * Kernel rule (per tile, with budget b_t = max(1, round(n_t·R)) for a ratio,
 * or the tile's even share of a budget): among all kr×kc kernels, the one
 * whose cell count is largest without exceeding b_t; ties go to the most
 * square kernel, then to the smaller kr. So a ratio always reduces and never
 * exceeds the budget: R = 0.25, 0.1111, 0.0625 on a 24×24 grid give the
 * square 2×2, 3×3, 4×4 kernels (144, 64, 36 tokens), R = 0.5 gives 1×2 (288).
 * Cells are cut from the source grid (⌈rows/kr⌉×⌈cols/kc⌉, a border cell may
 * be partial), each the plain mean of the tokens inside it, emitted per tile
 * in raster order of cells. Size is the sum of member sizes; position and
 * source are those of the cell's first (top-left) token; the score is the
 * mean member score. A tile whose tokens do not fill a rectangle (an already
 * reduced set) is pooled with square kernels only: the smallest k whose cell
 * count fits.
 *
 * @example
 * // 24×24 grid, R = 0.25 → 12×12 = 144 tokens, each a 2×2 mean
 * const { tokens, assign } = await poolReducer.run(grid576, { ratio: 0.25 });
 */
export const poolReducer: Reducer<PoolOptions> = {
  name: 'pool',
  summary: 'average pooling on each tile grid with the largest kernel count within the budget (2×2 at R = 0.25)',
  kind: 'merge',
  scope: 'tile',
  options: {
    kernel: {
      type: 'integer',
      description: 'square pool kernel k (overrides the kernel derived from --ratio/--budget; may exceed the budget)',
    },
  },
  native: ['mean_pool'],
  async run(tokens: TokenSet, options: PoolOptions): Promise<Reduction> {
    const { ratio } = resolveBudget(tokens.n, options, 'pool');
    if (options.kernel !== undefined) checkInteger(options.kernel, 'kernel', { min: 1, where: 'pool' });
    const tiles = tokensBySource(tokens);
    const budgets = tileBudgets(
      tiles.map((t) => t.indices.length),
      options,
      'pool',
    );
    const kernels = tiles.map(
      (tile, t): PoolKernel =>
        options.kernel !== undefined ? [options.kernel, options.kernel] : poolKernel(tokens, tile.indices, budgets[t]!),
    );
    const { assign, count } = poolAssignment(tokens, tiles, kernels);
    const features = await nativePoolFeatures(tokens, tiles, kernels, count);
    const budget = budgets.reduce((a, b) => a + b, 0);
    const pooled = averageByAssignment(tokens, assign, count, features);
    return {
      tokens: pooled.tokens,
      assign,
      representative: pooled.representative,
      stats: { ratio, budget, budgets, kernel: kernels[0], kernels },
    };
  },
};

/**
 * The kernel of one tile for a budget (see the rule on poolReducer). Cell
 * counts are exact: for a rectangle of tokens spanning grid rows
 * [top, bottom] the row cells are ⌊bottom/kr⌋ − ⌊top/kr⌋ + 1 (likewise for
 * columns), so every kr×kc pair is tried in O(1).
 *
 * @example
 * poolKernel(grid576, all576, 288); // [1, 2]
 */
export function poolKernel(tokens: TokenSet, indices: Int32Array, budget: number): PoolKernel {
  let top = Infinity;
  let bottom = -Infinity;
  let left = Infinity;
  let right = -Infinity;
  for (const i of indices) {
    top = Math.min(top, tokens.row[i]!);
    bottom = Math.max(bottom, tokens.row[i]!);
    left = Math.min(left, tokens.col[i]!);
    right = Math.max(right, tokens.col[i]!);
  }
  const height = bottom - top + 1;
  const width = right - left + 1;
  // A kernel past the last row and column puts the whole tile in one cell: the fallback that always fits.
  const oneCell: PoolKernel = [bottom + 1, right + 1];
  if (height * width !== indices.length) return squareKernel(tokens, indices, budget, Math.max(...oneCell));
  let best = oneCell;
  let bestCount = 1;
  for (let kr = 1; kr <= oneCell[0]; kr++) {
    const rowCells = Math.floor(bottom / kr) - Math.floor(top / kr) + 1;
    if (rowCells > budget) continue;
    for (let kc = 1; kc <= oneCell[1]; kc++) {
      const count = rowCells * (Math.floor(right / kc) - Math.floor(left / kc) + 1);
      if (count > budget || count < bestCount) continue;
      const squareness = Math.abs(kr - kc);
      const bestSquareness = Math.abs(best[0] - best[1]);
      if (count > bestCount || squareness < bestSquareness || (squareness === bestSquareness && kr < best[0])) {
        best = [kr, kc];
        bestCount = count;
      }
    }
  }
  return best;
}

/** Smallest square k whose exact count of occupied cells fits the budget (tiles that are not a full rectangle). */
function squareKernel(tokens: TokenSet, indices: Int32Array, budget: number, maxKernel: number): PoolKernel {
  for (let k = 1; k < maxKernel; k++) {
    // Cells are keyed by (row cell, col cell); 1_000_003 exceeds any column-cell count.
    const cells = new Set<number>();
    for (const i of indices) cells.add(Math.floor(tokens.row[i]! / k) * 1_000_003 + Math.floor(tokens.col[i]! / k));
    if (cells.size <= budget) return [k, k];
  }
  return [maxKernel, maxKernel];
}

/**
 * Cell of every token: per tile (in order of first appearance), the used
 * cells of its ⌈rows/k⌉×⌈cols/k⌉ grid numbered in raster order.
 */
function poolAssignment(
  tokens: TokenSet,
  tiles: { sourceIndex: number; indices: Int32Array }[],
  kernels: PoolKernel[],
): { assign: Int32Array; count: number } {
  const assign = new Int32Array(tokens.n);
  let offset = 0;
  tiles.forEach(({ sourceIndex, indices }, t) => {
    const [kr, kc] = kernels[t]!;
    const src = tokens.sources[sourceIndex]!;
    const cellRows = Math.ceil(src.rows / kr);
    const cellCols = Math.ceil(src.cols / kc);
    const numbering = new Int32Array(cellRows * cellCols).fill(-1);
    for (const i of indices) {
      const r = tokens.row[i]!;
      const c = tokens.col[i]!;
      if (r < 0 || r >= src.rows || c < 0 || c >= src.cols) {
        throw new ShapeError(
          `pool: token ${i} at grid position (${r}, ${c}) lies outside its source's ${src.rows}x${src.cols} grid`,
        );
      }
      const cell = Math.floor(r / kr) * cellCols + Math.floor(c / kc);
      numbering[cell] = 0;
      assign[i] = cell;
    }
    let used = 0;
    for (let cell = 0; cell < numbering.length; cell++) if (numbering[cell] === 0) numbering[cell] = offset + used++;
    for (const i of indices) assign[i] = numbering[assign[i]!]!;
    offset += used;
  });
  return { assign, count: offset };
}

/**
 * The pooled features computed natively (meanPoolNative) when the input has
 * the common layout — equal full grids, tile after tile in raster order, one
 * square k dividing rows and cols — else undefined (the JS path handles the
 * rest, including rectangular kernels).
 */
async function nativePoolFeatures(
  tokens: TokenSet,
  tiles: { sourceIndex: number; indices: Int32Array }[],
  kernels: PoolKernel[],
  count: number,
): Promise<Float32Array | undefined> {
  const [k, kc] = kernels[0]!;
  if (k !== kc) return undefined;
  const first = tokens.sources[tiles[0]!.sourceIndex]!;
  const { rows, cols } = first;
  if (k < 2 || rows % k !== 0 || cols % k !== 0 || count * k * k !== tokens.n) return undefined;
  let i = 0;
  for (const [t, tile] of tiles.entries()) {
    const src = tokens.sources[tile.sourceIndex]!;
    if (
      kernels[t]![0] !== k ||
      kernels[t]![1] !== k ||
      src.rows !== rows ||
      src.cols !== cols ||
      tile.indices.length !== rows * cols
    )
      return undefined;
    for (let local = 0; local < rows * cols; local++, i++) {
      if (tile.indices[local] !== i || tokens.row[i] !== Math.floor(local / cols) || tokens.col[i] !== local % cols)
        return undefined;
    }
  }
  return meanPoolNative(tokens.data, tiles.length, rows, cols, k, tokens.d);
}

/**
 * Plain mean of the member features per output (members in input order),
 * unless `features` were computed natively; sizes summed, position and source
 * of the cell's top-left token, mean score (core's mergeTokens does the rest;
 * extra tensors get the same plain mean).
 */
function averageByAssignment(
  tokens: TokenSet,
  assign: Int32Array,
  count: number,
  features?: Float32Array,
): { tokens: TokenSet; representative: Int32Array } {
  const { d } = tokens;
  const { start, members } = groupByAssignment(assign, count, 'pool');
  const data = features ?? new Float32Array(count * d);
  const representative = new Int32Array(count);
  for (let o = 0; o < count; o++) {
    const from = start[o]!;
    const to = start[o + 1]!;
    // Representative: the cell's top-left token, whatever order the tokens came in.
    let first = members[from]!;
    for (let p = from + 1; p < to; p++) {
      const i = members[p]!;
      if (
        tokens.row[i]! < tokens.row[first]! ||
        (tokens.row[i] === tokens.row[first] && tokens.col[i]! < tokens.col[first]!)
      )
        first = i;
    }
    representative[o] = first;
    if (!features) meanRows(tokens.data, d, members, from, to, 1 / (to - from), data, o * d);
  }
  const combine = (values: Float32Array, width: number): Float32Array => {
    const out = new Float32Array(count * width);
    for (let o = 0; o < count; o++)
      meanRows(values, width, members, start[o]!, start[o + 1]!, 1 / (start[o + 1]! - start[o]!), out, o * width);
    return out;
  };
  return {
    tokens: mergeTokens(tokens, assign, count, { features: data, representative, meanScore: true, combine }),
    representative,
  };
}

/**
 * out[outBase..+d] = inv · Σ rows members[from..to) of x. Hot loop of `pool`:
 * up to four rows are summed in one pass (a 2×2 cell is a single pass), larger
 * cells accumulate four rows per pass, float32 like the output.
 */
function meanRows(
  x: Float32Array,
  d: number,
  members: Int32Array,
  from: number,
  to: number,
  inv: number,
  out: Float32Array,
  outBase: number,
): void {
  const m = to - from;
  const a = members[from]! * d;
  const b = (m > 1 ? members[from + 1]! : members[from]!) * d;
  const c2 = (m > 2 ? members[from + 2]! : members[from]!) * d;
  const e = (m > 3 ? members[from + 3]! : members[from]!) * d;
  if (m <= 4) {
    // Unused slots repeat row a and are cancelled by the weights below.
    const wb = m > 1 ? 1 : 0;
    const wc = m > 2 ? 1 : 0;
    const we = m > 3 ? 1 : 0;
    if (m === 4) {
      // 2×2 cells (the common R = 0.25 case), unrolled by four: measurably faster in V8.
      const d4 = d - (d % 4);
      let c = 0;
      for (; c < d4; c += 4) {
        out[outBase + c] = (x[a + c]! + x[b + c]! + x[c2 + c]! + x[e + c]!) * inv;
        out[outBase + c + 1] = (x[a + c + 1]! + x[b + c + 1]! + x[c2 + c + 1]! + x[e + c + 1]!) * inv;
        out[outBase + c + 2] = (x[a + c + 2]! + x[b + c + 2]! + x[c2 + c + 2]! + x[e + c + 2]!) * inv;
        out[outBase + c + 3] = (x[a + c + 3]! + x[b + c + 3]! + x[c2 + c + 3]! + x[e + c + 3]!) * inv;
      }
      for (; c < d; c++) out[outBase + c] = (x[a + c]! + x[b + c]! + x[c2 + c]! + x[e + c]!) * inv;
    } else
      for (let c = 0; c < d; c++)
        out[outBase + c] = (x[a + c]! + wb * x[b + c]! + wc * x[c2 + c]! + we * x[e + c]!) * inv;
    return;
  }
  for (let c = 0; c < d; c++) out[outBase + c] = x[a + c]! + x[b + c]! + x[c2 + c]! + x[e + c]!;
  let p = from + 4;
  for (; p + 4 <= to; p += 4) {
    const r0 = members[p]! * d;
    const r1 = members[p + 1]! * d;
    const r2 = members[p + 2]! * d;
    const r3 = members[p + 3]! * d;
    for (let c = 0; c < d; c++)
      out[outBase + c] = out[outBase + c]! + x[r0 + c]! + x[r1 + c]! + x[r2 + c]! + x[r3 + c]!;
  }
  for (; p < to; p++) {
    const r0 = members[p]! * d;
    for (let c = 0; c < d; c++) out[outBase + c] = out[outBase + c]! + x[r0 + c]!;
  }
  for (let c = 0; c < d; c++) out[outBase + c] = out[outBase + c]! * inv;
}
