import ort from './ort.js';
import { ShapeError } from './errors.js';
import { matmulABt, matrix, nativeSession } from './linalg.js';
import { OnnxGraph } from './onnx-graph.js';

/*
 * Fused native (onnxruntime) linear-algebra kernels: small cached graphs with
 * symbolic dimensions, like the GEMM in core/linalg, that also run the
 * normalisation, arg-max / top-k or pooling natively, so only small results
 * come back to JS. Used by the reducers (ToMe, VisionZip, DivPrune, k-means, pool).
 */

/** Adds nodes that L2-normalise the rows of `x` (‖x‖ clamped at the `eps` initializer); returns the output name. */
function normalizeRowsNode(graph: OnnxGraph, x: string): string {
  graph.node('ReduceL2', [x], [`${x}_norm`], { axes: [1], keepdims: 1 });
  graph.node('Max', [`${x}_norm`, 'eps'], [`${x}_safe`]);
  return graph.node('Div', [x, `${x}_safe`], [`${x}_unit`]);
}

/**
 * One cached onnxruntime graph (symbolic dims) for "each row of A: its most
 * similar row of B by cosine": L2-normalise A and B (‖x‖ clamped at 1e-12, as
 * F.normalize), Gemm(A, Bᵀ), add a per-column bias (0, or −∞ to exclude a
 * column), ReduceMax + ArgMax (first index on ties). Runs the normalisation,
 * the GEMM and the arg-max natively, so only p values come back instead of a
 * p×q matrix.
 */
function bestMatchGraph(): OnnxGraph {
  const graph = new OnnxGraph('vtc_best_cosine_match');
  graph.input('A', ['p', 'd']).input('B', ['q', 'd']).input('bias', ['q']);
  graph.initializer('eps', [], [1e-12]);
  normalizeRowsNode(graph, 'A');
  normalizeRowsNode(graph, 'B');
  graph.node('Gemm', ['A_unit', 'B_unit'], ['S'], { transB: 1 });
  graph.node('Add', ['S', 'bias'], ['S_biased']);
  graph.node('ReduceMax', ['S_biased'], ['best'], { axes: [1], keepdims: 0 });
  graph.node('ArgMax', ['S_biased'], ['arg'], { axis: 1, keepdims: 0 });
  graph.output('best', ['p']).output('arg', ['p'], 7 /* INT64 */);
  return graph;
}

/**
 * For each of the p rows of A [p, d], the index of the most cosine-similar
 * row of B [q, d] and that similarity; `bias` [q] is added to every row first
 * (−Infinity excludes a column). q must be ≥ 1.
 *
 * @example
 * const { best, index } = await bestCosineMatch(a, 3, b, 5, 2, new Float32Array(5));
 */
export async function bestCosineMatch(
  a: Float32Array,
  p: number,
  b: Float32Array,
  q: number,
  d: number,
  bias: Float32Array,
): Promise<{ best: Float32Array; index: Int32Array }> {
  if (a.length !== p * d || b.length !== q * d || bias.length !== q || q < 1) {
    throw new ShapeError(
      `bestCosineMatch: expected A [${p}, ${d}], B [${q}, ${d}] (q ≥ 1), bias [${q}]; got ${a.length}, ${b.length}, ${bias.length} values`,
    );
  }
  if (p === 0) return { best: new Float32Array(0), index: new Int32Array(0) };
  const s = await nativeSession('best_cosine_match', bestMatchGraph);
  const out = await s.run({
    A: new ort.Tensor('float32', a as Float32Array<ArrayBuffer>, [p, d]),
    B: new ort.Tensor('float32', b as Float32Array<ArrayBuffer>, [q, d]),
    bias: new ort.Tensor('float32', bias as Float32Array<ArrayBuffer>, [q]),
  });
  const best = out.best!.data as Float32Array;
  const arg = out.arg!.data as BigInt64Array;
  return { best, index: Int32Array.from(arg, (v) => Number(v)) };
}

const INT64 = 7;
/** Past any row count: Slice clamps it to the dimension. */
const SLICE_END = 2 ** 31 - 1;

