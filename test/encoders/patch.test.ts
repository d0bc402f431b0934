import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPatchEncoder, negativeCosineToMean, PATCH_DESCRIPTOR_DIM } from '../../encoders/patch.js';
import type { RgbImage } from '../../encoders/types.js';
import { ShapeError, UsageError } from '../../core/errors.js';

function solid(size: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let p = 0; p < size * size; p++) data.set(rgb, p * 3);
  return { data, width: size, height: size };
}

test('patch encoder: 24×24 tokens of dimension 58 per 336 image, unit norm, deterministic', async () => {
  const encoder = createPatchEncoder();
  assert.equal(encoder.inputSize, 336);
  assert.equal(encoder.patchSize, 14);
  assert.equal(encoder.dim, PATCH_DESCRIPTOR_DIM);
  assert.equal(encoder.hasCls, false);
  const image: RgbImage = { data: new Uint8Array(336 * 336 * 3), width: 336, height: 336 };
  for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 2654435761) >>> 24;
  const [a] = await encoder.encode([image]);
  const [b] = await encoder.encode([image]);
  assert.equal(a!.rows, 24);
  assert.equal(a!.cols, 24);
  assert.equal(a!.features.length, 576 * 58);
  assert.deepEqual(a!.features, b!.features);
  assert.deepEqual(a!.scores, b!.scores);
  for (let i = 0; i < 576; i++) {
    let s = 0;
    for (let c = 0; c < 58; c++) s += a!.features[i * 58 + c]! ** 2;
    assert.ok(Math.abs(s - 1) < 1e-5, `token ${i} has squared norm ${s}`);
  }
});

test('patch encoder: solid red gives the hand-computed descriptor and scores of −1', async () => {
  const [tile] = await createPatchEncoder({ inputSize: 28, patchSize: 14 }).encode([solid(28, [255, 0, 0])]);
  const norm = Math.sqrt(1 + 0.25 * 0.25);
  const expected = new Float32Array(58);
  expected[0] = 1 / norm; // mean R
  expected[57] = 0.25 / norm; // bias
  for (let t = 0; t < 4; t++) {
    const got = tile!.features.subarray(t * 58, (t + 1) * 58);
    for (let c = 0; c < 58; c++)
      assert.ok(Math.abs(got[c]! - expected[c]!) < 1e-6, `token ${t} dim ${c}: ${got[c]} vs ${expected[c]}`);
    assert.ok(Math.abs(tile!.scores[t]! + 1) < 1e-6);
  }
});

test('patch encoder: a vertical edge fills orientation bin 0 of the right-hand cells', async () => {
  // 28×28, left 14 columns black, right 14 white: the edge sits between patches (0,0) and (0,1).
  const image = solid(28, [0, 0, 0]);
  for (let y = 0; y < 28; y++) for (let x = 14; x < 28; x++) image.data.set([255, 255, 255], (y * 28 + x) * 3);
  const [tile] = await createPatchEncoder({ inputSize: 28, patchSize: 14 }).encode([image]);
  // Patch (0,0): column 13 has gx = (1 − 0)/2 = 0.5 at orientation 0; 7 such pixels in each 49-pixel right cell.
  const hogValue = (2 * 0.5 * 7) / 49;
  const norm = Math.sqrt(2 * hogValue * hogValue + 0.0625);
  const f = tile!.features.subarray(0, 58);
  assert.ok(Math.abs(f[9 + 8]! - hogValue / norm) < 1e-6, `top-right cell bin 0: ${f[17]}`);
  assert.ok(Math.abs(f[9 + 24]! - hogValue / norm) < 1e-6, `bottom-right cell bin 0: ${f[33]}`);
  assert.equal(f[9]!, 0); // top-left cell has no gradient
  assert.equal(f[0]!, 0); // black
});

test('patch encoder: the odd patch out gets the highest score', async () => {
  const image = solid(56, [40, 90, 200]);
  for (let y = 14; y < 28; y++) for (let x = 28; x < 42; x++) image.data.set([250, 250, 20], (y * 56 + x) * 3);
  const [tile] = await createPatchEncoder({ inputSize: 56, patchSize: 14 }).encode([image]);
  let best = 0;
  for (let i = 1; i < 16; i++) if (tile!.scores[i]! > tile!.scores[best]!) best = i;
  assert.equal(best, 1 * 4 + 2);
});

test('negativeCosineToMean on a hand-computed case', () => {
  const s = negativeCosineToMean(Float32Array.of(1, 0, 1, 0, 0, 1), 3, 2);
  assert.ok(Math.abs(s[0]! + 2 / Math.sqrt(5)) < 1e-6);
  assert.ok(Math.abs(s[2]! + 1 / Math.sqrt(5)) < 1e-6);
});

test('patch encoder rejects wrong sizes and bad options', async () => {
  const encoder = createPatchEncoder({ inputSize: 28, patchSize: 14 });
  await assert.rejects(
    encoder.encode([solid(30, [0, 0, 0])]),
    (e: unknown) => e instanceof ShapeError && /must be 28x28 RGB .* got 30x30/.test(e.message),
  );
  assert.throws(() => createPatchEncoder({ inputSize: 30, patchSize: 14 }), UsageError);
});
