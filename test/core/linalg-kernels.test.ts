import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  alternateBestMatch,
  bestCosineMatch,
  cosineGramNative,
  cosineGramSymmetric,
} from '../../core/linalg-kernels.js';
import { assertClose, randomTokens } from '../reducers/fixtures.js';

test('bestCosineMatch: cosine arg-max per row, first index on ties, −∞ bias excludes columns, zero rows give 0', async () => {
  const a = Float32Array.of(3, 0, 0, 2, 1, 1, 0, 0);
  const b = Float32Array.of(1, 0, 0, 5, 2, 2);
  const open = await bestCosineMatch(a, 4, b, 3, 2, new Float32Array(3));
  // (3,0) → column 0 (cos 1); (0,2) → column 1 (cos 1); (1,1) → columns 2 (cos 1); (0,0) → all 0, first index
  assert.deepEqual(Array.from(open.index), [0, 1, 2, 0]);
  assertClose(open.best, [1, 1, 1, 0], 1e-6, 'best');
  const masked = await bestCosineMatch(a, 4, b, 3, 2, Float32Array.of(0, 0, Number.NEGATIVE_INFINITY));
  // (1,1) may no longer pick column 2: columns 0 and 1 tie at cos √½ → the first
  assert.deepEqual(Array.from(masked.index), [0, 1, 0, 0]);
  assertClose(masked.best, [1, 1, Math.SQRT1_2, 0], 1e-6, 'masked best');
  await assert.rejects(
    bestCosineMatch(a, 4, b, 2, 2, new Float32Array(2)),
    /bestCosineMatch: expected A \[4, 2\], B \[2, 2\]/,
  );
});

test('cosineGramNative: cosine matrix and the largest off-diagonal similarity per row', async () => {
  // (1,0), (1,1), (0,3): cosines 1/√2 between 0–1 and 1–2, 0 between 0–2
  const { gram, nearest } = await cosineGramNative(Float32Array.of(1, 0, 1, 1, 0, 3), 3, 2);
  const h = Math.SQRT1_2;
  assertClose(gram, [1, h, 0, h, 1, h, 0, h, 1], 1e-6, 'gram');
  assertClose(nearest, [h, h, h], 1e-6, 'nearest');
  const single = await cosineGramNative(Float32Array.of(2, 0), 1, 2);
  assert.equal(single.nearest[0], Number.NEGATIVE_INFINITY);
  // duplicates: the nearest other token is the duplicate (cos 1), whichever of the two TopK lists first
  const dup = await cosineGramNative(Float32Array.of(1, 0, 1, 0, 0, 1), 3, 2);
  assertClose(dup.nearest, [1, 1, 0], 1e-6, 'duplicates');
});

test('alternateBestMatch: even rows against odd rows, the same values as bestCosineMatch on the split rows, in one block or several', async () => {
  // Rows (3,0) (1,0) (0,2) (0,5) (1,1): A = rows 0, 2, 4 and B = rows 1, 3 — (1,1) ties at cos √½ → the first B
  const x = Float32Array.of(3, 0, 1, 0, 0, 2, 0, 5, 1, 1);
  const small = await alternateBestMatch(x, 5, 2);
  assert.deepEqual(Array.from(small.index), [0, 1, 0]);
  assertClose(small.best, [1, 1, Math.SQRT1_2], 1e-6, 'best');
  const masked = await alternateBestMatch(x, 5, 2, Float32Array.of(Number.NEGATIVE_INFINITY, 0));
  assert.deepEqual(Array.from(masked.index), [1, 1, 1]);
  assertClose(masked.best, [0, 1, Math.SQRT1_2], 1e-6, 'masked best');
  const { n, d, data } = randomTokens(301, 7, 4);
  const a = new Float32Array(151 * d);
  const b = new Float32Array(150 * d);
  for (let i = 0; i < n; i++) (i % 2 ? b : a).set(data.subarray(i * d, (i + 1) * d), (i >> 1) * d);
  const bias = Float32Array.from({ length: 150 }, (_, j) => (j % 5 === 0 ? Number.NEGATIVE_INFINITY : 0));
  for (const withBias of [undefined, bias]) {
    const reference = await bestCosineMatch(a, 151, b, 150, d, withBias ?? new Float32Array(150));
    // 1000 similarities per tile: A runs in blocks of 6 rows against B normalised once
    for (const tile of [1 << 24, 1000]) {
      const got = await alternateBestMatch(data, n, d, withBias, tile);
      assert.deepEqual(got.index, reference.index, `tile ${tile}, bias ${withBias !== undefined}`);
      assert.deepEqual(got.best, reference.best, `tile ${tile}, bias ${withBias !== undefined}`);
    }
  }
  await assert.rejects(
    alternateBestMatch(x, 1, 2),
    /alternateBestMatch: expected X \[1, 2\] with m ≥ 2; got 10 values/,
  );
  await assert.rejects(
    alternateBestMatch(x, 5, 2, new Float32Array(3)),
    /alternateBestMatch: expected X \[5, 2\] with m ≥ 2 and bias \[2\]; got 10 values and a bias of 3/,
  );
});

test('cosineGramSymmetric: the cosine matrix from its upper block triangle equals cosineGramNative value for value', async () => {
  // 257 and 513: a 1-row last block would take another Gemm path, so it joins the block before it; 700: three blocks
  for (const n of [1, 3, 257, 513, 700]) {
    const { data } = randomTokens(n, 7, n);
    if (n > 3) data.copyWithin(5 * 7, 0, 7); // a duplicate row: cos 1 off the diagonal
    const reference = (await cosineGramNative(data, n, 7)).gram;
    const gram = await cosineGramSymmetric(data, n, 7);
    assert.equal(gram.length, n * n);
    for (let i = 0; i < n * n; i++) assert.ok(Object.is(gram[i], reference[i]), `n = ${n}, value ${i}`);
  }
  await assert.rejects(
    cosineGramSymmetric(new Float32Array(5), 2, 3),
    /cosineGramSymmetric: expected X \[2, 3\] with n ≥ 1, got 5 values/,
  );
});