/**
 * ToMe's bipartite match graph. A = the even rows of X in [a_start, a_end)
 * (Slice with step 2, so splitting the tokens costs no JS copy), normalised
 * like bestMatchGraph; B = the odd rows normalised in the graph (`unitB`
 * false) or given already normalised as B_unit; Gemm(A, Bᵀ), an optional
 * per-column bias, ReduceMax + ArgMax (first index on ties).
 */
function alternateMatchGraph(unitB: boolean, withBias: boolean): OnnxGraph {
  const graph = new OnnxGraph(`vtc_alternate_match${unitB ? '_unit_b' : ''}${withBias ? '_bias' : ''}`);
  graph.input('X', ['m', 'd']).input('a_start', [1], INT64).input('a_end', [1], INT64);
  graph.initializer('eps', [], [1e-12]);
  graph.initializer('axis0', [1], [0], true).initializer('two', [1], [2], true);
  graph.node('Slice', ['X', 'a_start', 'a_end', 'axis0', 'two'], ['A']);
  normalizeRowsNode(graph, 'A');
  if (unitB) graph.input('B_unit', ['q', 'd']);
  else {
    graph.initializer('one', [1], [1], true).initializer('end', [1], [SLICE_END], true);
    graph.node('Slice', ['X', 'one', 'end', 'axis0', 'two'], ['B']);
    normalizeRowsNode(graph, 'B');
  }
  graph.node('Gemm', ['A_unit', 'B_unit'], ['S'], { transB: 1 });
  let scores = 'S';
  if (withBias) {
    graph.input('bias', ['q']);
    scores = graph.node('Add', ['S', 'bias'], ['S_biased']);
  }
  graph.node('ReduceMax', [scores], ['best'], { axes: [1], keepdims: 0 });
  graph.node('ArgMax', [scores], ['arg'], { axis: 1, keepdims: 0 });
  graph.output('best', ['p']).output('arg', ['p'], INT64);
  return graph;
}

/** The odd rows of X, L2-normalised (ToMe's B set, normalised once per round when A runs in several blocks). */
function oddUnitRowsGraph(): OnnxGraph {
  const graph = new OnnxGraph('vtc_odd_unit_rows');
  graph.input('X', ['m', 'd']);
  graph.initializer('eps', [], [1e-12]);
  graph.initializer('axis0', [1], [0], true).initializer('two', [1], [2], true);
  graph.initializer('one', [1], [1], true).initializer('end', [1], [SLICE_END], true);
  graph.node('Slice', ['X', 'one', 'end', 'axis0', 'two'], ['B']);
  graph.output(normalizeRowsNode(graph, 'B'), ['q', 'd']);
  return graph;
}

function int64Scalar(value: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.of(BigInt(value)), [1]);
}

/**
 * ToMe's bipartite soft matching step on the m rows of x [m, d]: A = rows
 * 0, 2, 4, …, B = rows 1, 3, 5, …; for every A row the index (into B) of its
 * most cosine-similar B row (first on ties) and that cosine, after adding
 * `bias` [⌊m/2⌋] (−Infinity excludes a B row; omitted = no bias). The same
 * values as bestCosineMatch on the split rows, without splitting them in JS:
 * one native graph slices, normalises, multiplies and takes the arg-max.
 * When ⌈m/2⌉·⌊m/2⌋ similarities exceed `tileValues`, A runs in row blocks
 * against B normalised once. m must be ≥ 2.
 *
 * @example
 * const { best, index } = await alternateBestMatch(x, 2880, 1024); // 1440 A rows against 1440 B rows
 */
