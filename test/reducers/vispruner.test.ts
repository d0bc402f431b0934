import assert from 'node:assert/strict';
import { test } from 'node:test';
import { visprunerReducer } from '../../reducers/vispruner.js';
import { anyresTokens, checkSelection, randomTokens, tokensFromRows } from './fixtures.js';

/*
 * 8 tokens, scores 8, 7, …, 1 (so attention order = index order), budget 6:
 * T_imp = ⌊6·0.5⌋ = 3 → important {0, 1, 2}; T_div = 3 from the residual
 * [3, 4, 5, 6, 7] (R = 5). Round 1: r = min(8, 5 − 3) = 2; A = [3, 5, 7],
 * B = [4, 6]; max cos to B: t3 ≈ .995 (to t4), t5 = −.707, t7 ≈ .995 (to t6)
 * → drop t3 and t7 (ties: the earlier in A first) → [5, 4, 6], R = 3 = T_div.
 * (R = 5 is odd: A has one token more than B; every survivor stays.)
 */
const rows = [
  [1, 1],
  [1, 1],
  [1, 1],
  [1, 0.1], // 3: near t4
  [1, 0], // 4
  [-1, -1], // 5: unlike B
  [0, 1], // 6
  [0.1, 1], // 7: near t6
];

test('vispruner: important by score, then duplicate removal on even/odd halves (hand-derived)', async () => {
  const tokens = tokensFromRows(rows, { score: [8, 7, 6, 5, 4, 3, 2, 1] });
  const result = await visprunerReducer.run(tokens, { budget: 6 });
  assert.deepEqual(Array.from(result.keep!), [0, 1, 2, 4, 5, 6]);
  assert.deepEqual(result.stats.important, [3]);
  assert.equal(result.stats.score_source, 'score');
  checkSelection(tokens, result, 6);
  // importantShare 1: all six by score.
  assert.deepEqual(
    Array.from((await visprunerReducer.run(tokens, { budget: 6, importantShare: 1 })).keep!),
    [0, 1, 2, 3, 4, 5],
  );
  // importantShare 0, budget 4: R = 8, r = min(8, 8 − 4) = 4 = |A| → all of A = [0, 2, 4, 6] goes.
  const zero = await visprunerReducer.run(tokens, { budget: 4, importantShare: 0 });
  checkSelection(tokens, zero, 4);
  assert.deepEqual(Array.from(zero.keep!), [1, 3, 5, 7], 'all of A removed, B stays');
});

test('vispruner: per tile on a bundle (T_imp = ⌊T·0.5⌋ per tile), budget respected, ties to the lowest index', async () => {
  const bundle = anyresTokens({
    imageWidth: 336,
    imageHeight: 336,
    gridRows: 1,
    gridCols: 2,
    patch: 4,
    d: 6,
    score: Float32Array.from({ length: 48 }, (_, i) => (i * 7) % 5),
    seed: 3,
  });
  const result = await visprunerReducer.run(bundle, { ratio: 0.5 });
  checkSelection(bundle, result, 24);
  assert.deepEqual(result.stats.budgets, [8, 8, 8]);
  assert.deepEqual(result.stats.important, [4, 4, 4]);
  for (let t = 0; t < 3; t++)
    assert.equal(result.keep!.filter((i) => Math.floor(i / 16) === t).length, 8, `tile ${t} keeps 8`);
  // Equal scores, identical features: score ties go to the lowest index (important {0}); then
  // residual [1..5]: round 1 r = 4 > |A| = 3 drops all of A = [1, 3, 5] → [2, 4]; round 2 drops A = [2] → {4}.
  const same = tokensFromRows(
    Array.from({ length: 6 }, () => [1, 0]),
    { score: [1, 1, 1, 1, 1, 1] },
  );
  assert.deepEqual(Array.from((await visprunerReducer.run(same, { budget: 2 })).keep!), [0, 4]);
});

test('vispruner: without scores the attention is the cosine to the tile mean (stated in stats)', async () => {
  const tokens = randomTokens(64, 8, 4);
  const result = await visprunerReducer.run(tokens, { ratio: 0.25 });
  checkSelection(tokens, result, 16);
  assert.equal(result.stats.score_source, 'mean-cosine');
  await assert.rejects(
    visprunerReducer.run(tokens, { ratio: 0.25, importantShare: 1.5 }),
    /vispruner: importantShare \(--important-share\) must be in \[0, 1\], got 1.5/,
  );
});
