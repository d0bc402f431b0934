import { InputError, ShapeError, UsageError } from '../core/errors.js';
import { checkFeatureSize, matmulABt, NATIVE_THRESHOLD, normalizeRows, type Matrix } from '../core/linalg.js';
import {
  cosineGramNative,
  cosineRows,
  SIMILARITY_TILE_VALUES,
  unitRowsNative,
  vecMatNative,
} from '../core/linalg-kernels.js';
import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import type { BaseReduceOptions, Reducer, ReduceProgress } from './types.js';
import { checkNumber } from '../core/validate.js';

/** Options of `cdpruner`. */
export interface CDPrunerOptions extends BaseReduceOptions {
  /**
   * The instruction as embeddings in the tokens' space: one [d] vector
   * (a Float32Array of length d) or m rows ([m, d] Matrix). The CLI loads it
   * from `--query FILE.npy`. Without it q = 1 (plain DPP diversity).
   */
  query?: Matrix | Float32Array;
  /**
   * Relevance weight θ ∈ [0, 1): the kernel uses q = exp(θ / (2(1 − θ)) · r)
   * instead of the released code's raw relevance r. Needs a query.
   */
  theta?: number;
}

/**
 * `cdpruner` — CDPruner (Zhang et al., 2025, Theia-4869/CDPruner): conditional
 * diversity by a determinantal point process, as the released code runs it.
 *
 * - S = cosine similarity of the tokens (n×n);
 * - relevance r_i = mean over query rows of −cos(x_i, q_r) (the negation is
 *   the released code's), then r = (r − min r + 1e-6) / (max r − min r);
 * - q = r (default) or exp(θ/(2(1−θ))·r) with `theta`; q = 1 without a query;
 * - kernel L = diag(q)·S·diag(q);
 * - greedy MAP inference with the fast incremental Cholesky update: pick
 *   j = argmax d_i² (first index on ties), e = (L[j,:] − Σ_t c_t[j]·c_t) / √d_j²,
 *   d² −= e², d_j² = −∞; `budget` picks, no early stop;
 * - kept tokens in original order.
 *
 * Only the rows of picked tokens are read from the kernel (one row per pick;
 * `similarityRows` is the single place the similarities come from).
 *
 * @example
 * const { keep } = await cdprunerReducer.run(tokens, { budget: 64, query: textEmbedding });
 */
export const cdprunerReducer: Reducer<CDPrunerOptions> = {
  name: 'cdpruner',
  summary:
    'CDPruner conditional DPP: greedy MAP of diag(q)·cos·diag(q) with instruction relevance q, kept in original order',
  kind: 'select',
  scope: 'all',
  options: {
    query: {
      type: 'npy',
      description: "instruction embedding in the tokens' space: .npy [d] or [m, d] (CLI: a file path)",
    },
    theta: {
      type: 'number',
      description: 'relevance weight θ in [0, 1): q = exp(θ/(2(1-θ))·r) instead of the raw relevance r (needs --query)',
    },
  },
  native: ['cosine_gram', 'vec_mat', 'gemm', 'unit_rows'],
  async run(tokens: TokenSet, options: CDPrunerOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'cdpruner');
    if (options.theta !== undefined) {
      const t = options.theta;
      checkNumber(t, 'theta', { min: 0, lt: 1, where: 'cdpruner', code: 'E_RANGE' });
      if (options.query === undefined)
        throw new UsageError('cdpruner: theta weights the relevance to a query; give a query (--query FILE.npy) too');
    }
    const relevance = options.query === undefined ? undefined : await queryRelevance(tokens, options.query);
    const q = relevance ? kernelWeights(relevance, options.theta) : undefined;
    const rows = await similarityRows(tokens);
    // Kernel rows the greedy asked for: one per pick that updated d² (at most the kernel's rank).
    let kernelRows = 0;
    const countedRow = (j: number) => {
      kernelRows++;
      return rows.row(j);
    };
    const order = await greedyDppMap(countedRow, rows.unitDiagonal, tokens.n, budget, q, options.onProgress);
    const keep = Int32Array.from(order).sort();
    return {
      tokens: selectTokens(tokens, keep),
      keep,
      stats: {
        budget,
        ratio,
        first_pick: order[0],
        conditional: q !== undefined,
        kernel_rows: kernelRows,
        full_gram: tokens.n * tokens.n <= SIMILARITY_TILE_VALUES,
        ...(options.theta !== undefined ? { theta: options.theta } : {}),
      },
    };
  },
};