export async function alternateBestMatch(
  x: Float32Array,
  m: number,
  d: number,
  bias?: Float32Array,
  tileValues = SIMILARITY_TILE_VALUES,
): Promise<{ best: Float32Array; index: Int32Array }> {
  const p = Math.ceil(m / 2);
  const q = Math.floor(m / 2);
  if (x.length < m * d || q < 1 || (bias && bias.length !== q)) {
    throw new ShapeError(
      `alternateBestMatch: expected X [${m}, ${d}] with m ≥ 2${bias ? ` and bias [${q}]` : ''}; got ${x.length} values${bias ? ` and a bias of ${bias.length}` : ''}`,
    );
  }
  const X = new ort.Tensor('float32', x.subarray(0, m * d) as Float32Array<ArrayBuffer>, [m, d]);
  const extra: Record<string, ort.Tensor> = {};
  if (bias) extra.bias = new ort.Tensor('float32', bias as Float32Array<ArrayBuffer>, [q]);
  const blockRows = Math.max(1, Math.floor(tileValues / q));
  const unitB = blockRows < p;
  const name = `alternate_match${unitB ? '_unit_b' : ''}${bias ? '_bias' : ''}`;
  const session = await nativeSession(name, () => alternateMatchGraph(unitB, bias !== undefined));
  if (unitB) {
    const odd = await nativeSession('odd_unit_rows', oddUnitRowsGraph);
    extra.B_unit = (await odd.run({ X })).B_unit!;
  }
  const best = new Float32Array(p);
  const index = new Int32Array(p);
  for (let start = 0; start < p; start += blockRows) {
    const rows = Math.min(blockRows, p - start);
    const out = await session.run({
      X,
      a_start: int64Scalar(2 * start),
      a_end: int64Scalar(2 * (start + rows)),
      ...extra,
    });
    best.set(out.best!.data as Float32Array, start);
    const arg = out.arg!.data as BigInt64Array;
    for (let r = 0; r < rows; r++) index[start + r] = Number(arg[r]);
  }
  return { best, index };
}

/**
 * The n×n cosine matrix of the rows of X (one native graph: normalise, Gemm,
 * TopK(2) per row), plus `nearest[i]` = max_{j≠i} cos(x_i, x_j), read from
 * the row's top two (the first unless it is i itself); −Infinity when n = 1.
 * Peak memory is one n×n float32 matrix.
 *
 * @example
 * const { gram, nearest } = await cosineGramNative(x, 576, 1024);
 */
export async function cosineGramNative(
  x: Float32Array,
  n: number,
  d: number,
): Promise<{ gram: Float32Array; nearest: Float32Array }> {
  if (x.length !== n * d || n < 1)
    throw new ShapeError(`cosineGramNative: expected X [${n}, ${d}] with n ≥ 1, got ${x.length} values`);
  const s = await nativeSession('cosine_gram', () => {
    const graph = new OnnxGraph('vtc_cosine_gram');
    graph.input('X', ['n', 'd']).input('k', [1], 7 /* INT64 */);
    graph.initializer('eps', [], [1e-12]);
    const unit = normalizeRowsNode(graph, 'X');
    graph.node('Gemm', [unit, unit], ['S'], { transB: 1 });
    graph.node('TopK', ['S', 'k'], ['top', 'top_index'], { axis: 1, largest: 1, sorted: 1 });
    graph.output('S', ['n', 'n']).output('top', ['n', 'k']).output('top_index', ['n', 'k'], 7 /* INT64 */);
    return graph;
  });
  const k = Math.min(2, n);
  const out = await s.run({
    X: new ort.Tensor('float32', x as Float32Array<ArrayBuffer>, [n, d]),
    k: new ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]),
  });
  const top = out.top!.data as Float32Array;
  const topIndex = out.top_index!.data as BigInt64Array;
  const nearest = new Float32Array(n).fill(-Infinity);
  if (k === 2) for (let i = 0; i < n; i++) nearest[i] = Number(topIndex[2 * i]) === i ? top[2 * i + 1]! : top[2 * i]!;
  return { gram: out.S!.data as Float32Array, nearest };
}

/**
 * k×k mean pooling of `tiles` full rows×cols grids stored tile after tile in
 * raster order (x = [tiles·rows·cols, d]), rows and cols divisible by k:
 * ReduceMean over each k rows, then over each k columns. Output cells are in
 * tile, then raster order: [tiles·(rows/k)·(cols/k), d].
 *
 * @example
 * const pooled = await meanPoolNative(x, 5, 24, 24, 2, 1024); // 720 × 1024
 */
