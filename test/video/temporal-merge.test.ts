import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTokenSet } from '../../core/tokenset.js';
import { framePatchSimilarity, mergeAdjacentFrames, temporalMerge } from '../../reducers/temporal-merge.js';

// Frames of P = 2 patches × d = 2.
const f0 = Float32Array.of(1, 0, 0, 1);
const f1 = Float32Array.of(1, 0, 0, 1);
const f2 = Float32Array.of(0, 1, 1, 0);
const f3 = Float32Array.of(1, 1, 1, 1);
const close = (a: ArrayLike<number>, b: number[]) =>
  Array.from(a).forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-6, `${Array.from(a)} vs ${b}`));

test('framePatchSimilarity is the mean per-patch cosine', () => {
  assert.equal(framePatchSimilarity(f0, f1, 2), 1);
  assert.equal(framePatchSimilarity(f1, f2, 2), 0);
  assert.ok(Math.abs(framePatchSimilarity(f2, f3, 2) - Math.SQRT1_2) < 1e-7);
  // One patch agrees, the other is orthogonal → 0.5; zero patches contribute 0.
  assert.equal(framePatchSimilarity(Float32Array.of(1, 0, 0, 1), Float32Array.of(1, 0, 1, 0), 2), 0.5);
  assert.equal(framePatchSimilarity(Float32Array.of(0, 0, 0, 1), Float32Array.of(1, 0, 0, 1), 2), 0.5);
});

test('mergeAdjacentFrames merges the most similar adjacent pair first, H = (Ha + Hb)/2', () => {
  const two = mergeAdjacentFrames([f0, f1, f2, f3], 2, 2);
  assert.deepEqual(two.groups, [
    [0, 1],
    [2, 3],
  ]);
  close(two.mergedSimilarities, [1, Math.SQRT1_2]);
  close(two.features[0]!, [1, 0, 0, 1]);
  close(two.features[1]!, [0.5, 1, 1, 0.5]);
  const one = mergeAdjacentFrames([f0, f1, f2, f3], 2, 1);
  assert.deepEqual(one.groups, [[0, 1, 2, 3]]);
  close(one.mergedSimilarities, [1, Math.SQRT1_2, 0.5 / Math.sqrt(1.25)]);
  close(one.features[0]!, [0.75, 0.5, 0.5, 0.75]);
});

test('MARC averaging is not size-weighted: ((f2+f3)/2 + f0)/2, not (f0 + f2 + f3)/3', () => {
  const { groups, features } = mergeAdjacentFrames([f0, f2, f3], 2, 1);
  assert.deepEqual(groups, [[0, 1, 2]]);
  close(features[0]!, [0.75, 0.5, 0.5, 0.75]);
});

test('budget ≥ frames returns the input; bad budgets and grids are rejected', () => {
  const same = mergeAdjacentFrames([f0, f2], 2, 5);
  assert.deepEqual(same.groups, [[0], [1]]);
  assert.equal(same.features[1], f2);
  assert.throws(() => mergeAdjacentFrames([f0], 2, 0), /frame budget must be an integer ≥ 1, got 0/);
  assert.throws(() => mergeAdjacentFrames([f0, Float32Array.of(1, 2)], 2, 1), /frame 1 has 2 values, expected 4/);
});

test('temporalMerge on a frame TokenSet: assign, sizes, origins, representative frame', () => {
  const data = new Float32Array([...f0, ...f2, ...f3]);
  const sources = [0, 1, 2].map((index) => ({ kind: 'frame' as const, index, rows: 1, cols: 2, time: index * 0.5 }));
  const tokens = createTokenSet({ data, n: 6, d: 2, sources, source: Int32Array.of(0, 0, 1, 1, 2, 2) });
  const { tokens: out, assign, stats } = temporalMerge(tokens, { frames: 2 });
  assert.deepEqual(stats.groups, [[0], [1, 2]]);
  assert.deepEqual(Array.from(assign!), [0, 1, 2, 3, 2, 3]);
  assert.equal(out.n, 4);
  close(out.data, [1, 0, 0, 1, 0.5, 1, 1, 0.5]);
  assert.deepEqual(Array.from(out.size), [1, 1, 2, 2]);
  assert.deepEqual(
    out.origin.map((o) => Array.from(o)),
    [[0], [1], [2, 4], [3, 5]],
  );
  assert.deepEqual(Array.from(out.source), [0, 0, 1, 1]);
  assert.deepEqual(
    [Array.from(out.row), Array.from(out.col)],
    [
      [0, 0, 0, 0],
      [0, 1, 0, 1],
    ],
  );
});

test('temporalMerge rejects non-frame sources and unequal grids', () => {
  const image = createTokenSet({ data: new Float32Array(8), n: 4, d: 2 });
  assert.throws(() => temporalMerge(image, { frames: 1 }), /comes from a image source, expected frames/);
  const sources = [0, 1].map((index) => ({ kind: 'frame' as const, index, rows: 1, cols: index + 1 }));
  const uneven = createTokenSet({ data: new Float32Array(6), n: 3, d: 2, sources, source: Int32Array.of(0, 1, 1) });
  assert.throws(() => temporalMerge(uneven, { frames: 1 }), /frame 1 has 2 tokens, expected 1/);
});
