import { checkFeatureSize } from '../core/linalg.js';
import {
  cosineRows,
  nearestCosineNeighbours,
  SIMILARITY_TILE_VALUES,
  unitRowsNative,
  type SimilarityTile,
} from '../core/linalg-kernels.js';
import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import type { BaseReduceOptions, Reducer, ReduceProgress } from './types.js';

/** Options of `divprune`: only ratio/budget (budget = max(1, round(R·n)), as the reference's round(ratio·N)). */
export type DivPruneOptions = BaseReduceOptions;

/**
 * `divprune` — DivPrune (Alvar et al., CVPR 2025): diversity-based selection
 * as a max–min problem on the distance 1 − cos(x_i, x_j).
 *
 * - first pick: the token with the largest nearest-neighbour distance;
 * - then greedily the token whose minimum distance to the selected set is
 *   largest (ties → lowest index);
 * - the kept tokens are returned in original order.
 *
 * No n×n matrix: nearest-neighbour similarities come from symmetric row
 * tiles (core/linalg-kernels `nearestCosineNeighbours`, ≈ n²·d/2
 * multiply-adds), and each greedy step needs only the similarity row of the
 * token just picked. Those rows are computed in batches by one GEMM for the
 * likeliest next picks (the tokens with the largest current minimum
 * distance); a batch is recomputed only when a pick falls outside it, so the
 * result is exactly the sequential rule's. Extra memory: one normalised copy
 * of the features plus at most 64 MiB of similarities. Inputs whose n×n
 * matrix fits in that (n ≤ 4096) keep the nearest-neighbour pass's tiles (the
 * upper block triangle) and read each pick's row from them: no second GEMM.
 *
 * @example
 * const { keep } = await divpruneReducer.run(grid576, { ratio: 0.1 }); // 58 indices, ascending
 */
export const divpruneReducer: Reducer<DivPruneOptions> = {
  name: 'divprune',
  summary: 'DivPrune greedy max-min diversity on 1 - cosine, kept in original order',
  kind: 'select',
  scope: 'all',
  options: {},
  native: ['unit_rows', 'nearest_tile', 'gemm'],
  async run(tokens: TokenSet, options: DivPruneOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'divprune');
    checkFeatureSize(tokens.n, tokens.d, 'divprune');
    const { picks, rowsComputed } = await maxMinDiverseBlocked(
      tokens.data,
      tokens.n,
      tokens.d,
      budget,
      options.onProgress,
    );
    const keep = Int32Array.from(picks).sort();
    return {
      tokens: selectTokens(tokens, keep),
      keep,
      stats: { budget, ratio, first_pick: picks[0], similarity_rows: rowsComputed },
    };
  },
};

/**
 * Greedy max–min selection on distances 1 − sim (sim row-major n×n, symmetric).
 * `nearestSimilarity[i]` = max_{j≠i} sim[i][j] when already known (computed
 * here otherwise). Returns the picks in selection order. The reference for
 * small inputs; `divprune` itself runs the same rule without the matrix.
 *
 * @example
 * maxMinDiverse(gram, 4, 2); // e.g. Int32Array [3, 0]
 */
export function maxMinDiverse(
  sim: Float32Array,
  n: number,
  budget: number,
  nearestSimilarity?: Float32Array,
): Int32Array {
  const state = new GreedyState(n, budget, nearestSimilarity ?? offDiagonalRowMax(sim, n));
  while (!state.done()) state.step(sim, state.pick * n);
  return state.picks;
}

/**
 * The same greedy rule on features x [n, d] (raw; L2-normalised here) without
 * the n×n matrix. Returns the picks in selection order and how many
 * similarity rows were computed after the nearest-neighbour pass (budget − 1
 * when every prediction held; 0 for n ≤ 4096, whose rows come from that pass).
 *
 * Each round predicts the next picks exactly: the M unselected tokens with
 * the largest minimum distance (the pool) plus the current pick get their
 * (M+1)² similarities, and the greedy rule runs inside the pool while its best
 * value stays above every outside token's minimum distance (which can only
 * shrink) — so those picks are certain. Their full similarity rows then come
 * from one GEMM and are applied in order as the sequential rule does.
 * `onProgress` hears the 'nearest neighbours' pass (similarities computed)
 * and then the 'picks' made.
 *
 * @example
 * const { picks } = await maxMinDiverseBlocked(x, 36864, 1024, 3686);
 */