export async function meanPoolNative(
  x: Float32Array,
  tiles: number,
  rows: number,
  cols: number,
  k: number,
  d: number,
): Promise<Float32Array> {
  if (rows % k !== 0 || cols % k !== 0 || x.length !== tiles * rows * cols * d) {
    throw new ShapeError(
      `meanPoolNative: expected ${tiles} tiles of ${rows}x${cols} (divisible by k = ${k}) × ${d}, got ${x.length} values`,
    );
  }
  const s = await nativeSession('mean_pool', () => {
    const graph = new OnnxGraph('vtc_mean_pool');
    graph.input('X', ['row_groups', 'k', 'row_values']).input('cells', [3], 7 /* INT64 */);
    graph.node('ReduceMean', ['X'], ['row_means'], { axes: [1], keepdims: 0 });
    graph.node('Reshape', ['row_means', 'cells'], ['cell_rows']);
    graph.node('ReduceMean', ['cell_rows'], ['Y'], { axes: [1], keepdims: 0 });
    graph.output('Y', ['cells_out', 'd']);
    return graph;
  });
  const rowGroups = (tiles * rows) / k;
  const cellCount = rowGroups * (cols / k);
  const out = await s.run({
    X: new ort.Tensor('float32', x as Float32Array<ArrayBuffer>, [rowGroups, k, cols * d]),
    cells: new ort.Tensor('int64', BigInt64Array.of(BigInt(cellCount), BigInt(k), BigInt(d)), [3]),
  });
  return out.Y!.data as Float32Array;
}

/**
 * Rows of x [n, d] divided by their L2 norm clamped at 1e-12 (F.normalize),
 * natively — the same nodes as the fused kernels above, so similarities of
 * these rows equal theirs bit for bit.
 *
 * @example
 * const unit = await unitRowsNative(x, 576, 1024);
 */
export async function unitRowsNative(x: Float32Array, n: number, d: number): Promise<Float32Array> {
  if (x.length !== n * d) throw new ShapeError(`unitRowsNative: expected X [${n}, ${d}], got ${x.length} values`);
  if (n === 0) return new Float32Array(0);
  const s = await nativeSession('unit_rows', () => {
    const graph = new OnnxGraph('vtc_unit_rows');
    graph.input('X', ['n', 'd']);
    graph.initializer('eps', [], [1e-12]);
    graph.output(normalizeRowsNode(graph, 'X'), ['n', 'd']);
    return graph;
  });
  // onnxruntime writes the rows straight into this array: no arena copy to fault in and copy out.
  const unit = new Float32Array(n * d);
  await s.run(
    { X: new ort.Tensor('float32', x as Float32Array<ArrayBuffer>, [n, d]) },
    { X_unit: new ort.Tensor('float32', unit, [n, d]) },
  );
  return unit;
}

/**
 * Most similarities a blocked kernel holds at once (2²⁴ float32 = 64 MiB):
 * tiles of rows against all columns are sized so rows × columns stays below
 * it, so extra memory is O(block·n), never O(n²).
 */
export const SIMILARITY_TILE_VALUES = 1 << 24;

/**
 * Rows per tile for q columns: as many as fit in `tileValues`, but at most
 * ⌈q/8⌉ (≥ 256) so symmetric kernels still split small inputs into enough
 * row blocks to skip most of the lower triangle.
 */
function tileRows(q: number, tileValues: number): number {
  return Math.max(1, Math.min(q, Math.floor(tileValues / Math.max(1, q)), Math.max(256, Math.ceil(q / 8))));
}

/** One row block of the upper block triangle of a cosine matrix: rows [start, start+rows) × columns [start, n). */
export interface SimilarityTile {
  start: number;
  rows: number;
  cols: number;
  /** rows × cols, row-major: values[r·cols + c] = cos(x_{start+r}, x_{start+c}). */
  values: Float32Array;
}

