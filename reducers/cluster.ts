import { Rng } from '../core/rng.js';
import { mergeTokens, resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { checkFeatureSize } from '../core/linalg.js';
import { checkInteger, checkNumber } from '../core/validate.js';
import {
  bestCosineMatch,
  cosineGramSymmetric,
  cosineRows,
  SIMILARITY_TILE_VALUES,
  unitRowsNative,
} from '../core/linalg-kernels.js';
import { seedOf } from './options.js';
import type { BaseReduceOptions, Reducer, ReduceProgress } from './types.js';

/** Options of `cluster`. */
export interface ClusterOptions extends BaseReduceOptions {
  /** Lloyd iterations after seeding, integer ≥ 0 (default 10). */
  iterations?: number;
  /**
   * Stop early when no assignment changes or the objective
   * Σ size_i·cos(x_i, c(i)) improves by at most tolerance × |objective| in an
   * iteration; ≥ 0, default 1e-4. 0 runs all `iterations`.
   */
  tolerance?: number;
}

export const CLUSTER_ITERATIONS = 10;
export const CLUSTER_TOLERANCE = 1e-4;

/**
 * `cluster` — cluster-level aggregation in the pre-LLM embedding space
 * ("Token Sequence Compression for Efficient Multimodal Computing"): spherical
 * k-means with k = budget, then each cluster is replaced by the size-weighted
 * mean of its members' raw features.
 *
 * - cosine similarity on L2-normalised features; centroids are the
 *   normalised size-weighted sums of their members' normalised features;
 * - k-means++ seeding (seeded Rng): first centre uniform, then each next one
 *   drawn with probability ∝ size·D², D = 1 − max cos to the chosen centres;
 * - empty clusters are re-seeded with the point farthest from its centroid
 *   (taken from a cluster of ≥ 2), so exactly k clusters are emitted;
 * - outputs are ordered by their smallest origin index; `assign` maps every
 *   input token to its cluster; an output's position and source are those of
 *   the member nearest its centroid (`representative`).
 *
 * No n×n matrix beyond one similarity tile: k-means++ needs only the similarity row of each new centre
 * (one GEMV each), and a Lloyd step is the n×k point×centroid cosine GEMM in
 * row blocks with the arg-max taken natively (`bestCosineMatch`), so extra
 * memory is one normalised copy of the features plus at most 64 MiB of
 * similarities, and the work is n·k·d multiply-adds per iteration. Inputs
 * whose n×n cosine matrix fits in one 64 MiB tile (n ≤ 4096) and costs less
 * than the iterations (n ≤ k·(iterations + 1)) run on that matrix instead
 * (`sphericalKMeans`: point×centroid similarities as exact sums of Gram rows,
 * updated only for points that move); that matrix comes from its upper block
 * triangle (`cosineGramSymmetric`, n²·d/2 multiply-adds, the same values).
 *
 * @example
 * const { tokens, assign } = await clusterReducer.run(tokens576, { budget: 64, seed: 1 });
 * tokens.n; // 64
 */
export const clusterReducer: Reducer<ClusterOptions> = {
  name: 'cluster',
  summary: 'spherical k-means (k = budget, k-means++ seeding) merging to size-weighted cluster means',
  kind: 'merge',
  scope: 'all',
  options: {
    iterations: { type: 'integer', description: 'k-means Lloyd iterations', default: CLUSTER_ITERATIONS },
    tolerance: {
      type: 'number',
      description:
        'stop early when assignments settle or the objective improves by at most this fraction (0: run all iterations)',
      default: CLUSTER_TOLERANCE,
    },
  },
  native: ['unit_rows', 'gram_block', 'gemm', 'best_cosine_match'],
  async run(tokens: TokenSet, options: ClusterOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'cluster');
    const iterations = options.iterations ?? CLUSTER_ITERATIONS;
    const tolerance = options.tolerance ?? CLUSTER_TOLERANCE;
    checkInteger(iterations, 'iterations', { min: 0, where: 'cluster' });
    checkNumber(tolerance, 'tolerance', { min: 0, where: 'cluster' });
    const seed = seedOf(options, 'cluster');
    checkFeatureSize(tokens.n, tokens.d, 'cluster');
    const { n, d } = tokens;
    const kMeansOptions = { iterations, tolerance, seed };
    // Small inputs: the whole Gram matrix fits in one similarity tile and costs n²·d once instead of n·k·d per iteration.
    const result =
      n * n <= SIMILARITY_TILE_VALUES && n <= budget * (iterations + 1)
        ? sphericalKMeans(await cosineGramSymmetric(tokens.data, n, d), n, tokens.size, budget, kMeansOptions)
        : await sphericalKMeansBlocked(tokens.data, n, d, tokens.size, budget, {
            ...kMeansOptions,
            onProgress: options.onProgress,
          });
    const assign = orderBySmallestOrigin(result.assign, budget, tokens);
    const representative = nearestToCentroid(tokens, assign, budget);
    return {
      tokens: mergeTokens(tokens, assign, budget, { representative }),
      assign,
      representative,
      stats: { budget, ratio, iterations: result.iterations, objective: result.objective, reseeded: result.reseeded },
    };
  },
};

