import { InputError } from '../core/errors.js';
import { mergeTokens, resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { alternateBestMatch } from '../core/linalg-kernels.js';
import { checkFeatureSize } from '../core/linalg.js';
import { borrowFloat32, returnFloat32 } from '../core/scratch.js';
import { checkInteger } from '../core/validate.js';
import type { BaseReduceOptions, Reducer, ReduceProgress } from './types.js';

/** Options of `tome`. */
export interface ToMeOptions extends BaseReduceOptions {
  /**
   * Input token indices that never merge (ToMe's class/distill tokens,
   * generalised): a protected token keeps its own output token. Default none.
   */
  protect?: number[];
}

/**
 * `tome` — Token Merging's bipartite soft matching (Bolya et al., ICLR 2023;
 * facebookresearch/ToMe `bipartite_soft_matching` + `merge_wavg`), run on the
 * features in rounds until the budget is reached:
 *
 * - split the current tokens alternately into A (even positions) and B (odd);
 * - cosine similarity A×B (L2-normalised features; normalisation, GEMM and
 *   arg-max run natively in onnxruntime);
 * - each A token picks its most similar B; the r A tokens with the highest
 *   best-similarity merge into their B by size-weighted average;
 * - r = min(n − budget, ⌊n/2⌋) per round;
 * - after each round tokens are ordered by their smallest origin index (the
 *   reference instead emits [unmerged A…, B…]; a fixed order makes several
 *   rounds well defined);
 * - protected tokens never merge (their rows/columns score −∞, as the
 *   reference does for the class token).
 *
 * Every output token is the size-weighted mean of the original features it
 * covers (recomputed from the input in float64 at the end); its position and
 * source are those of its destination token (the B token the others merged
 * into, which itself never merged away), like ToMe's merged token that sits
 * in the destination's slot.
 *
 * @example
 * const { tokens, assign } = await tomeReducer.run(grid576, { budget: 144, protect: [0] });
 * tokens.size; // sums to 576
 */
export const tomeReducer: Reducer<ToMeOptions> = {
  name: 'tome',
  summary: 'ToMe bipartite soft matching, rounds of r = min(n - budget, n/2) size-weighted merges',
  kind: 'merge',
  scope: 'all',
  options: {
    protect: { type: 'integer-list', description: 'comma-separated input token indices that never merge' },
  },
  native: ['alternate_match'],
  async run(tokens: TokenSet, options: ToMeOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'tome');
    checkFeatureSize(tokens.n, tokens.d, 'tome');
    const isProtected = protectedFlags(tokens.n, options.protect);
    const { assign, count, rounds, representative } = await bipartiteRounds(
      tokens,
      budget,
      isProtected,
      options.onProgress,
    );
    return {
      tokens: mergeTokens(tokens, assign, count, { representative }),
      assign,
      representative,
      stats: { budget, ratio, rounds },
    };
  },
};

function protectedFlags(n: number, protect: number[] | undefined): Uint8Array {
  const flags = new Uint8Array(n);
  for (const p of protect ?? []) flags[checkInteger(p, 'protect index', { min: 0, max: n - 1, where: 'tome' })] = 1;
  return flags;
}

/**
 * The merge rounds. Works on running size-weighted means (the similarity
 * metric); returns `assign` (input → output, outputs in ascending order of
 * their smallest origin index), the output count and each output's
 * destination token (the input token that was merged into and never merged
 * away: its position and source are the output's).
 */