/**
 * Cosine similarity rows S[j, :] of the tokens, and the exact diagonal
 * (1 for a token of non-zero norm, 0 otherwise — the GEMM's diagonal is only
 * 1 ± ulp, and the first pick must not depend on that). The greedy only asks
 * for the rows of picked tokens: up to n = 4096 (one 64 MiB similarity tile)
 * they are read from the Gram matrix, beyond that each is one GEMV of the
 * normalised features — the same values, no n×n matrix.
 */
async function similarityRows(
  tokens: TokenSet,
): Promise<{ row: (j: number) => Float32Array | Promise<Float32Array>; unitDiagonal: Uint8Array }> {
  const { n, d, data } = tokens;
  checkFeatureSize(n, d, 'cdpruner');
  const unitDiagonal = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * d;
    for (let c = 0; c < d; c++) {
      if (data[base + c] !== 0) {
        unitDiagonal[i] = 1;
        break;
      }
    }
  }
  // No n×n matrix beyond one 64 MiB similarity tile: larger inputs get each picked row from one GEMV (the same values).
  if (n * n <= SIMILARITY_TILE_VALUES) {
    const { gram } = await cosineGramNative(data, n, d);
    return { row: (j) => gram.subarray(j * n, (j + 1) * n), unitDiagonal };
  }
  const unit = await unitRowsNative(data, n, d);
  return { row: (j) => cosineRows(unit, n, d, [j]), unitDiagonal };
}

/**
 * The released code's relevance: r_i = mean_r −cos(x_i, q_r), then
 * (r − min + 1e-6) / (max − min). When every token is equally relevant
 * (max = min, where the reference divides by zero) every r_i is 1.
 *
 * @example
 * await queryRelevance(tokens, Float32Array.of(1, 0)); // Float64Array, values in (0, 1]
 */
export async function queryRelevance(tokens: TokenSet, query: Matrix | Float32Array): Promise<Float64Array> {
  const { n, d } = tokens;
  const rows: Matrix = query instanceof Float32Array ? { rows: 1, cols: query.length, data: query } : query;
  if (rows.cols !== d) {
    const shape = query instanceof Float32Array ? `[${rows.cols}]` : `[${rows.rows}, ${rows.cols}]`;
    throw new ShapeError(
      `cdpruner: query has dimension ${rows.cols} (shape ${shape}) but the tokens have d = ${d}; the query must be in the tokens' space`,
    );
  }
  if (rows.rows < 1) throw new ShapeError('cdpruner: query has no rows');
  for (let r = 0; r < rows.rows; r++) {
    let zero = true;
    for (let c = 0; c < d; c++) {
      const v = rows.data[r * d + c]!;
      if (!Number.isFinite(v))
        throw new InputError(`cdpruner: query row ${r} has a non-finite value ${v} at dimension ${c}`, 'E_NONFINITE');
      if (v !== 0) zero = false;
    }
    if (zero) throw new InputError(`cdpruner: query row ${r} is all zeros (its cosine to the tokens is undefined)`);
  }
  const cos = await matmulABt(normalizeRows({ rows: n, cols: d, data: tokens.data }), normalizeRows(rows));
  const m = rows.rows;
  const relevance = new Float64Array(n);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let r = 0; r < m; r++) sum += -cos.data[i * m + r]!;
    const v = sum / m;
    relevance[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min;
  for (let i = 0; i < n; i++) relevance[i] = span > 0 ? (relevance[i]! - min + 1e-6) / span : 1;
  return relevance;
}

/** q_i = r_i (the released code), or exp(θ/(2(1−θ))·r_i) with θ. */
function kernelWeights(relevance: Float64Array, theta: number | undefined): Float64Array {
  if (theta === undefined) return relevance;
  const alpha = theta / (2 * (1 - theta));
  return relevance.map((r) => Math.exp(alpha * r));
}

/**
 * Greedy MAP inference of the DPP with kernel L = diag(q)·S·diag(q) by the
 * fast incremental Cholesky update (Chen et al. 2018, as CDPruner runs it):
 * d²_i starts at L_ii; each step picks j = argmax d² (lowest index on ties),
 * computes e = (L[j,:] − Σ_t c_t[j]·c_t) / √d²_j, stores it as c_i,
 * subtracts e² from d² and sets d²_j = −∞. `budget` picks, no early stop:
 * once the kernel's rank is exhausted (d²_j ≤ 0, where the reference would
 * take √ of a non-positive number) the pick adds no update and the next ones
 * follow the remaining d² (lowest index on ties), so the picks stay distinct.
 * O(n·budget²): the Σ_t c_t[j]·c_t update is one native vector × matrix
 * product per pick (a plain-TS loop, 4 rows per pass, below NATIVE_THRESHOLD).
 * Memory: one row c_t of n floats per pick that updated d² — at most the
 * kernel's rank (≤ d + 1), so n·min(budget, d + 1) floats, not n·budget.
 * `onProgress` hears each pick ('picks', done of budget).
 *
 * @example
 * await greedyDppMap((j) => gram.subarray(j * n, (j + 1) * n), unit, n, 3); // Int32Array, pick order
 */
