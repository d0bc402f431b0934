import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../core/errors.js';
import { clusterReducer, sphericalKMeans } from '../../reducers/cluster.js';
import { assertClose, checkMergeInvariants, randomTokens, tokensFromRows } from './fixtures.js';

// Three directions, two tokens each, interleaved: clusters {0,3}, {1,4}, {2,5}.
const rows = [
  [1, 0, 0],
  [0, 2, 0],
  [0, 0, 3],
  [3, 0.3, 0],
  [0.1, 1, 0],
  [0, 0.2, 1],
];

test('cluster: three clear directions → three clusters of raw-feature means, ordered by smallest origin', async () => {
  const tokens = tokensFromRows(rows);
  for (const seed of [0, 1, 2, 3]) {
    const result = await clusterReducer.run(tokens, { budget: 3, seed });
    assert.deepEqual(Array.from(result.assign!), [0, 1, 2, 0, 1, 2], `seed ${seed}`);
    // means of RAW (not normalised) features
    assertClose(result.tokens.data, [2, 0.15, 0, 0.05, 1.5, 0, 0, 0.1, 2], 1e-6, 'cluster means');
    assert.deepEqual(Array.from(result.tokens.size), [2, 2, 2]);
    checkMergeInvariants(tokens, result);
  }
});

test('cluster: merged inputs weigh by size; k = budget clusters exactly, none empty, even with duplicates', async () => {
  const weighted = tokensFromRows(rows, { size: [3, 1, 1, 1, 1, 1] });
  const w = await clusterReducer.run(weighted, { budget: 3 });
  assertClose(w.tokens.data.subarray(0, 3), [1.5, 0.075, 0], 1e-6, 'size-weighted mean (3·x0 + x3)/4');
  checkMergeInvariants(weighted, w);
  const same = tokensFromRows([
    [1, 1],
    [1, 1],
    [1, 1],
    [1, 1],
    [1, 1],
    [0, 1],
  ]);
  const result = await clusterReducer.run(same, { budget: 4 });
  assert.equal(result.tokens.n, 4);
  assert.equal(new Set(result.assign).size, 4);
  checkMergeInvariants(same, result);
});

test('cluster invariants on random tokens; deterministic per seed', async () => {
  const tokens = randomTokens(400, 12, 11);
  const a = await clusterReducer.run(tokens, { ratio: 0.1, seed: 5 });
  const b = await clusterReducer.run(tokens, { ratio: 0.1, seed: 5 });
  assert.equal(a.tokens.n, 40);
  assert.deepEqual(a.assign, b.assign);
  checkMergeInvariants(tokens, a);
  const firsts = a.tokens.origin.map((o) => o[0]!);
  for (let o = 1; o < firsts.length; o++) assert.ok(firsts[o]! > firsts[o - 1]!);
  assert.ok((a.stats.iterations as number) >= 1 && (a.stats.iterations as number) <= 10);
});

test('Lloyd iterations never lower the objective: more iterations, higher Σ cos', () => {
  const tokens = randomTokens(300, 8, 2);
  const n = tokens.n;
  const unit = tokens.data.slice();
  for (let i = 0; i < n; i++) {
    const norm = Math.hypot(...unit.subarray(i * 8, i * 8 + 8));
    for (let c = 0; c < 8; c++) unit[i * 8 + c]! /= norm;
  }
  const gram = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < 8; c++) s += unit[i * 8 + c]! * unit[j * 8 + c]!;
      gram[i * n + j] = s;
    }
  const weights = new Float64Array(n).fill(1);
  const seeded = sphericalKMeans(gram, n, weights, 12, { iterations: 0, tolerance: 0, seed: 3 });
  const refined = sphericalKMeans(gram, n, weights, 12, { iterations: 20, tolerance: 0, seed: 3 });
  assert.equal(seeded.iterations, 0);
  assert.ok(refined.objective > seeded.objective, `${refined.objective} > ${seeded.objective}`);
});

test('cluster stops early once assignments settle, unless tolerance is 0', async () => {
  const tokens = tokensFromRows(rows);
  const early = await clusterReducer.run(tokens, { budget: 3 });
  assert.equal(early.stats.iterations, 1, 'the clear case settles after one update');
  const full = await clusterReducer.run(tokens, { budget: 3, iterations: 7, tolerance: 0 });
  assert.equal(full.stats.iterations, 7);
  assert.deepEqual(full.assign, early.assign);
});

test('cluster rejects bad iterations/tolerance and budget > n', async () => {
  const tokens = tokensFromRows(rows);
  await assert.rejects(
    clusterReducer.run(tokens, { budget: 2, iterations: -1 }),
    (e: Error) => e instanceof UsageError && /cluster: iterations must be an integer ≥ 0, got -1/.test(e.message),
  );
  await assert.rejects(
    clusterReducer.run(tokens, { budget: 2, tolerance: Number.NaN }),
    /cluster: tolerance must be ≥ 0, got/,
  );
  await assert.rejects(
    clusterReducer.run(tokens, { budget: 7 }),
    /cluster: budget 7 is larger than the number of input tokens n = 6/,
  );
});

test('cluster re-seeds empty clusters (duplicate seeds) and never emits one', async () => {
  // Five identical tokens: k-means++ must seed three of its four centres on duplicates, which then tie.
  const same = tokensFromRows([
    [1, 1],
    [1, 1],
    [1, 1],
    [1, 1],
    [1, 1],
    [0, 1],
  ]);
  for (const seed of [0, 1, 2]) {
    for (const iterations of [0, 10]) {
      const result = await clusterReducer.run(same, { budget: 4, seed, iterations });
      assert.ok(
        (result.stats.reseeded as number) >= 1,
        `seed ${seed}, ${iterations} iterations: re-seeded ${result.stats.reseeded}`,
      );
      assert.deepEqual(Array.from(result.assign!), [0, 1, 2, 2, 2, 3]);
      assert.deepEqual(Array.from(result.tokens.size), [1, 1, 3, 1]);
      checkMergeInvariants(same, result);
    }
  }
});