export async function maxMinDiverseBlocked(
  x: Float32Array,
  n: number,
  d: number,
  budget: number,
  onProgress?: (progress: ReduceProgress) => void,
): Promise<{ picks: Int32Array; rowsComputed: number }> {
  const unit = await unitRowsNative(x, n, d);
  // Small inputs keep the nearest-neighbour tiles (the upper block triangle, within one 64 MiB tile) and read rows from them.
  const keepTiles = n * n <= SIMILARITY_TILE_VALUES;
  const { nearest, tiles } = await nearestCosineNeighbours(
    unit,
    n,
    d,
    SIMILARITY_TILE_VALUES,
    keepTiles,
    onProgress && ((done, total) => onProgress({ stage: 'nearest neighbours', done, total })),
  );
  const state = new GreedyState(n, budget, nearest);
  const reportPicks = () => onProgress?.({ stage: 'picks', done: budget - state.remaining(), total: budget });
  if (keepTiles) {
    const rows = new TileRows(tiles, n);
    const row = new Float32Array(n);
    while (!state.done()) state.step(rows.read(state.pick, row), 0);
    reportPicks();
    return { picks: state.picks, rowsComputed: 0 };
  }
  const capacity = Math.max(1, Math.min(n, Math.floor(SIMILARITY_TILE_VALUES / n)));
  let poolSize = Math.max(32, Math.min(1024, Math.round(n / 16)));
  let rowsComputed = 0;
  while (!state.done()) {
    // The last pick's row is never needed: nothing is chosen after it.
    if (state.remaining() === 1) {
      state.step(undefined, 0);
      reportPicks();
      break;
    }
    const predicted = await state.certainPicks(
      unit,
      d,
      Math.min(poolSize, n - 1),
      Math.min(capacity, state.remaining() - 1),
    );
    const rows = await cosineRows(unit, n, d, predicted);
    rowsComputed += predicted.length;
    for (let r = 0; r < predicted.length && state.pick === predicted[r]; r++) state.step(rows, r * n);
    reportPicks();
    // Most of the pool came true: a larger pool predicts further ahead.
    if (predicted.length > poolSize / 2) poolSize = Math.min(capacity, 2 * poolSize);
  }
  return { picks: state.picks, rowsComputed };
}

/** Full similarity rows read from the upper block triangle: row i, column j < i's block comes from j's tile, transposed. */
class TileRows {
  private readonly tileOf: Int32Array;

  constructor(
    private readonly tiles: SimilarityTile[],
    n: number,
  ) {
    this.tileOf = new Int32Array(n);
    tiles.forEach((tile, t) => this.tileOf.fill(t, tile.start, tile.start + tile.rows));
  }

  read(i: number, out: Float32Array): Float32Array {
    const own = this.tiles[this.tileOf[i]!]!;
    for (let t = 0; t < this.tileOf[i]!; t++) {
      const { start, rows, cols, values } = this.tiles[t]!;
      for (let r = 0; r < rows; r++) out[start + r] = values[r * cols + (i - start)]!;
    }
    out.set(own.values.subarray((i - own.start) * own.cols, (i - own.start + 1) * own.cols), own.start);
    return out;
  }
}

/**
 * DivPrune's greedy state: picks so far, each token's minimum distance to
 * them, and the next pick (argmax of that distance over unselected tokens,
 * first on ties). `step` consumes the similarity row of the current pick.
 */
class GreedyState {
  readonly picks: Int32Array;
  pick: number;
  private count = 0;
  private readonly selected: Uint8Array;
  private readonly minDist: Float64Array;

