import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  argmaxRows,
  cosineSimilarity,
  matmulABt,
  matrix,
  nativeTime,
  normalizeRows,
  squaredDistances,
  topK,
  topKSorted,
} from '../../core/linalg.js';
import { Rng } from '../../core/rng.js';

function randomMatrix(rows: number, cols: number, seed: number) {
  const rng = new Rng(seed);
  return matrix(
    rows,
    cols,
    Float32Array.from({ length: rows * cols }, () => rng.float() * 2 - 1),
  );
}

test('matmulABt: hand-computed 2×3 · (2×3)ᵀ on both paths', async () => {
  const a = matrix(2, 3, Float32Array.from([1, 2, 3, 4, 5, 6]));
  const b = matrix(2, 3, Float32Array.from([1, 0, -1, 2, 1, 0]));
  for (const path of ['ts', 'native'] as const) {
    const c = await matmulABt(a, b, path);
    assert.deepEqual([c.rows, c.cols], [2, 2]);
    assert.deepEqual(Array.from(c.data), [-2, 4, -2, 13], path);
    // Into the caller's array: the same values, in that array.
    const out = new Float32Array(4).fill(Number.NaN);
    const into = await matmulABt(a, b, path, out);
    assert.equal(into.data, out);
    assert.deepEqual(Array.from(out), [-2, 4, -2, 13], path);
  }
  await assert.rejects(
    matmulABt(a, b, 'native', new Float32Array(3)),
    /^ShapeError: matmulABt: out has 3 values, expected 2x2 = 4$/,
  );
});

test('native (onnxruntime) and plain-TS GEMM agree to 1e-4 relative on odd shapes', async () => {
  for (const [m, n, k] of [
    [37, 53, 129],
    [300, 17, 1024],
    [1, 64, 7],
  ] as const) {
    const a = randomMatrix(m, k, m);
    const b = randomMatrix(n, k, n + 1);
    const native = await matmulABt(a, b, 'native');
    const ts = await matmulABt(a, b, 'ts');
    let maxRel = 0;
    let scale = 0;
    for (const v of ts.data) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < ts.data.length; i++) maxRel = Math.max(maxRel, Math.abs(native.data[i]! - ts.data[i]!) / scale);
    assert.ok(maxRel < 1e-4, `${m}x${k}·(${n}x${k})ᵀ: max relative difference ${maxRel}`);
  }
});

test('matmulABt rejects mismatched inner dimensions', async () => {
  await assert.rejects(matmulABt(matrix(2, 3), matrix(2, 4)), /A is 2x3 and B is 2x4; inner dimensions differ/);
});

test('cosineSimilarity and squaredDistances match hand values', async () => {
  const a = matrix(2, 2, Float32Array.from([3, 4, 0, 2]));
  const b = matrix(2, 2, Float32Array.from([3, 4, 1, 0]));
  const cos = await cosineSimilarity(a, b);
  assert.deepEqual(
    Array.from(cos.data).map((v) => +v.toFixed(6)),
    [1, 0.6, 0.8, 0],
  );
  const dist = await squaredDistances(a, b);
  assert.deepEqual(Array.from(dist.data), [0, 20, 13, 5]);
  const self = await cosineSimilarity(randomMatrix(40, 50, 3), undefined, 'native');
  for (let i = 0; i < 40; i++) assert.ok(Math.abs(self.data[i * 40 + i]! - 1) < 1e-5);
});

test('normalizeRows leaves zero rows at zero; argmax and topK break ties towards the lower index', () => {
  const n = normalizeRows(matrix(2, 2, Float32Array.from([0, 0, 3, 4])));
  assert.deepEqual(
    Array.from(n.data).map((v) => +v.toFixed(6)),
    [0, 0, 0.6, 0.8],
  );
  const { index, value } = argmaxRows(matrix(2, 3, Float32Array.from([1, 5, 5, -1, -2, -3])));
  assert.deepEqual(Array.from(index), [1, 0]);
  assert.deepEqual(Array.from(value), [5, -1]);
  assert.deepEqual(Array.from(topK([3, 7, 7, 1, 9], 3)), [4, 1, 2]);
  assert.deepEqual(Array.from(topKSorted([3, 7, 7, 1, 9], 3)), [1, 2, 4]);
  assert.throws(() => topK([1, 2], 3), /k = 3 is outside \[0, 2\]/);
});

test('nativeTime counts onnxruntime runs only: one per native GEMM, none for the TS path', async () => {
  const a = randomMatrix(3, 4, 7);
  const before = nativeTime();
  await matmulABt(a, a, 'ts');
  assert.equal(nativeTime().runs, before.runs);
  await matmulABt(a, a, 'native');
  await matmulABt(a, a, 'native');
  const after = nativeTime();
  assert.equal(after.runs, before.runs + 2);
  assert.ok(after.ms > before.ms, `ms ${before.ms} → ${after.ms}`);
});
