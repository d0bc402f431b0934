import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cdprunerReducer } from '../../reducers/cdpruner.js';
import { clusterReducer } from '../../reducers/cluster.js';
import { divpruneReducer } from '../../reducers/divprune.js';
import { tomeReducer } from '../../reducers/tome.js';
import { reduce } from '../../reducers/index.js';
import type { ReduceProgress } from '../../reducers/types.js';
import { randomTokens } from './fixtures.js';

/** Every progress report, in order, as `stage done/total`. */
function recorder(): { reports: ReduceProgress[]; onProgress: (at: ReduceProgress) => void } {
  const reports: ReduceProgress[] = [];
  return { reports, onProgress: (at) => reports.push({ ...at }) };
}

/** Within each stage: a fixed total, done strictly rising, ending at the total. */
function assertStagesComplete(reports: ReduceProgress[], stages: string[]): void {
  assert.deepEqual([...new Set(reports.map((r) => r.stage))], stages);
  for (const stage of stages) {
    const own = reports.filter((r) => r.stage === stage);
    for (let i = 1; i < own.length; i++) {
      assert.ok(own[i]!.done > own[i - 1]!.done, `${stage}: done rises (${own[i - 1]!.done} → ${own[i]!.done})`);
      assert.equal(own[i]!.total, own[0]!.total, `${stage}: one total`);
    }
    assert.equal(own.at(-1)!.done, own.at(-1)!.total, `${stage} ends complete`);
  }
}

test('tome reports its rounds in A×B similarities: 300 → 150 → 75 → 38 → 20 is 150² + 75² + 38·37 + 19²', async () => {
  const { reports, onProgress } = recorder();
  await tomeReducer.run(randomTokens(300, 16, 7), { budget: 20, onProgress });
  const total = 150 * 150 + 75 * 75 + 38 * 37 + 19 * 19;
  assert.deepEqual(
    reports.map((r) => `${r.stage} ${r.done}/${r.total}`),
    [22500, 28125, 29531, total].map((done) => `rounds ${done}/${total}`),
  );
});

test('cluster (blocked k-means) reports seeding 2…k then each Lloyd iteration', async () => {
  const { reports, onProgress } = recorder();
  // n = 300 > k·(iterations + 1) = 80: the blocked path, one similarity row per seed.
  await clusterReducer.run(randomTokens(300, 16, 3), { budget: 20, iterations: 3, tolerance: 0, onProgress });
  assertStagesComplete(reports, ['seeding', 'iterations']);
  const seeding = reports.filter((r) => r.stage === 'seeding').map((r) => r.done);
  assert.deepEqual(
    seeding,
    Array.from({ length: 19 }, (_, i) => i + 2),
  );
  assert.deepEqual(
    reports.filter((r) => r.stage === 'iterations').map((r) => `${r.done}/${r.total}`),
    ['1/3', '2/3', '3/3'],
  );
});

test('divprune above one tile reports the nearest-neighbour pass (similarities) then its picks', async () => {
  const { reports, onProgress } = recorder();
  const n = 4200;
  const result = await divpruneReducer.run(randomTokens(n, 8, 5), { budget: 40, onProgress });
  assertStagesComplete(reports, ['nearest neighbours', 'picks']);
  const pass = reports.find((r) => r.stage === 'nearest neighbours')!;
  // The symmetric pass computes the upper block triangle: more than half the n² similarities, fewer than all.
  assert.ok(pass.total > (n * (n + 1)) / 2 && pass.total < n * n, `pass total ${pass.total}`);
  assert.equal(reports.at(-1)!.total, 40);
  assert.equal(result.keep!.length, 40);
});

test('divprune within one tile and cdpruner report their picks; no callback is fine', async () => {
  const tokens = randomTokens(200, 8, 11);
  const divprune = recorder();
  await divpruneReducer.run(tokens, { budget: 12, onProgress: divprune.onProgress });
  assertStagesComplete(divprune.reports, ['nearest neighbours', 'picks']);
  const cdpruner = recorder();
  await cdprunerReducer.run(tokens, { budget: 12, onProgress: cdpruner.onProgress });
  assert.deepEqual(
    cdpruner.reports.map((r) => `${r.stage} ${r.done}/${r.total}`),
    Array.from({ length: 12 }, (_, i) => `picks ${i + 1}/12`),
  );
  const silent = await cdprunerReducer.run(tokens, { budget: 12 });
  assert.equal(silent.keep!.length, 12);
});

test('reduce() refuses an onProgress that is not a function before any work', async () => {
  await assert.rejects(
    reduce(randomTokens(40, 4, 2), 'divprune', { budget: 4, onProgress: 'yes' as unknown as () => void }),
    /^UsageError: divprune: onProgress must be a function \(\{ stage, done, total \}\) => void, got "yes"$/,
  );
});