  constructor(
    private readonly n: number,
    budget: number,
    nearest: Float32Array,
  ) {
    this.picks = new Int32Array(budget);
    this.selected = new Uint8Array(n);
    this.minDist = new Float64Array(n).fill(Infinity);
    // First pick: the largest nearest-neighbour distance 1 − max_{j≠i} sim (first on ties).
    let first = 0;
    for (let i = 1; i < n; i++) if (nearest[i]! < nearest[first]!) first = i;
    this.pick = first;
  }

  done(): boolean {
    return this.count === this.picks.length;
  }

  /** Records the current pick; with its similarity row (sim[base..base+n)) also finds the next one. */
  step(sim: Float32Array | undefined, base: number): void {
    const { n, selected, minDist } = this;
    this.picks[this.count++] = this.pick;
    selected[this.pick] = 1;
    if (!sim) return;
    let next = -1;
    let nextValue = -Infinity;
    for (let j = 0; j < n; j++) {
      const dist = 1 - sim[base + j]!;
      if (dist < minDist[j]!) minDist[j] = dist;
      if (!selected[j] && minDist[j]! > nextValue) {
        nextValue = minDist[j]!;
        next = j;
      }
    }
    this.pick = next;
  }

  remaining(): number {
    return this.picks.length - this.count;
  }

  /**
   * The current pick followed by the picks certain to come next (at most
   * `limit` in all): the greedy rule run inside a pool of the `poolSize`
   * unselected tokens with the largest minimum distance, stopped as soon as
   * its best value is not above the largest outside value τ.
   */
  async certainPicks(unit: Float32Array, d: number, poolSize: number, limit: number): Promise<Int32Array> {
    const { n, selected, minDist } = this;
    const open: number[] = [];
    for (let j = 0; j < n; j++) if (!selected[j] && j !== this.pick) open.push(j);
    let pool = open;
    let outside = -Infinity;
    if (open.length > poolSize) {
      const values = Float64Array.from(open, (j) => minDist[j]!).sort();
      const threshold = values[values.length - poolSize]!;
      pool = [];
      for (const j of open) if (minDist[j]! > threshold) pool.push(j);
      for (const j of open) if (minDist[j] === threshold && pool.length < poolSize) pool.push(j);
      pool.sort((a, b) => a - b);
      const inPool = new Set(pool);
      for (const j of open) if (!inPool.has(j) && minDist[j]! > outside) outside = minDist[j]!;
    }
    const members = Int32Array.from([this.pick, ...pool]);
    const m = members.length;
    const sims = await cosineSubmatrix(unit, d, members);
    const localMin = Float64Array.from(members, (j) => minDist[j]!);
    const taken = new Uint8Array(m);
    const out = [this.pick];
    let current = 0;
    while (out.length < limit) {
      taken[current] = 1;
      let best = -1;
      let bestValue = -Infinity;
      // Pool members are in ascending token order, so "first on ties" matches the global rule.
      for (let r = 1; r < m; r++) {
        const dist = 1 - sims[current * m + r]!;
        if (dist < localMin[r]!) localMin[r] = dist;
        if (!taken[r] && localMin[r]! > bestValue) {
          bestValue = localMin[r]!;
          best = r;
        }
      }
      if (best < 0 || !(bestValue > outside)) break;
      out.push(members[best]!);
      current = best;
    }
    return Int32Array.from(out);
  }
}

/** Cosine similarities among the rows `members` of `unit` (row-major m×m). */
async function cosineSubmatrix(unit: Float32Array, d: number, members: Int32Array): Promise<Float32Array> {
  const rows = new Float32Array(members.length * d);
  members.forEach((i, r) => rows.set(unit.subarray(i * d, (i + 1) * d), r * d));
  return cosineRows(
    rows,
    members.length,
    d,
    Int32Array.from(members, (_, r) => r),
  );
}

/** max_{j≠i} sim[i][j] per row (−Infinity for a single token). */
function offDiagonalRowMax(sim: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let best = -Infinity;
    for (let j = 0; j < n; j++) if (j !== i && sim[row + j]! > best) best = sim[row + j]!;
    out[i] = best;
  }
  return out;
}
