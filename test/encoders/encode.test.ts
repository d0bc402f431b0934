import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import {
  encodeAnyRes,
  encodeAnyResDetailed,
  encodeImage,
  encodeImageDetailed,
  loadEncoder,
} from '../../encoders/encode.js';
import { cropImage, NORMALIZATION_PRESETS, padImage, resizeExact } from '../../encoders/image.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { loadTokens, saveTokens } from '../../encoders/tokenfile.js';
import type { RgbImage } from '../../encoders/types.js';
import { referenceForward, writeTinyVit, type TinyVitSpec } from './tiny-vit.js';

const dir = await mkdtemp(join(tmpdir(), 'vtc-encode-'));
after(() => rm(dir, { recursive: true, force: true }));

function scene(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      data.set([(x * 255) / width, (y * 255) / height, (x * y) % 251], (y * width + x) * 3);
  return { data, width, height };
}
const photo = join(dir, 'photo.png');
await sharp(scene(640, 480).data, { raw: { width: 640, height: 480, channels: 3 } })
  .png()
  .toFile(photo);

test('encodeImage: one 24×24 tile with scores and metadata', async () => {
  const { tokens, tile } = await encodeImageDetailed(photo);
  assert.deepEqual([tokens.n, tokens.d], [576, 58]);
  assert.deepEqual(tokens.sources, [{ kind: 'image', index: 0, rows: 24, cols: 24 }]);
  assert.equal(tokens.score!.length, 576);
  assert.deepEqual(tokens.meta, { encoder: 'patch', resize: 'squash', original_size: '640,480', input: photo });
  const [direct] = await createPatchEncoder().encode([tile]);
  assert.deepEqual(tokens.data, direct!.features);
  assert.deepEqual([tokens.row[25], tokens.col[25]], [1, 1]);
  const shortest = await encodeImage(photo, { resize: 'shortest' });
  assert.notDeepEqual(shortest.data, tokens.data);
});

test('encodeAnyRes: thumbnail first, then the crops of the resized-and-padded canvas in row-major order', async () => {
  const encoder = createPatchEncoder();
  const { tokens, plan, canvas, thumbnail } = await encodeAnyResDetailed(photo, { encoder });
  assert.deepEqual(tokens.anyres, {
    gridRows: 2,
    gridCols: 2,
    imageWidth: 640,
    imageHeight: 480,
    patchRows: 24,
    patchCols: 24,
  });
  assert.equal(tokens.n, 576 * 5);
  assert.equal(plan.tokenCount, 2340);
  assert.deepEqual(
    tokens.sources.map((s) => `${s.kind}${s.index}`),
    ['thumbnail0', 'crop0', 'crop1', 'crop2', 'crop3'],
  );
  // Expected pixels: 640x480 → 672x504 (bicubic), pasted at y = 84 on a black 672x672 canvas.
  const original = { data: (await sharp(photo).raw().toBuffer()) as unknown as Uint8Array, width: 640, height: 480 };
  const expectedCanvas = padImage(await resizeExact(original, 672, 504), 672, 672, 0, 84);
  assert.deepEqual(canvas.data, expectedCanvas.data);
  assert.deepEqual(canvas.data.subarray(0, 672 * 84 * 3), new Uint8Array(672 * 84 * 3)); // black padding
  assert.deepEqual(thumbnail.data, (await resizeExact(original, 336, 336)).data);
  const crop2 = cropImage(expectedCanvas, 0, 336, 336, 336); // grid row 1, col 0
  const [expected] = await encoder.encode([crop2]);
  assert.deepEqual(tokens.data.subarray(3 * 576 * 58, 4 * 576 * 58), expected!.features);
  assert.deepEqual(tokens.score!.subarray(3 * 576, 4 * 576), expected!.scores);
});

