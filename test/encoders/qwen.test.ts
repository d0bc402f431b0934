import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InputError, ShapeError, UsageError } from '../../core/errors.js';
import { floatToHalf, halfToFloat } from '../../core/float16.js';
import { selectTokens } from '../../core/tokenset.js';
import { NORMALIZATION_PRESETS, toNchw, type Normalization } from '../../encoders/image.js';
import { encodeQwenImage, loadQwenEncoder, readQwenConfig, resolveQwenConfig } from '../../encoders/qwen.js';
import { patchifyFrames, QWEN_FAMILY_SPECS } from '../../encoders/qwen-preprocess.js';
import type { RgbImage } from '../../encoders/types.js';
import { referenceQwenForward, writeTinyQwen, type TinyQwenSpec, type TinyQwenWeights } from './tiny-qwen.js';

let dir: string;
const Q25: TinyQwenSpec = { family: 'qwen2.5-vl', dim: 8, heads: 2, outDim: 6, seed: 11 };
const Q3: TinyQwenSpec = { family: 'qwen3-vl', dim: 8, heads: 2, outDim: 5, seed: 12 };
let w25: TinyQwenWeights;
let w3: TinyQwenWeights;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vtc-qwen-'));
  // Video bounds lowered so 168×140 frames are not resized (the released video minimum is 100352 px).
  w25 = await writeTinyQwen(join(dir, 'q25'), Q25, { videoMinPixels: 3136 });
  w3 = await writeTinyQwen(join(dir, 'q3'), Q3, {
    minPixels: 1024,
    videoMinPixels: 1024,
    deepstack: ['deepstack_0', 'deepstack_1'],
  });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A deterministic image with structure in every patch. */
function pattern(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      data[p] = (x * 7 + y * 3 + seed * 31) % 256;
      data[p + 1] = (x * y + seed * 17) % 256;
      data[p + 2] = ((x ^ y) * 5 + seed) % 256;
    }
  return { data, width, height };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function reference(spec: TinyQwenSpec, weights: TinyQwenWeights, frames: RgbImage[], norm: Normalization) {
  const { width, height } = frames[0]!;
  return referenceQwenForward(spec, weights, toNchw(frames, norm), frames.length, height, width);
}

test('qwen2.5-vl tiny tower (window attention, window index in the graph) matches the TS reference at 1e-4; output in raster order', async () => {
  const encoder = await loadQwenEncoder({ model: join(dir, 'q25') });
  try {
    // 168×140 is already a multiple of 28: smart_resize keeps it, so the reference sees the same pixels.
    const image = pattern(168, 140, 1);
    const tokens = await encoder.encodeImage(image);
    const ref = reference(Q25, w25, [image, image], NORMALIZATION_PRESETS.clip);
    assert.equal(tokens.n, 5 * 6);
    assert.equal(tokens.d, 6);
    assert.equal(tokens.meta.image_grid_thw, '1,10,12');
    assert.deepEqual([tokens.sources[0]!.rows, tokens.sources[0]!.cols], [5, 6]);
    assert.ok(maxDiff(tokens.data, ref.features) < 1e-4, `features differ by ${maxDiff(tokens.data, ref.features)}`);
    assert.equal(tokens.meta.score_rule, 'negative-cosine-to-mean');
    // Raster metadata: token 7 is row 1, col 1; positions (t, h, w) in merged units.
    assert.deepEqual([tokens.row[7], tokens.col[7]], [1, 1]);
    assert.deepEqual([...tokens.positions!.subarray(3 * 7, 3 * 8)], [0, 1, 1]);
    assert.deepEqual([...tokens.positions!.subarray(3 * 29)], [0, 4, 5]);
    assert.equal(tokens.extra, undefined);
  } finally {
    await encoder.dispose();
  }
});