export interface KMeansResult {
  /** Cluster per point, 0..k-1, every cluster non-empty. */
  assign: Int32Array;
  /** Lloyd iterations actually run. */
  iterations: number;
  /** Σ w_i·cos(x_i, centroid of its cluster) after the last assignment. */
  objective: number;
  /** How many empty clusters were re-seeded along the way. */
  reseeded: number;
}

/**
 * Spherical k-means on a precomputed n×n cosine matrix `gram` with point
 * weights `weights`.
 *
 * @example
 * sphericalKMeans(gram, 4, Float64Array.of(1, 1, 1, 1), 2, { iterations: 10, tolerance: 0, seed: 0 }).assign;
 */
export function sphericalKMeans(
  gram: Float32Array,
  n: number,
  weights: Float64Array,
  k: number,
  options: { iterations: number; tolerance: number; seed: number },
): KMeansResult {
  const seeding = kMeansPlusPlus(n, weights, k, new Rng(options.seed));
  let step = seeding.next();
  while (!step.done) step = seeding.next(gram.subarray(step.value * n, (step.value + 1) * n));
  const seeds = step.value;
  let assign = new Int32Array(n);
  const best = new Float64Array(n);
  // Initial assignment: to the seed points themselves (unit centroids).
  const seedSims = new Float64Array(k * n);
  for (let j = 0; j < k; j++) {
    const row = seeds[j]! * n;
    for (let i = 0; i < n; i++) seedSims[j * n + i] = gram[row + i]!;
  }
  assignNearest(seedSims, new Float64Array(k).fill(1), n, k, assign, best);
  let reseeded = fillEmptyClusters(assign, best, n, k);
  let objective = weightedSum(best, weights);
  let iterations = 0;
  // U_j = Σ_{m∈C_j} w_m G_m, kept up to date incrementally as points move.
  const sums = options.iterations > 0 ? clusterGramSums(gram, n, weights, assign, seedSims) : seedSims;
  for (let it = 0; it < options.iterations; it++) {
    const inverseNorms = clusterInverseNorms(sums, n, weights, assign, k);
    const next = new Int32Array(n);
    assignNearest(sums, inverseNorms, n, k, next, best);
    reseeded += fillEmptyClusters(next, best, n, k);
    const nextObjective = weightedSum(best, weights);
    iterations++;
    const changed = moveMembers(sums, gram, n, weights, assign, next);
    const improvement = nextObjective - objective;
    assign = next;
    objective = nextObjective;
    if (options.tolerance > 0 && (changed === 0 || improvement <= options.tolerance * Math.abs(objective))) break;
  }
  return { assign, iterations, objective, reseeded };
}

/**
 * The same spherical k-means on features x [n, d] (raw; normalised natively)
 * without a Gram matrix: k-means++ takes one similarity row per centre, each
 * Lloyd step assigns points to the normalised size-weighted centroid sums by
 * the n×k cosine GEMM in row blocks.
 *
 * @example
 * const { assign } = await sphericalKMeansBlocked(x, 36864, 1024, sizes, 3686, { iterations: 10, tolerance: 1e-4, seed: 0 });
 */