test('AnyRes bundle: saveTokens writes valid safetensors that loadTokens reads back', async () => {
  const bundle = await encodeAnyRes(photo);
  const path = join(dir, 'b.safetensors');
  await saveTokens(path, bundle, { bundle: true });
  const bytes = await readFile(path);
  // Header layout by hand: u64 LE length, JSON header, then contiguous tensor bytes.
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  > & { __metadata__: Record<string, string> };
  assert.deepEqual(header.__metadata__.grid, '2,2');
  assert.deepEqual(header.__metadata__.image_size, '640,480');
  assert.deepEqual(header.__metadata__.patch_grid, '24,24');
  assert.deepEqual(header.thumbnail!.shape, [576, 58]);
  assert.deepEqual(header.crops!.shape, [4, 576, 58]);
  assert.deepEqual(header.thumbnail_cls!.shape, [576]);
  assert.deepEqual(header.crops_cls!.shape, [4, 576]);
  const spans = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([, v]) => (v as { data_offsets: [number, number] }).data_offsets)
    .sort((a, b) => a[0]! - b[0]!);
  assert.equal(spans[0]![0], 0);
  for (let i = 1; i < spans.length; i++) assert.equal(spans[i]![0], spans[i - 1]![1]);
  assert.equal(spans.at(-1)![1], bytes.length - 8 - headerLength);
  assert.equal((8 + headerLength) % 8, 0, 'tensor data starts 8-byte aligned');
  const { thumbnail } = header;
  const firstValue = bytes.readFloatLE(8 + headerLength + thumbnail!.data_offsets[0]);
  assert.equal(firstValue, bundle.data[0]);
  const back = await loadTokens(path);
  assert.deepEqual(back.data, bundle.data);
  assert.deepEqual(back.score, bundle.score);
  assert.deepEqual(back.anyres, bundle.anyres);
});

test('AnyRes through a tiny ONNX ViT: per-tile CLS scores and CLS vectors match the TS reference', async () => {
  const spec: TinyVitSpec = { inputSize: 28, patchSize: 7, dim: 8, heads: 2, seed: 5, embed: 'conv', cls: true };
  const modelDir = join(dir, 'tiny');
  const weights = await writeTinyVit(modelDir, spec, {
    attention: 'attention_logits',
    normalization: 'clip',
    batchSize: 3,
  });
  const encoder = await loadEncoder(modelDir, { threads: 1 });
  const image = scene(64, 40);
  const progress: number[] = [];
  const { tokens, thumbnail, canvas, plan } = await encodeAnyResDetailed(image, {
    encoder,
    onTiles: (done) => progress.push(done),
  });
  await encoder.dispose();
  // 64x40: [56,56] keeps 56x35 = 1960 pixels, more than [56,28] (44x28) → 2x2 crops.
  assert.deepEqual(plan.best, [56, 56]);
  assert.deepEqual(progress, [3, 5]);
  assert.equal(tokens.n, 16 * 5);
  const tiles = [
    thumbnail,
    ...[
      [0, 0],
      [28, 0],
      [0, 28],
      [28, 28],
    ].map(([x, y]) => cropImage(canvas, x!, y!, 28, 28)),
  ];
  for (const [t, tile] of tiles.entries()) {
    const ref = referenceForward(spec, weights, tile.data, NORMALIZATION_PRESETS.clip);
    for (let j = 0; j < 16; j++)
      assert.ok(Math.abs(tokens.score![t * 16 + j]! - ref.clsRow[j]!) < 1e-4, `tile ${t} score ${j}`);
    for (let c = 0; c < 8; c++)
      assert.ok(Math.abs(tokens.sources[t]!.cls![c]! - ref.features[c]!) < 1e-4, `tile ${t} cls ${c}`);
  }
});

test("custom pinpoints and the encoder's preferred resize mode are honoured", async () => {
  const wide = await encodeAnyRes(photo, { pinpoints: [[1008, 336]] });
  assert.deepEqual([wide.anyres!.gridRows, wide.anyres!.gridCols, wide.n], [1, 3, 576 * 4]);
  assert.equal(wide.meta.best_resolution, '1008,336');
  const modelDir = join(dir, 'letterbox-vit');
  await writeTinyVit(
    modelDir,
    { inputSize: 28, patchSize: 7, dim: 8, heads: 2, seed: 8, embed: 'conv', cls: true },
    { resize: 'letterbox', attention: 'attention_logits' },
  );
  const encoder = await loadEncoder(modelDir);
  const { tokens, tile } = await encodeImageDetailed(scene(56, 28), { encoder });
  await encoder.dispose();
  assert.equal(tokens.meta.resize, 'letterbox');
  // 56x28 letterboxed into 28x28: 28x14 at y = 7, black rows above.
  assert.deepEqual(Array.from(tile.data.subarray(0, 28 * 7 * 3)), new Array(28 * 7 * 3).fill(0));
  assert.notDeepEqual(Array.from(tile.data.subarray(28 * 8 * 3, 28 * 9 * 3)), new Array(28 * 3).fill(0));
});

test('loadEncoder: "patch" with custom geometry; a missing model directory is a clear error', async () => {
  const patch = await loadEncoder('patch', { inputSize: 224, patchSize: 16 });
  assert.deepEqual([patch.name, patch.inputSize, patch.patchSize], ['patch', 224, 16]);
  await assert.rejects(loadEncoder(join(dir, 'no-model')), /encoder not found/);
});