async function bipartiteRounds(
  tokens: TokenSet,
  budget: number,
  isProtected: Uint8Array,
  onProgress?: (progress: ReduceProgress) => void,
): Promise<{ assign: Int32Array; count: number; rounds: number; representative: Int32Array }> {
  const { d } = tokens;
  // Progress counts A×B similarities (what the time follows), over the rounds planned without protected tokens.
  let plannedWork = 0;
  for (let planned = tokens.n; planned > budget; planned -= Math.min(planned - budget, Math.floor(planned / 2)))
    plannedWork += Math.ceil(planned / 2) * Math.floor(planned / 2);
  let work = 0;
  let m = tokens.n;
  // Running features, contiguous (the kernel takes A and B as the even and odd rows); rounds alternate between two buffers.
  let feats = tokens.data;
  let spare: Float32Array | undefined;
  let size = Float64Array.from(tokens.size);
  let firstOrigin = Int32Array.from(tokens.origin, (o) => o[0]!);
  let prot = isProtected;
  const assign = new Int32Array(tokens.n);
  for (let i = 0; i < tokens.n; i++) assign[i] = i;
  let destination = Int32Array.from(assign);
  let rounds = 0;
  try {
    while (m > budget) {
      const r = Math.min(m - budget, Math.floor(m / 2));
      const aCount = Math.ceil(m / 2);
      const { best, bestB } = await bestMatches(feats, m, d, prot);
      const order = new Int32Array(aCount);
      for (let i = 0; i < aCount; i++) order[i] = i;
      order.sort((x, y) => best[y]! - best[x]! || x - y);
      let merges = 0;
      while (merges < r && best[order[merges]!]! > -Infinity) merges++;
      if (merges === 0) {
        throw new InputError(
          `tome: cannot reach budget ${budget}: ${m} tokens remain and none can merge (all remaining A or B tokens are protected)`,
          'E_PROTECTED',
        );
      }
      // target[i] = current token that token i ends up in (itself unless merged).
      const target = new Int32Array(m);
      for (let i = 0; i < m; i++) target[i] = i;
      for (let e = 0; e < merges; e++) {
        const ai = order[e]!;
        target[2 * ai] = 2 * bestB[ai]! + 1;
      }
      const nextSize = Float64Array.from(size);
      const nextFirst = Int32Array.from(firstOrigin);
      for (let e = 0; e < merges; e++) {
        const src = 2 * order[e]!;
        const dst = target[src]!;
        nextSize[dst]! += size[src]!;
        if (firstOrigin[src]! < nextFirst[dst]!) nextFirst[dst] = firstOrigin[src]!;
      }
      const count = m - merges;
      const survivors = new Int32Array(count);
      for (let i = 0, k = 0; i < m; i++) if (target[i] === i) survivors[k++] = i;
      survivors.sort((x, y) => nextFirst[x]! - nextFirst[y]!);
      const newIndex = new Int32Array(m);
      // After the last round only the assignment matters (outputs are recomputed exactly below).
      const lastRound = count <= budget;
      if (!lastRound && !spare) spare = borrowFloat32(count * d);
      const nextFeats = lastRound ? feats : spare!.subarray(0, count * d);
      const nextProt = new Uint8Array(count);
      const sizeOut = new Float64Array(count);
      const firstOut = new Int32Array(count);
      const destinationOut = new Int32Array(count);
      for (let k = 0; k < count; k++) {
        const s = survivors[k]!;
        newIndex[s] = k;
        destinationOut[k] = destination[s]!;
        nextProt[k] = prot[s]!;
        sizeOut[k] = nextSize[s]!;
        firstOut[k] = nextFirst[s]!;
      }
      if (!lastRound)
        updateRunningFeatures(feats, nextFeats, d, survivors, size, sizeOut, order, merges, target, newIndex);
      for (let i = 0; i < tokens.n; i++) assign[i] = newIndex[target[assign[i]!]!]!;
      // The buffer just read becomes the next round's output (never the input's own array).
      if (!lastRound) {
        spare = feats === tokens.data ? undefined : feats;
        feats = nextFeats;
      }
      size = sizeOut;
      firstOrigin = firstOut;
      prot = nextProt;
      destination = destinationOut;
      work += Math.ceil(m / 2) * Math.floor(m / 2);
      onProgress?.({ stage: 'rounds', done: work, total: Math.max(work, plannedWork) });
      m = count;
      rounds++;
    }
  } finally {
    // The running features live in pooled work buffers: a warm caller does not pay their page faults again.
    if (spare) returnFloat32(spare);
    if (feats !== tokens.data) returnFloat32(feats);
  }
  return { assign, count: m, rounds, representative: destination };
}

