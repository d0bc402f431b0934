import { topK } from '../core/linalg.js';
import { cosineGramNative } from '../core/linalg-kernels.js';
import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { attentionScores } from './attention.js';
import { tileBudgets, tokensBySource } from './tiles.js';
import type { BaseReduceOptions, Reducer } from './types.js';
import { checkNumber, optionLabel } from '../core/validate.js';

/** Options of `vispruner`. */
export interface VisPrunerOptions extends BaseReduceOptions {
  /** Share r of each tile's T kept tokens that are important (top CLS attention): T_imp = ⌊T·r⌋; in [0, 1], default 0.5 (the reference's --important_ratio). */
  importantShare?: number;
}

export const VISPRUNER_IMPORTANT_SHARE = 0.5;
/** Tokens removed per round of duplicate matching (the reference's min(8, R − T_div)). */
const MAX_REMOVED_PER_ROUND = 8;

/**
 * `vispruner` — VisPruner (Zhang et al., 2025, Theia-4869/VisPruner), per tile
 * (per image of the batch, as the reference runs LLaVA-NeXT's thumbnail and crops):
 *
 * - important: the T_imp = ⌊T·r⌋ tokens of highest CLS attention (`score`);
 * - diverse: from the rest, kept in descending-attention order, rounds of
 *   duplicate removal until T_div = T − T_imp are left: split the list into
 *   even positions A and odd positions B, score each a ∈ A by its largest
 *   cosine to B, drop the r = min(8, R − T_div) highest-scoring a's; the next
 *   list is the surviving a's in descending score order, then B in order;
 * - kept tokens in original order.
 *
 * Without CLS scores the attention is stood in by each token's cosine to its
 * tile's CLS vector or mean (see reducers/attention.ts; stats.score_source).
 *
 * @example
 * const { keep } = await visprunerReducer.run(bundle, { ratio: 0.25 }); // 72 important + 72 diverse per tile
 */
export const visprunerReducer: Reducer<VisPrunerOptions> = {
  name: 'vispruner',
  summary: 'VisPruner per tile: important tokens by CLS attention + diverse tokens by iterative duplicate removal',
  kind: 'select',
  scope: 'tile',
  options: {
    importantShare: {
      type: 'number',
      description: 'share of kept tokens that are important (top CLS attention), in [0, 1]',
      default: VISPRUNER_IMPORTANT_SHARE,
    },
  },
  native: ['cosine_gram'],
  async run(tokens: TokenSet, options: VisPrunerOptions): Promise<Reduction> {
    const { ratio } = resolveBudget(tokens.n, options, 'vispruner');
    const share = options.importantShare ?? VISPRUNER_IMPORTANT_SHARE;
    checkNumber(share, optionLabel('importantShare'), { min: 0, max: 1, where: 'vispruner', code: 'E_RANGE' });
    const { scores, from } = attentionScores(tokens);
    const tiles = tokensBySource(tokens);
    const budgets = tileBudgets(
      tiles.map((t) => t.indices.length),
      options,
      'vispruner',
    );
    const kept: number[] = [];
    const important: number[] = [];
    for (const [t, tile] of tiles.entries()) {
      const local = await selectTile(tokens, tile.indices, scores, budgets[t]!, share);
      important.push(local.importantCount);
      for (const j of local.keep) kept.push(tile.indices[j]!);
    }
    const keep = Int32Array.from(kept).sort();
    return {
      tokens: selectTokens(tokens, keep),
      keep,
      stats: { budget: keep.length, ratio, budgets, important, score_source: from },
    };
  },
};

/**
 * One tile's selection, in tile-local indices: the important ones, then the
 * diverse survivors of the duplicate-removal rounds.
 *
 * @example
 * await selectTile(tokens, indices, scores, 144, 0.5); // { keep: [...144 local indices], importantCount: 72 }
 */
async function selectTile(
  tokens: TokenSet,
  indices: Int32Array,
  allScores: Float32Array,
  budget: number,
  share: number,
): Promise<{ keep: number[]; importantCount: number }> {
  const n = indices.length;
  const importantCount = Math.floor(budget * share);
  const diverseCount = budget - importantCount;
  const order = topK(
    Float32Array.from(indices, (i) => allScores[i]!),
    n,
  );
  const keep = Array.from(order.subarray(0, importantCount));
  let residual = order.subarray(importantCount);
  if (diverseCount > 0 && residual.length > diverseCount) {
    const { d } = tokens;
    const rows = new Float32Array(n * d);
    for (let j = 0; j < n; j++) rows.set(tokens.data.subarray(indices[j]! * d, (indices[j]! + 1) * d), j * d);
    const { gram } = await cosineGramNative(rows, n, d);
    while (true) {
      const R = residual.length;
      const removed = Math.min(MAX_REMOVED_PER_ROUND, R - diverseCount);
      if (removed <= 0) break;
      residual = removeDuplicates(residual, gram, n, removed);
    }
  }
  // The reference keeps only the important tokens when no diverse ones are asked for.
  if (diverseCount > 0) for (const j of residual) keep.push(j);
  return { keep, importantCount };
}

/**
 * One round: A = list[0::2], B = list[1::2]; each a scored by max_b cos(a, b);
 * the `removed` highest-scoring a's go (ties: the earlier a in the list is
 * ranked higher); returns surviving A in descending score order, then B. With
 * an odd list A has one token more than B and every survivor is kept (the
 * reference's reshape fails there).
 */
function removeDuplicates(list: Int32Array, gram: Float32Array, n: number, removed: number): Int32Array {
  const aCount = Math.ceil(list.length / 2);
  const bCount = list.length - aCount;
  const b = new Int32Array(bCount);
  for (let q = 0; q < bCount; q++) b[q] = list[2 * q + 1]!;
  const best = new Float32Array(aCount);
  for (let p = 0; p < aCount; p++) {
    const row = list[2 * p]! * n;
    let m = -Infinity;
    for (let q = 0; q < bCount; q++) {
      const v = gram[row + b[q]!]!;
      if (v > m) m = v;
    }
    best[p] = m;
  }
  const ranked = topK(best, aCount);
  const next = new Int32Array(Math.max(0, aCount - removed) + bCount);
  let o = 0;
  for (let p = removed; p < aCount; p++) next[o++] = list[2 * ranked[p]!]!;
  next.set(b, o);
  return next;
}