/**
 * nearest[i] = max_{j≠i} xᵢ·xⱼ for the rows of `unit` (already L2-normalised,
 * so these are cosines), −Infinity when n = 1. Blocked and symmetric: row
 * block [s, s+p) is multiplied only against rows [s, n) (one native graph:
 * Gemm, the diagonal pushed down by 4, ReduceMax along both axes), so the
 * work is ≈ n²·d/2 multiply-adds and at most `tileValues` similarities exist
 * at once — unless `keepTiles` asks for the tiles back (the upper block
 * triangle, ≈ n²/2 values; for inputs small enough to keep). `onProgress`
 * hears after each tile how many of the pass's similarities are done.
 *
 * @example
 * const { nearest } = await nearestCosineNeighbours(unitRows, 36864, 1024);
 */
export async function nearestCosineNeighbours(
  unit: Float32Array,
  n: number,
  d: number,
  tileValues = SIMILARITY_TILE_VALUES,
  keepTiles = false,
  onProgress?: (done: number, total: number) => void,
): Promise<{ nearest: Float32Array; tiles: SimilarityTile[] }> {
  if (unit.length !== n * d || n < 1)
    throw new ShapeError(`nearestCosineNeighbours: expected X [${n}, ${d}] with n ≥ 1, got ${unit.length} values`);
  const nearest = new Float32Array(n).fill(-Infinity);
  const tiles: SimilarityTile[] = [];
  const s = await nativeSession('nearest_tile', () => {
    const graph = new OnnxGraph('vtc_nearest_tile');
    // A is the first p rows of B, so the tile's diagonal S[i][i] is xᵢ·xᵢ: push it below any cosine.
    graph.input('A', ['p', 'd']).input('B', ['q', 'd']);
    graph.initializer('four', [], [4]);
    graph.node('Gemm', ['A', 'B'], ['S'], { transB: 1 });
    graph.node('EyeLike', ['S'], ['eye']);
    graph.node('Mul', ['eye', 'four'], ['diagonal']);
    graph.node('Sub', ['S', 'diagonal'], ['S_off']);
    graph.node('ReduceMax', ['S_off'], ['row_max'], { axes: [1], keepdims: 0 });
    graph.node('ReduceMax', ['S_off'], ['col_max'], { axes: [0], keepdims: 0 });
    graph.output('row_max', ['p']).output('col_max', ['q']).output('S', ['p', 'q']);
    return graph;
  });
  // Progress counts similarities computed (p·q per tile), which is what the time follows.
  let totalWork = 0;
  for (let start = 0; start < n; start += tileRows(n - start, tileValues))
    totalWork += tileRows(n - start, tileValues) * (n - start);
  let work = 0;
  for (let start = 0; start < n; ) {
    const q = n - start;
    const p = tileRows(q, tileValues);
    const rows = unit.subarray(start * d, (start + q) * d);
    const feeds = {
      A: new ort.Tensor('float32', rows.subarray(0, p * d) as Float32Array<ArrayBuffer>, [p, d]),
      B: new ort.Tensor('float32', rows as Float32Array<ArrayBuffer>, [q, d]),
    };
    // A kept tile is written by onnxruntime straight into its own array (no arena copy, no copy out).
    const kept = keepTiles ? new Float32Array(p * q) : undefined;
    const out = await s.run(
      feeds,
      kept ? { row_max: null, col_max: null, S: new ort.Tensor('float32', kept, [p, q]) } : ['row_max', 'col_max'],
    );
    const rowMax = out.row_max!.data as Float32Array;
    const colMax = out.col_max!.data as Float32Array;
    // A 1×1 tile (the last row alone) holds only the diagonal: nothing to learn from it.
    if (q > 1) {
      for (let i = 0; i < p; i++) if (rowMax[i]! > nearest[start + i]!) nearest[start + i] = rowMax[i]!;
      for (let j = 0; j < q; j++) if (colMax[j]! > nearest[start + j]!) nearest[start + j] = colMax[j]!;
    }
    if (kept) tiles.push({ start, rows: p, cols: q, values: kept });
    start += p;
    work += p * q;
    onProgress?.(work, totalWork);
  }
  return { nearest, tiles };
}

