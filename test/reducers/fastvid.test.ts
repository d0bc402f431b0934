import assert from 'node:assert/strict';
import { test } from 'node:test';
import { anchorDistribution, dynamicSegments, fastvidReducer } from '../../reducers/fastvid.js';
import { assertClose, checkMergeInvariants, randomTokens, videoTokens } from './fixtures.js';

test('fastvid DySeg: a clear cut between frames 2 and 3; c − 1 lowest similarities (ties → earlier pair) and τ', () => {
  // Global features: frames 0–2 along x, 3–5 along y → similarities [1, 1, 0, 1, 1].
  const globals = Float64Array.from([1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1]);
  assert.deepEqual(dynamicSegments(globals, 6, 2, 2, 0.9), [3, 3]);
  assert.deepEqual(dynamicSegments(globals, 6, 2, 1, 0.9), [3, 3], 'τ alone finds the cut');
  assert.deepEqual(dynamicSegments(globals, 6, 2, 1, 0), [6], 'no cut at all');
  assert.deepEqual(dynamicSegments(globals, 6, 2, 3, 0), [1, 2, 3], 'second cut: the earliest of the tied pairs');
  assert.deepEqual(dynamicSegments(globals, 6, 2, 8, 0.9), [1, 1, 1, 1, 1, 1], 'c − 1 ≥ frames − 1: every pair is cut');
});

test('fastvid anchors: every p-th frame from the segment end gets ⌊ctx·L/⌈L/p⌉⌋', () => {
  assert.deepEqual(Array.from(anchorDistribution([1, 5], 6, 7, 4)), [7, 17, 0, 0, 0, 17]);
  assert.deepEqual(Array.from(anchorDistribution([3], 3, 2, 2)), [3, 0, 3]);
  assert.deepEqual(Array.from(anchorDistribution([2, 2], 4, 0, 4)), [0, 0, 0, 0]);
});

/*
 * One frame of 5 tokens in 4-D: s = (0,0,1,0) with attention 10, then
 * c0 = (1,−.1,0,0), c1 = (1,0,0,0), c2 = (1,.1,0,0), f = (−1,0,0,0) with 0.
 * Budget 2 per frame, context share .5 → ctx = 1, salient = 1: s.
 * Density over {c0, c1, c2, f} (4 neighbours = all): c1 is densest, so
 * δ(c1) = the frame's largest distance and ρ·δ is largest for c1 → context token c1.
 * All four join it: w = max(1/5, .6) = .6 →
 * c1' = .6·(1,0,0,0) + .4·mean(c0, c1, c2, f) = .6·(1,0,0,0) + .4·(.5,0,0,0) = (.8, 0, 0, 0).
 */
const frame = [
  [0, 0, 1, 0],
  [1, -0.1, 0, 0],
  [1, 0, 0, 0],
  [1, 0.1, 0, 0],
  [-1, 0, 0, 0],
];
const frameScores = [10, 0, 0, 0, 0];

test('fastvid: salient by attention, context by density peak, merged with weight max(1/(n+1), β) (hand-derived)', async () => {
  const tokens = videoTokens([frame, frame], [...frameScores, ...frameScores]);
  const result = await fastvidReducer.run(tokens, { budget: 4, contextShare: 0.5 });
  assert.deepEqual(result.stats.segments, [1, 1]);
  assert.deepEqual(Array.from(result.keep!), [0, 2, 5, 7]);
  assertClose(result.tokens.data, [0, 0, 1, 0, 0.8, 0, 0, 0, 0, 0, 1, 0, 0.8, 0, 0, 0], 1e-6, 'features');
  assert.deepEqual(Array.from(result.assign!), [0, 1, 1, 1, 1, 2, 3, 3, 3, 3]);
  assert.deepEqual(Array.from(result.tokens.size), [1, 4, 1, 4]);
  checkMergeInvariants(tokens, result, false);
});

test('fastvid: a 4-frame segment puts all context tokens on its last frame; earlier frames join them', async () => {
  // Identical frames, one segment (c = 1, τ = 0.9), p = 4: frame 3 gets ⌊1·4/1⌋ = 4 context tokens = all
  // of its non-salient tokens; every copy joins its own twin (cos 1) → w = .6, feature unchanged.
  const tokens = videoTokens(
    [frame, frame, frame, frame],
    [...frameScores, ...frameScores, ...frameScores, ...frameScores],
  );
  const result = await fastvidReducer.run(tokens, { budget: 8, contextShare: 0.5, segments: 1 });
  assert.deepEqual(result.stats.segments, [4]);
  assert.deepEqual(result.stats.anchor_context, [0, 0, 0, 4]);
  assert.deepEqual(Array.from(result.keep!), [0, 5, 10, 15, 16, 17, 18, 19]);
  assertClose(result.tokens.data.subarray(4 * 4), frame.slice(1).flat(), 1e-6, 'context features');
  assert.deepEqual(Array.from(result.tokens.size), [1, 1, 1, 1, 4, 4, 4, 4]);
  checkMergeInvariants(tokens, result, false);
});

test('fastvid: invariants on a random video — budget, ascending keep, frames kept, every input counted once', async () => {
  const frames = 8;
  const perFrame = 16;
  const base = randomTokens(frames * perFrame, 6, 21, true);
  const rows = Array.from({ length: frames }, (_, f) =>
    Array.from({ length: perFrame }, (_, p) =>
      Array.from(base.data.subarray((f * perFrame + p) * 6, (f * perFrame + p + 1) * 6)),
    ),
  );
  const tokens = videoTokens(rows, Array.from(base.score!));
  for (const ratio of [0.25, 0.5, 1]) {
    const result = await fastvidReducer.run(tokens, { ratio });
    const budget = Math.round(frames * perFrame * ratio);
    assert.ok(result.tokens.n <= budget, `${result.tokens.n} ≤ ${budget}`);
    assert.ok(result.keep!.every((v, i, a) => i === 0 || a[i - 1]! < v));
    result.keep!.forEach((i, o) => assert.equal(result.tokens.source[o], Math.floor(i / perFrame)));
    checkMergeInvariants(tokens, result, false);
    assert.equal(result.stats.score_source, 'score');
  }
  const again = await fastvidReducer.run(tokens, { ratio: 0.25 });
  assert.deepEqual(again.keep, (await fastvidReducer.run(tokens, { ratio: 0.25 })).keep);
  await assert.rejects(
    fastvidReducer.run(tokens, { budget: 7 }),
    /fastvid: budget 7 is smaller than the number of frames \(8\)/,
  );
  await assert.rejects(
    fastvidReducer.run(tokens, { ratio: 0.5, anchorStride: 0 }),
    /fastvid: anchorStride \(--anchor-stride\) must be an integer ≥ 1, got 0/,
  );
});
