import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getReducer, reduce, reducerNames, runReducer, unpaddedIndices } from '../../reducers/index.js';
import { anyresTokens, randomTokens } from './fixtures.js';

// 640×480 on a 2×2 grid of 4×4 tiles: the image fills canvas rows 1..6 of 8 (unpad: new_h = int(480·8/640) = 6,
// padding (8 − 6) // 2 = 1), so each crop has one padding row: crops 0, 1 lose local row 0, crops 2, 3 local row 3.
const wide = () =>
  anyresTokens({
    imageWidth: 640,
    imageHeight: 480,
    gridRows: 2,
    gridCols: 2,
    patch: 4,
    d: 6,
    seed: 3,
    score: Float32Array.from({ length: 80 }, (_, i) => (i * 37) % 11),
  });

test('unpaddedIndices: the thumbnail and the unpadded crop rows, in input order', () => {
  const valid = unpaddedIndices(wide())!;
  assert.equal(valid.length, 64);
  const crop = (c: number, row: number) => Array.from({ length: 4 }, (_, col) => 16 + 16 * c + 4 * row + col);
  const expected = [
    ...Array.from({ length: 16 }, (_, i) => i),
    ...[1, 2, 3].flatMap((r) => crop(0, r)),
    ...[1, 2, 3].flatMap((r) => crop(1, r)),
    ...[0, 1, 2].flatMap((r) => crop(2, r)),
    ...[0, 1, 2].flatMap((r) => crop(3, r)),
  ];
  assert.deepEqual(Array.from(valid), expected);
  // an image that fills its canvas has no padding; a plain token set has no layout at all
  assert.equal(
    unpaddedIndices(anyresTokens({ imageWidth: 672, imageHeight: 672, gridRows: 2, gridCols: 2, patch: 4, d: 2 })),
    undefined,
  );
  assert.equal(unpaddedIndices(randomTokens(16, 2, 1)), undefined);
});

test('every reducer on a padded bundle works on the valid tokens only: no kept or merged padding, n_in = 64, n_padding = 16', async () => {
  const tokens = wide();
  const padding = new Set(Array.from({ length: 80 }, (_, i) => i).filter((i) => !unpaddedIndices(tokens)!.includes(i)));
  assert.equal(padding.size, 16);
  // Video methods (evs, fastvid) need frame sources, not a bundle.
  for (const name of reducerNames().filter((m) => getReducer(m).scope !== 'video')) {
    const run = await runReducer(getReducer(name), tokens, { ratio: 0.25, seed: 1 });
    assert.deepEqual([run.n_in, run.n_padding], [64, 16], name);
    for (let o = 0; o < run.reduction.tokens.n; o++) {
      for (const origin of run.reduction.tokens.origin[o]!)
        assert.ok(!padding.has(origin), `${name}: output ${o} covers padding token ${origin}`);
    }
    const covered = run.reduction.tokens.size.reduce((a, b) => a + b, 0);
    if (getReducer(name).kind === 'merge' && name !== 'visionzip')
      assert.equal(covered, 64, `${name}: merged sizes sum to the valid tokens`);
    if (run.reduction.keep)
      for (const k of run.reduction.keep) assert.ok(!padding.has(k), `${name}: keeps padding token ${k}`);
    if (run.reduction.assign) {
      assert.equal(run.reduction.assign.length, 80, name);
      run.reduction.assign.forEach((a, i) => assert.equal(a === -1, padding.has(i), `${name}: assign[${i}] = ${a}`));
    }
    assert.ok(run.n_out <= run.budget, `${name}: ${run.n_out} within the budget ${run.budget}`);
    assert.deepEqual(run.warnings, [], name);
  }
});

test('a budget means the same for every method: a share of n_in; GlobalCom² gets it as budget / n_in', async () => {
  const tokens = wide();
  const random = await runReducer(getReducer('random'), tokens, { budget: 16 });
  assert.deepEqual([random.budget, random.n_out, random.ratio], [16, 16, 0.25]);
  const gc = await runReducer(getReducer('globalcom2'), tokens, { budget: 16 });
  assert.equal(gc.ratio, 0.25);
  assert.equal(gc.reduction.stats.ratio, 0.25);
  await assert.rejects(
    runReducer(getReducer('random'), tokens, { budget: 65 }),
    /random: budget 65 is larger than the number of input tokens n = 64/,
  );
});

test('an output above the budget is a warning, never silent; reduce() reports the shared counts in stats', async () => {
  const grid = randomTokens(64, 2, 5);
  const pool = await runReducer(getReducer('pool'), grid, { ratio: 0.25, kernel: 1 });
  assert.equal(pool.n_out, 64);
  assert.deepEqual(pool.warnings, [
    'pool: kept 64 tokens, more than the budget 16 (the explicit --kernel 1 decides the count)',
  ]);
  const viaReduce = await reduce(wide(), 'random', { ratio: 0.5 });
  assert.deepEqual(
    [viaReduce.stats.n_in, viaReduce.stats.n_padding, viaReduce.stats.budget, viaReduce.tokens.n],
    [64, 16, 32, 32],
  );
});

test('representatives of a merge on a padded bundle index the input tokens (not the valid subset)', async () => {
  const tokens = wide();
  const run = await runReducer(getReducer('pool'), tokens, { ratio: 0.25 });
  const representative = run.reduction.representative!;
  assert.equal(representative.length, run.n_out);
  for (let o = 0; o < run.n_out; o++) {
    const input = representative[o]!;
    assert.equal(run.reduction.assign![input], o, `output ${o}: its representative ${input} is one of its members`);
    assert.equal(run.reduction.tokens.row[o], tokens.row[input]);
    assert.equal(run.reduction.tokens.source[o], tokens.source[input]);
  }
});

test('every method refuses features beyond the size limit before it runs, naming the size and the limit', async () => {
  // Only n and d are read before the refusal, so the set needs no real feature buffer.
  const huge = { ...randomTokens(4, 2, 1), n: 300_000, d: 1024 };
  for (const name of reducerNames()) {
    await assert.rejects(
      runReducer(getReducer(name), huge, { ratio: 0.1 }),
      (e: Error & { code?: string }) =>
        e.code === 'E_TOO_LARGE' &&
        e.message ===
          `${name}: n·d = 300000×1024 = 307,200,000 feature values (1.1 GiB of float32) exceeds the limit of 268,435,456 (1 GiB); reduce per segment or frame first`,
    );
  }
});

test("a method whose own rule keeps more than asked says so: evs keeps at least one frame's worth", async () => {
  const video = randomTokens(4 * 9, 3, 5);
  video.sources = Array.from({ length: 4 }, (_, f) => ({
    kind: 'frame' as const,
    index: f,
    rows: 3,
    cols: 3,
    time: f,
  }));
  video.source = Int32Array.from({ length: 36 }, (_, i) => Math.floor(i / 9));
  video.row = Int32Array.from({ length: 36 }, (_, i) => Math.floor((i % 9) / 3));
  video.col = Int32Array.from({ length: 36 }, (_, i) => i % 3);
  const run = await runReducer(getReducer('evs'), video, { budget: 4 });
  assert.equal(run.n_out, 9);
  assert.deepEqual(run.warnings, [
    "evs: the method's own budget rule keeps 9 tokens, more than the 4 asked for (docs/methods.md: at least one frame)",
  ]);
});
