import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { reduce } from '../../reducers/index.js';
import { randomReducer } from '../../reducers/random.js';
import { checkSelection, randomTokens } from './fixtures.js';

test('random keeps exactly budget distinct indices in original order, with metadata', async () => {
  const tokens = randomTokens(100, 3, 1);
  const result = await randomReducer.run(tokens, { budget: 17, seed: 4 });
  checkSelection(tokens, result, 17);
  for (let j = 1; j < 17; j++) assert.ok(result.keep![j]! > result.keep![j - 1]!, 'ascending');
  // The pinned Rng stream decides the draw: sample(100, 17) of Rng(4), sorted.
  assert.deepEqual(result.keep, new Rng(4).sample(100, 17).sort());
  assert.equal(result.stats.budget, 17);
});

test('random is deterministic per seed and differs across seeds; ratio → max(1, round(n·R))', async () => {
  const tokens = randomTokens(576, 2, 2);
  const a = await randomReducer.run(tokens, { ratio: 0.1, seed: 9 });
  const b = await randomReducer.run(tokens, { ratio: 0.1, seed: 9 });
  const c = await randomReducer.run(tokens, { ratio: 0.1, seed: 10 });
  assert.equal(a.keep!.length, 58);
  assert.deepEqual(a.keep, b.keep);
  assert.notDeepEqual(a.keep, c.keep);
  assert.equal((await randomReducer.run(tokens, { ratio: 0.0001 })).keep!.length, 1);
  assert.equal((await randomReducer.run(tokens, { ratio: 1 })).keep!.length, 576);
});

test('random rejects budget > n, ratio outside (0, 1], and NaN features (through reduce)', async () => {
  const tokens = randomTokens(10, 2, 3);
  await assert.rejects(
    randomReducer.run(tokens, { budget: 11 }),
    (e: Error) => e instanceof UsageError && /random: budget 11 is larger than .* n = 10/.test(e.message),
  );
  await assert.rejects(randomReducer.run(tokens, { ratio: 0 }), /random: ratio must be in \(0, 1\], got 0/);
  await assert.rejects(randomReducer.run(tokens, { ratio: 1.5 }), /random: ratio must be in \(0, 1\], got 1.5/);
  await assert.rejects(
    randomReducer.run(tokens, { ratio: 0.5, seed: 1.5 }),
    /random: seed must be an integer in \[0, 4294967295\], got 1.5/,
  );
  // 32-bit seeds only: 2³² + 1 or −5 would silently alias 1 or 2³² − 5
  await assert.rejects(
    randomReducer.run(tokens, { ratio: 0.5, seed: 2 ** 32 + 1 }),
    (e: Error) =>
      e instanceof UsageError && /random: seed must be an integer in \[0, 4294967295\], got 4294967297/.test(e.message),
  );
  await assert.rejects(
    randomReducer.run(tokens, { ratio: 0.5, seed: -5 }),
    /random: seed must be an integer in \[0, 4294967295\], got -5/,
  );
  assert.equal((await randomReducer.run(tokens, { ratio: 0.5, seed: 2 ** 32 - 1 })).keep!.length, 5);
  tokens.data[7] = Number.NaN;
  await assert.rejects(
    reduce(tokens, 'random', { ratio: 0.5 }),
    /random\.data: non-finite value NaN at token 3, dimension 1/,
  );
  await assert.rejects(reduce(tokens, 'nope', { ratio: 0.5 }), /unknown method "nope"/);
  const scored = randomTokens(4, 2, 3, true);
  scored.score![2] = Number.POSITIVE_INFINITY;
  await assert.rejects(
    reduce(scored, 'divprune', { ratio: 0.5 }),
    /divprune\.score: non-finite value Infinity at token 2/,
  );
});