/**
 * The full n×n cosine matrix of the rows of x [n, d] (raw; L2-normalised
 * natively like cosineGramNative) from the upper block triangle only: each
 * row block [s, s+p) is multiplied against rows [s, n) (one native graph:
 * Gemm and its transpose), the block is copied to rows [s, s+p) and its
 * transpose to columns [s, s+p) of the rows below. About n²·d/2
 * multiply-adds instead of n²·d; each value is the same dot product
 * cosineGramNative computes (the same normalised rows, the same Gemm), so
 * the matrices are equal value for value. Memory: the n×n result plus one
 * pair of block buffers that onnxruntime writes into (no allocation per block).
 *
 * @example
 * const gram = await cosineGramSymmetric(x, 2880, 1024); // gram[i·n + j] = cos(xᵢ, xⱼ)
 */
export async function cosineGramSymmetric(x: Float32Array, n: number, d: number): Promise<Float32Array> {
  if (x.length !== n * d || n < 1)
    throw new ShapeError(`cosineGramSymmetric: expected X [${n}, ${d}] with n ≥ 1, got ${x.length} values`);
  const unit = await unitRowsNative(x, n, d);
  const s = await nativeSession('gram_block', () => {
    const graph = new OnnxGraph('vtc_gram_block');
    graph.input('A', ['p', 'd']).input('B', ['q', 'd']);
    graph.node('Gemm', ['A', 'B'], ['S'], { transB: 1 });
    graph.node('Transpose', ['S'], ['ST'], { perm: [1, 0] });
    graph.output('S', ['p', 'q']).output('ST', ['q', 'p']);
    return graph;
  });
  // Row blocks first, so one pair of output buffers (the largest block's size) serves every block.
  const blocks: Array<{ start: number; p: number; q: number }> = [];
  for (let start = 0; start < n; ) {
    const q = n - start;
    // A thin last block (a 1-row Gemm takes another kernel path, whose sums can differ in the last bit) joins this one.
    const fit = tileRows(q, SIMILARITY_TILE_VALUES);
    const p = q - fit < 64 ? q : fit;
    blocks.push({ start, p, q });
    start += p;
  }
  const largest = Math.max(...blocks.map(({ p, q }) => p * q));
  const blockBuffer = new Float32Array(largest);
  const transposedBuffer = new Float32Array(largest);
  const gram = new Float32Array(n * n);
  for (const { start, p, q } of blocks) {
    const rows = unit.subarray(start * d, n * d);
    const block = blockBuffer.subarray(0, p * q);
    const transposed = transposedBuffer.subarray(0, p * q);
    await s.run(
      {
        A: new ort.Tensor('float32', rows.subarray(0, p * d) as Float32Array<ArrayBuffer>, [p, d]),
        B: new ort.Tensor('float32', rows as Float32Array<ArrayBuffer>, [q, d]),
      },
      {
        S: new ort.Tensor('float32', block as Float32Array<ArrayBuffer>, [p, q]),
        ST: new ort.Tensor('float32', transposed as Float32Array<ArrayBuffer>, [q, p]),
      },
    );
    // Below the block first, then the block itself, so the diagonal block keeps the Gemm's own values.
    for (let c = 0; c < q; c++) gram.set(transposed.subarray(c * p, (c + 1) * p), (start + c) * n + start);
    for (let r = 0; r < p; r++) gram.set(block.subarray(r * q, (r + 1) * q), (start + r) * n + start);
  }
  return gram;
}

/**
 * Rows `which` of the cosine matrix of `unit` (L2-normalised rows): a
 * [which.length, n] block, one native GEMM. DivPrune's greedy steps and
 * k-means++ seeding need only these rows, never the n×n matrix.
 *
 * @example
 * const rows = await cosineRows(unitRows, 36864, 1024, [5, 17]); // 2 × 36864
 */