export async function sphericalKMeansBlocked(
  x: Float32Array,
  n: number,
  d: number,
  weights: Float64Array,
  k: number,
  options: {
    iterations: number;
    tolerance: number;
    seed: number;
    onProgress?: ((progress: ReduceProgress) => void) | undefined;
  },
): Promise<KMeansResult> {
  const { onProgress } = options;
  const unit = await unitRowsNative(x, n, d);
  const seeding = kMeansPlusPlus(n, weights, k, new Rng(options.seed));
  let step = seeding.next();
  // The first seed is drawn before any similarity row; each row read draws the next.
  let seeded = 1;
  while (!step.done) {
    step = seeding.next(await cosineRows(unit, n, d, [step.value]));
    onProgress?.({ stage: 'seeding', done: ++seeded, total: k });
  }
  const seeds = step.value;
  const centroids = new Float32Array(k * d);
  // Raw seed rows: the kernel normalises them exactly as the Gram matrix's rows, so the first assignment matches it.
  seeds.forEach((i, j) => centroids.set(x.subarray(i * d, (i + 1) * d), j * d));
  let assign = new Int32Array(n);
  const best = new Float64Array(n);
  await assignToCentroids(x, n, d, centroids, k, assign, best);
  let reseeded = fillEmptyClusters(assign, best, n, k);
  let objective = weightedSum(best, weights);
  let iterations = 0;
  for (let it = 0; it < options.iterations; it++) {
    centroidSums(unit, n, d, weights, assign, k, centroids);
    const next = new Int32Array(n);
    await assignToCentroids(x, n, d, centroids, k, next, best);
    reseeded += fillEmptyClusters(next, best, n, k);
    const nextObjective = weightedSum(best, weights);
    iterations++;
    onProgress?.({ stage: 'iterations', done: iterations, total: options.iterations });
    let changed = 0;
    for (let i = 0; i < n; i++) if (next[i] !== assign[i]) changed++;
    const improvement = nextObjective - objective;
    assign = next;
    objective = nextObjective;
    if (options.tolerance > 0 && (changed === 0 || improvement <= options.tolerance * Math.abs(objective))) break;
  }
  return { assign, iterations, objective, reseeded };
}

/** Each point's most cosine-similar centroid (first on ties) and that cosine, natively in row blocks of ≤ 64 MiB of similarities. */
async function assignToCentroids(
  x: Float32Array,
  n: number,
  d: number,
  centroids: Float32Array,
  k: number,
  assign: Int32Array,
  best: Float64Array,
): Promise<void> {
  const zero = new Float32Array(k);
  const blockRows = Math.max(1, Math.floor(SIMILARITY_TILE_VALUES / k));
  for (let start = 0; start < n; start += blockRows) {
    const rows = Math.min(blockRows, n - start);
    const match = await bestCosineMatch(x.subarray(start * d, (start + rows) * d), rows, centroids, k, d, zero);
    assign.set(match.index, start);
    best.set(match.best, start);
  }
}

/** Σ_{m∈C_j} w_m x̂_m per cluster (float64 accumulation), written into `out` [k, d]; its direction is the spherical centroid. */
function centroidSums(
  unit: Float32Array,
  n: number,
  d: number,
  weights: Float64Array,
  assign: Int32Array,
  k: number,
  out: Float32Array,
): void {
  const acc = new Float64Array(k * d);
  for (let m = 0; m < n; m++) {
    const w = weights[m]!;
    const to = assign[m]! * d;
    const from = m * d;
    for (let c = 0; c < d; c++) acc[to + c]! += w * unit[from + c]!;
  }
  out.set(acc);
}

/**
 * k-means++ on cosine distance: first uniform, then ∝ w·D², D = 1 − max cos.
 * A generator so the same rule runs on a Gram matrix and on features: it
 * yields each new centre and is sent back that centre's similarity row.
 */
function* kMeansPlusPlus(
  n: number,
  weights: Float64Array,
  k: number,
  rng: Rng,
): Generator<number, Int32Array, Float32Array> {
  const seeds = new Int32Array(k);
  const chosen = new Uint8Array(n);
  const dist = new Float64Array(n).fill(Infinity);
  const prob = new Float64Array(n);
  let next = rng.int(n);
  for (let s = 0; s < k; s++) {
    seeds[s] = next;
    chosen[next] = 1;
    if (s === k - 1) break;
    const row = yield next;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.max(0, 1 - row[i]!);
      if (d < dist[i]!) dist[i] = d;
      prob[i] = chosen[i] ? 0 : weights[i]! * dist[i]! * dist[i]!;
      total += prob[i]!;
    }
    // All remaining points coincide with a centre: take the first unchosen one.
    next = total > 0 ? rng.weighted(prob) : chosen.indexOf(0);
  }
  return seeds;
}

/**
 * For each point, the cluster with the highest similarity sims[j][i]·scale[j]
 * (first on ties); sims is k×n.
 */
function assignNearest(
  sims: Float64Array,
  scale: Float64Array,
  n: number,
  k: number,
  assign: Int32Array,
  best: Float64Array,
): void {
  best.fill(-Infinity);
  for (let j = 0; j < k; j++) {
    const row = j * n;
    const s = scale[j]!;
    for (let i = 0; i < n; i++) {
      const v = sims[row + i]! * s;
      if (v > best[i]!) {
        best[i] = v;
        assign[i] = j;
      }
    }
  }
}

/**
 * U_j = Σ_{m∈C_j} w_m G_m for every cluster (k×n, written into `out`), so that
 * x̂_i·ĉ_j = U_j[i] / ‖Σ_{m∈C_j} w_m x̂_m‖ — point×centroid similarities from the Gram matrix.
 */
