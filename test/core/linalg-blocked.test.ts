import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../core/errors.js';
import { checkFeatureSize, MAX_FEATURE_VALUES } from '../../core/linalg.js';
import {
  cosineGramNative,
  cosineRows,
  nearestCosineNeighbours,
  unitRowsNative,
  warmUpKernels,
} from '../../core/linalg-kernels.js';
import { randomTokens } from '../reducers/fixtures.js';

test('nearestCosineNeighbours: hand-computed cosines, duplicates, one token', async () => {
  // (1,0), (1,1), (0,3): nearest cosines 1/√2 for all three
  const h = Math.SQRT1_2;
  const unit = await unitRowsNative(Float32Array.of(1, 0, 1, 1, 0, 3), 3, 2);
  assert.deepEqual(Array.from(unit), Array.from(Float32Array.of(1, 0, h, h, 0, 1)));
  const { nearest } = await nearestCosineNeighbours(unit, 3, 2);
  assert.deepEqual(Array.from(nearest), Array.from(Float32Array.of(h, h, h)));
  // a duplicate's nearest neighbour is its twin (cos 1), never itself
  const { nearest: dup } = await nearestCosineNeighbours(
    await unitRowsNative(Float32Array.of(1, 0, 0, 1, 1, 0), 3, 2),
    3,
    2,
  );
  assert.deepEqual(Array.from(dup), [1, 0, 1]);
  assert.deepEqual(Array.from((await nearestCosineNeighbours(Float32Array.of(1, 0), 1, 2)).nearest), [
    Number.NEGATIVE_INFINITY,
  ]);
});

test('nearestCosineNeighbours in many small symmetric tiles equals the Gram matrix row maxima bit for bit', async () => {
  const { data, n, d } = randomTokens(700, 16, 4);
  const unit = await unitRowsNative(data, n, d);
  const { nearest: reference, gram } = await cosineGramNative(data, n, d);
  // tileValues 4000 → row blocks of 5–256 rows: every tile shape, the diagonal inside each
  for (const tileValues of [4000, 1 << 24]) {
    const { nearest, tiles } = await nearestCosineNeighbours(unit, n, d, tileValues, true);
    assert.deepEqual(nearest, reference, `tile ${tileValues}`);
    // the kept tiles are the upper block triangle of the Gram matrix, bit for bit
    for (const { start, rows, cols, values } of tiles)
      for (let r = 0; r < rows; r++)
        assert.deepEqual(
          values.subarray(r * cols, (r + 1) * cols),
          gram.subarray((start + r) * n + start, (start + r + 1) * n),
          `row ${start + r}`,
        );
    assert.equal(tiles.at(-1)!.start + tiles.at(-1)!.rows, n);
  }
});

test('cosineRows equals the chosen rows of the Gram matrix bit for bit; rejects rows outside [0, n)', async () => {
  const { data, n, d } = randomTokens(300, 24, 9);
  const { gram } = await cosineGramNative(data, n, d);
  const unit = await unitRowsNative(data, n, d);
  const rows = await cosineRows(unit, n, d, [299, 0, 17]);
  [299, 0, 17].forEach((i, r) =>
    assert.deepEqual(rows.subarray(r * n, (r + 1) * n), gram.subarray(i * n, (i + 1) * n), `row ${i}`),
  );
  await assert.rejects(cosineRows(unit, n, d, [300]), /cosineRows: row 300 is outside \[0, 300\)/);
});

test('checkFeatureSize: clear InputError naming n, d, the size and the limit, before any allocation', () => {
  assert.equal(MAX_FEATURE_VALUES, 2 ** 28);
  checkFeatureSize(100000, 1024, 'divprune');
  assert.throws(
    () => checkFeatureSize(700000, 1152, 'divprune'),
    (e: Error) =>
      e instanceof InputError &&
      e.message ===
        'divprune: n·d = 700000×1152 = 806,400,000 feature values (3.0 GiB of float32) exceeds the limit of 268,435,456 (1 GiB); reduce per segment or frame first',
  );
});

test('warmUpKernels sets up every kernel a reducer declares; the kernels then give the same answers', async () => {
  const { reducers } = await import('../../reducers/index.js');
  const declared = Object.values(reducers).flatMap((r) => [...(r.native ?? [])]);
  assert.ok(declared.includes('nearest_tile') && declared.includes('best_cosine_match'), declared.join(','));
  const ms = await warmUpKernels(declared);
  assert.ok(Number.isFinite(ms) && ms >= 0);
  const { nearest } = await nearestCosineNeighbours(
    await unitRowsNative(Float32Array.of(1, 0, 1, 1, 0, 3), 3, 2),
    3,
    2,
  );
  assert.deepEqual(Array.from(nearest), Array.from(Float32Array.of(Math.SQRT1_2, Math.SQRT1_2, Math.SQRT1_2)));
});