export async function cosineRows(
  unit: Float32Array,
  n: number,
  d: number,
  which: ArrayLike<number>,
): Promise<Float32Array> {
  if (unit.length !== n * d) throw new ShapeError(`cosineRows: expected X [${n}, ${d}], got ${unit.length} values`);
  const picked = new Float32Array(which.length * d);
  for (let r = 0; r < which.length; r++) {
    const i = which[r]!;
    if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new ShapeError(`cosineRows: row ${i} is outside [0, ${n})`);
    picked.set(unit.subarray(i * d, (i + 1) * d), r * d);
  }
  // Always native: the same Gemm as the fused kernels, so these rows equal theirs bit for bit.
  return (await matmulABt(matrix(which.length, d, picked), matrix(n, d, unit), 'native')).data;
}

/**
 * v·M for a row vector v [k] and a row-major M [k, n] → [n] (one native
 * MatMul; M may be a view of the first k rows of a larger buffer, no copy).
 * The per-pick update of CDPruner's greedy DPP, where a JS loop is several
 * times slower.
 *
 * @example
 * const y = await vecMatNative(c, cis.subarray(0, k * n), k, n); // y[j] = Σ_t c[t]·cis[t·n + j]
 */
export async function vecMatNative(v: Float32Array, m: Float32Array, k: number, n: number): Promise<Float32Array> {
  if (v.length !== k || m.length !== k * n || k < 1)
    throw new ShapeError(
      `vecMatNative: expected v [${k}] and M [${k}, ${n}] with k ≥ 1, got ${v.length} and ${m.length} values`,
    );
  const s = await nativeSession('vec_mat', () => {
    const graph = new OnnxGraph('vtc_vec_mat');
    graph.input('v', [1, 'k']).input('M', ['k', 'n']);
    graph.node('MatMul', ['v', 'M'], ['y']);
    graph.output('y', [1, 'n']);
    return graph;
  });
  const out = await s.run({
    v: new ort.Tensor('float32', v as Float32Array<ArrayBuffer>, [1, k]),
    M: new ort.Tensor('float32', m as Float32Array<ArrayBuffer>, [k, n]),
  });
  return out.y!.data as Float32Array;
}

/**
 * Per-batch Gram matrices X_b·X_bᵀ of b row blocks of m rows each (x =
 * [b·m, d], row-major) → [b·m·m], one batched native MatMul. FastVID's
 * per-frame distance matrices come from these and the row norms.
 *
 * @example
 * const gram = await batchedGramNative(x, 32, 184, 1152); // gram[(f·m + i)·m + j] = x_{f,i}·x_{f,j}
 */
export async function batchedGramNative(x: Float32Array, batches: number, m: number, d: number): Promise<Float32Array> {
  if (x.length !== batches * m * d)
    throw new ShapeError(`batchedGramNative: expected X [${batches}, ${m}, ${d}], got ${x.length} values`);
  if (batches * m === 0) return new Float32Array(0);
  const s = await nativeSession('batched_gram', () => {
    const graph = new OnnxGraph('vtc_batched_gram');
    graph.input('X', ['b', 'm', 'd']);
    graph.node('Transpose', ['X'], ['XT'], { perm: [0, 2, 1] });
    graph.node('MatMul', ['X', 'XT'], ['G']);
    graph.output('G', ['b', 'm', 'm']);
    return graph;
  });
  const out = await s.run({ X: new ort.Tensor('float32', x as Float32Array<ArrayBuffer>, [batches, m, d]) });
  return out.G!.data as Float32Array;
}

/**
 * Cosine of row i of A with row i of B for i < m (A, B [m, d]), torch 2's
 * rule: a·b / (max(‖a‖, eps)·max(‖b‖, eps)), eps = 1e-8. One native graph;
 * A and B may be overlapping views of one buffer (EVS: frames 1… against
 * frames …T−2).
 *
 * @example
 * const cos = await pairedCosineNative(data.subarray(N * d), data.subarray(0, (T - 1) * N * d), (T - 1) * N, d);
 */
