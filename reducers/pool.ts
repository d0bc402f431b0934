import { UsageError } from '../core/errors.js';
import { resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { reducePerTile, tileBudgets } from './tiles.js';
import type { BaseReduceOptions, Reducer } from './types.js';

/**
 * `pool` — k×k average pooling of each tile's token grid: the token-space
 * twin of VTC-Bench's image downsampling by K.
 *
 * k = round(1/√R) for a ratio R (0.25, 0.1111, 0.0625, 0.04, 0.01 ↔ k = 2, 3,
 * 4, 5, 10); for a budget, k = max(1, round(√(n_tile / budget_tile))). A grid
 * not divisible by k gives ⌈rows/k⌉×⌈cols/k⌉ cells, each the plain mean of the
 * tokens inside it, emitted in raster order of cells. So the output count
 * follows the grid, not exactly R·n.
 *
 * @example
 * // 24×24 grid, R = 0.25 → 12×12 = 144 tokens, each a 2×2 mean
 * const { tokens, assign } = await poolReducer.run(grid576, { ratio: 0.25 });
 */
export interface PoolOptions extends BaseReduceOptions {
  /** Pool kernel size; overrides the value derived from ratio/budget. */
  kernel?: number;
}

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
    const tileSizes = countPerSource(tokens);
    const budgets = tileBudgets(tileSizes, options, 'pool');
    const kernels: number[] = [];
    const { reduction } = await reducePerTile(tokens, budgets, (tile, budget) => {
      const k = options.kernel ?? (options.budget === undefined ? Math.max(1, Math.round(1 / Math.sqrt(ratio))) : Math.max(1, Math.round(Math.sqrt(tile.n / budget))));
      kernels.push(k);
      return poolTile(tile, k);
    });
    reduction.stats = { ratio, kernel: kernels[0], kernels };
    return reduction;
  },
};

function countPerSource(tokens: TokenSet): number[] {
  const counts = new Map<number, number>();
  for (let i = 0; i < tokens.n; i++) counts.set(tokens.source[i]!, (counts.get(tokens.source[i]!) ?? 0) + 1);
  return [...counts.values()];
}

/** Pools one tile (all tokens share a source) by grid position into k×k cells. */
export function poolTile(tile: TokenSet, k: number): Reduction {
  const source = tile.sources[tile.source[0]!]!;
  const cellCols = Math.ceil(source.cols / k);
  const cellOf = new Int32Array(tile.n);
  const cellToOutput = new Map<number, number>();
  for (let i = 0; i < tile.n; i++) {
    const cell = Math.floor(tile.row[i]! / k) * cellCols + Math.floor(tile.col[i]! / k);
    cellOf[i] = cell;
    cellToOutput.set(cell, -1);
  }
  // Outputs in raster order of cells, whatever order the tokens came in.
  const cells = [...cellToOutput.keys()].sort((a, b) => a - b);
  cells.forEach((cell, o) => cellToOutput.set(cell, o));
  const outputCount = cells.length;
  const assign = new Int32Array(tile.n);
  for (let i = 0; i < tile.n; i++) assign[i] = cellToOutput.get(cellOf[i]!)!;

  const { d } = tile;
  const sums = new Float64Array(outputCount * d);
  const counts = new Float64Array(outputCount);
  const size = new Float64Array(outputCount);
  const members: number[][] = Array.from({ length: outputCount }, () => []);
  for (let i = 0; i < tile.n; i++) {
    const o = assign[i]!;
    counts[o]! += 1;
    size[o]! += tile.size[i]!;
    members[o]!.push(i);
    const base = i * d;
    const outBase = o * d;
    for (let c = 0; c < d; c++) sums[outBase + c]! += tile.data[base + c]!;
  }
  const data = new Float32Array(outputCount * d);
  for (let o = 0; o < outputCount; o++) for (let c = 0; c < d; c++) data[o * d + c] = sums[o * d + c]! / counts[o]!;
  const row = new Int32Array(outputCount);
  const col = new Int32Array(outputCount);
  const sourceIdx = new Int32Array(outputCount);
  const origin: Int32Array[] = new Array(outputCount);
  const score = tile.score ? new Float32Array(outputCount) : undefined;
  for (let o = 0; o < outputCount; o++) {
    const group = members[o]!;
    const first = group[0]!;
    row[o] = tile.row[first]!;
    col[o] = tile.col[first]!;
    sourceIdx[o] = tile.source[first]!;
    const all: number[] = [];
    let scoreSum = 0;
    for (const i of group) {
      for (const v of tile.origin[i]!) all.push(v);
      if (score) scoreSum += tile.score![i]!;
    }
    origin[o] = Int32Array.from(all).sort();
    if (score) score[o] = scoreSum / group.length;
  }
  const tokens: TokenSet = { n: outputCount, d, data, source: sourceIdx, row, col, size, origin, sources: tile.sources, meta: { ...tile.meta } };
  if (score) tokens.score = score;
  if (tile.anyres) tokens.anyres = tile.anyres;
  return { tokens, assign, stats: { kernel: k } };
}
