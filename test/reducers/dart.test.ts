import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dartReducer } from '../../reducers/dart.js';
import { checkSelection, randomTokens, tokensFromRows } from './fixtures.js';

const unit = (degrees: number) => [Math.cos((degrees * Math.PI) / 180), Math.sin((degrees * Math.PI) / 180)];

/*
 * Pivots (L1 norm 10, 9, 8, 7): t0 = (10, 0), t1 = (0, 9), t2 = (−8, 0), t3 = (0, −7);
 * t4…t11 unit vectors at 0°, 45°, …, 315°. Budget 10: 6 slots over 4 pivots →
 * quotas [1 + 2, 1, 1, 1] (remainder to the first).
 *   t0 (0°):   least cos among t4…t11: t8 (−1), then t7 = t9 (−.707) → t7, t9   → {8, 7, 9}
 *   t1 (90°):  left {4, 5, 6, 10, 11}: t10 (−1)                                  → {10}
 *   t2 (180°): left {4, 5, 6, 11}: t4 (−1)                                       → {4}
 *   t3 (270°): left {5, 6, 11}: t6 (−1)                                          → {6}
 * keep = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10].
 */
const rows = [[10, 0], [0, 9], [-8, 0], [0, -7], ...[0, 45, 90, 135, 180, 225, 270, 315].map(unit)];

test('dart: 4 pivots by L1 norm, slots split evenly with the remainder to the first pivot (hand-derived)', async () => {
  const tokens = tokensFromRows(rows);
  const result = await dartReducer.run(tokens, { budget: 10 });
  assert.deepEqual(result.stats.pivots, [0, 1, 2, 3]);
  assert.deepEqual(result.stats.quotas, [3, 1, 1, 1]);
  assert.deepEqual(Array.from(result.keep!), [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]);
  checkSelection(tokens, result, 10);
  // Budget 5: one slot, to the first pivot: t8.
  assert.deepEqual(Array.from((await dartReducer.run(tokens, { budget: 5 })).keep!), [0, 1, 2, 3, 8]);
  // Budget below the pivot count: the largest-norm pivots only.
  assert.deepEqual(Array.from((await dartReducer.run(tokens, { budget: 2 })).keep!), [0, 1]);
});

test('dart: budget respected, distinct, ascending, deterministic; pivots option; errors', async () => {
  const tokens = randomTokens(300, 12, 8);
  for (const budget of [1, 4, 5, 33, 150, 300]) {
    const result = await dartReducer.run(tokens, { budget });
    checkSelection(tokens, result, budget);
    assert.ok(result.keep!.every((v, i, a) => i === 0 || a[i - 1]! < v));
  }
  const eight = await dartReducer.run(tokens, { budget: 30, pivots: 8 });
  assert.equal((eight.stats.pivots as number[]).length, 8);
  // 22 slots over 8 pivots: ⌊22/8⌋ = 2 each, the remainder 6 to the first.
  assert.deepEqual(eight.stats.quotas, [8, 2, 2, 2, 2, 2, 2, 2]);
  await assert.rejects(
    dartReducer.run(tokens, { budget: 10, pivots: 0 }),
    /dart: pivots must be an integer ≥ 1, got 0/,
  );
  // Identical tokens: pivots and picks fall to the lowest indices.
  const same = tokensFromRows(Array.from({ length: 8 }, () => [1, 2]));
  assert.deepEqual(Array.from((await dartReducer.run(same, { budget: 6 })).keep!), [0, 1, 2, 3, 4, 5]);
});