/**
 * The next round's running features (only the similarity metric; exact means
 * are recomputed at the end): survivor k = its own row × size/new size, then
 * each A row merged into it (in merge order) added with weight size/new size,
 * rounded to float32 after every step. Written one survivor at a time, all
 * its merges in one pass (Math.fround keeps each step's float32 rounding, so
 * the values equal adding one merge at a time into the Float32Array).
 */
function updateRunningFeatures(
  feats: Float32Array,
  next: Float32Array,
  d: number,
  survivors: Int32Array,
  size: Float64Array,
  nextSize: Float64Array,
  order: Int32Array,
  merges: number,
  target: Int32Array,
  newIndex: Int32Array,
): void {
  const count = survivors.length;
  // The merged A rows of each survivor, in merge order (a stable counting sort by survivor).
  const start = new Int32Array(count + 1);
  for (let e = 0; e < merges; e++) start[newIndex[target[2 * order[e]!]!]! + 1]!++;
  for (let k = 0; k < count; k++) start[k + 1]! += start[k]!;
  const merged = new Int32Array(merges);
  const fill = start.slice(0, count);
  for (let e = 0; e < merges; e++) {
    const src = 2 * order[e]!;
    merged[fill[newIndex[target[src]!]!]!++] = src;
  }
  for (let k = 0; k < count; k++) {
    const s = survivors[k]!;
    const from = s * d;
    const to = k * d;
    const first = start[k]!;
    const last = start[k + 1]!;
    if (first === last) {
      next.set(feats.subarray(from, from + d), to);
      continue;
    }
    const scale = size[s]! / nextSize[k]!;
    if (last - first === 1) {
      const src = merged[first]! * d;
      const w = size[merged[first]!]! / nextSize[k]!;
      for (let c = 0; c < d; c++) next[to + c] = Math.fround(feats[from + c]! * scale) + w * feats[src + c]!;
      continue;
    }
    for (let c = 0; c < d; c++) next[to + c] = feats[from + c]! * scale;
    for (let p = first; p < last; p++) {
      const src = merged[p]! * d;
      const w = size[merged[p]!]! / nextSize[k]!;
      for (let c = 0; c < d; c++) next[to + c]! += w * feats[src + c]!;
    }
  }
}

/**
 * For each A row (even positions of the m running tokens) its most similar B
 * row (odd positions) by cosine (first on ties) and that similarity;
 * protected A rows get −∞, protected B columns are excluded. Split,
 * normalisation, GEMM and arg-max run natively (alternateBestMatch, in A-row
 * blocks of ≤ 64 MiB of similarities); the bias that excludes protected B
 * columns is added only when some are protected.
 */
async function bestMatches(
  feats: Float32Array,
  m: number,
  d: number,
  prot: Uint8Array,
): Promise<{ best: Float32Array | Float64Array; bestB: Int32Array }> {
  const aCount = Math.ceil(m / 2);
  const bCount = Math.floor(m / 2);
  if (prot.indexOf(1) < 0) {
    const match = await alternateBestMatch(feats, m, d);
    return { best: match.best, bestB: match.index };
  }
  const best = new Float64Array(aCount).fill(-Infinity);
  const bestB = new Int32Array(aCount);
  const bias = new Float32Array(bCount);
  let open = 0;
  for (let bi = 0; bi < bCount; bi++) {
    if (prot[2 * bi + 1]) bias[bi] = -Infinity;
    else open++;
  }
  if (open === 0) return { best, bestB };
  const match = await alternateBestMatch(feats, m, d, bias);
  for (let r = 0; r < aCount; r++) {
    if (prot[2 * r]) continue;
    best[r] = match.best[r]!;
    bestB[r] = match.index[r]!;
  }
  return { best, bestB };
}
