import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../core/errors.js';
import { createTokenSet } from '../../core/tokenset.js';
import { poolReducer } from '../../reducers/pool.js';
import { anyresTokens, assertClose, checkMergeInvariants, randomTokens, tokensFromRows } from './fixtures.js';

/** A side×side grid with d = 1 and token i holding the value i. */
function grid(side: number) {
  return tokensFromRows(Array.from({ length: side * side }, (_, i) => [i]));
}

test('pool 2×2 on a 4×4 grid: hand-computed means, raster cells, top-left metadata', async () => {
  const tokens = grid(4);
  const result = await poolReducer.run(tokens, { ratio: 0.25 });
  assert.equal(result.tokens.n, 4);
  assertClose(result.tokens.data, [2.5, 4.5, 10.5, 12.5], 1e-6, 'means');
  assert.deepEqual(Array.from(result.assign!), [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]);
  assert.deepEqual(Array.from(result.tokens.row), [0, 0, 2, 2]);
  assert.deepEqual(Array.from(result.tokens.col), [0, 2, 0, 2]);
  assert.deepEqual(Array.from(result.tokens.origin[1]!), [2, 3, 6, 7]);
  assert.deepEqual(Array.from(result.tokens.size), [4, 4, 4, 4]);
  assert.deepEqual(result.stats.kernel, [2, 2]);
  checkMergeInvariants(tokens, result);
});

test('pool on a grid not divisible by k: ⌈rows/k⌉×⌈cols/k⌉ cells, each the mean of the tokens inside', async () => {
  const tokens = grid(5);
  const result = await poolReducer.run(tokens, { ratio: 0.25, kernel: 2 });
  assert.equal(result.tokens.n, 9);
  // cells: [0,1,5,6] [2,3,7,8] [4,9] [10,11,15,16] [12,13,17,18] [14,19] [20,21] [22,23] [24]
  assertClose(result.tokens.data, [3, 5, 6.5, 13, 15, 16.5, 20.5, 22.5, 24], 1e-6, 'means');
  assert.deepEqual(Array.from(result.tokens.size), [4, 4, 2, 4, 4, 2, 2, 2, 1]);
  checkMergeInvariants(tokens, result);
});

test('pool kernel: the largest cell count within the budget, most square first — square for the VTC-Bench ratios on 24×24', async () => {
  const tokens24 = grid(24);
  // [ratio, kernel, count]: budget round(576·R) = 288, 144, 64, 36
  const cases24: Array<[number, [number, number], number]> = [
    [0.5, [1, 2], 288],
    [0.25, [2, 2], 144],
    [0.1111, [3, 3], 64],
    [0.0625, [4, 4], 36],
  ];
  for (const [ratio, kernel, count] of cases24) {
    const result = await poolReducer.run(tokens24, { ratio });
    assert.deepEqual(result.stats.kernel, kernel, `R = ${ratio}`);
    assert.equal(result.tokens.n, count, `R = ${ratio}`);
    checkMergeInvariants(tokens24, result);
  }
  // 20×20: budget round(400·R). R = 0.1111 → 44: 3×3 would give 7·7 = 49 > 44; the best count within 44 is 40,
  // reached by 2×5, 5×2, 1×10 and 10×1 → most square with the smaller row kernel: 2×5 (10 × 4 cells).
  const tokens = grid(20);
  const cases: Array<[number, [number, number], number]> = [
    [0.25, [2, 2], 100],
    [0.1111, [2, 5], 40],
    [0.0625, [4, 4], 25],
    [0.04, [5, 5], 16],
    [0.01, [10, 10], 4],
  ];
  for (const [ratio, kernel, count] of cases) {
    const result = await poolReducer.run(tokens, { ratio });
    assert.deepEqual(result.stats.kernel, kernel, `R = ${ratio}`);
    assert.equal(result.tokens.n, count, `R = ${ratio}`);
    assert.ok(result.tokens.n <= (result.stats.budget as number), `R = ${ratio}: within the budget`);
    checkMergeInvariants(tokens, result);
  }
  // 10×10 cell 0 holds rows 0..9, cols 0..9: mean = 9·20/2 + 4.5 = 94.5
  const k10 = await poolReducer.run(tokens, { ratio: 0.01 });
  assertClose(k10.tokens.data, [94.5, 104.5, 294.5, 304.5], 1e-4, 'k = 10 means');
  // an explicit kernel decides the count, whatever the budget
  assert.equal((await poolReducer.run(tokens, { ratio: 0.25, kernel: 4 })).tokens.n, 25);
  // 1×2 cells on a 4×4 grid: means of horizontal pairs
  const pairs = await poolReducer.run(grid(4), { ratio: 0.5 });
  assertClose(pairs.tokens.data, [0.5, 2.5, 4.5, 6.5, 8.5, 10.5, 12.5, 14.5], 1e-6, '1×2 means');
});