function clusterGramSums(
  gram: Float32Array,
  n: number,
  weights: Float64Array,
  assign: Int32Array,
  out: Float64Array,
): Float64Array {
  out.fill(0);
  for (let m = 0; m < n; m++) addRow(out, assign[m]! * n, gram, m * n, weights[m]!, n);
  return out;
}

/** 1/‖Σ_{m∈C_j} w_m x̂_m‖ per cluster, with ‖…‖² = Σ_{m∈C_j} w_m U_j[m] (0 for a zero centroid). */
function clusterInverseNorms(
  sums: Float64Array,
  n: number,
  weights: Float64Array,
  assign: Int32Array,
  k: number,
): Float64Array {
  const normSq = new Float64Array(k);
  for (let m = 0; m < n; m++) normSq[assign[m]!]! += weights[m]! * sums[assign[m]! * n + m]!;
  return normSq.map((v) => (v > 0 ? 1 / Math.sqrt(v) : 0));
}

/** Updates U for the points whose cluster changed (old −= w·G_m, new += w·G_m); returns how many moved. */
function moveMembers(
  sums: Float64Array,
  gram: Float32Array,
  n: number,
  weights: Float64Array,
  from: Int32Array,
  to: Int32Array,
): number {
  let moved = 0;
  for (let m = 0; m < n; m++) {
    if (from[m] === to[m]) continue;
    addRow(sums, from[m]! * n, gram, m * n, -weights[m]!, n);
    addRow(sums, to[m]! * n, gram, m * n, weights[m]!, n);
    moved++;
  }
  return moved;
}

function addRow(
  target: Float64Array,
  targetBase: number,
  gram: Float32Array,
  gramBase: number,
  w: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) target[targetBase + i]! += w * gram[gramBase + i]!;
}

/**
 * Re-seeds every empty cluster with the point farthest from its centroid
 * (lowest similarity) among clusters of ≥ 2 points. Returns how many were filled.
 */
function fillEmptyClusters(assign: Int32Array, best: Float64Array, n: number, k: number): number {
  const counts = new Int32Array(k);
  for (let i = 0; i < n; i++) counts[assign[i]!]!++;
  let filled = 0;
  for (let j = 0; j < k; j++) {
    if (counts[j]! > 0) continue;
    let far = -1;
    for (let i = 0; i < n; i++) if (counts[assign[i]!]! > 1 && (far < 0 || best[i]! < best[far]!)) far = i;
    counts[assign[far]!]!--;
    assign[far] = j;
    counts[j] = 1;
    best[far] = 1; // a single-point spherical centroid is the point itself
    filled++;
  }
  return filled;
}

function weightedSum(values: Float64Array, weights: Float64Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += weights[i]! * values[i]!;
  return s;
}

/** Renumbers clusters so output tokens appear in ascending order of their smallest origin index. */
function orderBySmallestOrigin(assign: Int32Array, k: number, tokens: TokenSet): Int32Array {
  const first = new Int32Array(k).fill(0x7fffffff);
  for (let i = 0; i < tokens.n; i++) {
    const o = tokens.origin[i]![0]!;
    if (o < first[assign[i]!]!) first[assign[i]!] = o;
  }
  const order = Int32Array.from({ length: k }, (_, j) => j).sort((a, b) => first[a]! - first[b]!);
  const rank = new Int32Array(k);
  order.forEach((j, r) => (rank[j] = r));
  return assign.map((a) => rank[a]!);
}

/**
 * Per cluster, the member with the highest cosine to the cluster's spherical
 * centroid (normalised size-weighted sum of its members' normalised
 * features), lowest index on ties. Two O(n·d) passes, no Gram matrix.
 */
export function nearestToCentroid(tokens: TokenSet, assign: Int32Array, k: number): Int32Array {
  const { n, d, data } = tokens;
  const inverseNorm = new Float64Array(n);
  const sums = new Float64Array(k * d);
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let c = 0; c < d; c++) sq += data[i * d + c]! * data[i * d + c]!;
    inverseNorm[i] = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    const w = tokens.size[i]! * inverseNorm[i]!;
    const base = assign[i]! * d;
    for (let c = 0; c < d; c++) sums[base + c]! += w * data[i * d + c]!;
  }
  const best = new Float64Array(k).fill(-Infinity);
  const representative = new Int32Array(k).fill(-1);
  for (let i = 0; i < n; i++) {
    const j = assign[i]!;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += data[i * d + c]! * sums[j * d + c]!;
    // The centroid's norm is common to the cluster, so the point's own norm is all that scales the cosine.
    const cosine = dot * inverseNorm[i]!;
    if (cosine > best[j]! || representative[j] === -1) {
      best[j] = cosine;
      representative[j] = i;
    }
  }
  return representative;
}