test('qwen2.5-vl: an export that stops before the inverse (outputOrder "window") gives the same raster output; attention received from the full-attention block', async () => {
  const config = {
    family: 'qwen2.5-vl',
    model: join(dir, 'q25', 'vision_encoder.onnx'),
    features: 'image_features_window',
    outputOrder: 'window',
    attention: 'attn_probs_1',
    attentionLayer: 7,
  };
  await writeFile(join(dir, 'q25-window.json'), JSON.stringify(config));
  const encoder = await loadQwenEncoder({ model: join(dir, 'q25-window.json') });
  try {
    const image = pattern(168, 140, 2);
    const tokens = await encoder.encodeImage(image);
    const ref = reference(Q25, w25, [image, image], NORMALIZATION_PRESETS.clip);
    assert.ok(maxDiff(tokens.data, ref.features) < 1e-4);
    assert.equal(tokens.meta.score_rule, 'attention-received');
    assert.ok(maxDiff(tokens.score!, ref.received) < 1e-4, `scores differ by ${maxDiff(tokens.score!, ref.received)}`);
    // Each temporal patch's queries distribute total mass 1 each: received sums to the patch count.
    const total = tokens.score!.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 120) < 1e-3);
  } finally {
    await encoder.dispose();
  }
});

test('qwen2.5-vl video: 3 frames → 2 temporal patches (last frame repeated); chunked runs equal one run', async () => {
  const frames = [pattern(168, 140, 3), pattern(168, 140, 4), pattern(168, 140, 5)];
  const ref = reference(Q25, w25, frames, NORMALIZATION_PRESETS.clip);
  const outputs = [];
  for (const temporalChunk of [1, 4]) {
    const encoder = await loadQwenEncoder({ model: join(dir, 'q25') }, { temporalChunk });
    try {
      outputs.push(await encoder.encodeFrames(frames, [0, 0.5, 1]));
    } finally {
      await encoder.dispose();
    }
  }
  for (const tokens of outputs) {
    assert.equal(tokens.n, 2 * 30);
    assert.equal(tokens.meta.video_grid_thw, '2,10,12');
    assert.deepEqual(
      tokens.sources.map((s) => [s.kind, s.index, s.time]),
      [
        ['frame', 0, 0.25],
        ['frame', 1, 1],
      ],
    );
    assert.deepEqual([...tokens.positions!.subarray(3 * 31, 3 * 32)], [1, 0, 1]); // second temporal patch
    assert.ok(maxDiff(tokens.data, ref.features) < 1e-4, `features differ by ${maxDiff(tokens.data, ref.features)}`);
  }
});

test('qwen3-vl tiny tower with DeepStack outputs matches the reference; the concatenated (vLLM) layout splits to the same tensors', async () => {
  const image = pattern(160, 128, 6); // multiple of 32; minPixels 1024 in the config keeps the size
  const ref = reference(Q3, w3, [image, image], NORMALIZATION_PRESETS.siglip);
  const separate = await loadQwenEncoder({ model: join(dir, 'q3') });
  await writeFile(
    join(dir, 'q3-concat.json'),
    JSON.stringify({
      family: 'qwen3-vl',
      model: join(dir, 'q3', 'vision_encoder.onnx'),
      minPixels: 1024,
      features: 'image_features_concat',
      deepstackConcat: 2,
      attention: 'attn_probs_1',
    }),
  );
  const concat = await loadQwenEncoder({ model: join(dir, 'q3-concat.json') });
  try {
    for (const encoder of [separate, concat]) {
      const out = await encoder.encodePatches(
        patchifyFrames(toNchw([image], NORMALIZATION_PRESETS.siglip), 1, 128, 160, QWEN_FAMILY_SPECS['qwen3-vl']),
      );
      assert.deepEqual(out.grid, [1, 8, 10]);
      assert.equal(out.n, 20);
      assert.ok(maxDiff(out.features, ref.features) < 1e-4);
      assert.equal(out.deepstack.length, 2);
      for (const k of [0, 1]) assert.ok(maxDiff(out.deepstack[k]!, ref.deepstack[k]!) < 1e-4, `deepstack ${k} differs`);
    }
    const scored = await concat.encodePatches(
      patchifyFrames(toNchw([image], NORMALIZATION_PRESETS.siglip), 1, 128, 160, QWEN_FAMILY_SPECS['qwen3-vl']),
    );
    assert.equal(scored.scoreRule, 'attention-received');
    assert.ok(maxDiff(scored.scores, ref.received) < 1e-4);
    const tokens = await encodeQwenImage(image, { encoder: separate });
    assert.equal(tokens.meta.image_grid_thw, '1,8,10');
    assert.ok(maxDiff(tokens.data, ref.features) < 1e-4);
    assert.deepEqual(Object.keys(tokens.extra!), ['deepstack_0', 'deepstack_1']);
    assert.ok(maxDiff(tokens.extra!.deepstack_1!, ref.deepstack[1]!) < 1e-4);
    // The same keep mask applies to DeepStack: selecting tokens 3 and 17 keeps their DeepStack rows and positions.
    const kept = selectTokens(tokens, [3, 17]);
    assert.deepEqual([...kept.positions!], [0, 0, 3, 0, 3, 2]);
    const expected = Float32Array.of(
      ...ref.deepstack[0]!.subarray(3 * 5, 4 * 5),
      ...ref.deepstack[0]!.subarray(17 * 5, 18 * 5),
    );
    assert.ok(maxDiff(kept.extra!.deepstack_0!, expected) < 1e-4);
  } finally {
    await separate.dispose();
    await concat.dispose();
  }
});

