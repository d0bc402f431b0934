import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { InputError, ShapeError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { NORMALIZATION_PRESETS } from '../../encoders/image.js';
import { createOnnxEncoder, ONNX_ENCODER_PRESETS, resolveOnnxConfig } from '../../encoders/onnx.js';
import { negativeCosineToMean } from '../../encoders/patch.js';
import type { RgbImage } from '../../encoders/types.js';
import { referenceForward, writeTinyVit, type TinyVitSpec } from './tiny-vit.js';

const root = await mkdtemp(join(tmpdir(), 'vtc-onnx-'));
after(() => rm(root, { recursive: true, force: true }));

const base: TinyVitSpec = { inputSize: 28, patchSize: 7, dim: 8, heads: 2, seed: 7, embed: 'conv', cls: true };
const clip = NORMALIZATION_PRESETS.clip;

function randomImages(count: number, size = 28, seed = 3): RgbImage[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => ({
    data: Uint8Array.from({ length: size * size * 3 }, () => rng.int(256)),
    width: size,
    height: size,
  }));
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++)
    assert.ok(
      Math.abs(got[i]! - want[i]!) <= tol * Math.max(1, Math.abs(want[i]!)),
      `${what}[${i}]: ${got[i]} vs ${want[i]}`,
    );
}

test('Conv-embedded tiny ViT: features, CLS vector and pre-softmax CLS scores match the TS reference (1e-4)', async () => {
  const dir = join(root, 'conv');
  const weights = await writeTinyVit(dir, base, {
    normalization: 'clip',
    features: 'features',
    attention: 'attention_logits',
    batchSize: 2,
  });
  const encoder = await createOnnxEncoder(dir, { threads: 1 });
  assert.equal(encoder.hasCls, true);
  assert.equal(encoder.dim, 8);
  const images = randomImages(3);
  const tiles = await encoder.encode(images);
  await encoder.dispose();
  assert.equal(tiles.length, 3);
  for (const [i, tile] of tiles.entries()) {
    const ref = referenceForward(base, weights, images[i]!.data, clip);
    assert.deepEqual([tile.rows, tile.cols, tile.dim], [4, 4, 8]);
    assertClose(tile.clsToken!, ref.features.subarray(0, 8), 1e-4, `tile ${i} cls`);
    assertClose(tile.features, ref.features.subarray(8), 1e-4, `tile ${i} features`);
    assertClose(tile.scores, ref.clsRow, 1e-4, `tile ${i} scores`);
  }
});

test('MatMul-embedded tiny ViT with q/k outputs ([B,T,H·dh] and [B,H,T,dh]) gives the same scores', async () => {
  const spec: TinyVitSpec = { ...base, embed: 'matmul', seed: 11 };
  const images = randomImages(2, 28, 5);
  for (const [name, query, key, heads] of [
    ['qk3', 'q', 'k', 2],
    ['qk4', 'q_bhtd', 'k_bhtd_src', undefined],
  ] as const) {
    const dir = join(root, name);
    const weights = await writeTinyVit(dir, spec, {
      normalization: 'imagenet',
      query,
      key,
      ...(heads ? { heads } : {}),
    });
    const encoder = await createOnnxEncoder(dir);
    const tiles = await encoder.encode(images);
    await encoder.dispose();
    for (const [i, tile] of tiles.entries()) {
      const ref = referenceForward(spec, weights, images[i]!.data, NORMALIZATION_PRESETS.imagenet);
      assertClose(tile.features, ref.features.subarray(8), 1e-4, `${name} features`);
      assertClose(tile.scores, ref.clsRow, 1e-4, `${name} scores`);
    }
  }
});

test('softmax-probability output: scores equal the pre-softmax row minus one constant per tile', async () => {
  const dir = join(root, 'probs');
  const weights = await writeTinyVit(dir, base, { attention: 'attention_probs', attentionKind: 'probs' });
  const encoder = await createOnnxEncoder(dir);
  const [image] = randomImages(1, 28, 9);
  const [tile] = await encoder.encode([image!]);
  await encoder.dispose();
  const ref = referenceForward(base, weights, image!.data, clip);
  const shift = tile!.scores[0]! - ref.clsRow[0]!;
  assert.ok(shift < 0, 'log-probabilities sit below the logits');
  assertClose(
    Array.from(tile!.scores, (s) => s - shift),
    ref.clsRow,
    1e-4,
    'shifted scores',
  );
});

test('SigLIP-like tower without CLS: scores are −cos(x_i, mean)', async () => {
  const spec: TinyVitSpec = { ...base, cls: false, seed: 21 };
  const dir = join(root, 'nocls');
  const weights = await writeTinyVit(dir, spec, { normalization: 'siglip' });
  const encoder = await createOnnxEncoder(dir);
  assert.equal(encoder.hasCls, false);
  const [image] = randomImages(1, 28, 13);
  const [tile] = await encoder.encode([image!]);
  await encoder.dispose();
  const ref = referenceForward(spec, weights, image!.data, NORMALIZATION_PRESETS.siglip);
  assert.equal(tile!.clsToken, undefined);
  assertClose(tile!.features, ref.features, 1e-4, 'features');
  assertClose(tile!.scores, negativeCosineToMean(ref.features, 16, 8), 1e-4, 'scores');
});

