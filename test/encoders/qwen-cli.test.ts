import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { loadTokens } from '../../encoders/tokenfile.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';
import { writeTinyQwen } from './tiny-qwen.js';

const dir = tempDir('vtc-qwen-cli-');
after(() => rmSync(dir, { recursive: true, force: true }));
await writeTinyQwen(join(dir, 'q25'), { family: 'qwen2.5-vl', dim: 8, heads: 2, outDim: 6, seed: 21 });
await writeTinyQwen(
  join(dir, 'q3'),
  { family: 'qwen3-vl', dim: 8, heads: 2, outDim: 4, seed: 22 },
  { videoMinPixels: 1024, deepstackConcat: 2, features: 'image_features_concat' },
);
const photo = join(dir, 'photo.png');
{
  const width = 168;
  const height = 140;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) raw.set([(x * 3) % 256, (y * 5) % 256, ((x + y) * 2) % 256], (y * width + x) * 3);
  writeFileSync(
    photo,
    await sharp(raw, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer(),
  );
}

test('vtc encode --encoder qwen2.5-vl --model tower.onnx writes tokens with positions; vtc reduce keeps them', async () => {
  const out = join(dir, 'q.safetensors');
  const r = await runCli([
    'encode',
    photo,
    '--encoder',
    'qwen2.5-vl',
    '--model',
    join(dir, 'q25', 'vision_encoder.onnx'),
    '--out',
    out,
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual(
    [
      summary.kind,
      summary.family,
      summary.n,
      summary.d,
      summary.image_grid_thw,
      summary.resized_size,
      summary.extra,
      summary.score_rule,
    ],
    ['image', 'qwen2.5-vl', 30, 6, [1, 10, 12], [168, 140], [], 'negative-cosine-to-mean'],
  );
  const tokens = await loadTokens(out);
  assert.equal(tokens.n, 30);
  assert.deepEqual([...tokens.positions!.subarray(3 * 13, 3 * 14)], [0, 2, 1]);
  const reduced = join(dir, 'r.safetensors');
  const red = await runCli(['reduce', '--in', out, '--method', 'pool', '--ratio', '0.25', '--out', reduced, '--json']);
  assert.equal(red.code, 0, red.stderr);
  const kept = await loadTokens(reduced);
  assert.ok(kept.n < 30 && kept.positions!.length === 3 * kept.n);
});

test('vtc encode a video with a Qwen3-VL model directory: frame pairs, DeepStack from the concatenated output, scene metadata', async () => {
  const out = join(dir, 'v.safetensors');
  const r = await runCli([
    'encode',
    join(repoRoot, 'samples', 'video', 'scenes.mp4'),
    '--encoder',
    join(dir, 'q3'),
    '--max-frames',
    '4',
    '--scenes',
    '0.3',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.kind, 'video');
  assert.equal(summary.frames, 4);
  assert.ok(summary.fps > 0 && summary.fps <= 2); // 2 fps unless 4 frames must span a longer video
  assert.equal(summary.video_grid_thw[0], 2);
  assert.deepEqual(summary.extra, ['deepstack_0', 'deepstack_1']);
  assert.ok(Array.isArray(summary.scene_changes) && summary.scene_changes.every((t: unknown) => typeof t === 'number'));
  assert.equal(summary.times.length, 2); // one time per temporal patch (mean of the pair)
  assert.equal(summary.n, 2 * (summary.video_grid_thw[1] / 2) * (summary.video_grid_thw[2] / 2));
  const tokens = await loadTokens(out);
  assert.equal(tokens.extra!.deepstack_1!.length, tokens.n * 4);
  assert.equal(tokens.positions![3 * (tokens.n - 1)], 1); // last token: temporal patch 1
  // vtc reduce keeps DeepStack rows with the same keep mask.
  const reduced = join(dir, 'vr.safetensors');
  const red = await runCli(['reduce', '--in', out, '--method', 'random', '--ratio', '0.5', '--out', reduced, '--json']);
  assert.equal(red.code, 0, red.stderr);
  const keep: number[] = JSON.parse(red.stdout).keep;
  const kept = await loadTokens(reduced);
  assert.equal(kept.n, keep.length);
  keep.forEach((i, j) => {
    assert.deepEqual(
      [...kept.extra!.deepstack_0!.subarray(4 * j, 4 * j + 4)],
      [...tokens.extra!.deepstack_0!.subarray(4 * i, 4 * i + 4)],
    );
    assert.deepEqual(
      [...kept.positions!.subarray(3 * j, 3 * j + 3)],
      [...tokens.positions!.subarray(3 * i, 3 * i + 3)],
    );
  });
});

test('vtc encode Qwen usage errors exit 2 with one line; a missing tower exits 1', async () => {
  const cases: [string[], number, RegExp][] = [
    [
      ['encode', photo, '--encoder', 'qwen3-vl', '--out', join(dir, 'x.safetensors')],
      2,
      /--encoder qwen3-vl needs --model PATH/,
    ],
    [
      ['encode', photo, '--model', join(dir, 'q25'), '--out', join(dir, 'x.safetensors')],
      2,
      /--model goes with --encoder qwen2.5-vl\|qwen3-vl, got --encoder "patch"/,
    ],
    [
      [
        'encode',
        photo,
        '--encoder',
        'qwen2.5-vl',
        '--model',
        join(dir, 'q25', 'vision_encoder.onnx'),
        '--anyres',
        '--out',
        join(dir, 'x.safetensors'),
      ],
      2,
      /--anyres does not apply to Qwen towers/,
    ],
    [
      [
        'encode',
        photo,
        '--encoder',
        'qwen2.5-vl',
        '--model',
        join(dir, 'nope.onnx'),
        '--out',
        join(dir, 'x.safetensors'),
      ],
      1,
      /nope\.onnx: not found/,
    ],
    [
      ['compress', photo, '--encoder', 'qwen2.5-vl', '--method', 'pool', '--ratio', '0.5', '--out', join(dir, 'x.png')],
      2,
      /qwen2\.5-vl: a Qwen2\.5-VL \/ Qwen3-VL tower works at dynamic resolution, not on square tiles/,
    ],
  ];
  for (const [args, code, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
