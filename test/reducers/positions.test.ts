import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTokenSet, type Reduction, type TokenSet } from '../../core/tokenset.js';
import { reducers } from '../../reducers/index.js';
import { temporalMerge } from '../../reducers/temporal-merge.js';
import { anyresTokens, assertClose } from './fixtures.js';

/**
 * An AnyRes set (thumbnail + 1×2 crops of 4×4, d = 6) with CLS scores,
 * distinct positions per token and two extra tensors: `copy` equals the
 * features (so it must come out equal to the output features: extra is
 * carried exactly like data) and `wide` of width 3.
 */
function positioned(seed: number): TokenSet {
  const base = anyresTokens({
    imageWidth: 64,
    imageHeight: 32,
    gridRows: 1,
    gridCols: 2,
    patch: 4,
    d: 6,
    seed,
    score: Float32Array.from({ length: 48 }, (_, i) => Math.sin(i * 1.7 + seed)),
  });
  base.positions = Int32Array.from({ length: 3 * base.n }, (_, k) =>
    k % 3 === 0 ? Math.floor(k / 3) % 5 : k % 3 === 1 ? Math.floor(k / 3) : 1000 + Math.floor(k / 3),
  );
  base.extra = { copy: base.data.slice(), wide: Float32Array.from({ length: 3 * base.n }, (_, k) => Math.cos(k)) };
  return base;
}

/** A video token set (4 frames × 3×3, d = 6, frame sources) with scores, (t, h, w) positions and the same extra tensors, for the scope-'video' reducers. */
function positionedVideo(seed: number): TokenSet {
  const frames = 4;
  const perFrame = 9;
  const n = frames * perFrame;
  const data = Float32Array.from({ length: n * 6 }, (_, k) => Math.sin(k * 0.7 + seed));
  const tokens = createTokenSet({
    data,
    n,
    d: 6,
    sources: Array.from({ length: frames }, (_, f) => ({
      kind: 'frame' as const,
      index: f,
      rows: 3,
      cols: 3,
      time: f,
    })),
    source: Int32Array.from({ length: n }, (_, i) => Math.floor(i / perFrame)),
    score: Float32Array.from({ length: n }, (_, i) => Math.cos(i * 1.3 + seed)),
    extra: { copy: data.slice(), wide: Float32Array.from({ length: 3 * n }, (_, k) => Math.cos(k)) },
  });
  tokens.positions = Int32Array.from({ length: 3 * n }, (_, k) =>
    k % 3 === 0
      ? Math.floor(k / 3 / perFrame)
      : k % 3 === 1
        ? Math.floor((Math.floor(k / 3) % perFrame) / 3)
        : Math.floor(k / 3) % 3,
  );
  return tokens;
}

/** The input index each output's position must come from: `keep` for selections, else the named representative (default: smallest origin). */
function representativesOf(input: TokenSet, result: Reduction): Int32Array {
  if (!result.assign) return result.keep!;
  if (result.representative) return result.representative;
  const reps = new Int32Array(result.tokens.n).fill(-1);
  for (let i = 0; i < input.n; i++) {
    const o = result.assign[i]!;
    if (reps[o] === -1 || input.origin[i]![0]! < input.origin[reps[o]!]![0]!) reps[o] = i;
  }
  return reps;
}

function checkCarried(input: TokenSet, result: Reduction, what: string): void {
  const out = result.tokens;
  const reps = representativesOf(input, result);
  assert.equal(reps.length, out.n, `${what}: one representative per output`);
  for (let o = 0; o < out.n; o++) {
    const rep = reps[o]!;
    if (result.assign) assert.equal(result.assign[rep], o, `${what}: representative ${rep} of output ${o} is a member`);
    assert.deepEqual(
      Array.from(out.positions!.subarray(3 * o, 3 * o + 3)),
      Array.from(input.positions!.subarray(3 * rep, 3 * rep + 3)),
      `${what}: output ${o} position`,
    );
    assert.equal(out.source[o], input.source[rep], `${what}: output ${o} source`);
  }
  assertClose(out.extra!.copy!, out.data, 1e-5, `${what}: extra.copy follows the feature rule`);
  if (!input.extra!.wide) return;
  assert.equal(out.extra!.wide!.length, 3 * out.n, `${what}: extra.wide keeps width 3`);
  if (!result.assign) {
    result.keep!.forEach((i, j) =>
      assert.deepEqual(
        Array.from(out.extra!.wide!.subarray(3 * j, 3 * j + 3)),
        Array.from(input.extra!.wide!.subarray(3 * i, 3 * i + 3)),
      ),
    );
  }
}