test('a static batch dimension: batches follow it, short batches are padded, impossible overrides are refused', async () => {
  for (const fixedBatch of [1, 2]) {
    const spec: TinyVitSpec = { ...base, fixedBatch, seed: 30 + fixedBatch };
    const dir = join(root, `fixed${fixedBatch}`);
    const weights = await writeTinyVit(dir, spec, { attention: 'attention_logits', batchSize: 4 });
    const encoder = await createOnnxEncoder(dir);
    const images = randomImages(3, 28, 17);
    const tiles = await encoder.encode(images);
    await encoder.dispose();
    assert.equal(tiles.length, 3);
    for (const [i, tile] of tiles.entries())
      assertClose(
        tile.scores,
        referenceForward(spec, weights, images[i]!.data, clip).clsRow,
        1e-4,
        `batch ${fixedBatch} tile ${i}`,
      );
  }
  await assert.rejects(
    createOnnxEncoder(join(root, 'fixed1'), { batchSize: 2 }),
    /has a fixed batch of 1; batch size 2 is impossible/,
  );
});

test('CLS tower without attention outputs (a plain HF export): CLS vector kept, scores fall back to −cos', async () => {
  const dir = join(root, 'cls-noattn');
  const weights = await writeTinyVit(dir, { ...base, seed: 41 }, { features: 'features' });
  const encoder = await createOnnxEncoder(dir);
  assert.equal(encoder.hasCls, false, 'scores are not CLS attention');
  const [image] = randomImages(1, 28, 23);
  const [tile] = await encoder.encode([image!]);
  await encoder.dispose();
  const ref = referenceForward({ ...base, seed: 41 }, weights, image!.data, clip);
  assertClose(tile!.clsToken!, ref.features.subarray(0, 8), 1e-4, 'cls');
  assertClose(tile!.scores, negativeCosineToMean(ref.features.subarray(8), 16, 8), 1e-4, 'scores');
});

test('half-precision export: float16 pixels in, float16 features and attention out (agreement at fp16 precision)', async () => {
  const spec: TinyVitSpec = { ...base, float16: true, seed: 51 };
  const dir = join(root, 'fp16');
  const weights = await writeTinyVit(dir, spec, { features: 'features_fp16', attention: 'attention_logits_fp16' });
  const encoder = await createOnnxEncoder(dir);
  const images = randomImages(2, 28, 29);
  const tiles = await encoder.encode(images);
  await encoder.dispose();
  for (const [i, tile] of tiles.entries()) {
    const ref = referenceForward(spec, weights, images[i]!.data, clip);
    assert.ok(tile.features instanceof Float32Array);
    assertClose(tile.features, ref.features.subarray(8), 2e-2, `fp16 features ${i}`);
    assertClose(tile.scores, ref.clsRow, 2e-2, `fp16 scores ${i}`);
  }
});

test('presets fill the tower facts; config errors name the field', async () => {
  const l14 = resolveOnnxConfig({ preset: 'clip-vit-l-14-336', attention: 'attn' });
  assert.deepEqual([l14.inputSize, l14.patchSize, l14.resize, l14.hasCls, l14.heads], [336, 14, 'shortest', true, 16]);
  assert.deepEqual(l14.normalization, NORMALIZATION_PRESETS.clip);
  const b32 = resolveOnnxConfig({ preset: 'clip-vit-b-32' });
  assert.deepEqual([b32.inputSize, b32.patchSize], [224, 32]);
  const siglip = resolveOnnxConfig({ preset: 'siglip-so400m-384' });
  assert.deepEqual([siglip.inputSize, siglip.patchSize, siglip.hasCls], [384, 14, false]);
  assert.deepEqual(siglip.normalization, NORMALIZATION_PRESETS.siglip);
  assert.equal(Object.keys(ONNX_ENCODER_PRESETS).length, 3);
  assert.throws(() => resolveOnnxConfig({ inputSize: 28 }), /give inputSize and patchSize/);
  assert.throws(() => resolveOnnxConfig({ inputSize: 6, patchSize: 7 }), /inputSize 6 is smaller than patchSize 7/);
  assert.throws(() => resolveOnnxConfig({ preset: 'clip-vit-b-32', query: 'q' }), /"query" and "key" go together/);
  assert.throws(() => resolveOnnxConfig({ preset: 'siglip-so400m-384', attention: 'a' }), /need a CLS token/);
  assert.throws(
    () => resolveOnnxConfig({ preset: 'clip-vit-b-32', batchSize: 0 }),
    (e: unknown) => e instanceof InputError && /batchSize/.test(e.message),
  );
  assert.throws(() => resolveOnnxConfig({ preset: 'nope' }), /preset/);
});

test('model directory errors: missing dir, missing config, bad output name, wrong token count', async () => {
  await assert.rejects(
    createOnnxEncoder(join(root, 'absent')),
    /encoder not found \(expected "patch" or a model directory/,
  );
  const empty = join(root, 'empty');
  await mkdir(empty, { recursive: true });
  await assert.rejects(createOnnxEncoder(empty), /model directory has no vtc-encoder.json/);
  const dir = join(root, 'bad');
  await writeTinyVit(dir, base, { attention: 'attn_missing' });
  await assert.rejects(createOnnxEncoder(dir), /no output named "attn_missing" \(outputs: features, attention_logits/);
  await writeFile(join(dir, 'vtc-encoder.json'), JSON.stringify({ inputSize: 28, patchSize: 7, hasCls: false }));
  const encoder = await createOnnxEncoder(dir);
  await assert.rejects(
    encoder.encode(randomImages(1)),
    (e: unknown) => e instanceof ShapeError && /has shape \[1, 17, 8\], expected \[1, 16, D\]/.test(e.message),
  );
  await assert.rejects(encoder.encode(randomImages(1, 14)), /must be 28x28, got 14x14/);
  await encoder.dispose();
  await writeFile(join(dir, 'vtc-encoder.json'), '{ not json');
  await assert.rejects(createOnnxEncoder(dir), /invalid JSON/);
});
