import { ShapeError } from '../core/errors.js';
import type { TokenSet } from '../core/tokenset.js';

/**
 * The output TokenSet of a merge, as core's mergeTokens but built for large
 * inputs (no per-token JS arrays): output o is the size-weighted mean of the
 * input tokens with assign[i] = o, accumulated in float64; size is the sum;
 * origin the sorted union; position, source and score come from the member
 * with the smallest origin index.
 *
 * @example
 * const merged = sizeWeightedMerge(tokens, Int32Array.of(0, 0, 1), 2); // tokens 0 and 1 → one
 */
export function sizeWeightedMerge(tokens: TokenSet, assign: Int32Array, count: number): TokenSet {
  const { n, d } = tokens;
  if (assign.length !== n) throw new ShapeError(`sizeWeightedMerge: assign has length ${assign.length}, expected ${n}`);
  const start = new Int32Array(count + 1);
  for (let i = 0; i < n; i++) {
    const a = assign[i]!;
    if (!(a >= 0 && a < count)) throw new ShapeError(`sizeWeightedMerge: assign[${i}] = ${a} is outside [0, ${count})`);
    start[a + 1]!++;
  }
  for (let o = 0; o < count; o++) {
    if (start[o + 1] === 0) throw new ShapeError(`sizeWeightedMerge: output token ${o} has no members`);
    start[o + 1]! += start[o]!;
  }
  const members = new Int32Array(n);
  const fill = start.slice(0, count);
  for (let i = 0; i < n; i++) members[fill[assign[i]!]!++] = i;

  const x = tokens.data;
  const data = new Float32Array(count * d);
  const acc = new Float64Array(d);
  const source = new Int32Array(count);
  const row = new Int32Array(count);
  const col = new Int32Array(count);
  const size = new Float64Array(count);
  const origin: Int32Array[] = new Array(count);
  const score = tokens.score ? new Float32Array(count) : undefined;
  for (let o = 0; o < count; o++) {
    const from = start[o]!;
    const to = start[o + 1]!;
    acc.fill(0);
    let total = 0;
    let rep = members[from]!;
    let originLength = 0;
    for (let p = from; p < to; p++) {
      const i = members[p]!;
      const w = tokens.size[i]!;
      total += w;
      const base = i * d;
      for (let c = 0; c < d; c++) acc[c]! += w * x[base + c]!;
      originLength += tokens.origin[i]!.length;
      if (tokens.origin[i]![0]! < tokens.origin[rep]![0]!) rep = i;
    }
    const outBase = o * d;
    for (let c = 0; c < d; c++) data[outBase + c] = acc[c]! / total;
    size[o] = total;
    source[o] = tokens.source[rep]!;
    row[o] = tokens.row[rep]!;
    col[o] = tokens.col[rep]!;
    if (score) score[o] = tokens.score![rep]!;
    if (to - from === 1) {
      origin[o] = tokens.origin[members[from]!]!;
    } else {
      const merged = new Int32Array(originLength);
      let q = 0;
      for (let p = from; p < to; p++) {
        const list = tokens.origin[members[p]!]!;
        merged.set(list, q);
        q += list.length;
      }
      origin[o] = merged.sort();
    }
  }
  const out: TokenSet = { n: count, d, data, source, row, col, size, origin, sources: tokens.sources, meta: { ...tokens.meta } };
  if (score) out.score = score;
  if (tokens.anyres) out.anyres = tokens.anyres;
  return out;
}
