import { strict as assert } from 'node:assert';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { decodeNpy } from '../../core/npy.js';
import { createTokenSet, type TokenSet } from '../../core/tokenset.js';
import { loadTokens, saveTokens } from '../../encoders/tokenfile.js';
import { runCli, tempDir } from '../helpers.js';
import { qwenTokens } from '../prompt/fixtures.js';
import { loadTorchTensor } from '../torch-load.js';

const dir = tempDir('vtc-export-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A Qwen3-VL image, 4×4 merged grid (image_grid_thw 1,8,8), d = 2, with two DeepStack levels of width 1. */
function qwen3Image(): TokenSet {
  const base = qwenTokens('image', [1, 8, 8]);
  return createTokenSet({
    ...base,
    extra: {
      deepstack_1: Float32Array.from({ length: 16 }, (_, i) => 1000 + i),
      deepstack_0: Float32Array.from({ length: 16 }, (_, i) => 100 + i),
    },
    meta: { ...base.meta, family: 'qwen3-vl' },
  });
}

function payload(path: string): { type: string; image_embeds: Record<string, string> } {
  return JSON.parse(readFileSync(path, 'utf8'));
}

test('vtc export: a pooled Qwen3-VL set → image_embeds rows [main | deepstack_0 | deepstack_1] + image_grid_thw', async () => {
  const input = join(dir, 'q3.safetensors');
  await saveTokens(input, qwen3Image());
  const pooled = join(dir, 'pooled.safetensors');
  const reduced = await runCli(['reduce', '--in', input, '--method', 'pool', '--ratio', '0.25', '--out', pooled]);
  assert.equal(reduced.code, 0, reduced.stderr);
  const out = join(dir, 'part.json');
  const r = await runCli(['export', pooled, '--out', out, '--embeds-format', 'npy', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    tokens: pooled,
    kind: 'image',
    family: 'qwen3-vl',
    rows: 4,
    width: 4,
    grid: [1, 4, 4],
    positions: false,
    deepstack: 2,
    format: 'npy',
    out,
  });
  const part = payload(out);
  assert.equal(part.type, 'image_embeds');
  assert.deepEqual(Object.keys(part.image_embeds), ['image_embeds', 'image_grid_thw']);
  const embeds = decodeNpy(new Uint8Array(Buffer.from(part.image_embeds.image_embeds!, 'base64')));
  assert.deepEqual(embeds.shape, [4, 4]);
  // 2×2 means of the 4×4 grid (features k = 0…31 in pairs, DeepStack 100 + i, 1000 + i): cell (0, 0) holds tokens 0, 1, 4, 5.
  assert.deepEqual(
    [...embeds.data.subarray(0, 4)],
    [(0 + 2 + 8 + 10) / 4, (1 + 3 + 9 + 11) / 4, 100 + (0 + 1 + 4 + 5) / 4, 1000 + (0 + 1 + 4 + 5) / 4],
  );
  // The same part as torch.save bytes, decoded back (zip + pickle, as torch.load reads them): the npy path's values.
  const torchOut = join(dir, 'part-torch.json');
  const t = await runCli(['export', pooled, '--out', torchOut, '--embeds-format', 'torch', '--json']);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(JSON.parse(t.stdout).format, 'torch');
  const torchPart = payload(torchOut);
  assert.deepEqual(Object.keys(torchPart.image_embeds), ['image_embeds', 'image_grid_thw']);
  const tensor = loadTorchTensor(Buffer.from(torchPart.image_embeds.image_embeds!, 'base64'));
  assert.deepEqual([tensor.dtype, tensor.shape, tensor.stride], ['float32', [4, 4], [4, 1]]);
  assert.deepEqual(tensor.data, embeds.data);
  const grid = loadTorchTensor(Buffer.from(torchPart.image_embeds.image_grid_thw!, 'base64'));
  assert.deepEqual([grid.dtype, grid.shape, [...grid.data]], ['int64', [1, 3], [1n, 4n, 4n]]);
  // Both formats carry the same grid bytes.
  assert.equal(torchPart.image_embeds.image_grid_thw, part.image_embeds.image_grid_thw);
});

test('vtc export: a pruned set carries image_positions; bad flags and non-JSON outputs exit 2', async () => {
  const input = join(dir, 'q25.safetensors');
  await saveTokens(input, qwenTokens('image', [1, 8, 8]));
  const kept = join(dir, 'kept.safetensors');
  assert.equal(
    (await runCli(['reduce', '--in', input, '--method', 'random', '--budget', '3', '--seed', '2', '--out', kept])).code,
    0,
  );
  const out = join(dir, 'pruned.json');
  const r = await runCli(['export', kept, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual(
    [summary.rows, summary.width, summary.grid, summary.positions, summary.format],
    [3, 2, null, true, 'torch'],
  );
  const part = payload(out);
  assert.deepEqual(Object.keys(part.image_embeds), ['image_embeds', 'image_positions']);
  // torch.save (the default format) decoded back: the kept rows and their (t, h, w) positions, as in the reduced file.
  const keptTokens = await loadTokens(kept);
  const embeds = loadTorchTensor(Buffer.from(part.image_embeds.image_embeds!, 'base64'));
  assert.deepEqual([embeds.dtype, embeds.shape], ['float32', [3, 2]]);
  assert.deepEqual(embeds.data, keptTokens.data);
  const positions = loadTorchTensor(Buffer.from(part.image_embeds.image_positions!, 'base64'));
  assert.deepEqual([positions.dtype, positions.shape], ['int64', [3, 3]]);
  assert.deepEqual([...positions.data].map(Number), [...keptTokens.positions!]);
  const format = await runCli(['export', kept, '--out', out, '--embeds-format', 'pt']);
  assert.equal(format.code, 2);
  assert.match(format.stderr, /export: --embeds-format must be one of torch, npy, got "pt"/);
  const ext = await runCli(['export', kept, '--out', join(dir, 'part.npy')]);
  assert.equal(ext.code, 2);
  assert.match(ext.stderr, /export: --out .*part\.npy: the payload is JSON, expected a \.json file/);
});

test('vtc export of a video set: video_embeds + video_grid_thw, decoded from torch.save; per-frame pool gives one mean per frame', async () => {
  // Qwen2.5-VL video of 2 temporal patches, each a 2×2 merged grid (video_grid_thw 2,4,4); token i holds (2i, 2i + 1).
  const input = join(dir, 'video.safetensors');
  await saveTokens(input, qwenTokens('video', [2, 4, 4]));
  const pooled = join(dir, 'video-pooled.safetensors');
  const reduced = await runCli([
    'reduce',
    '--in',
    input,
    '--method',
    'pool',
    '--ratio',
    '0.25',
    '--per-frame',
    '--out',
    pooled,
  ]);
  assert.equal(reduced.code, 0, reduced.stderr);
  const out = join(dir, 'video-part.json');
  const r = await runCli(['export', pooled, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual([summary.kind, summary.rows, summary.grid, summary.format], ['video', 2, [2, 2, 2], 'torch']);
  const part = JSON.parse(readFileSync(out, 'utf8')) as { type: string; video_embeds: Record<string, string> };
  assert.equal(part.type, 'video_embeds');
  assert.deepEqual(Object.keys(part.video_embeds), ['video_embeds', 'video_grid_thw']);
  const embeds = loadTorchTensor(Buffer.from(part.video_embeds.video_embeds!, 'base64'));
  assert.deepEqual(embeds.shape, [2, 2]);
  // Frame 0: tokens 0–3 → ((0 + 2 + 4 + 6) / 4, (1 + 3 + 5 + 7) / 4); frame 1: tokens 4–7.
  assert.deepEqual([...embeds.data], [3, 4, 11, 12]);
  const grid = loadTorchTensor(Buffer.from(part.video_embeds.video_grid_thw!, 'base64'));
  assert.deepEqual([...grid.data], [2n, 2n, 2n]);
});
