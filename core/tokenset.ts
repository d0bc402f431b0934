import { InputError, ShapeError, UsageError } from './errors.js';
import { checkInteger, checkNumber } from './validate.js';

/** Where a group of tokens came from. */
export type SourceKind = 'image' | 'thumbnail' | 'crop' | 'frame' | 'page';

/**
 * One tile / frame / image that tokens come from. Tokens refer to it by
 * position in `TokenSet.sources`.
 */
export interface TokenSource {
  kind: SourceKind;
  /** Index among sources of the same kind (crop 0, crop 1, frame 7, …). */
  index: number;
  /** Patch grid of this source (e.g. 24×24 for CLIP ViT-L/14-336). */
  rows: number;
  cols: number;
  /** Frame timestamp in seconds, for video. */
  time?: number;
  /** The encoder's CLS token vector for this source, when it has one (length d). */
  cls?: Float32Array;
}

/** AnyRes facts a bundle carries (core/bundle.ts). */
export interface AnyResInfo {
  /** Crop grid rows × cols (e.g. 2×2 for 672×672). */
  gridRows: number;
  gridCols: number;
  /** Original image size in pixels. */
  imageWidth: number;
  imageHeight: number;
  /** Patch grid of each tile (24×24 for CLIP-L/336). */
  patchRows: number;
  patchCols: number;
}

/**
 * n tokens of dimension d, row-major, with the per-token metadata reductions
 * must carry so any output token can be traced back to pixels.
 */
export interface TokenSet {
  n: number;
  d: number;
  /** n*d features, row-major. */
  data: Float32Array;
  /** Index into `sources` per token. */
  source: Int32Array;
  /** Grid row / col within the token's source (for merged tokens: of its representative). */
  row: Int32Array;
  col: Int32Array;
  /** How many original tokens each token stands for (1 before merging). */
  size: Float64Array;
  /** Original token indices each token covers (sorted ascending). */
  origin: Int32Array[];
  /** Optional per-token importance (e.g. pre-softmax CLS attention). */
  score?: Float32Array;
  /**
   * Optional 3-D position per token, row-major n×3: (t, h, w) in merged-grid
   * units (Qwen M-RoPE; LLaVA-family encoders: t = frame index, h/w = grid
   * cell in the source). A selected token keeps its position; a merged token
   * takes its representative's (see mergeTokens).
   */
  positions?: Int32Array;
  /**
   * Optional per-token extra feature tensors by name (e.g. Qwen3-VL DeepStack
   * `deepstack_0..2`), each n×d_k row-major with d_k = length / n. Carried like
   * `data`: selected rows kept, merged rows combined by the method's rule
   * (size-weighted mean unless the method names another).
   */
  extra?: Record<string, Float32Array>;
  sources: TokenSource[];
  anyres?: AnyResInfo;
  /** Free-form string metadata carried to output files. */
  meta: Record<string, string>;
}

/** A reducer's result. */
export interface Reduction {
  tokens: TokenSet;
  /** Selection methods: input indices kept, in output order. */
  keep?: Int32Array;
  /** Merge methods: for each input token, the output token it went into. */
  assign?: Int32Array;
  /**
   * Merge methods: per output token, the input token whose position, source
   * and score it took (the method's representative rule, docs/methods.md).
   * Absent: mergeTokens' default, the member with the smallest origin index.
   */
  representative?: Int32Array;
  stats: Record<string, unknown>;
}

export interface TokenSetInit {
  data: Float32Array;
  n: number;
  d: number;
  sources?: TokenSource[];
  source?: Int32Array;
  row?: Int32Array;
  col?: Int32Array;
  size?: Float64Array;
  origin?: Int32Array[];
  score?: Float32Array;
  positions?: Int32Array;
  extra?: Record<string, Float32Array>;
  anyres?: AnyResInfo;
  meta?: Record<string, string>;
}

