import ort from './ort.js';
import { InputError, ShapeError } from './errors.js';
import { OnnxGraph } from './onnx-graph.js';

/** A dense row-major float32 matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

export function matrix(rows: number, cols: number, data: Float32Array = new Float32Array(rows * cols)): Matrix {
  if (data.length !== rows * cols)
    throw new ShapeError(`matrix: ${rows}x${cols} needs ${rows * cols} values, got ${data.length}`);
  return { rows, cols, data };
}

/**
 * Below this many multiply-adds (m·n·k) the plain-TS kernel wins: an
 * onnxruntime call costs ~50–100 µs of overhead regardless of size.
 */
export const NATIVE_THRESHOLD = 1 << 17;

/** A cached kernel session: only `run` is used, and every run is timed (see {@link nativeTime}). */
export type NativeSession = Pick<ort.InferenceSession, 'run'>;

const sessions = new Map<string, Promise<NativeSession>>();
let threads = 0;
const spent = { ms: 0, runs: 0 };

/**
 * Milliseconds spent inside onnxruntime runs of the linalg kernels, and how
 * many runs, since the process started (monotonic: take differences). A
 * call's time minus the native part is its JS part — how `vtc bench
 * pytorch` reports where time goes.
 *
 * @example
 * const before = nativeTime().ms;
 * await tomeReducer.run(tokens, { ratio: 0.25 });
 * const nativeMs = nativeTime().ms - before;
 */
export function nativeTime(): { ms: number; runs: number } {
  return { ...spent };
}

/** Sets onnxruntime's intra-op thread count for every linalg kernel (0 = all cores). Drops cached sessions. */
export function setLinalgThreads(count: number): void {
  threads = count;
  sessions.clear();
}

/**
 * One cached onnxruntime session per small graph (symbolic dimensions, so a
 * single session serves every shape). Used by the GEMM here and by the fused
 * kernels in core/linalg-kernels.ts.
 */
export function nativeSession(name: string, build: () => OnnxGraph): Promise<NativeSession> {
  let session = sessions.get(name);
  if (!session) {
    const options: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      // No spinning after a run: the reducers alternate native runs with JS, and a spinning intra-op thread holds the
      // second core that V8's compiler and GC threads need then (measured on 2 cores, alternating processes: warm
      // tome 74 vs 86 ms, divprune 115 vs 153, cluster 268 vs 311; first calls 111 vs 115, 152 vs 220, 358 vs 485).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    };
    if (threads > 0) options.intraOpNumThreads = threads;
    session = ort.InferenceSession.create(build().toBytes(), options).then(timedSession);
    sessions.set(name, session);
  }
  return session;
}

function timedSession(session: ort.InferenceSession): NativeSession {
  return {
    run: (async (...args: Parameters<ort.InferenceSession['run']>) => {
      const started = performance.now();
      try {
        return await session.run(...args);
      } finally {
        spent.ms += performance.now() - started;
        spent.runs++;
      }
    }) as ort.InferenceSession['run'],
  };
}

function gemmGraph(): OnnxGraph {
  // Gemm(A, B, transB=1) with symbolic dimensions.
  const graph = new OnnxGraph('vtc_gemm_abt');
  graph.input('A', ['m', 'k']).input('B', ['n', 'k']);
  graph.node('Gemm', ['A', 'B'], ['C'], { transB: 1 });
  graph.output('C', ['m', 'n']);
  return graph;
}

/**
 * A·Bᵀ for A [m, k] and B [n, k] → [m, n]. Runs in onnxruntime's Gemm above
 * NATIVE_THRESHOLD multiply-adds, else in plain TS (`force` picks one).
 * `out` (m·n values), when given, receives the product: onnxruntime writes
 * into it directly, with no fresh array to fault in and no copy out.
 *
 * @example
 * const sims = await matmulABt(normalizeRows(x), normalizeRows(x)); // n×n cosine
 */
export async function matmulABt(a: Matrix, b: Matrix, force?: 'native' | 'ts', out?: Float32Array): Promise<Matrix> {
  if (a.cols !== b.cols)
    throw new ShapeError(`matmulABt: A is ${a.rows}x${a.cols} and B is ${b.rows}x${b.cols}; inner dimensions differ`);
  if (out && out.length !== a.rows * b.rows)
    throw new ShapeError(`matmulABt: out has ${out.length} values, expected ${a.rows}x${b.rows} = ${a.rows * b.rows}`);
  const work = a.rows * b.rows * a.cols;
  if (a.rows === 0 || b.rows === 0) return matrix(a.rows, b.rows, out);
  if (force === 'ts' || (force !== 'native' && work < NATIVE_THRESHOLD)) {
    const product = matmulABtSync(a, b);
    if (!out) return product;
    out.set(product.data);
    return matrix(a.rows, b.rows, out);
  }
  const s = await nativeSession('gemm_abt', gemmGraph);
  const feeds = {
    A: new ort.Tensor('float32', a.data as Float32Array<ArrayBuffer>, [a.rows, a.cols]),
    B: new ort.Tensor('float32', b.data as Float32Array<ArrayBuffer>, [b.rows, b.cols]),
  };
  if (out) {
    await s.run(feeds, { C: new ort.Tensor('float32', out as Float32Array<ArrayBuffer>, [a.rows, b.rows]) });
    return matrix(a.rows, b.rows, out);
  }
  const result = await s.run(feeds);
  return matrix(a.rows, b.rows, result.C!.data as Float32Array);
}

