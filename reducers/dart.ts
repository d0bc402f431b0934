import { matmulABt, topK } from '../core/linalg.js';
import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import type { BaseReduceOptions, Reducer } from './types.js';
import { checkInteger } from '../core/validate.js';

/** Options of `dart`. */
export interface DartOptions extends BaseReduceOptions {
  /** Number of pivot tokens (top L1 norm), an integer ≥ 1; default 4 (the reference's pivot_image_token). */
  pivots?: number;
}

export const DART_PIVOTS = 4;

/**
 * `dart` — DART (Wen et al., 2025, "Stop Looking for Important Tokens…
 * Duplication Matters More"), the pre-LLM variant: the reference selects on
 * the LLM's layer-2 keys (pivots) and hidden states (similarity); here both
 * are the encoder features.
 *
 * - pivots: the P = 4 tokens of largest L1 norm (ties → lowest index),
 *   processed in descending-norm order, and kept;
 * - the budget − P other slots are split evenly over the pivots, the
 *   remainder all to the first pivot;
 * - each pivot in turn takes its quota of the tokens least cosine-similar to
 *   it (ties → lowest index) among those not yet kept;
 * - kept tokens in original order.
 *
 * @example
 * const { keep, stats } = await dartReducer.run(tokens, { budget: 64 }); // stats.pivots: 4 indices
 */
export const dartReducer: Reducer<DartOptions> = {
  name: 'dart',
  summary: 'DART duplication-aware selection: top-L1-norm pivots, each keeps the tokens least similar to it',
  kind: 'select',
  scope: 'all',
  options: {
    pivots: { type: 'integer', description: 'number of pivot tokens (largest L1 norm), ≥ 1', default: DART_PIVOTS },
  },
  native: ['gemm'],
  async run(tokens: TokenSet, options: DartOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'dart');
    const pivotCount = options.pivots ?? DART_PIVOTS;
    checkInteger(pivotCount, 'pivots', { min: 1, where: 'dart', code: 'E_RANGE' });
    const { n, d, data } = tokens;
    const l1 = new Float64Array(n);
    const l2 = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s1 = 0;
      let s2 = 0;
      const base = i * d;
      for (let c = 0; c < d; c++) {
        const v = data[base + c]!;
        s1 += Math.abs(v);
        s2 += v * v;
      }
      l1[i] = s1;
      l2[i] = Math.sqrt(s2);
    }
    // With a budget below the pivot count, the first `budget` pivots are all that is kept.
    const pivots = topK(l1, Math.min(pivotCount, budget));
    const P = pivots.length;
    const slots = budget - P;
    const base = Math.floor(slots / P);
    const quotas = Array.from({ length: P }, (_, p) => base + (p === 0 ? slots - base * P : 0));
    const pivotRows = new Float32Array(P * d);
    pivots.forEach((i, p) => pivotRows.set(data.subarray(i * d, (i + 1) * d), p * d));
    const dots = await matmulABt({ rows: P, cols: d, data: pivotRows }, { rows: n, cols: d, data });
    const kept = new Uint8Array(n);
    for (const i of pivots) kept[i] = 1;
    const negatedCos = new Float64Array(n);
    for (const [p, i] of pivots.entries()) {
      if (quotas[p] === 0) continue;
      // torch 2's cosine_similarity: x·y / (max(‖x‖, 1e-8)·max(‖y‖, 1e-8)). Least similar = largest −cos.
      const candidates: number[] = [];
      for (let j = 0; j < n; j++) {
        if (kept[j]) continue;
        negatedCos[j] = -dots.data[p * n + j]! / (Math.max(l2[i]!, 1e-8) * Math.max(l2[j]!, 1e-8));
        candidates.push(j);
      }
      const ranked = topK(
        Float64Array.from(candidates, (j) => negatedCos[j]!),
        quotas[p]!,
      );
      for (const r of ranked) kept[candidates[r]!] = 1;
    }
    const keep = new Int32Array(budget);
    let o = 0;
    for (let j = 0; j < n; j++) if (kept[j]) keep[o++] = j;
    return { tokens: selectTokens(tokens, keep), keep, stats: { budget, ratio, pivots: Array.from(pivots), quotas } };
  },
};
