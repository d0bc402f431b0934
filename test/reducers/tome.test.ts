import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tomeReducer } from '../../reducers/tome.js';
import { borrowFloat32, returnFloat32 } from '../../core/scratch.js';
import { assertClose, checkMergeInvariants, randomTokens, tokensFromRows } from './fixtures.js';

// A = {0, 2}, B = {1, 3}: cos(x0, x1) = 0.995 > cos(x2, x3) = 0.981.
const rows = [
  [1, 0],
  [1, 0.1],
  [0, 1],
  [0.2, 1],
];

test('tome, one merge: the A token with the most similar B merges into it by size-weighted mean', async () => {
  const tokens = tokensFromRows(rows);
  const result = await tomeReducer.run(tokens, { budget: 3 });
  assert.deepEqual(Array.from(result.assign!), [0, 0, 1, 2]);
  assertClose(result.tokens.data, [1, 0.05, 0, 1, 0.2, 1], 1e-7, 'features');
  assert.deepEqual(Array.from(result.tokens.size), [2, 1, 1]);
  assert.equal(result.stats.rounds, 1);
  checkMergeInvariants(tokens, result);
});

test('tome, r = ⌊n/2⌋: both A tokens merge in one round; sizes weight the average', async () => {
  const tokens = tokensFromRows(rows, { size: [3, 1, 1, 1] });
  const result = await tomeReducer.run(tokens, { budget: 2 });
  assert.deepEqual(Array.from(result.assign!), [0, 0, 1, 1]);
  // (3·(1,0) + 1·(1,0.1)) / 4 and ((0,1) + (0.2,1)) / 2
  assertClose(result.tokens.data, [1, 0.025, 0.1, 1], 1e-7, 'features');
  assert.deepEqual(Array.from(result.tokens.size), [4, 2]);
});

test('tome, several rounds: outputs stay in ascending order of their smallest origin; invariants hold', async () => {
  const tokens = randomTokens(300, 16, 7);
  const result = await tomeReducer.run(tokens, { budget: 20 });
  assert.equal(result.tokens.n, 20);
  // 300 → 150 → 75 → 38 → 20
  assert.equal(result.stats.rounds, 4);
  checkMergeInvariants(tokens, result);
  const firsts = result.tokens.origin.map((o) => o[0]!);
  for (let o = 1; o < firsts.length; o++) assert.ok(firsts[o]! > firsts[o - 1]!, 'ascending smallest origin');
  assert.equal(firsts[0], 0);
  // representative position = the destination token (a member that was merged into, never merged away)
  result.tokens.origin.forEach((o, k) => {
    const destination = result.representative![k]!;
    assert.ok(o.includes(destination));
    assert.equal(result.tokens.col[k], tokens.col[destination]);
  });
  const again = await tomeReducer.run(tokens, { budget: 20 });
  assert.deepEqual(again.assign, result.assign);
  // The running features live in pooled work buffers: NaN left in them by an earlier borrower changes nothing.
  const poisoned = borrowFloat32(300 * 16);
  poisoned.fill(Number.NaN);
  returnFloat32(poisoned);
  const afterPoison = await tomeReducer.run(tokens, { budget: 20 });
  assert.deepEqual(afterPoison.assign, result.assign);
  assert.deepEqual(afterPoison.tokens.data, result.tokens.data);
  const input = randomTokens(300, 16, 7);
  assert.deepEqual(tokens.data, input.data, 'the input features are never written or pooled');
});

test('tome: protected tokens never merge, in A or in B', async () => {
  const tokens = tokensFromRows(rows);
  const protectA = await tomeReducer.run(tokens, { budget: 3, protect: [0] });
  assert.deepEqual(Array.from(protectA.assign!), [0, 1, 2, 2]);
  const protectB = await tomeReducer.run(tokens, { budget: 3, protect: [1] });
  // x0 may only go to x3 (cos 0.196); x2 → x3 (0.981) wins.
  assert.deepEqual(Array.from(protectB.assign!), [0, 1, 2, 2]);
  const big = randomTokens(64, 8, 3);
  const kept = [0, 5, 6, 63];
  const result = await tomeReducer.run(big, { budget: 10, protect: kept });
  checkMergeInvariants(big, result);
  for (const p of kept)
    assert.deepEqual(Array.from(result.tokens.origin[result.assign![p]!]!), [p], `token ${p} stays alone`);
  await assert.rejects(
    tomeReducer.run(tokens, { budget: 1, protect: [0, 1, 2, 3] }),
    /tome: cannot reach budget 1: 4 tokens remain and none can merge/,
  );
  await assert.rejects(
    tomeReducer.run(tokens, { budget: 2, protect: [4] }),
    /tome: protect index must be an integer in \[0, 3\], got 4/,
  );
});

test('tome on 8200 tokens (A×B computed in row blocks) still finds the globally best pair', async () => {
  const tokens = randomTokens(8200, 8, 13);
  // Plant an exact duplicate: A token 8190 (A row 4095; blocks hold 4092 A rows) equals B token 35.
  tokens.data.copyWithin(8190 * 8, 35 * 8, 36 * 8);
  const result = await tomeReducer.run(tokens, { budget: 8199 });
  assert.equal(result.assign![8190], result.assign![35]);
  assert.deepEqual(Array.from(result.tokens.origin[result.assign![35]!]!), [35, 8190]);
  assert.equal(result.tokens.n, 8199);
});

test('tome, two rounds: round 2 splits A/B over the ascending-smallest-origin order (not the reference [unmerged A…, B…])', async () => {
  // Unit vectors at these angles (degrees). Round 1 (r = min(8 − 3, 4) = 4): A = 0, 2, 4, 6 pick their closest B:
  // 31°→109° (5), 116°→109° (5), 90°→109° (5), 174°→164° (3); all four merge → {1}, {3,6}, {0,2,4,5}, {7}.
  // Ordered by smallest origin: [{0,2,4,5}, {1}, {3,6}, {7}], so round 2 (r = 1) has A = {0,2,4,5} (mean ≈ 88°),
  // {3,6} (≈ 169°) and B = {1} (146°), {7} (131°): the best edge is {3,6}→{1} (23°), giving {0,2,4,5}, {1,3,6}, {7}.
  // The reference's order [{1}, {3,6}, {0,2,4,5}, {7}] would instead merge {1}→{7} (15°).
  const angles = [31, 146, 116, 164, 90, 109, 174, 131];
  const tokens = tokensFromRows(angles.map((a) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)]));
  const result = await tomeReducer.run(tokens, { budget: 3 });
  assert.equal(result.stats.rounds, 2);
  assert.deepEqual(Array.from(result.assign!), [0, 1, 0, 1, 0, 0, 1, 2]);
  assert.deepEqual(
    result.tokens.origin.map((o) => Array.from(o)),
    [[0, 2, 4, 5], [1, 3, 6], [7]],
  );
  checkMergeInvariants(tokens, result);
});