test('bad input: grid/token mismatch, wrong patch width, odd grid, wrong output shape name the field', async () => {
  const encoder = await loadQwenEncoder({ model: join(dir, 'q25') });
  try {
    const patches = patchifyFrames(
      toNchw([pattern(168, 140, 1)], 'clip'),
      1,
      140,
      168,
      QWEN_FAMILY_SPECS['qwen2.5-vl'],
    );
    await assert.rejects(
      encoder.encodePatches({ ...patches, grid: [1, 10, 10] }),
      (e: unknown) =>
        e instanceof ShapeError &&
        /image_grid_thw: \[1, 10, 10\] describes t·h·w = 100 patches, but pixel_values has 120 rows/.test(e.message),
    );
    await assert.rejects(
      encoder.encodePatches({ ...patches, grid: [1, 15, 8] }),
      (e: unknown) =>
        e instanceof ShapeError &&
        /image_grid_thw: h = 15 and w = 8 must be multiples of the merge size 2/.test(e.message),
    );
    // Rows of one frame (temporal patch 1): 3·14·14 = 588 values.
    await assert.rejects(
      encoder.encodePatches({ pixelValues: new Float32Array(120 * 588), patchDim: 588, grid: [1, 10, 12] }),
      (e: unknown) =>
        e instanceof ShapeError && /pixel_values: rows of 588 values, expected 3·2·14·14 = 1176/.test(e.message),
    );
  } finally {
    await encoder.dispose();
  }
  const wrong = await loadQwenEncoder({ model: join(dir, 'q25-wrong.json') }).catch((e: unknown) => e);
  assert.ok(wrong instanceof InputError && /q25-wrong.json: not found/.test(wrong.message));
  await writeFile(
    join(dir, 'q25-wrong.json'),
    JSON.stringify({ family: 'qwen2.5-vl', model: join(dir, 'q25', 'vision_encoder.onnx'), features: 'patch_embeds' }),
  );
  const bad = await loadQwenEncoder({ model: join(dir, 'q25-wrong.json') });
  try {
    await assert.rejects(
      bad.encodeImage(pattern(168, 140, 1)),
      (e: unknown) =>
        e instanceof ShapeError && /output patch_embeds has shape \[120, 8\], expected \[30, D\]/.test(e.message),
    );
  } finally {
    await bad.dispose();
  }
  const q3 = await loadQwenEncoder({ model: join(dir, 'q3') });
  try {
    await assert.rejects(
      q3.encodeFrames([pattern(160, 128, 1)], [0]),
      (e: unknown) =>
        e instanceof InputError &&
        /qwen3-vl video: 1 frame\(s\); the video processor needs at least temporal_patch_size = 2/.test(e.message),
    );
    await assert.rejects(
      q3.encodeFrames([pattern(160, 128, 1), pattern(160, 128, 2)], [0]),
      (e: unknown) => e instanceof ShapeError && /2 frames but 1 timestamps/.test(e.message),
    );
  } finally {
    await q3.dispose();
  }
});

