import assert from 'node:assert/strict';
import { Rng } from '../../core/rng.js';
import { createTokenSet, type Reduction, type TokenSet, type TokenSource } from '../../core/tokenset.js';

/** A TokenSet from explicit rows (one source, square grid when n is a square, else 1×n). */
export function tokensFromRows(rows: number[][], extra: { score?: number[]; size?: number[] } = {}): TokenSet {
  const d = rows[0]!.length;
  const init: Parameters<typeof createTokenSet>[0] = { data: Float32Array.from(rows.flat()), n: rows.length, d };
  if (extra.score) init.score = Float32Array.from(extra.score);
  if (extra.size) init.size = Float64Array.from(extra.size);
  return createTokenSet(init);
}

/** n seeded random tokens in [-1, 1)^d, optionally with random scores. */
export function randomTokens(n: number, d: number, seed: number, withScore = false): TokenSet {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: n * d }, () => rng.float() * 2 - 1);
  const init: Parameters<typeof createTokenSet>[0] = { data, n, d };
  if (withScore) init.score = Float32Array.from({ length: n }, () => rng.float());
  return createTokenSet(init);
}

export interface BundleSpec {
  imageWidth: number;
  imageHeight: number;
  gridRows: number;
  gridCols: number;
  patch: number;
  d: number;
  /** Features (tiles × T × d); random when omitted. */
  data?: Float32Array;
  /** Scores for the thumbnail then each crop (tiles × T); none when omitted. */
  score?: Float32Array;
  seed?: number;
}

/** An AnyRes TokenSet laid out as core/bundle.ts does: thumbnail, then crops row-major. */
export function anyresTokens(spec: BundleSpec): TokenSet {
  const T = spec.patch * spec.patch;
  const C = spec.gridRows * spec.gridCols;
  const n = T * (C + 1);
  const rng = new Rng(spec.seed ?? 1);
  const data = spec.data ?? Float32Array.from({ length: n * spec.d }, () => rng.float() * 2 - 1);
  const sources: TokenSource[] = [{ kind: 'thumbnail', index: 0, rows: spec.patch, cols: spec.patch }];
  for (let c = 0; c < C; c++) sources.push({ kind: 'crop', index: c, rows: spec.patch, cols: spec.patch });
  const source = new Int32Array(n);
  for (let t = 0; t <= C; t++) source.fill(t, t * T, (t + 1) * T);
  const init: Parameters<typeof createTokenSet>[0] = {
    data,
    n,
    d: spec.d,
    sources,
    source,
    anyres: {
      gridRows: spec.gridRows,
      gridCols: spec.gridCols,
      imageWidth: spec.imageWidth,
      imageHeight: spec.imageHeight,
      patchRows: spec.patch,
      patchCols: spec.patch,
    },
  };
  if (spec.score) init.score = spec.score;
  return createTokenSet(init);
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tolerance,
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (±${tolerance})`,
    );
  }
}

/**
 * Merge invariants: sizes sum to the input's; origins partition the input;
 * assign[i] is the output whose origin holds i; every output feature is the
 * size-weighted mean of its origins' ORIGINAL features (when `weightedMean`).
 */
export function checkMergeInvariants(input: TokenSet, result: Reduction, weightedMean = true): void {
  const out = result.tokens;
  const assign = result.assign!;
  assert.equal(assign.length, input.n);
  const totalIn = input.size.reduce((a, b) => a + b, 0);
  const totalOut = out.size.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(totalIn - totalOut) < 1e-9, `sizes sum to ${totalOut}, expected ${totalIn}`);
  const seen = new Int32Array(input.n).fill(-1);
  for (let o = 0; o < out.n; o++) {
    for (const i of out.origin[o]!) {
      assert.equal(seen[i], -1, `input ${i} appears in two outputs`);
      seen[i] = o;
    }
  }
  for (let i = 0; i < input.n; i++)
    assert.equal(seen[i], assign[i], `input ${i}: origin says output ${seen[i]}, assign says ${assign[i]}`);
  if (!weightedMean) return;
  const { d } = input;
  for (let o = 0; o < out.n; o++) {
    const expected = new Float64Array(d);
    let weight = 0;
    for (const i of out.origin[o]!) {
      weight += input.size[i]!;
      for (let c = 0; c < d; c++) expected[c]! += input.size[i]! * input.data[i * d + c]!;
    }
    assert.ok(Math.abs(out.size[o]! - weight) < 1e-9, `output ${o} size`);
    for (let c = 0; c < d; c++) {
      const e = expected[c]! / weight;
      assert.ok(
        Math.abs(out.data[o * d + c]! - e) < 1e-5,
        `output ${o} dim ${c}: got ${out.data[o * d + c]}, expected ${e}`,
      );
    }
  }
}

/** Selection invariants: exactly `budget` distinct in-range indices, rows and metadata copied. */
export function checkSelection(input: TokenSet, result: Reduction, budget: number): void {
  const keep = result.keep!;
  assert.equal(keep.length, budget);
  assert.equal(new Set(keep).size, budget, 'kept indices are distinct');
  assert.equal(result.tokens.n, budget);
  const { d } = input;
  keep.forEach((i, j) => {
    assert.ok(i >= 0 && i < input.n);
    assert.deepEqual(result.tokens.data.subarray(j * d, (j + 1) * d), input.data.subarray(i * d, (i + 1) * d));
    assert.equal(result.tokens.row[j], input.row[i]);
    assert.equal(result.tokens.col[j], input.col[i]);
    assert.equal(result.tokens.source[j], input.source[i]);
    assert.deepEqual(result.tokens.origin[j], input.origin[i]);
    assert.equal(result.tokens.size[j], input.size[i]);
  });
}

/** A video token set [frames, perFrame, d] laid out as a 3-D .npy loads (frame sources, raster grids). */
export function videoTokens(frames: number[][][], score?: number[]): TokenSet {
  const perFrame = frames[0]!.length;
  const d = frames[0]![0]!.length;
  const side = Math.round(Math.sqrt(perFrame));
  const [rows, cols] = side * side === perFrame ? [side, side] : [1, perFrame];
  const sources: TokenSource[] = frames.map((_, f) => ({ kind: 'frame', index: f, rows, cols, time: f / 2 }));
  const source = new Int32Array(frames.length * perFrame);
  frames.forEach((_, f) => source.fill(f, f * perFrame, (f + 1) * perFrame));
  return createTokenSet({
    data: Float32Array.from(frames.flat(2)),
    n: frames.length * perFrame,
    d,
    sources,
    source,
    ...(score ? { score: Float32Array.from(score) } : {}),
  });
}