test('every registered reducer carries positions (selections exact, merges from the named representative) and extra like data', async () => {
  for (const name of Object.keys(reducers)) {
    for (const ratio of [0.5, 0.25]) {
      const input = reducers[name]!.scope === 'video' ? positionedVideo(3) : positioned(3);
      const result = await reducers[name]!.run(input, { ratio, seed: 1 });
      checkCarried(input, result, `${name} R=${ratio}`);
    }
  }
});

test("representative rules: pool takes the cell's top-left token, cluster the member nearest the centroid, tome a destination", async () => {
  const input = positioned(5);
  const pooled = await reducers.pool!.run(input, { ratio: 0.25 });
  for (let o = 0; o < pooled.tokens.n; o++) {
    const members = Array.from(pooled.tokens.origin[o]!);
    const topLeft = members.reduce((a, b) =>
      input.row[b]! < input.row[a]! || (input.row[b] === input.row[a] && input.col[b]! < input.col[a]!) ? b : a,
    );
    assert.equal(pooled.representative![o], topLeft);
  }
  const clustered = await reducers.cluster!.run(input, { budget: 6, seed: 2 });
  const { d } = input;
  const unit = (i: number) => {
    const row = Array.from(input.data.subarray(i * d, (i + 1) * d));
    const norm = Math.hypot(...row);
    return row.map((v) => v / norm);
  };
  for (let o = 0; o < 6; o++) {
    const members = Array.from(clustered.tokens.origin[o]!);
    const centroid = new Array(d).fill(0);
    for (const i of members) unit(i).forEach((v, c) => (centroid[c] += v));
    const cos = (i: number) => unit(i).reduce((s, v, c) => s + v * centroid[c], 0);
    const best = members.reduce((a, b) => (cos(b) > cos(a) + 1e-9 ? b : a));
    assert.equal(clustered.representative![o], best, `cluster ${o}`);
  }
  const merged = await reducers.tome!.run(input, { budget: 20 });
  // Round 1 destinations are B tokens (odd positions); a token that stayed alone is its own representative.
  for (let o = 0; o < merged.tokens.n; o++) {
    const rep = merged.representative![o]!;
    if (merged.tokens.origin[o]!.length > 1)
      assert.equal(rep % 2, 1, `tome output ${o}: destination ${rep} is a B token of the first round`);
  }
});

test("temporal merge keeps the earlier frame's positions and averages extra like features", () => {
  const frames = 4;
  const perFrame = 4;
  const n = frames * perFrame;
  const d = 2;
  const data = Float32Array.from({ length: n * d }, (_, k) => Math.sin(k * 0.3));
  const tokens = createTokenSet({
    data,
    n,
    d,
    sources: Array.from({ length: frames }, (_, f) => ({
      kind: 'frame' as const,
      index: f,
      rows: 2,
      cols: 2,
      time: f,
    })),
    source: Int32Array.from({ length: n }, (_, i) => Math.floor(i / perFrame)),
    extra: { copy: data.slice() },
  });
  tokens.positions = Int32Array.from({ length: 3 * n }, (_, k) =>
    k % 3 === 0
      ? Math.floor(k / 3 / perFrame)
      : k % 3 === 1
        ? Math.floor((Math.floor(k / 3) % perFrame) / 2)
        : Math.floor(k / 3) % 2,
  );
  const result = temporalMerge(tokens, { frames: 2 });
  checkCarried(tokens, result, 'temporal merge');
  const groups = result.stats.groups as number[][];
  groups.forEach((group, g) => assert.equal(result.tokens.positions![3 * g * perFrame], group[0]));
});
