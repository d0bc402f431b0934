import assert from 'node:assert/strict';
import { test } from 'node:test';
import { divpruneReducer, maxMinDiverse } from '../../reducers/divprune.js';
import { checkSelection, randomTokens, tokensFromRows } from './fixtures.js';

// Nearest-neighbour distances (1 − cos): a 0.0098, b 0.0098, c 0.86, d 1.0.
const rows = [
  [1, 0], // a
  [0.99, 0.14], // b
  [0, 1], // c
  [-1, 0], // d
];

test('divprune: first pick = largest NN distance, then max–min; kept in original order', async () => {
  const tokens = tokensFromRows(rows);
  const result = await divpruneReducer.run(tokens, { budget: 3 });
  // picks: d (NN 1.0), then a (distance 2 to d), then c (min distance 1 vs b's 0.0098)
  assert.equal(result.stats.first_pick, 3);
  assert.deepEqual(Array.from(result.keep!), [0, 2, 3]);
  checkSelection(tokens, result, 3);
  assert.deepEqual(Array.from((await divpruneReducer.run(tokens, { budget: 2 })).keep!), [0, 3]);
});

test('divprune: exactly budget distinct indices, deterministic, even with duplicate tokens', async () => {
  const tokens = randomTokens(200, 8, 5);
  const result = await divpruneReducer.run(tokens, { ratio: 0.1 });
  checkSelection(tokens, result, 20);
  assert.deepEqual((await divpruneReducer.run(tokens, { ratio: 0.1 })).keep, result.keep);
  const same = tokensFromRows(Array.from({ length: 6 }, () => [1, 2]));
  const dup = await divpruneReducer.run(same, { budget: 4 });
  checkSelection(same, dup, 4);
  assert.deepEqual(Array.from(dup.keep!), [0, 1, 2, 3]);
});

test('maxMinDiverse picks the farthest-from-selected token each step', () => {
  // 1-D angles 0°, 10°, 90°, 180° as a similarity matrix.
  const angles = [0, 10, 90, 180].map((a) => (a * Math.PI) / 180);
  const sim = Float32Array.from(angles.flatMap((a) => angles.map((b) => Math.cos(a - b))));
  assert.deepEqual(Array.from(maxMinDiverse(sim, 4, 4)), [3, 0, 2, 1]);
});

test('divprune rejects budget > n', async () => {
  await assert.rejects(
    divpruneReducer.run(tokensFromRows(rows), { budget: 5 }),
    /divprune: budget 5 is larger than the number of input tokens n = 4/,
  );
});