test('config validation: family, DeepStack only for qwen3-vl, attention layer must be a full-attention block, missing outputs', async () => {
  assert.throws(
    () => resolveQwenConfig({ family: 'qwen2-vl' }),
    (e: unknown) => e instanceof InputError && /family: Invalid/.test(e.message),
  );
  assert.throws(
    () => resolveQwenConfig({ family: 'qwen2.5-vl', deepstack: ['a'] }),
    /DeepStack outputs exist only in qwen3-vl/,
  );
  assert.throws(
    () => resolveQwenConfig({ family: 'qwen2.5-vl', attention: 'a', attentionLayer: 5 }),
    /attentionLayer 5 is a window-attention block of qwen2.5-vl; scores need a full-attention block \(7, 15, 23, 31\)/,
  );
  assert.throws(
    () => resolveQwenConfig({ family: 'qwen3-vl', outputOrder: 'window' }),
    /outputOrder "window" applies to qwen2.5-vl/,
  );
  assert.throws(
    () => resolveQwenConfig({ family: 'qwen3-vl', deepstack: ['a'], deepstackConcat: 3 }),
    /either "deepstack"/,
  );
  const c = resolveQwenConfig({ family: 'qwen3-vl' });
  assert.deepEqual(
    [c.model, c.features, c.pixelInput, c.attentionOrder, c.normalization.mean],
    ['vision_encoder.onnx', 'image_features', 'pixel_values', 'processor', [0.5, 0.5, 0.5]],
  );
  await assert.rejects(
    readQwenConfig({ model: join(dir, 'q25', 'vision_encoder.onnx') }),
    (e: unknown) => e instanceof UsageError && /needs its family/.test(e.message),
  );
  await assert.rejects(
    readQwenConfig({ family: 'qwen3-vl', model: join(dir, 'q25') }),
    (e: unknown) =>
      e instanceof UsageError && /the config is for qwen2.5-vl, but qwen3-vl was asked for/.test(e.message),
  );
  await writeFile(
    join(dir, 'q3-missing.json'),
    JSON.stringify({ family: 'qwen3-vl', model: join(dir, 'q3', 'vision_encoder.onnx'), deepstack: ['deepstack_9'] }),
  );
  await assert.rejects(
    loadQwenEncoder({ model: join(dir, 'q3-missing.json') }),
    (e: unknown) => e instanceof InputError && /no output named "deepstack_9" \(outputs: /.test(e.message),
  );
});

test('processor files beside the tower (repo root above onnx/) supply smart_resize bounds and mean/std; the vtc config wins; wrong patch size is refused', async () => {
  const repo = join(dir, 'repo');
  await mkdir(join(repo, 'onnx'), { recursive: true });
  await copyFile(join(dir, 'q3', 'vision_encoder.onnx'), join(repo, 'onnx', 'vision_encoder.onnx'));
  const preprocessor = {
    size: { shortest_edge: 1024, longest_edge: 16777216 },
    patch_size: 16,
    merge_size: 2,
    temporal_patch_size: 2,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.25, 0.5, 0.5],
  };
  await writeFile(join(repo, 'preprocessor_config.json'), JSON.stringify(preprocessor));
  await writeFile(
    join(repo, 'video_preprocessor_config.json'),
    JSON.stringify({ size: { shortest_edge: 2048, longest_edge: 4194304 }, patch_size: 16 }),
  );
  const config = await readQwenConfig({ family: 'qwen3-vl', model: join(repo, 'onnx', 'vision_encoder.onnx') });
  assert.deepEqual(
    [config.image, config.video],
    [
      { minPixels: 1024, maxPixels: 16777216 },
      { minPixels: 2048, maxPixels: 4194304 },
    ],
  );
  assert.deepEqual(config.normalization.std, [0.25, 0.5, 0.5]);
  assert.deepEqual(config.processorConfigs, [
    join(repo, 'preprocessor_config.json'),
    join(repo, 'video_preprocessor_config.json'),
  ]);
  await writeFile(
    join(repo, 'onnx', 'vtc-encoder.json'),
    JSON.stringify({ family: 'qwen3-vl', minPixels: 4096, normalization: 'siglip' }),
  );
  const own = await readQwenConfig({ model: join(repo, 'onnx') });
  assert.deepEqual(
    [own.image.minPixels, own.image.maxPixels, own.normalization.std],
    [4096, 16777216, [0.5, 0.5, 0.5]],
  );
  await writeFile(join(repo, 'preprocessor_config.json'), JSON.stringify({ ...preprocessor, patch_size: 14 }));
  await assert.rejects(
    readQwenConfig({ model: join(repo, 'onnx') }),
    (e: unknown) =>
      e instanceof InputError && /preprocessor_config\.json: patch_size is 14, but qwen3-vl uses 16/.test(e.message),
  );
});