test('pool on a tile that is not a full rectangle uses square kernels: the smallest k whose occupied cells fit', async () => {
  // the 2×2-pooled tokens of a 4×4 grid sit at rows/cols {0, 2}: k = 2 still leaves 4 occupied cells, k = 3 leaves 1
  const pooled = await poolReducer.run(grid(4), { ratio: 0.25 });
  const again = await poolReducer.run(pooled.tokens, { budget: 1 });
  assert.deepEqual(again.stats.kernel, [3, 3]);
  assert.equal(again.tokens.n, 1);
  assert.equal(again.tokens.size[0], 16);
});

test('pool on an AnyRes bundle works per tile; a budget is split evenly over tiles, remainder first', async () => {
  const tokens = anyresTokens({ imageWidth: 672, imageHeight: 672, gridRows: 2, gridCols: 2, patch: 4, d: 3 });
  const byRatio = await poolReducer.run(tokens, { ratio: 0.25 });
  assert.equal(byRatio.tokens.n, 20);
  assert.deepEqual(Array.from(byRatio.tokens.source), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]);
  assert.equal(byRatio.assign![16], 4); // first token of crop 0 → first cell of tile 1
  checkMergeInvariants(tokens, byRatio);
  // budget 22 over 5 tiles → [5, 5, 4, 4, 4]; on a 4×4 tile no kernel gives 5 cells, so 4 (2×2) for all
  const byBudget = await poolReducer.run(tokens, { budget: 22 });
  assert.deepEqual(byBudget.stats.kernels, [
    [2, 2],
    [2, 2],
    [2, 2],
    [2, 2],
    [2, 2],
  ]);
  // budget 5 → one token per tile → k = 4
  const one = await poolReducer.run(tokens, { budget: 5 });
  assert.deepEqual(one.stats.kernels, [
    [4, 4],
    [4, 4],
    [4, 4],
    [4, 4],
    [4, 4],
  ]);
  assert.equal(one.tokens.n, 5);
  checkMergeInvariants(tokens, one);
});

test('pool carries the mean score and rejects bad options', async () => {
  const tokens = createTokenSet({ data: Float32Array.of(1, 2, 3, 4), n: 4, d: 1, score: Float32Array.of(1, 3, 5, 7) });
  const result = await poolReducer.run(tokens, { ratio: 0.25 });
  assertClose(result.tokens.score!, [4], 1e-6, 'score');
  await assert.rejects(
    poolReducer.run(tokens, { ratio: 0.25, kernel: 0 }),
    (e: Error) => e instanceof UsageError && /pool: kernel must be an integer ≥ 1, got 0/.test(e.message),
  );
  await assert.rejects(
    poolReducer.run(tokens, { budget: 5 }),
    /pool: budget 5 is larger than the number of input tokens n = 4/,
  );
  await assert.rejects(poolReducer.run(tokens, { ratio: -0.5 }), /pool: ratio must be in \(0, 1\]/);
});

test('pool: the native path (raster grids) and the JS path (any token order) agree', async () => {
  const raster = randomTokens(64, 5, 8);
  // The same tokens in reverse order, keeping their grid positions: not raster → JS path.
  const order = Array.from({ length: 64 }, (_, i) => 63 - i);
  const reversed = createTokenSet({
    data: Float32Array.from(order.flatMap((i) => Array.from(raster.data.subarray(i * 5, i * 5 + 5)))),
    n: 64,
    d: 5,
    row: Int32Array.from(order, (i) => raster.row[i]!),
    col: Int32Array.from(order, (i) => raster.col[i]!),
  });
  for (const ratio of [0.25, 0.0625]) {
    const a = await poolReducer.run(raster, { ratio });
    const b = await poolReducer.run(reversed, { ratio });
    assertClose(b.tokens.data, a.tokens.data, 1e-6, `R = ${ratio}`);
    order.forEach((i, j) => assert.equal(b.assign![j], a.assign![i]));
    assert.deepEqual(b.tokens.row, a.tokens.row, 'top-left representative in both');
    assert.deepEqual(b.tokens.col, a.tokens.col);
    checkMergeInvariants(raster, a);
    checkMergeInvariants(reversed, b);
  }
});
