import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../core/errors.js';
import { topK } from '../../core/linalg.js';
import { visionzipReducer } from '../../reducers/visionzip.js';
import { anyresTokens, assertClose, checkMergeInvariants, randomTokens, tokensFromRows } from './fixtures.js';

const rows = [
  [1, 0], // 0 target
  [5, 5], // 1 dominant
  [0.9, 0.1], // 2 → target 0
  [-1, 2], // 3 dominant
  [0.2, 0.8], // 4 → target 5
  [0, 1], // 5 target
  [0.7, 0.6], // 6 → target 0 (cos 0.76 vs 0.65)
  [0.1, 0.3], // 7 → target 5
];
const score = [0.1, 0.9, 0.2, 0.8, 0.3, 0.05, 0.4, 0.01];

test('visionzip on a hand case: dominant by score, targets at stride ⌊R/c⌋, output = target + mean(members)', async () => {
  const tokens = tokensFromRows(rows, { score });
  const result = await visionzipReducer.run(tokens, { budget: 4, dominantShare: 0.5 });
  assert.deepEqual(Array.from(result.keep!), [1, 3, 0, 5]);
  assert.deepEqual(Array.from(result.assign!), [2, 0, 2, 1, 3, 3, 2, 3]);
  assertClose(result.tokens.data, [5, 5, -1, 2, 1.8, 0.35, 0.15, 1.55], 1e-6, 'features');
  assert.deepEqual(Array.from(result.tokens.size), [1, 1, 3, 3]);
  assert.deepEqual(Array.from(result.tokens.origin[2]!), [0, 2, 6]);
  assert.deepEqual(Array.from(result.tokens.col), [1, 3, 0, 5]);
  checkMergeInvariants(tokens, result, false);
  assert.deepEqual(result.stats.dominant, [2]);
  assert.deepEqual(result.stats.contextual, [2]);
});

test('visionzip default split: 64 of 576 → 54 dominant (top CLS) + 10 contextual at stride 52', async () => {
  const tokens = randomTokens(576, 4, 3, true);
  const result = await visionzipReducer.run(tokens, { ratio: 64 / 576 });
  assert.equal(result.tokens.n, 64);
  assert.deepEqual(result.stats.dominant, [54]);
  const dominant = topK(tokens.score!, 54).sort();
  assert.deepEqual(Array.from(result.keep!.subarray(0, 54)), Array.from(dominant));
  const isDominant = new Set(dominant);
  const remaining = Array.from({ length: 576 }, (_, i) => i).filter((i) => !isDominant.has(i));
  const targets = Array.from({ length: 10 }, (_, t) => remaining[t * Math.floor(522 / 10)]!);
  assert.deepEqual(Array.from(result.keep!.subarray(54)), targets);
  checkMergeInvariants(tokens, result, false);
});

test('visionzip on a bundle works per tile; a budget splits evenly with the remainder to the first tiles', async () => {
  const T = 16;
  const score = Float32Array.from({ length: 5 * T }, (_, i) => (i * 7919) % 101);
  const tokens = anyresTokens({ imageWidth: 672, imageHeight: 672, gridRows: 2, gridCols: 2, patch: 4, d: 3, score });
  const result = await visionzipReducer.run(tokens, { budget: 22 });
  assert.deepEqual(result.stats.budgets, [5, 5, 4, 4, 4]);
  assert.equal(result.tokens.n, 22);
  // every output token stays inside its tile
  for (let i = 0; i < tokens.n; i++) assert.equal(result.tokens.source[result.assign![i]!], tokens.source[i]);
  for (const k of result.keep!) assert.equal(result.assign![k], result.keep!.indexOf(k));
  checkMergeInvariants(tokens, result, false);
});

test('visionzip without CLS scores fails naming the method and field; bad share rejected', async () => {
  const tokens = randomTokens(16, 2, 1);
  await assert.rejects(
    visionzipReducer.run(tokens, { ratio: 0.5 }),
    (e: Error) => e instanceof InputError && /visionzip: needs CLS scores \(field score/.test(e.message),
  );
  const scored = randomTokens(16, 2, 1, true);
  await assert.rejects(
    visionzipReducer.run(scored, { ratio: 0.5, dominantShare: 2 }),
    /visionzip: dominantShare \(--dominant-share\) must be in \[0, 1\], got 2/,
  );
  // k = 1: no dominant token, everything joins one target
  const one = await visionzipReducer.run(scored, { budget: 1 });
  assert.equal(one.tokens.n, 1);
  assert.equal(one.tokens.size[0], 16);
});

test('visionzip d = round(k·54/64) per tile: k = 65 → 55 + 10, k = 40 → 34 + 6 at stride ⌊542/6⌋ = 90; a ratio rounds per tile', async () => {
  const score = Float32Array.from({ length: 5 * 576 }, (_, i) => ((i * 7919) % 2003) / 2003);
  const tokens = anyresTokens({ imageWidth: 640, imageHeight: 480, gridRows: 2, gridCols: 2, patch: 24, d: 3, score });
  const byBudget = await visionzipReducer.run(tokens, { budget: 322 });
  assert.deepEqual(byBudget.stats.budgets, [65, 65, 64, 64, 64]);
  assert.deepEqual(byBudget.stats.dominant, [55, 55, 54, 54, 54]);
  assert.deepEqual(byBudget.stats.contextual, [10, 10, 10, 10, 10]);
  assert.equal(byBudget.stats.budget, 322);
  // R = 0.1 → each tile keeps round(57.6) = 58, so 290 in all (not round(2880·0.1) = 288)
  const byRatio = await visionzipReducer.run(tokens, { ratio: 0.1 });
  assert.deepEqual(byRatio.stats.budgets, [58, 58, 58, 58, 58]);
  assert.deepEqual(byRatio.stats.dominant, [49, 49, 49, 49, 49]);
  assert.equal(byRatio.stats.budget, 290);
  assert.equal(byRatio.tokens.n, 290);
  const k40 = await visionzipReducer.run(tokens, { ratio: 40 / 576 });
  assert.deepEqual(k40.stats.dominant, [34, 34, 34, 34, 34]);
  // tile 2 (crop 1): dominant = its top-34 scores in original order, then targets at stride 90 among the rest
  const local = Array.from({ length: 576 }, (_, j) => 2 * 576 + j);
  const dominant = [...local]
    .sort((a, b) => score[b]! - score[a]! || a - b)
    .slice(0, 34)
    .sort((a, b) => a - b);
  const rest = local.filter((i) => !dominant.includes(i));
  const targets = [0, 90, 180, 270, 360, 450].map((p) => rest[p]!);
  assert.deepEqual(Array.from(k40.keep!.subarray(80, 120)), [...dominant, ...targets]);
  checkMergeInvariants(tokens, k40, false);
});
