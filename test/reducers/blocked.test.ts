import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cosineGramNative } from '../../core/linalg-kernels.js';
import { createTokenSet } from '../../core/tokenset.js';
import { clusterReducer, sphericalKMeans, sphericalKMeansBlocked } from '../../reducers/cluster.js';
import { divpruneReducer, maxMinDiverse, maxMinDiverseBlocked } from '../../reducers/divprune.js';
import { tomeReducer } from '../../reducers/tome.js';
import { cdprunerReducer, greedyDppMap } from '../../reducers/cdpruner.js';
import { randomTokens } from './fixtures.js';

/** Tokens around a few directions (as video tokens are): many near-ties, the hard case for exactness. */
function clusteredTokens(n: number, d: number, seed: number) {
  const base = randomTokens(n, d, seed);
  const centres = randomTokens(12, d, seed + 1).data;
  for (let i = 0; i < n; i++)
    for (let c = 0; c < d; c++) base.data[i * d + c] = centres[(i % 12) * d + c]! + 0.2 * base.data[i * d + c]!;
  return base;
}

test('divprune without the n×n matrix picks exactly what the Gram-matrix rule picks, in the same order', async () => {
  for (const [tokens, budget] of [
    [randomTokens(900, 16, 3), 90],
    [clusteredTokens(1000, 12, 5), 400],
    [clusteredTokens(50, 4, 8), 50],
  ] as const) {
    const { gram, nearest } = await cosineGramNative(tokens.data, tokens.n, tokens.d);
    const reference = maxMinDiverse(gram, tokens.n, budget, nearest);
    const blocked = await maxMinDiverseBlocked(tokens.data, tokens.n, tokens.d, budget);
    assert.deepEqual(blocked.picks, reference, `n = ${tokens.n}, budget ${budget}`);
    // n ≤ 4096: every row comes from the nearest-neighbour tiles, no second GEMM
    assert.equal(blocked.rowsComputed, 0);
  }
  const result = await divpruneReducer.run(randomTokens(900, 16, 3), { budget: 90 });
  assert.equal(result.stats.similarity_rows, 0);
});

test('divprune above 4096 tokens: rows of certain picks only, batched, same picks as the Gram-matrix rule', async () => {
  const tokens = clusteredTokens(4200, 4, 6);
  const { gram, nearest } = await cosineGramNative(tokens.data, tokens.n, tokens.d);
  const reference = maxMinDiverse(gram, tokens.n, 300, nearest);
  const blocked = await maxMinDiverseBlocked(tokens.data, tokens.n, tokens.d, 300);
  assert.deepEqual(blocked.picks, reference);
  // every row computed was a pick's (the predictions held): budget − 1 rows, the last pick needs none
  assert.equal(blocked.rowsComputed, 299);
});

test('cluster without the n×n matrix: the same k-means as on the Gram matrix (seeding, Lloyd steps, objective)', async () => {
  const tokens = clusteredTokens(600, 10, 2);
  const weights = Float64Array.from({ length: tokens.n }, (_, i) => 1 + (i % 3));
  const { gram } = await cosineGramNative(tokens.data, tokens.n, tokens.d);
  for (const options of [
    { iterations: 0, tolerance: 0, seed: 1 },
    { iterations: 6, tolerance: 0, seed: 2 },
    { iterations: 10, tolerance: 1e-4, seed: 3 },
  ]) {
    const reference = sphericalKMeans(gram, tokens.n, weights, 40, options);
    const blocked = await sphericalKMeansBlocked(tokens.data, tokens.n, tokens.d, weights, 40, options);
    assert.deepEqual(blocked.assign, reference.assign, JSON.stringify(options));
    assert.equal(blocked.iterations, reference.iterations);
    assert.ok(
      Math.abs(blocked.objective - reference.objective) < 1e-6 * Math.abs(reference.objective),
      `${blocked.objective} vs ${reference.objective}`,
    );
  }
});

test('the reducers refuse inputs beyond the feature-size limit before allocating anything', async () => {
  // A fake 300000×1024 set: only the header is checked, the features are never read.
  const huge = { ...createTokenSet({ data: new Float32Array(4), n: 2, d: 2 }), n: 300000, d: 1024 };
  for (const reducer of [divpruneReducer, clusterReducer, tomeReducer]) {
    await assert.rejects(
      reducer.run(huge, { ratio: 0.1 }),
      new RegExp(
        `^InputError: ${reducer.name}: n·d = 300000×1024 = 307,200,000 feature values \\(1\\.1 GiB of float32\\) exceeds the limit of 268,435,456`,
      ),
    );
  }
});

test("cdpruner above 4096 tokens reads each pick's row from one GEMV: the same picks as on the Gram matrix", async () => {
  const tokens = clusteredTokens(4200, 24, 9); // d = 24 > budget: the kernel keeps full rank, no noise-level ties
  const { gram } = await cosineGramNative(tokens.data, tokens.n, tokens.d);
  const reference = await greedyDppMap(
    (j) => gram.subarray(j * tokens.n, (j + 1) * tokens.n),
    new Uint8Array(tokens.n).fill(1),
    tokens.n,
    16,
  );
  const result = await cdprunerReducer.run(tokens, { budget: 16 });
  assert.deepEqual(result.keep, Int32Array.from(reference).sort());
});