export async function pairedCosineNative(
  a: Float32Array,
  b: Float32Array,
  m: number,
  d: number,
): Promise<Float32Array> {
  if (a.length !== m * d || b.length !== m * d)
    throw new ShapeError(`pairedCosineNative: expected A and B [${m}, ${d}], got ${a.length} and ${b.length} values`);
  if (m === 0) return new Float32Array(0);
  const s = await nativeSession('paired_cosine', () => {
    const graph = new OnnxGraph('vtc_paired_cosine');
    graph.input('A', ['m', 'd']).input('B', ['m', 'd']);
    graph.initializer('eps', [], [1e-8]);
    graph.initializer('axis', [1], [1], true);
    graph.node('Mul', ['A', 'B'], ['AB']);
    graph.node('ReduceSum', ['AB', 'axis'], ['dot'], { keepdims: 0 });
    graph.node('ReduceL2', ['A'], ['A_norm'], { axes: [1], keepdims: 0 });
    graph.node('ReduceL2', ['B'], ['B_norm'], { axes: [1], keepdims: 0 });
    graph.node('Max', ['A_norm', 'eps'], ['A_safe']);
    graph.node('Max', ['B_norm', 'eps'], ['B_safe']);
    graph.node('Mul', ['A_safe', 'B_safe'], ['denominator']);
    graph.node('Div', ['dot', 'denominator'], ['cos']);
    graph.output('cos', ['m']);
    return graph;
  });
  const out = await s.run({
    A: new ort.Tensor('float32', a as Float32Array<ArrayBuffer>, [m, d]),
    B: new ort.Tensor('float32', b as Float32Array<ArrayBuffer>, [m, d]),
  });
  return out.cos!.data as Float32Array;
}

/** The native kernels a reducer may declare it uses, so a one-shot caller can set them up ahead (warmUpKernels). */
export type NativeKernel =
  | 'gemm'
  | 'best_cosine_match'
  | 'alternate_match'
  | 'cosine_gram'
  | 'gram_block'
  | 'mean_pool'
  | 'unit_rows'
  | 'nearest_tile'
  | 'vec_mat'
  | 'batched_gram'
  | 'paired_cosine';

/**
 * Creates the onnxruntime sessions of `kernels` and runs each once on a tiny
 * input (the runtime's environment, the session's thread pool and first-run
 * allocations are what a cold call pays). Returns the milliseconds spent.
 * `vtc reduce` runs this after reading the input and before timing the
 * method, and reports it beside the method's `ms` as `native_setup_ms` (a
 * cold call costs both: nothing overlaps it).
 *
 * @example
 * const setupMs = await warmUpKernels(['best_cosine_match']);
 */
export async function warmUpKernels(kernels: readonly NativeKernel[]): Promise<number> {
  const started = performance.now();
  const x = Float32Array.of(1, 0, 0, 1);
  for (const kernel of new Set(kernels)) {
    if (kernel === 'gemm') await matmulABt(matrix(2, 2, x), matrix(2, 2, x), 'native');
    else if (kernel === 'best_cosine_match') await bestCosineMatch(x, 2, x, 2, 2, new Float32Array(2));
    else if (kernel === 'alternate_match') await alternateBestMatch(x, 2, 2);
    else if (kernel === 'cosine_gram') await cosineGramNative(x, 2, 2);
    else if (kernel === 'gram_block') await cosineGramSymmetric(x, 2, 2);
    else if (kernel === 'mean_pool') await meanPoolNative(Float32Array.of(1, 2, 3, 4), 1, 2, 2, 2, 1);
    else if (kernel === 'unit_rows') await unitRowsNative(x, 2, 2);
    else if (kernel === 'vec_mat') await vecMatNative(Float32Array.of(1, 0), x, 2, 2);
    else if (kernel === 'batched_gram') await batchedGramNative(x, 1, 2, 2);
    else if (kernel === 'paired_cosine') await pairedCosineNative(x, x, 2, 2);
    else await nearestCosineNeighbours(x, 2, 2);
  }
  return performance.now() - started;
}
