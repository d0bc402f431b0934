import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noveltyCoverageScores, textClipScores, topClips } from '../../video/retrieve.js';
import { adjacentSimilarities, segmentBySimilarity } from '../../video/segment.js';

test('segmentation cuts at the least similar transitions and wherever similarity < τ', () => {
  const sims = [0.99, 0.2, 0.98, 0.97, 0.5];
  assert.deepEqual(segmentBySimilarity(sims, { segments: 2, threshold: 0.6 }), [
    { start: 0, end: 2 },
    { start: 2, end: 5 },
    { start: 5, end: 6 },
  ]);
  // τ = 0: only the least-similar rule; 4 segments → the 3 lowest transitions (0.2, 0.5, 0.97).
  assert.deepEqual(segmentBySimilarity(sims, { segments: 4, threshold: 0 }), [
    { start: 0, end: 2 },
    { start: 2, end: 4 },
    { start: 4, end: 5 },
    { start: 5, end: 6 },
  ]);
  // One segment and nothing below τ: the whole video is one clip.
  assert.deepEqual(segmentBySimilarity(sims, { segments: 1, threshold: 0.1 }), [{ start: 0, end: 6 }]);
  // Ties go to the earlier transition.
  assert.deepEqual(segmentBySimilarity([0.5, 0.5, 0.5], { segments: 2, threshold: 0 }), [
    { start: 0, end: 1 },
    { start: 1, end: 4 },
  ]);
  // A single frame has no transitions.
  assert.deepEqual(segmentBySimilarity([], {}), [{ start: 0, end: 1 }]);
  assert.throws(() => segmentBySimilarity(sims, { segments: 0 }), /segments must be an integer ≥ 1, got 0/);
});

test('adjacentSimilarities are cosines of neighbouring embeddings', () => {
  assert.deepEqual(adjacentSimilarities([Float32Array.of(1, 0), Float32Array.of(2, 0), Float32Array.of(0, 3)]), [1, 0]);
});

test('textClipScores: cosine of each clip mean with the text embedding', () => {
  const frames = [Float32Array.of(1, 0), Float32Array.of(1, 0), Float32Array.of(0, 1), Float32Array.of(1, 1)];
  const clips = [
    { start: 0, end: 2 },
    { start: 2, end: 4 },
  ];
  const scores = textClipScores(frames, clips, Float32Array.of(0, 1));
  assert.equal(scores[0], 0);
  // clip 1 mean = (0.5, 1) → cos with (0, 1) = 1/√1.25
  assert.ok(Math.abs(scores[1]! - 1 / Math.sqrt(1.25)) < 1e-6);
});

test('noveltyCoverageScores: ½·novelty/max + ½·length/max, by hand', () => {
  const frames = [Float32Array.of(1, 0), Float32Array.of(1, 0), Float32Array.of(0, 1)];
  const scores = noveltyCoverageScores(frames, [
    { start: 0, end: 2 },
    { start: 2, end: 3 },
  ]);
  // video mean (2/3, 1/3): cos with (1,0) = 2/√5, with (0,1) = 1/√5.
  const n0 = 1 - 2 / Math.sqrt(5);
  const n1 = 1 - 1 / Math.sqrt(5);
  assert.ok(Math.abs(scores[0]! - (0.5 * (n0 / n1) + 0.5)) < 1e-6);
  assert.ok(Math.abs(scores[1]! - (0.5 + 0.25)) < 1e-6);
  assert.deepEqual(noveltyCoverageScores(frames, [{ start: 0, end: 3 }]), [1]);
});

test('topClips keeps the k best, in temporal order, earlier on ties', () => {
  assert.deepEqual(topClips([0.2, 0.9, 0.5, 0.7], 2), [1, 3]);
  assert.deepEqual(topClips([0.5, 0.5, 0.1], 1), [0]);
  assert.deepEqual(topClips([0.5], 3), [0]);
  assert.throws(() => topClips([1], 0), /clips must be an integer ≥ 1, got 0/);
});
