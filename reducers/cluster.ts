import { UsageError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { mergeTokens, resolveBudget, type Reduction, type TokenSet } from '../core/tokenset.js';
import { cosineGram } from './similarity.js';
import { seedOf } from './options.js';
import type { BaseReduceOptions, Reducer } from './types.js';

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
 * Point×centroid similarities are exact sums over one native n×n cosine GEMM
 * (x̂_i·c_j = Σ_{m∈C_j} w_m G_im / ‖Σ w_m x̂_m‖); the per-cluster sums are
 * updated only for points that move, so a Lloyd step costs O(k·n + moved·n)
 * instead of O(n·k·d).
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
    tolerance: { type: 'number', description: 'stop early when assignments settle or the objective improves by at most this fraction (0: run all iterations)', default: CLUSTER_TOLERANCE },
  },
  async run(tokens: TokenSet, options: ClusterOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'cluster');
    const iterations = options.iterations ?? CLUSTER_ITERATIONS;
    const tolerance = options.tolerance ?? CLUSTER_TOLERANCE;
    if (!(Number.isInteger(iterations) && iterations >= 0)) throw new UsageError(`cluster: iterations must be an integer ≥ 0, got ${iterations}`);
    if (!(Number.isFinite(tolerance) && tolerance >= 0)) throw new UsageError(`cluster: tolerance must be a finite number ≥ 0, got ${tolerance}`);
    const seed = seedOf(options, 'cluster');
    const { gram } = await cosineGram(tokens, 'cluster');
    const result = sphericalKMeans(gram, tokens.n, tokens.size, budget, { iterations, tolerance, seed });
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
  const seeds = kMeansPlusPlus(gram, n, weights, k, new Rng(options.seed));
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

/** k-means++ on cosine distance: first uniform, then ∝ w·D², D = 1 − max cos. */
function kMeansPlusPlus(gram: Float32Array, n: number, weights: Float64Array, k: number, rng: Rng): Int32Array {
  const seeds = new Int32Array(k);
  const chosen = new Uint8Array(n);
  const dist = new Float64Array(n).fill(Infinity);
  const prob = new Float64Array(n);
  let next = rng.int(n);
  for (let s = 0; s < k; s++) {
    seeds[s] = next;
    chosen[next] = 1;
    if (s === k - 1) break;
    const row = next * n;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.max(0, 1 - gram[row + i]!);
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
function assignNearest(sims: Float64Array, scale: Float64Array, n: number, k: number, assign: Int32Array, best: Float64Array): void {
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
function clusterGramSums(gram: Float32Array, n: number, weights: Float64Array, assign: Int32Array, out: Float64Array): Float64Array {
  out.fill(0);
  for (let m = 0; m < n; m++) addRow(out, assign[m]! * n, gram, m * n, weights[m]!, n);
  return out;
}

/** 1/‖Σ_{m∈C_j} w_m x̂_m‖ per cluster, with ‖…‖² = Σ_{m∈C_j} w_m U_j[m] (0 for a zero centroid). */
function clusterInverseNorms(sums: Float64Array, n: number, weights: Float64Array, assign: Int32Array, k: number): Float64Array {
  const normSq = new Float64Array(k);
  for (let m = 0; m < n; m++) normSq[assign[m]!]! += weights[m]! * sums[assign[m]! * n + m]!;
  return normSq.map((v) => (v > 0 ? 1 / Math.sqrt(v) : 0));
}

/** Updates U for the points whose cluster changed (old −= w·G_m, new += w·G_m); returns how many moved. */
function moveMembers(sums: Float64Array, gram: Float32Array, n: number, weights: Float64Array, from: Int32Array, to: Int32Array): number {
  let moved = 0;
  for (let m = 0; m < n; m++) {
    if (from[m] === to[m]) continue;
    addRow(sums, from[m]! * n, gram, m * n, -weights[m]!, n);
    addRow(sums, to[m]! * n, gram, m * n, weights[m]!, n);
    moved++;
  }
  return moved;
}

function addRow(target: Float64Array, targetBase: number, gram: Float32Array, gramBase: number, w: number, n: number): void {
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