export async function greedyDppMap(
  row: (j: number) => Float32Array | Promise<Float32Array>,
  unitDiagonal: Uint8Array,
  n: number,
  budget: number,
  q?: Float64Array,
  onProgress?: (progress: ReduceProgress) => void,
): Promise<Int32Array> {
  const picks = new Int32Array(budget);
  const di2s = new Float64Array(n);
  for (let i = 0; i < n; i++) di2s[i] = unitDiagonal[i] ? (q ? q[i]! * q[i]! : 1) : 0;
  // Rows c_t are stored only for picks that update d² (at most the kernel's rank, ≤ d + 1 for
  // features of dimension d), growing on demand: budget·n floats would be 4 GB at 100k tokens.
  let cis = new Float32Array(Math.min(budget, 64) * n);
  let stored = 0;
  const acc = new Float64Array(n);
  const picked = new Float32Array(budget);
  for (let step = 0; step < budget; step++) {
    let j = -1;
    let best = -Infinity;
    for (let i = 0; i < n; i++) {
      if (di2s[i]! > best) {
        best = di2s[i]!;
        j = i;
      }
    }
    if (j < 0) {
      // Every remaining d² is −∞ only once all n are picked; budget ≤ n rules that out.
      throw new ShapeError(`cdpruner: no candidate left at pick ${step} of ${budget}`);
    }
    picks[step] = j;
    onProgress?.({ stage: 'picks', done: step + 1, total: budget });
    if (!(best > 0)) {
      di2s[j] = -Infinity;
      continue;
    }
    const s = await row(j);
    const qj = q ? q[j]! : 1;
    if (q) for (let k = 0; k < n; k++) acc[k] = qj * s[k]! * q[k]!;
    else for (let k = 0; k < n; k++) acc[k] = s[k]!;
    acc[j] = qj * qj; // L_jj exactly (S_jj = 1 for a token of non-zero norm; best > 0 implies it)
    if (stored * n >= NATIVE_THRESHOLD) {
      // Σ_t c_t[j]·c_t as one native vector × matrix product over the stored rows.
      for (let t = 0; t < stored; t++) picked[t] = cis[t * n + j]!;
      const projection = await vecMatNative(picked.subarray(0, stored), cis.subarray(0, stored * n), stored, n);
      for (let k = 0; k < n; k++) acc[k]! -= projection[k]!;
    } else {
      subtractProjections(acc, cis, stored, n, j);
    }
    if ((stored + 1) * n > cis.length) {
      const grown = new Float32Array(Math.min(budget, 2 * (stored + 1)) * n);
      grown.set(cis.subarray(0, stored * n));
      cis = grown;
    }
    const inv = 1 / Math.sqrt(best);
    const out = stored * n;
    stored++;
    for (let k = 0; k < n; k++) {
      const e = acc[k]! * inv;
      cis[out + k] = e;
      di2s[k]! -= e * e;
    }
    di2s[j] = -Infinity;
  }
  return picks;
}

/** acc −= Σ_{t<steps} c_t[j]·c_t, 4 rows of c per pass (the small-size path of the greedy update). */
function subtractProjections(acc: Float64Array, cis: Float32Array, steps: number, n: number, j: number): void {
  let t = 0;
  for (; t + 3 < steps; t += 4) {
    const o0 = t * n;
    const o1 = o0 + n;
    const o2 = o1 + n;
    const o3 = o2 + n;
    const c0 = cis[o0 + j]!;
    const c1 = cis[o1 + j]!;
    const c2 = cis[o2 + j]!;
    const c3 = cis[o3 + j]!;
    for (let k = 0; k < n; k++)
      acc[k]! -= c0 * cis[o0 + k]! + c1 * cis[o1 + k]! + c2 * cis[o2 + k]! + c3 * cis[o3 + k]!;
  }
  for (; t < steps; t++) {
    const o = t * n;
    const c = cis[o + j]!;
    if (c !== 0) for (let k = 0; k < n; k++) acc[k]! -= c * cis[o + k]!;
  }
}