/**
 * Builds a TokenSet, filling defaults: one 'image' source with a square grid
 * when n is a perfect square (else 1×n), raster positions, size 1, origin [i].
 * Validates the result (see validateTokenSet).
 *
 * @example
 * const tokens = createTokenSet({ data: new Float32Array(576 * 1024), n: 576, d: 1024 });
 * tokens.sources[0]; // { kind: 'image', index: 0, rows: 24, cols: 24 }
 */
export function createTokenSet(init: TokenSetInit): TokenSet {
  const { n, d, data } = init;
  let sources = init.sources;
  if (!sources) {
    const side = Math.round(Math.sqrt(n));
    sources =
      side * side === n
        ? [{ kind: 'image', index: 0, rows: side, cols: side }]
        : [{ kind: 'image', index: 0, rows: 1, cols: n }];
  }
  const source = init.source ?? new Int32Array(n);
  let row = init.row;
  let col = init.col;
  if (!row || !col) {
    row = new Int32Array(n);
    col = new Int32Array(n);
    const offsets = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const s = source[i]!;
      const local = offsets.get(s) ?? 0;
      offsets.set(s, local + 1);
      const cols = sources[s]?.cols ?? n;
      row[i] = Math.floor(local / Math.max(1, cols));
      col[i] = local % Math.max(1, cols);
    }
  }
  const size = init.size ?? new Float64Array(n).fill(1);
  const origin = init.origin ?? Array.from({ length: n }, (_, i) => Int32Array.of(i));
  const tokens: TokenSet = { n, d, data, source, row, col, size, origin, sources, meta: init.meta ?? {} };
  if (init.score) tokens.score = init.score;
  if (init.positions) tokens.positions = init.positions;
  if (init.extra) tokens.extra = init.extra;
  if (init.anyres) tokens.anyres = init.anyres;
  validateTokenSet(tokens);
  return tokens;
}

/**
 * The origins of n tokens that are each their own origin ([0], [1], …)
 * without n small arrays: a read-only array whose element i is a fresh
 * `Int32Array.of(i)` made when read. For the metadata skeleton of a long
 * video read in blocks (2 M tokens would otherwise hold ~200 MB of one-value
 * arrays); reading an element costs an allocation, so hot loops over small
 * token sets keep plain arrays.
 *
 * @example
 * const origin = identityOrigins(3);
 * origin.length; // 3
 * origin[2];     // Int32Array [2]
 */
export function identityOrigins(n: number): Int32Array[] {
  const indexOf = (key: string | symbol): number => {
    if (typeof key !== 'string' || key.length === 0 || key.length > 16) return -1;
    const code = key.charCodeAt(0);
    if (code < 48 || code > 57) return -1;
    const i = Number(key);
    return Number.isInteger(i) && i < n && String(i) === key ? i : -1;
  };
  const readOnly = () => {
    throw new TypeError('identityOrigins: the origins are read-only');
  };
  return new Proxy([] as Int32Array[], {
    get(target, key, receiver) {
      if (key === 'length') return n;
      const i = indexOf(key);
      return i >= 0 ? Int32Array.of(i) : Reflect.get(target, key, receiver);
    },
    has: (target, key) => indexOf(key) >= 0 || Reflect.has(target, key),
    set: readOnly,
    defineProperty: readOnly,
    deleteProperty: readOnly,
  });
}

/**
 * Checks shapes, metadata lengths and that every feature is finite.
 * Throws ShapeError / InputError naming the field, expected and got.
 */