/** Plain-TS A·Bᵀ (4-way unrolled dot products); exact reference for small sizes. */
export function matmulABtSync(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.cols)
    throw new ShapeError(`matmulABt: A is ${a.rows}x${a.cols} and B is ${b.rows}x${b.cols}; inner dimensions differ`);
  const { rows: m, cols: k } = a;
  const n = b.rows;
  const out = new Float32Array(m * n);
  const A = a.data;
  const B = b.data;
  const k4 = k - (k % 4);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      let c = 0;
      for (; c < k4; c += 4) {
        s0 += A[ai + c]! * B[bj + c]!;
        s1 += A[ai + c + 1]! * B[bj + c + 1]!;
        s2 += A[ai + c + 2]! * B[bj + c + 2]!;
        s3 += A[ai + c + 3]! * B[bj + c + 3]!;
      }
      for (; c < k; c++) s0 += A[ai + c]! * B[bj + c]!;
      out[i * n + j] = s0 + s1 + s2 + s3;
    }
  }
  return matrix(m, n, out);
}

/** Each row divided by its L2 norm (rows of norm 0 stay 0). Returns a new matrix. */
export function normalizeRows(a: Matrix, eps = 0): Matrix {
  const out = new Float32Array(a.data.length);
  const { rows, cols } = a;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += a.data[base + c]! * a.data[base + c]!;
    const norm = Math.sqrt(sum);
    const scale = norm > eps && norm > 0 ? 1 / norm : 0;
    for (let c = 0; c < cols; c++) out[base + c] = a.data[base + c]! * scale;
  }
  return matrix(rows, cols, out);
}

/** Squared L2 norm of each row. */
export function rowSquaredNorms(a: Matrix): Float64Array {
  const out = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) {
    let s = 0;
    const base = i * a.cols;
    for (let c = 0; c < a.cols; c++) s += a.data[base + c]! * a.data[base + c]!;
    out[i] = s;
  }
  return out;
}

/** Cosine similarity between rows of A and rows of B (B defaults to A): [m, n]. */
export async function cosineSimilarity(a: Matrix, b?: Matrix, force?: 'native' | 'ts'): Promise<Matrix> {
  const an = normalizeRows(a);
  const bn = b ? normalizeRows(b) : an;
  return matmulABt(an, bn, force);
}

/** Squared Euclidean distances ‖aᵢ − bⱼ‖² = ‖aᵢ‖² + ‖bⱼ‖² − 2aᵢ·bⱼ, clamped at 0: [m, n]. */
export async function squaredDistances(a: Matrix, b: Matrix, force?: 'native' | 'ts'): Promise<Matrix> {
  const dots = await matmulABt(a, b, force);
  const na = rowSquaredNorms(a);
  const nb = rowSquaredNorms(b);
  const out = dots.data;
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.rows; j++) {
      const v = na[i]! + nb[j]! - 2 * out[i * b.rows + j]!;
      out[i * b.rows + j] = v > 0 ? v : 0;
    }
  }
  return dots;
}

/** Index of the largest value in each row (first on ties). */
export function argmaxRows(m: Matrix): { index: Int32Array; value: Float32Array } {
  const index = new Int32Array(m.rows);
  const value = new Float32Array(m.rows);
  for (let i = 0; i < m.rows; i++) {
    const base = i * m.cols;
    let best = 0;
    let bestValue = -Infinity;
    for (let j = 0; j < m.cols; j++) {
      const v = m.data[base + j]!;
      if (v > bestValue) {
        bestValue = v;
        best = j;
      }
    }
    index[i] = best;
    value[i] = bestValue;
  }
  return { index, value };
}

/**
 * Indices of the k largest values, largest first; ties go to the lower index
 * (a stable order, so results never depend on sort implementation details).
 */
export function topK(values: ArrayLike<number>, k: number): Int32Array {
  const n = values.length;
  if (k < 0 || k > n) throw new ShapeError(`topK: k = ${k} is outside [0, ${n}]`);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => values[b]! - values[a]! || a - b);
  return order.slice(0, k);
}

/** The k largest indices returned in ascending index order (raster order for grids). */
export function topKSorted(values: ArrayLike<number>, k: number): Int32Array {
  return topK(values, k).sort();
}

/** Column-wise mean of the rows of A. */
export function meanRow(a: Matrix): Float32Array {
  const acc = new Float64Array(a.cols);
  for (let i = 0; i < a.rows; i++) for (let c = 0; c < a.cols; c++) acc[c]! += a.data[i * a.cols + c]!;
  const out = new Float32Array(a.cols);
  for (let c = 0; c < a.cols; c++) out[c] = acc[c]! / Math.max(1, a.rows);
  return out;
}

/** L2 norm of a vector. */
export function l2norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/**
 * Largest n·d a token set may have for the similarity kernels (2²⁸ float32
 * values = 1 GiB; the reducers keep one normalised copy besides the input).
 * 100,000 × 1024 fits; an hour of video at 1 fps × 196 tokens × 1152 does
 * not and must be reduced per segment first.
 */
export const MAX_FEATURE_VALUES = 2 ** 28;

/**
 * Throws a clear InputError, before anything is allocated, when n·d exceeds
 * MAX_FEATURE_VALUES, naming the size and the limit.
 *
 * @example
 * checkFeatureSize(700000, 1152, 'divprune'); // throws: n·d = 700000×1152 = 806,400,000 values …
 */
export function checkFeatureSize(n: number, d: number, where: string): void {
  const values = n * d;
  if (values <= MAX_FEATURE_VALUES) return;
  const gib = (values * 4) / 2 ** 30;
  throw new InputError(
    `${where}: n·d = ${n}×${d} = ${values.toLocaleString('en-US')} feature values (${gib.toFixed(1)} GiB of float32) exceeds the limit of ${MAX_FEATURE_VALUES.toLocaleString('en-US')} (1 GiB); reduce per segment or frame first`,
    'E_TOO_LARGE',
  );
}
