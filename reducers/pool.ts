import { ShapeError, UsageError } from '../core/errors.js';
import { groupByAssignment, mergeTokens, resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { meanPoolNative } from '../core/linalg-kernels.js';
import { tileBudgets, tokensBySource } from './tiles.js';
import type { BaseReduceOptions, Reducer } from './types.js';

/** Options of `pool`. */
export interface PoolOptions extends BaseReduceOptions {
  /** Pool kernel size k ≥ 1; overrides the value derived from ratio/budget. */
  kernel?: number;
}

/**
 * `pool` — k×k average pooling of each tile's token grid: the token-space
 * twin of VTC-Bench's image downsampling by K.
 *
 * k = round(1/√R) for a ratio R (0.25, 0.1111, 0.0625, 0.04, 0.01 ↔ k = 2, 3,
 * 4, 5, 10); for a budget, each tile's share b_t (split evenly, remainder to
 * the first tiles) gives k = max(1, round(√(n_t / b_t))). A grid not
 * divisible by k gives ⌈rows/k⌉×⌈cols/k⌉ cells, each the plain mean of the
 * tokens inside it, emitted per tile in raster order of cells. So the output
 * count follows the grid, not exactly R·n. Size is the sum of member sizes;
 * position and source are those of the cell's first (top-left) token; the
 * score is the mean member score.
 *
 * @example
 * // 24×24 grid, R = 0.25 → 12×12 = 144 tokens, each a 2×2 mean
 * const { tokens, assign } = await poolReducer.run(grid576, { ratio: 0.25 });
 */
export const poolReducer: Reducer<PoolOptions> = {
  name: 'pool',
  summary: 'k×k average pooling on each tile grid, k = round(1/sqrt(R))',
  kind: 'merge',
  scope: 'tile',
  options: { kernel: { type: 'integer', description: 'pool kernel k (overrides the k derived from --ratio/--budget)' } },
  async run(tokens: TokenSet, options: PoolOptions): Promise<Reduction> {
    const { ratio } = resolveBudget(tokens.n, options, 'pool');
    if (options.kernel !== undefined && !(Number.isInteger(options.kernel) && options.kernel >= 1)) {
      throw new UsageError(`pool: kernel must be an integer ≥ 1, got ${options.kernel}`);
    }
    const tiles = tokensBySource(tokens);
    const budgets = tileBudgets(
      tiles.map((t) => t.indices.length),
      options,
      'pool',
    );
    const kernels = tiles.map((tile, t) => {
      if (options.kernel !== undefined) return options.kernel;
      if (options.budget === undefined) return Math.max(1, Math.round(1 / Math.sqrt(ratio)));
      return Math.max(1, Math.round(Math.sqrt(tile.indices.length / budgets[t]!)));
    });
    const { assign, count } = poolAssignment(tokens, tiles, kernels);
    const features = await nativePoolFeatures(tokens, tiles, kernels, count);
    const pooled = averageByAssignment(tokens, assign, count, features);
    return { tokens: pooled.tokens, assign, representative: pooled.representative, stats: { ratio, kernel: kernels[0], kernels } };
  },
};

/**
 * Cell of every token: per tile (in order of first appearance), the used
 * cells of its ⌈rows/k⌉×⌈cols/k⌉ grid numbered in raster order.
 */
function poolAssignment(tokens: TokenSet, tiles: { sourceIndex: number; indices: Int32Array }[], kernels: number[]): { assign: Int32Array; count: number } {
  const assign = new Int32Array(tokens.n);
  let offset = 0;
  tiles.forEach(({ sourceIndex, indices }, t) => {
    const k = kernels[t]!;
    const src = tokens.sources[sourceIndex]!;
    const cellRows = Math.ceil(src.rows / k);
    const cellCols = Math.ceil(src.cols / k);
    const numbering = new Int32Array(cellRows * cellCols).fill(-1);
    for (const i of indices) {
      const r = tokens.row[i]!;
      const c = tokens.col[i]!;
      if (r < 0 || r >= src.rows || c < 0 || c >= src.cols) {
        throw new ShapeError(`pool: token ${i} at grid position (${r}, ${c}) lies outside its source's ${src.rows}x${src.cols} grid`);
      }
      const cell = Math.floor(r / k) * cellCols + Math.floor(c / k);
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
 * k dividing rows and cols — else undefined (the JS path handles the rest).
 */
async function nativePoolFeatures(tokens: TokenSet, tiles: { sourceIndex: number; indices: Int32Array }[], kernels: number[], count: number): Promise<Float32Array | undefined> {
  const k = kernels[0]!;
  const first = tokens.sources[tiles[0]!.sourceIndex]!;
  const { rows, cols } = first;
  if (k < 2 || rows % k !== 0 || cols % k !== 0 || count * k * k !== tokens.n) return undefined;
  let i = 0;
  for (const [t, tile] of tiles.entries()) {
    const src = tokens.sources[tile.sourceIndex]!;
    if (kernels[t] !== k || src.rows !== rows || src.cols !== cols || tile.indices.length !== rows * cols) return undefined;
    for (let local = 0; local < rows * cols; local++, i++) {
      if (tile.indices[local] !== i || tokens.row[i] !== Math.floor(local / cols) || tokens.col[i] !== local % cols) return undefined;
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
function averageByAssignment(tokens: TokenSet, assign: Int32Array, count: number, features?: Float32Array): { tokens: TokenSet; representative: Int32Array } {
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
      if (tokens.row[i]! < tokens.row[first]! || (tokens.row[i] === tokens.row[first] && tokens.col[i]! < tokens.col[first]!)) first = i;
    }
    representative[o] = first;
    if (!features) meanRows(tokens.data, d, members, from, to, 1 / (to - from), data, o * d);
  }
  const combine = (values: Float32Array, width: number): Float32Array => {
    const out = new Float32Array(count * width);
    for (let o = 0; o < count; o++) meanRows(values, width, members, start[o]!, start[o + 1]!, 1 / (start[o + 1]! - start[o]!), out, o * width);
    return out;
  };
  return { tokens: mergeTokens(tokens, assign, count, { features: data, representative, meanScore: true, combine }), representative };
}

/**
 * out[outBase..+d] = inv · Σ rows members[from..to) of x. Hot loop of `pool`:
 * up to four rows are summed in one pass (a 2×2 cell is a single pass), larger
 * cells accumulate four rows per pass, float32 like the output.
 */
function meanRows(x: Float32Array, d: number, members: Int32Array, from: number, to: number, inv: number, out: Float32Array, outBase: number): void {
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
    } else for (let c = 0; c < d; c++) out[outBase + c] = (x[a + c]! + wb * x[b + c]! + wc * x[c2 + c]! + we * x[e + c]!) * inv;
    return;
  }
  for (let c = 0; c < d; c++) out[outBase + c] = x[a + c]! + x[b + c]! + x[c2 + c]! + x[e + c]!;
  let p = from + 4;
  for (; p + 4 <= to; p += 4) {
    const r0 = members[p]! * d;
    const r1 = members[p + 1]! * d;
    const r2 = members[p + 2]! * d;
    const r3 = members[p + 3]! * d;
    for (let c = 0; c < d; c++) out[outBase + c] += x[r0 + c]! + x[r1 + c]! + x[r2 + c]! + x[r3 + c]!;
  }
  for (; p < to; p++) {
    const r0 = members[p]! * d;
    for (let c = 0; c < d; c++) out[outBase + c] += x[r0 + c]!;
  }
  for (let c = 0; c < d; c++) out[outBase + c] *= inv;
}
