import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeAnyRes } from '../encoders/encode.js';
import { readImage, resizeImage } from '../encoders/image.js';
import { createOnnxEncoder } from '../encoders/onnx.js';
import { createPatchEncoder } from '../encoders/patch.js';
import { preprocessQwenImage, qwenWindowIndex } from '../encoders/qwen-preprocess.js';
import { writeTinyVit } from '../samples/tiny-vit.js';
import { measure, type Benchmark } from './harness.js';

/** A 1280×720 synthetic photo-like PNG (gradients + texture), deterministic. */
async function samplePng(): Promise<Buffer> {
  const width = 1280;
  const height = 720;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = ((x * 7919) ^ (y * 104729)) & 31;
      raw.set([(x * 200) / width + t, (y * 200) / height + t, ((x + y) % 97) + t], (y * width + x) * 3);
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * Encoder throughput: sharp decode + resize, the weight-free patch encoder per
 * 336 tile, a full AnyRes encode (thumbnail + 4 crops), and the ONNX path on a
 * generated ViT of CLIP ViT-L/14-336 width (1024, 16 heads, 577 tokens) with
 * one attention block — a real ViT-L has 24 such blocks plus MLPs, so this
 * measures the plumbing (normalisation, session, CLS-row extraction), not CLIP.
 */
export const encodersBenchmark: Benchmark = {
  description:
    'image decode/resize, patch encoder per tile, AnyRes 1280×720, Qwen preprocessing and window index, ONNX one-block ViT-L/14-336-width tile',
  async run({ runs, log }) {
    const png = await samplePng();
    const image = await readImage(png);
    const results = [];
    const decode = await measure('decode 1280x720 PNG (sharp)', runs, () => readImage(png));
    results.push(decode);
    log(`decode: ${decode.medianMs.toFixed(1)} ms`);
    const resize = await measure('resize 1280x720 → 336x336 shortest + centre crop', runs, () =>
      resizeImage(image, 336, 336, { mode: 'shortest' }),
    );
    results.push(resize);
    log(`resize: ${resize.medianMs.toFixed(1)} ms`);
    const patch = createPatchEncoder();
    const tile = await resizeImage(image, 336, 336);
    const perTile = await measure('patch encoder, one 336 tile (576 tokens × 58)', runs, () => patch.encode([tile]));
    perTile.extra = { 'tiles/s': +(1000 / perTile.medianMs).toFixed(1) };
    results.push(perTile);
    log(`patch encoder: ${perTile.medianMs.toFixed(1)} ms per tile`);
    const anyres = await measure('encodeAnyRes 1280x720 PNG, patch encoder (5 tiles)', runs, () =>
      encodeAnyRes(png, { encoder: patch }),
    );
    results.push(anyres);
    log(`AnyRes: ${anyres.medianMs.toFixed(1)} ms`);
    const q25 = await measure(
      'Qwen2.5-VL preprocess 1280x720 → 1288x728: 4784 patches × 1176 (resize, normalise, patchify)',
      runs,
      () => preprocessQwenImage(image, 'qwen2.5-vl'),
    );
    results.push(q25);
    const q3 = await measure('Qwen3-VL preprocess 1280x720 → 1280x704: 3520 patches × 1536', runs, () =>
      preprocessQwenImage(image, 'qwen3-vl'),
    );
    results.push(q3);
    const windows = await measure(
      'Qwen2.5-VL window index, 64 temporal patches of 52×92 patches (76544 merged units)',
      runs,
      () => qwenWindowIndex([[64, 52, 92]]),
    );
    results.push(windows);
    log(
      `Qwen preprocess: ${q25.medianMs.toFixed(1)} / ${q3.medianMs.toFixed(1)} ms; window index ${windows.medianMs.toFixed(1)} ms`,
    );
    const dir = await mkdtemp(join(tmpdir(), 'vtc-bench-vit-'));
    try {
      await writeTinyVit(
        dir,
        { inputSize: 336, patchSize: 14, dim: 1024, heads: 16, seed: 1, embed: 'conv', cls: true },
        { attention: 'attention_logits', normalization: 'clip', batchSize: 5 },
      );
      const encoder = await createOnnxEncoder(dir);
      const tiles = Array.from({ length: 5 }, () => tile);
      const onnx = await measure(
        'ONNX ViT (1024 wide, 1 block), 5 tiles batched, with CLS scores',
        Math.min(runs, 5),
        () => encoder.encode(tiles),
      );
      onnx.extra = { 'tiles/s': +((5 * 1000) / onnx.medianMs).toFixed(1) };
      results.push(onnx);
      log(`ONNX one-block ViT: ${onnx.medianMs.toFixed(1)} ms per 5 tiles`);
      await encoder.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return results;
  },
};
