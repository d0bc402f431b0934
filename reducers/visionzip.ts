import { InputError, UsageError } from '../core/errors.js';
import { argmaxRows, cosineSimilarity, matrix, topK } from '../core/linalg.js';
import { mergeTokens, resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { reducePerTile, tileBudgets, tokensBySource } from './tiles.js';
import type { BaseReduceOptions, Reducer } from './types.js';

/** Options of `visionzip`. */
export interface VisionZipOptions extends BaseReduceOptions {
  /**
   * Share of each tile's k kept tokens that are dominant (top CLS score),
   * in [0, 1]; default 54/64 = 0.84375 (the authors' 54 + 10 split of 64).
   * d = round(k·share), capped at k − 1 so at least one contextual token
   * absorbs the rest whenever the tile is reduced.
   */
  dominantShare?: number;
}

export const VISIONZIP_DOMINANT_SHARE = 54 / 64;

/**
 * `visionzip` — VisionZip (Yang et al., CVPR 2025), per tile as its authors
 * apply it to LLaVA-NeXT sub-images (dvlab-research/VisionZip):
 *
 * - dominant: the d = round(k·54/64) tokens with the highest CLS score,
 *   in original order;
 * - contextual targets: among the remaining R tokens (original order), every
 *   step-th one with step = max(1, ⌊R / c⌋), the first c = k − d of them;
 * - every other remaining token joins its most similar target (cosine);
 * - a contextual output is target + mean(members) — the reference's sum,
 *   not an average — and just the target when nobody joined it.
 *
 * Output per tile: dominant tokens, then contextual tokens in target order.
 * `keep` lists the dominant and target indices; `assign` maps every input
 * token to its output token. Needs CLS scores (bundle thumbnail_cls /
 * crops_cls, or `scores` in a tokens file).
 *
 * @example
 * const { keep, assign } = await visionzipReducer.run(bundle, { ratio: 64 / 576 }); // 54 + 10 per tile
 */
export const visionzipReducer: Reducer<VisionZipOptions> = {
  name: 'visionzip',
  summary: 'VisionZip per tile: dominant tokens by CLS score + contextual merging at uniform stride',
  kind: 'merge',
  scope: 'tile',
  options: {
    dominantShare: { type: 'number', description: 'share of kept tokens that are dominant (CLS top-k)', default: VISIONZIP_DOMINANT_SHARE },
  },
  async run(tokens: TokenSet, options: VisionZipOptions): Promise<Reduction> {
    const { ratio } = resolveBudget(tokens.n, options, 'visionzip');
    const share = options.dominantShare ?? VISIONZIP_DOMINANT_SHARE;
    if (!(Number.isFinite(share) && share >= 0 && share <= 1)) throw new UsageError(`visionzip: dominant-share must be in [0, 1], got ${share}`);
    if (!tokens.score) {
      throw new InputError('visionzip: needs CLS scores (field score: a bundle with thumbnail_cls and crops_cls, or a tokens file with a scores tensor)', 'E_NO_SCORES');
    }
    const budgets = tileBudgets(tokensBySource(tokens).map((t) => t.indices.length), options, 'visionzip');
    const split: Array<{ dominant: number; contextual: number }> = [];
    const { reduction } = await reducePerTile(tokens, budgets, async (tile, k) => {
      const result = await visionzipTile(tile, k, share);
      split.push({ dominant: result.dominant, contextual: result.contextual });
      return result.reduction;
    });
    reduction.stats = { ratio, budgets, dominant: split.map((s) => s.dominant), contextual: split.map((s) => s.contextual) };
    return reduction;
  },
};

/**
 * VisionZip on one tile with k kept tokens.
 *
 * @example
 * const { reduction } = await visionzipTile(tile576, 64, 54 / 64); // 54 dominant + 10 contextual
 */
export async function visionzipTile(tile: TokenSet, k: number, share: number): Promise<{ reduction: Reduction; dominant: number; contextual: number }> {
  const n = tile.n;
  const dominantCount = k < n ? Math.min(Math.round(k * share), k - 1) : k;
  const contextualCount = k - dominantCount;
  const dominant = topK(tile.score!, dominantCount).sort();
  const isDominant = new Uint8Array(n);
  for (const i of dominant) isDominant[i] = 1;
  const remaining: number[] = [];
  for (let i = 0; i < n; i++) if (!isDominant[i]) remaining.push(i);

  const step = contextualCount > 0 ? Math.max(1, Math.floor(remaining.length / contextualCount)) : 1;
  const targets: number[] = [];
  const isTarget = new Uint8Array(n);
  for (let p = 0; p < remaining.length && targets.length < contextualCount; p += step) {
    targets.push(remaining[p]!);
    isTarget[remaining[p]!] = 1;
  }
  const members = remaining.filter((i) => !isTarget[i]);

  const outputCount = dominant.length + targets.length;
  const assign = new Int32Array(n);
  dominant.forEach((i, o) => (assign[i] = o));
  targets.forEach((i, t) => (assign[i] = dominant.length + t));
  const { d } = tile;
  const memberSums = new Float64Array(targets.length * d);
  const memberCounts = new Float64Array(targets.length);
  if (members.length > 0 && targets.length > 0) {
    const rows = (list: number[]): Float32Array => {
      const out = new Float32Array(list.length * d);
      list.forEach((i, r) => out.set(tile.data.subarray(i * d, (i + 1) * d), r * d));
      return out;
    };
    const sims = await cosineSimilarity(matrix(members.length, d, rows(members)), matrix(targets.length, d, rows(targets)));
    const { index } = argmaxRows(sims);
    members.forEach((i, r) => {
      const t = index[r]!;
      assign[i] = dominant.length + t;
      memberCounts[t]! += 1;
      for (let c = 0; c < d; c++) memberSums[t * d + c]! += tile.data[i * d + c]!;
    });
  }
  const features = new Float32Array(outputCount * d);
  const representative = new Int32Array(outputCount);
  dominant.forEach((i, o) => {
    features.set(tile.data.subarray(i * d, (i + 1) * d), o * d);
    representative[o] = i;
  });
  targets.forEach((i, t) => {
    const o = dominant.length + t;
    const count = Math.max(1, memberCounts[t]!);
    for (let c = 0; c < d; c++) features[o * d + c] = tile.data[i * d + c]! + memberSums[t * d + c]! / count;
    representative[o] = i;
  });
  const keep = Int32Array.from([...dominant, ...targets]);
  const tokens = mergeTokens(tile, assign, outputCount, { features, representative });
  return { reduction: { tokens, keep, assign, stats: {} }, dominant: dominant.length, contextual: targets.length };
}