test("scores from pre-softmax logits are softmaxed within each temporal patch (the full-attention block's cu_seqlens) and equal those from probabilities; a float16 pixel input works", async () => {
  const frames = [pattern(168, 140, 7), pattern(168, 140, 8), pattern(168, 140, 9), pattern(168, 140, 10)];
  const ref = reference(Q25, w25, frames, NORMALIZATION_PRESETS.clip);
  const scores: Float32Array[] = [];
  for (const attentionKind of ['logits', 'probs']) {
    const path = join(dir, `q25-${attentionKind}.json`);
    await writeFile(
      path,
      JSON.stringify({
        family: 'qwen2.5-vl',
        model: join(dir, 'q25', 'vision_encoder.onnx'),
        videoMinPixels: 3136,
        attention: attentionKind === 'logits' ? 'attn_logits_1' : 'attn_probs_1',
        attentionKind,
        attentionLayer: 15,
      }),
    );
    const encoder = await loadQwenEncoder({ model: path });
    try {
      const tokens = await encoder.encodeFrames(frames, [0, 1, 2, 3]);
      assert.equal(tokens.n, 60);
      scores.push(tokens.score!);
    } finally {
      await encoder.dispose();
    }
  }
  assert.ok(maxDiff(scores[0]!, ref.received) < 1e-4, `logit scores differ by ${maxDiff(scores[0]!, ref.received)}`);
  assert.ok(maxDiff(scores[1]!, ref.received) < 1e-4);
  // Each temporal patch's 120 queries give out mass 120 in total.
  assert.ok(Math.abs(scores[0]!.subarray(0, 30).reduce((a, b) => a + b, 0) - 120) < 1e-3);
  const halfSpec: TinyQwenSpec = { ...Q3, float16Input: true };
  const halfWeights = await writeTinyQwen(join(dir, 'q3-half'), halfSpec, { minPixels: 1024 });
  const encoder = await loadQwenEncoder({ model: join(dir, 'q3-half') });
  try {
    const image = pattern(160, 128, 3);
    const tokens = await encoder.encodeImage(image);
    // The reference sees the same pixels rounded to float16, as the encoder sends them.
    const halfPixels = toNchw([image], NORMALIZATION_PRESETS.siglip).map((v) => halfToFloat(floatToHalf(v)));
    const halfRef = referenceQwenForward(halfSpec, halfWeights, halfPixels, 1, 128, 160);
    assert.ok(
      maxDiff(tokens.data, halfRef.features) < 1e-4,
      `float16 input differs by ${maxDiff(tokens.data, halfRef.features)}`,
    );
  } finally {
    await encoder.dispose();
  }
});
