import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { cosineGram } from './similarity.js';
import type { BaseReduceOptions, Reducer } from './types.js';

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
 * All pairwise similarities and nearest-neighbour similarities come from one
 * native graph (reducers/similarity.ts).
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
  async run(tokens: TokenSet, options: DivPruneOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'divprune');
    const { gram, nearest } = await cosineGram(tokens, 'divprune');
    const order = maxMinDiverse(gram, tokens.n, budget, nearest);
    const keep = Int32Array.from(order).sort();
    return { tokens: selectTokens(tokens, keep), keep, stats: { budget, ratio, first_pick: order[0] } };
  },
};

/**
 * Greedy max–min selection on distances 1 − sim (sim row-major n×n, symmetric).
 * `nearestSimilarity[i]` = max_{j≠i} sim[i][j] when already known (computed
 * here otherwise). Returns the picks in selection order.
 *
 * @example
 * maxMinDiverse(gram, 4, 2); // e.g. Int32Array [3, 0]
 */
export function maxMinDiverse(sim: Float32Array, n: number, budget: number, nearestSimilarity?: Float32Array): Int32Array {
  const picks = new Int32Array(budget);
  const selected = new Uint8Array(n);
  const nearest = nearestSimilarity ?? offDiagonalRowMax(sim, n);
  // First pick: the largest nearest-neighbour distance 1 − max_{j≠i} sim (first on ties).
  let first = 0;
  for (let i = 1; i < n; i++) if (nearest[i]! < nearest[first]!) first = i;
  const minDist = new Float64Array(n).fill(Infinity);
  let pick = first;
  for (let p = 0; p < budget; p++) {
    picks[p] = pick;
    selected[pick] = 1;
    const row = pick * n;
    let next = -1;
    let nextValue = -Infinity;
    for (let j = 0; j < n; j++) {
      const dist = 1 - sim[row + j]!;
      if (dist < minDist[j]!) minDist[j] = dist;
      if (!selected[j] && minDist[j]! > nextValue) {
        nextValue = minDist[j]!;
        next = j;
      }
    }
    pick = next;
  }
  return picks;
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
