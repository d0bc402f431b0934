import { InputError } from '../core/errors.js';
import { topK } from '../core/linalg.js';
import { mergeTokens, resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { bestCosineMatch } from '../core/linalg-kernels.js';
import { tileBudgets, tokensBySource } from './tiles.js';
import type { BaseReduceOptions, Reducer } from './types.js';
import { checkNumber, optionLabel } from '../core/validate.js';

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
    dominantShare: {
      type: 'number',
      description: 'share of kept tokens that are dominant (CLS top-k)',
      default: VISIONZIP_DOMINANT_SHARE,
    },
  },
  native: ['best_cosine_match'],
  async run(tokens: TokenSet, options: VisionZipOptions): Promise<Reduction> {
    const { ratio } = resolveBudget(tokens.n, options, 'visionzip');
    const share = options.dominantShare ?? VISIONZIP_DOMINANT_SHARE;
    checkNumber(share, optionLabel('dominantShare'), { min: 0, max: 1, where: 'visionzip' });
    if (!tokens.score) {
      throw new InputError(
        'visionzip: needs CLS scores (field score: a bundle with thumbnail_cls and crops_cls, or a tokens file with a scores tensor)',
        'E_NO_SCORES',
      );
    }
    const tiles = tokensBySource(tokens);
    const budgets = tileBudgets(
      tiles.map((t) => t.indices.length),
      options,
      'visionzip',
    );
    const plans = [];
    for (const [t, tile] of tiles.entries()) plans.push(await planTile(tokens, tile.indices, budgets[t]!, share));
    const reduction = assembleOutputs(tokens, plans);
    reduction.stats = {
      budget: budgets.reduce((a, b) => a + b, 0),
      ratio,
      budgets,
      dominant: plans.map((p) => p.dominant.length),
      contextual: plans.map((p) => p.targets.length),
    };
    return reduction;
  },
};

/** One tile's VisionZip decision, in global token indices. */
interface TilePlan {
  dominant: Int32Array;
  targets: number[];
  /** For each target, the members that joined it. */
  members: number[][];
}

/** Dominant / target / member choice for one tile (token indices `indices`) keeping k tokens. */
async function planTile(tokens: TokenSet, indices: Int32Array, k: number, share: number): Promise<TilePlan> {
  const n = indices.length;
  const dominantCount = k < n ? Math.min(Math.round(k * share), k - 1) : k;
  const contextualCount = k - dominantCount;
  const tileScores = Float32Array.from(indices, (i) => tokens.score![i]!);
  const dominantLocal = topK(tileScores, dominantCount).sort();
  const isDominant = new Uint8Array(n);
  for (const j of dominantLocal) isDominant[j] = 1;
  const remaining: number[] = [];
  for (let j = 0; j < n; j++) if (!isDominant[j]) remaining.push(indices[j]!);

  const step = contextualCount > 0 ? Math.max(1, Math.floor(remaining.length / contextualCount)) : 1;
  const targets: number[] = [];
  for (let p = 0; p < remaining.length && targets.length < contextualCount; p += step) targets.push(remaining[p]!);
  const targetSet = new Set(targets);
  const others = remaining.filter((i) => !targetSet.has(i));
  const members: number[][] = targets.map(() => []);
  if (others.length > 0 && targets.length > 0) {
    const { index } = await bestCosineMatch(
      gatherRows(tokens, others),
      others.length,
      gatherRows(tokens, targets),
      targets.length,
      tokens.d,
      new Float32Array(targets.length),
    );
    others.forEach((i, r) => members[index[r]!]!.push(i));
  }
  return { dominant: Int32Array.from(dominantLocal, (j) => indices[j]!), targets, members };
}

function gatherRows(tokens: TokenSet, list: number[]): Float32Array {
  const { d } = tokens;
  const out = new Float32Array(list.length * d);
  list.forEach((i, r) => out.set(tokens.data.subarray(i * d, (i + 1) * d), r * d));
  return out;
}

/**
 * Outputs of all tiles in tile order: each tile's dominant tokens (copied),
 * then its contextual tokens (target + mean of members).
 */
function assembleOutputs(tokens: TokenSet, plans: TilePlan[]): Reduction {
  const { d } = tokens;
  const x = tokens.data;
  const count = plans.reduce((s, p) => s + p.dominant.length + p.targets.length, 0);
  const features = new Float32Array(count * d);
  const representative = new Int32Array(count);
  const assign = new Int32Array(tokens.n);
  const keep: number[] = [];
  const acc = new Float64Array(d);
  let o = 0;
  for (const plan of plans) {
    for (const i of plan.dominant) {
      features.set(x.subarray(i * d, (i + 1) * d), o * d);
      representative[o] = i;
      assign[i] = o;
      keep.push(i);
      o++;
    }
    plan.targets.forEach((target, t) => {
      const group = plan.members[t]!;
      acc.fill(0);
      for (const i of group) {
        const base = i * d;
        for (let c = 0; c < d; c++) acc[c]! += x[base + c]!;
        assign[i] = o;
      }
      const inv = 1 / Math.max(1, group.length);
      const base = target * d;
      for (let c = 0; c < d; c++) features[o * d + c] = x[base + c]! + acc[c]! * inv;
      representative[o] = target;
      assign[target] = o;
      keep.push(target);
      o++;
    });
  }
  // Extra tensors (e.g. DeepStack) follow the same rule: dominant rows copied, contextual = target + mean of members.
  const combine = (values: Float32Array, width: number): Float32Array => {
    const out = new Float32Array(count * width);
    const sum = new Float64Array(width);
    let slot = 0;
    for (const plan of plans) {
      for (const i of plan.dominant) out.set(values.subarray(i * width, (i + 1) * width), slot++ * width);
      plan.targets.forEach((target, t) => {
        const group = plan.members[t]!;
        sum.fill(0);
        for (const i of group) for (let c = 0; c < width; c++) sum[c]! += values[i * width + c]!;
        const inv = 1 / Math.max(1, group.length);
        for (let c = 0; c < width; c++) out[slot * width + c] = values[target * width + c]! + sum[c]! * inv;
        slot++;
      });
    }
    return out;
  };
  return {
    tokens: mergeTokens(tokens, assign, count, { features, representative, combine }),
    keep: Int32Array.from(keep),
    assign,
    representative,
    stats: {},
  };
}