export function validateTokenSet(tokens: TokenSet, where = 'tokens'): void {
  const { n, d } = tokens;
  if (!Number.isInteger(n) || n < 0) throw new ShapeError(`${where}: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(d) || d < 1) throw new ShapeError(`${where}: d must be a positive integer, got ${d}`);
  if (tokens.data.length !== n * d)
    throw new ShapeError(`${where}: data has ${tokens.data.length} values, expected n*d = ${n}*${d} = ${n * d}`);
  const perToken: Array<[string, { length: number } | undefined]> = [
    ['source', tokens.source],
    ['row', tokens.row],
    ['col', tokens.col],
    ['size', tokens.size],
    ['origin', tokens.origin],
    ['score', tokens.score],
  ];
  for (const [name, array] of perToken) {
    if (array && array.length !== n)
      throw new ShapeError(`${where}: ${name} has length ${array.length}, expected n = ${n}`);
  }
  for (let i = 0; i < n; i++) {
    const s = tokens.source[i]!;
    if (s < 0 || s >= tokens.sources.length)
      throw new ShapeError(
        `${where}: token ${i} refers to source ${s}, but only ${tokens.sources.length} sources exist`,
      );
  }
  for (const [s, src] of tokens.sources.entries()) {
    if (src.cls && src.cls.length !== d)
      throw new ShapeError(`${where}: sources[${s}].cls has length ${src.cls.length}, expected d = ${d}`);
  }
  for (let i = 0; i < n; i++) {
    const size = tokens.size[i]!;
    // A size counts original tokens: a zero or negative weight would divide by zero or flip merged means.
    if (!(Number.isFinite(size) && size > 0))
      throw new InputError(
        `${where}: size[${i}] = ${size}, expected a finite count > 0 (how many original tokens token ${i} stands for)`,
        'E_SIZE',
      );
  }
  assertFinite(tokens.data, `${where}.data`, d);
  if (tokens.score) assertFinite(tokens.score, `${where}.score`, 1);
  if (tokens.positions) {
    const p = tokens.positions;
    if (p.length !== 3 * n)
      throw new ShapeError(`${where}: positions has ${p.length} values, expected 3·n = ${3 * n} ((t, h, w) per token)`);
    for (let i = 0; i < p.length; i++) {
      if (p[i]! < 0)
        throw new ShapeError(
          `${where}: positions of token ${Math.floor(i / 3)} has ${'thw'[i % 3]} = ${p[i]}, expected ≥ 0`,
        );
    }
  }
  for (const [name, values] of Object.entries(tokens.extra ?? {})) {
    const width = n > 0 ? values.length / n : 0;
    if (n > 0 ? !(Number.isInteger(width) && width >= 1) : values.length !== 0) {
      throw new ShapeError(
        `${where}: extra.${name} has ${values.length} values, expected n·d_k for n = ${n} tokens and some width d_k ≥ 1`,
      );
    }
    assertFinite(values, `${where}.extra.${name}`, Math.max(1, width));
  }
}

/** Width d_k of the extra tensor `name` (values per token). */
export function extraWidth(tokens: TokenSet, name: string): number {
  const values = tokens.extra?.[name];
  if (!values)
    throw new ShapeError(
      `extra.${name}: no such extra tensor (have: ${Object.keys(tokens.extra ?? {}).join(', ') || 'none'})`,
    );
  return tokens.n > 0 ? values.length / tokens.n : 0;
}

/**
 * LLaVA-family positions: (t, h, w) = (frame index for 'frame' sources else
 * 0, grid row, grid col) per token, n×3 row-major.
 *
 * @example
 * gridPositions(createTokenSet({ data: new Float32Array(4), n: 4, d: 1 })); // [0,0,0, 0,0,1, 0,1,0, 0,1,1]
 */
export function gridPositions(tokens: Pick<TokenSet, 'n' | 'source' | 'row' | 'col' | 'sources'>): Int32Array {
  const positions = new Int32Array(3 * tokens.n);
  for (let i = 0; i < tokens.n; i++) {
    const src = tokens.sources[tokens.source[i]!]!;
    positions[3 * i] = src.kind === 'frame' ? src.index : 0;
    positions[3 * i + 1] = tokens.row[i]!;
    positions[3 * i + 2] = tokens.col[i]!;
  }
  return positions;
}

/** Throws InputError at the first NaN/Inf, naming the token and dimension. */
export function assertFinite(values: ArrayLike<number>, where: string, rowLength = 1): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      const token = Math.floor(i / rowLength);
      const dim = i % rowLength;
      throw new InputError(
        `${where}: non-finite value ${v} at token ${token}${rowLength > 1 ? `, dimension ${dim}` : ''} (features must be finite numbers)`,
        'E_NONFINITE',
      );
    }
  }
}

/** Row i of the features, as a view (no copy). */
export function tokenRow(tokens: TokenSet, i: number): Float32Array {
  return tokens.data.subarray(i * tokens.d, (i + 1) * tokens.d);
}

/**
 * The output TokenSet of a selection: rows `keptIndices` of the input, in that
 * order, with all per-token metadata carried over.
 */
export function selectTokens(tokens: TokenSet, keptIndices: ArrayLike<number>): TokenSet {
  const k = keptIndices.length;
  const { d } = tokens;
  const data = new Float32Array(k * d);
  const source = new Int32Array(k);
  const row = new Int32Array(k);
  const col = new Int32Array(k);
  const size = new Float64Array(k);
  const origin: Int32Array[] = new Array(k);
  const score = tokens.score ? new Float32Array(k) : undefined;
  const positions = tokens.positions ? new Int32Array(3 * k) : undefined;
  for (let j = 0; j < k; j++) {
    const i = keptIndices[j]!;
    if (!(i >= 0 && i < tokens.n))
      throw new ShapeError(`selectTokens: index ${i} at position ${j} is outside [0, ${tokens.n})`);
    data.set(tokens.data.subarray(i * d, (i + 1) * d), j * d);
    if (positions) positions.set(tokens.positions!.subarray(3 * i, 3 * i + 3), 3 * j);
    source[j] = tokens.source[i]!;
    row[j] = tokens.row[i]!;
    col[j] = tokens.col[i]!;
    size[j] = tokens.size[i]!;
    origin[j] = tokens.origin[i]!;
    if (score) score[j] = tokens.score![i]!;
  }
  const out: TokenSet = {
    n: k,
    d,
    data,
    source,
    row,
    col,
    size,
    origin,
    sources: tokens.sources,
    meta: { ...tokens.meta },
  };
  if (score) out.score = score;
  if (positions) out.positions = positions;
  if (tokens.extra) out.extra = mapExtra(tokens, (values, width) => selectRows(values, width, keptIndices));
  if (tokens.anyres) out.anyres = tokens.anyres;
  return out;
}

/** Applies `fn` to every extra tensor (with its width), keeping the names. */
function mapExtra(
  tokens: TokenSet,
  fn: (values: Float32Array, width: number, name: string) => Float32Array,
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, values] of Object.entries(tokens.extra ?? {}))
    out[name] = fn(values, tokens.n > 0 ? values.length / tokens.n : 0, name);
  return out;
}

function selectRows(values: Float32Array, width: number, indices: ArrayLike<number>): Float32Array {
  const out = new Float32Array(indices.length * width);
  for (let j = 0; j < indices.length; j++)
    out.set(values.subarray(indices[j]! * width, (indices[j]! + 1) * width), j * width);
  return out;
}

/**
 * Size-weighted mean of the rows of an n×width matrix per merge output
 * (members grouped by groupByAssignment), accumulated in float64 one member
 * at a time in member order: (((0 + w₁x₁) + w₂x₂) + w₃x₃) … / Σw. Groups of
 * up to four members (most merges: ToMe's two rounds give ≤ 4) are summed and
 * divided in one pass straight into the output; larger ones start with that
 * sum of four in acc and add three members per pass. Either way the same
 * additions in the same order, so the bits never depend on the grouping.
 */
function weightedMeanRows(
  values: Float32Array,
  width: number,
  size: Float64Array,
  start: Int32Array,
  members: Int32Array,
  outputCount: number,
): Float32Array {
  const out = new Float32Array(outputCount * width);
  const acc = new Float64Array(width);
  for (let o = 0; o < outputCount; o++) {
    const first = start[o]!;
    const end = start[o + 1]!;
    const count = end - first; // ≥ 1: groupByAssignment refuses empty outputs
    const to = o * width;
    const b0 = members[first]! * width;
    const w0 = size[members[first]!]!;
    if (count === 1) {
      for (let c = 0; c < width; c++) out[to + c] = (0 + w0 * values[b0 + c]!) / w0;
      continue;
    }
    const b1 = members[first + 1]! * width;
    const w1 = size[members[first + 1]!]!;
    if (count === 2) {
      const total = 0 + w0 + w1;
      for (let c = 0; c < width; c++) out[to + c] = (0 + w0 * values[b0 + c]! + w1 * values[b1 + c]!) / total;
      continue;
    }
    const b2 = members[first + 2]! * width;
    const w2 = size[members[first + 2]!]!;
    if (count === 3) {
      const total = 0 + w0 + w1 + w2;
      for (let c = 0; c < width; c++)
        out[to + c] = (0 + w0 * values[b0 + c]! + w1 * values[b1 + c]! + w2 * values[b2 + c]!) / total;
      continue;
    }
    const b3 = members[first + 3]! * width;
    const w3 = size[members[first + 3]!]!;
    let total = 0 + w0 + w1 + w2 + w3;
    if (count === 4) {
      for (let c = 0; c < width; c++)
        out[to + c] =
          (0 + w0 * values[b0 + c]! + w1 * values[b1 + c]! + w2 * values[b2 + c]! + w3 * values[b3 + c]!) / total;
      continue;
    }
    for (let c = 0; c < width; c++)
      acc[c] = 0 + w0 * values[b0 + c]! + w1 * values[b1 + c]! + w2 * values[b2 + c]! + w3 * values[b3 + c]!;
    let p = first + 4;
    for (; p + 2 < end; p += 3) {
      const wa = size[members[p]!]!;
      const wb = size[members[p + 1]!]!;
      const wc = size[members[p + 2]!]!;
      const ba = members[p]! * width;
      const bb = members[p + 1]! * width;
      const bc = members[p + 2]! * width;
      total += wa;
      total += wb;
      total += wc;
      for (let c = 0; c < width; c++)
        acc[c] = acc[c]! + wa * values[ba + c]! + wb * values[bb + c]! + wc * values[bc + c]!;
    }
    for (; p < end; p++) {
      const w = size[members[p]!]!;
      const base = members[p]! * width;
      total += w;
      for (let c = 0; c < width; c++) acc[c]! += w * values[base + c]!;
    }
    for (let c = 0; c < width; c++) out[to + c] = acc[c]! / total;
  }
  return out;
}

/**
 * Members of each output of a merge, grouped with a counting sort: the members
 * of output o are `members[start[o] .. start[o + 1])`, in input order.
 * Throws ShapeError for targets outside [0, outputCount) or empty outputs.
 *
 * @example
 * groupByAssignment(Int32Array.of(1, 0, 1), 2); // { start: [0, 1, 3], members: [1, 0, 2] }
 */
export function groupByAssignment(
  assign: Int32Array,
  outputCount: number,
  where = 'groupByAssignment',
): { start: Int32Array; members: Int32Array } {
  const n = assign.length;
  const start = new Int32Array(outputCount + 1);
  for (let i = 0; i < n; i++) {
    const a = assign[i]!;
    if (!(a >= 0 && a < outputCount))
      throw new ShapeError(`${where}: assign[${i}] = ${a} is outside [0, ${outputCount})`);
    start[a + 1]!++;
  }
  for (let o = 0; o < outputCount; o++) {
    if (start[o + 1] === 0) throw new ShapeError(`${where}: output token ${o} has no members`);
    start[o + 1]! += start[o]!;
  }
  const members = new Int32Array(n);
  const fill = start.slice(0, outputCount);
  for (let i = 0; i < n; i++) members[fill[assign[i]!]!++] = i;
  return { start, members };
}

export interface MergeOptions {
  /** Output features, precomputed ([outputCount, d]); default: size-weighted means. */
  features?: Float32Array;
  /** Input index whose position, source and score each output takes; default: smallest origin. */
  representative?: Int32Array;
  /** Score of an output = plain mean of its members' scores (pooling) instead of the representative's. */
  meanScore?: boolean;
  /**
   * The method's feature rule for `extra` tensors: given an input matrix
   * n×width, the outputCount×width result. Default: size-weighted means (the
   * rule `data` gets without `features`). Methods whose `features` follow
   * another rule pass the same rule here so extra tensors stay consistent.
   */
  combine?: (values: Float32Array, width: number, name: string) => Float32Array;
}

/**
 * The output TokenSet of a merge: `assign[i]` is the output token of input i
 * (0..outputCount-1, every output non-empty). Features are the size-weighted
 * mean of members, accumulated in float64, unless `features` is given; size is
 * the sum of member sizes; origin is the sorted union; position, source and
 * score come from the member with the smallest origin index (the
 * representative), unless `representative` names one per output; positions
 * (when present) come from the representative too, and `extra` tensors are
 * combined by `combine` (default size-weighted means).
 * Members are grouped with a counting sort (no per-token JS arrays), so this
 * stays fast for tens of thousands of tokens.
 *
 * @example
 * const merged = mergeTokens(tokens, Int32Array.of(0, 0, 1), 2); // tokens 0 and 1 → output 0
 */
export function mergeTokens(
  tokens: TokenSet,
  assign: Int32Array,
  outputCount: number,
  options: MergeOptions = {},
): TokenSet {
  const { n, d } = tokens;
  if (assign.length !== n) throw new ShapeError(`mergeTokens: assign has length ${assign.length}, expected ${n}`);
  const { start, members } = groupByAssignment(assign, outputCount, 'mergeTokens');
  if (options.features && options.features.length !== outputCount * d) {
    throw new ShapeError(`mergeTokens: features have ${options.features.length} values, expected ${outputCount}*${d}`);
  }

  const x = tokens.data;
  const data = options.features ?? weightedMeanRows(x, d, tokens.size, start, members, outputCount);
  const source = new Int32Array(outputCount);
  const row = new Int32Array(outputCount);
  const col = new Int32Array(outputCount);
  const size = new Float64Array(outputCount);
  const origin: Int32Array[] = new Array(outputCount);
  const score = tokens.score ? new Float32Array(outputCount) : undefined;
  const positions = tokens.positions ? new Int32Array(3 * outputCount) : undefined;
  if (options.representative && options.representative.length !== outputCount) {
    throw new ShapeError(
      `mergeTokens: representative has length ${options.representative.length}, expected ${outputCount} (one per output)`,
    );
  }
  for (let o = 0; o < outputCount; o++) {
    const from = start[o]!;
    const to = start[o + 1]!;
    let total = 0;
    let rep = members[from]!;
    let originLength = 0;
    for (let p = from; p < to; p++) {
      const i = members[p]!;
      const w = tokens.size[i]!;
      total += w;
      originLength += tokens.origin[i]!.length;
      if (tokens.origin[i]![0]! < tokens.origin[rep]![0]!) rep = i;
    }
    if (options.representative) {
      rep = options.representative[o]!;
      if (!(rep >= 0 && rep < n && assign[rep] === o))
        throw new ShapeError(`mergeTokens: representative[${o}] = ${rep} is not a member of output ${o}`);
    }
    if (positions) positions.set(tokens.positions!.subarray(3 * rep, 3 * rep + 3), 3 * o);
    size[o] = total;
    source[o] = tokens.source[rep]!;
    row[o] = tokens.row[rep]!;
    col[o] = tokens.col[rep]!;
    if (score) {
      if (options.meanScore) {
        let scoreSum = 0;
        for (let p = from; p < to; p++) scoreSum += tokens.score![members[p]!]!;
        score[o] = scoreSum / (to - from);
      } else {
        score[o] = tokens.score![rep]!;
      }
    }
    if (to - from === 1) {
      origin[o] = tokens.origin[members[from]!]!;
    } else {
      const merged = new Int32Array(originLength);
      let q = 0;
      let ascending = true;
      for (let p = from; p < to; p++) {
        const list = tokens.origin[members[p]!]!;
        if (q > 0 && list[0]! < merged[q - 1]!) ascending = false;
        merged.set(list, q);
        q += list.length;
      }
      // Member origins are each sorted; the concatenation needs sorting only when they interleave.
      origin[o] = ascending ? merged : merged.sort();
    }
  }
  const out: TokenSet = {
    n: outputCount,
    d,
    data,
    source,
    row,
    col,
    size,
    origin,
    sources: tokens.sources,
    meta: { ...tokens.meta },
  };
  if (score) out.score = score;
  if (positions) out.positions = positions;
  if (tokens.extra) {
    out.extra = mapExtra(tokens, (values, width, name) => {
      const merged = options.combine
        ? options.combine(values, width, name)
        : weightedMeanRows(values, width, tokens.size, start, members, outputCount);
      if (merged.length !== outputCount * width)
        throw new ShapeError(
          `mergeTokens: combined extra.${name} has ${merged.length} values, expected ${outputCount}·${width}`,
        );
      return merged;
    });
  }
  if (tokens.anyres) out.anyres = tokens.anyres;
  return out;
}

/**
 * Concatenates token sets (e.g. tiles of a bundle) into one, re-indexing
 * sources and origins so origin indices address the concatenation.
 */
export function concatTokenSets(parts: TokenSet[]): TokenSet {
  if (parts.length === 0) throw new ShapeError('concatTokenSets: no token sets given');
  const d = parts[0]!.d;
  let n = 0;
  for (const [p, part] of parts.entries()) {
    if (part.d !== d) throw new ShapeError(`concatTokenSets: part ${p} has d = ${part.d}, expected ${d} (as part 0)`);
    n += part.n;
  }
  const data = new Float32Array(n * d);
  const source = new Int32Array(n);
  const row = new Int32Array(n);
  const col = new Int32Array(n);
  const size = new Float64Array(n);
  const origin: Int32Array[] = new Array(n);
  const withScore = parts.every((p) => p.score);
  const score = withScore ? new Float32Array(n) : undefined;
  const sources: TokenSource[] = [];
  let offset = 0;
  let originOffset = 0;
  for (const part of parts) {
    data.set(part.data, offset * d);
    for (let i = 0; i < part.n; i++) {
      source[offset + i] = part.source[i]! + sources.length;
      row[offset + i] = part.row[i]!;
      col[offset + i] = part.col[i]!;
      size[offset + i] = part.size[i]!;
      origin[offset + i] = part.origin[i]!.map((o) => o + originOffset);
      if (score) score[offset + i] = part.score![i]!;
    }
    let maxOrigin = -1;
    for (let i = 0; i < part.n; i++) for (const o of part.origin[i]!) if (o > maxOrigin) maxOrigin = o;
    sources.push(...part.sources);
    offset += part.n;
    originOffset += maxOrigin + 1;
  }
  const out: TokenSet = { n, d, data, source, row, col, size, origin, sources, meta: { ...parts[0]!.meta } };
  if (score) out.score = score;
  const positions = concatPositions(parts);
  if (positions) out.positions = positions;
  const extra = concatExtra(parts);
  if (extra) out.extra = extra;
  if (parts[0]!.anyres) out.anyres = parts[0]!.anyres;
  return out;
}

/** Positions of a concatenation: all parts have them or none (a mix is a ShapeError naming the part). */
function concatPositions(parts: TokenSet[]): Int32Array | undefined {
  const withPositions = parts.filter((p) => p.positions).length;
  if (withPositions === 0) return undefined;
  if (withPositions !== parts.length) {
    const missing = parts.findIndex((p) => !p.positions);
    throw new ShapeError(
      `concatTokenSets: part ${missing} has no positions but other parts do (give positions for every part or none)`,
    );
  }
  const out = new Int32Array(3 * parts.reduce((s, p) => s + p.n, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part.positions!, offset);
    offset += part.positions!.length;
  }
  return out;
}

/** Extra tensors of a concatenation: every part has the same names and widths (else a ShapeError naming the tensor). */
function concatExtra(parts: TokenSet[]): Record<string, Float32Array> | undefined {
  const names = Object.keys(parts[0]!.extra ?? {}).sort();
  for (const [p, part] of parts.entries()) {
    const own = Object.keys(part.extra ?? {}).sort();
    if (own.join('\u0000') !== names.join('\u0000')) {
      throw new ShapeError(
        `concatTokenSets: part ${p} has extra tensors [${own.join(', ')}], expected [${names.join(', ')}] like part 0`,
      );
    }
  }
  if (names.length === 0) return undefined;
  const out: Record<string, Float32Array> = {};
  for (const name of names) {
    const widths = parts.filter((p) => p.n > 0).map((p) => p.extra![name]!.length / p.n);
    const width = widths[0] ?? 0;
    const bad = widths.findIndex((w) => w !== width);
    if (bad >= 0)
      throw new ShapeError(
        `concatTokenSets: extra.${name} has width ${widths[bad]} in a part, expected ${width} like the first`,
      );
    const values = new Float32Array(parts.reduce((s, p) => s + p.extra![name]!.length, 0));
    let offset = 0;
    for (const part of parts) {
      values.set(part.extra![name]!, offset);
      offset += part.extra![name]!.length;
    }
    out[name] = values;
  }
  return out;
}

/** Splits a token set into one TokenSet per source (tile), preserving order. */
export function splitBySource(tokens: TokenSet): { sourceIndex: number; indices: Int32Array; tokens: TokenSet }[] {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < tokens.n; i++) {
    const s = tokens.source[i]!;
    let g = groups.get(s);
    if (!g) groups.set(s, (g = []));
    g.push(i);
  }
  return [...groups.entries()].map(([sourceIndex, list]) => {
    const indices = Int32Array.from(list);
    return { sourceIndex, indices, tokens: selectTokens(tokens, indices) };
  });
}

/** Budget for a ratio: max(1, round(n·R)); validates ratio ∈ (0,1] and budget ∈ [1,n]. */
export function resolveBudget(
  n: number,
  spec: { ratio?: number; budget?: number },
  method: string,
): { budget: number; ratio: number } {
  if (n < 1) throw new InputError(`${method}: input has no tokens (n = 0); nothing to reduce`, 'E_EMPTY');
  if (spec.budget !== undefined) {
    const b = spec.budget;
    checkInteger(b, 'budget', { min: 1, where: method, code: 'E_RANGE' });
    if (b > n) throw new RangeUsage(`${method}: budget ${b} is larger than the number of input tokens n = ${n}`);
    return { budget: b, ratio: b / n };
  }
  if (spec.ratio !== undefined) {
    const r = spec.ratio;
    checkNumber(r, 'ratio', { gt: 0, max: 1, where: method, code: 'E_RANGE' });
    return { budget: Math.max(1, Math.round(n * r)), ratio: r };
  }
  throw new RangeUsage(`${method}: give either a ratio in (0, 1] or a budget`);
}

class RangeUsage extends UsageError {
  constructor(message: string) {
    super(message, 'E_RANGE');
  }
}
