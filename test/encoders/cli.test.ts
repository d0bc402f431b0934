import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { loadTokens } from '../../encoders/tokenfile.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';

const dir = tempDir('vtc-encode-cli-');
const photo = join(dir, 'photo.png');
{
  const width = 640;
  const height = 480;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) raw.set(y < 200 ? [90, 150, 230] : [40, 120, 40], (y * width + x) * 3);
  for (let y = 300; y < 360; y++) for (let x = 280; x < 340; x++) raw.set([220, 30, 30], (y * width + x) * 3);
  writeFileSync(
    photo,
    await sharp(raw, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer(),
  );
}

test('vtc encode --anyres writes a bundle that NumPy reads as safetensors and vtc reduce --method globalcom2 accepts', async () => {
  const bundle = join(dir, 'b.safetensors');
  const encoded = await runCli(['encode', photo, '--anyres', '--out', bundle, '--json']);
  assert.equal(encoded.code, 0, encoded.stderr);
  const summary = JSON.parse(encoded.stdout);
  assert.deepEqual(
    [summary.kind, summary.n, summary.d, summary.tiles, summary.llava_next_tokens],
    ['anyres', 2880, 58, 5, 2340],
  );
  assert.deepEqual(summary.grid, [2, 2]);
  // The safetensors layout read independently in Python (u64 header length, JSON header, raw little-endian tensors).
  const script = `
import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop('__metadata__')
out = {'meta': {k: meta[k] for k in ('grid', 'image_size', 'patch_grid')}}
for name, info in header.items():
    a, b = info['data_offsets']
    arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype={'F32': '<f4', 'F16': '<f2'}[info['dtype']]).reshape(info['shape'])
    out[name] = {'shape': list(arr.shape), 'sum': float(arr.astype(np.float64).sum())}
print(json.dumps(out))
`;
  const python = spawnSync('python3', ['-c', script, bundle], { encoding: 'utf8' });
  assert.equal(python.status, 0, python.stderr);
  const parsed = JSON.parse(python.stdout);
  assert.deepEqual(parsed.meta, { grid: '2,2', image_size: '640,480', patch_grid: '24,24' });
  assert.deepEqual(parsed.thumbnail.shape, [576, 58]);
  assert.deepEqual(parsed.crops.shape, [4, 576, 58]);
  assert.deepEqual(parsed.thumbnail_cls.shape, [576]);
  assert.deepEqual(parsed.crops_cls.shape, [4, 576]);
  const tokens = await loadTokens(bundle);
  const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(parsed.thumbnail.sum - sum(tokens.data.subarray(0, 576 * 58))) < 1e-3);
  const reduced = await runCli([
    'reduce',
    '--in',
    bundle,
    '--method',
    'globalcom2',
    '--ratio',
    '0.25',
    '--out',
    join(dir, 'r.safetensors'),
    '--json',
  ]);
  assert.equal(reduced.code, 0, reduced.stderr);
  const r = JSON.parse(reduced.stdout);
  // thumbnail 576 + 1728 unpadded crop tokens (LLaVA-NeXT's 2340 adds 36 row-end newline tokens)
  assert.deepEqual([r.n_in, r.n_padding], [2304, 576]);
  assert.ok(r.n_out > 0 && r.n_out < 2304 * 0.3, `globalcom2 kept ${r.n_out}`);
});

test('vtc compress --json reports kept counts and writes a 336×336 overlay', async () => {
  const overlay = join(dir, 'o.png');
  const tokensOut = join(dir, 'kept.safetensors');
  const result = await runCli([
    'compress',
    photo,
    '--method',
    'random',
    '--ratio',
    '0.25',
    '--seed',
    '3',
    '--out',
    overlay,
    '--tokens-out',
    tokensOut,
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  assert.deepEqual([json.method, json.n_in, json.n_out, json.budget, json.mode], ['random', 576, 144, 144, 'select']);
  assert.deepEqual(json.per_source, [{ kind: 'image', index: 0, tokens: 576, covered: 144, outputs: 144 }]);
  const meta = await sharp(overlay).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 336, 336]);
  assert.equal((await loadTokens(tokensOut)).n, 144);
  // Method-specific flags reach the reducer: pool --kernel 4 gives a 6×6 grid whatever the ratio.
  const pooled = await runCli([
    'compress',
    photo,
    '--method',
    'pool',
    '--ratio',
    '0.5',
    '--kernel',
    '4',
    '--out',
    join(dir, 'p.png'),
    '--json',
  ]);
  assert.equal(pooled.code, 0, pooled.stderr);
  const p = JSON.parse(pooled.stdout);
  assert.deepEqual([p.n_out, p.mode, p.per_source[0].outputs], [36, 'merge', 36]);
  // globalcom2 is defined on the AnyRes bundle, so compress encodes one even without --anyres.
  const global = await runCli([
    'compress',
    photo,
    '--method',
    'globalcom2',
    '--ratio',
    '0.25',
    '--out',
    join(dir, 'g.png'),
    '--json',
  ]);
  assert.equal(global.code, 0, global.stderr);
  const g = JSON.parse(global.stdout);
  assert.equal(g.per_source[0].kind, 'thumbnail');
  assert.equal(g.n_in % 576, 0);
  assert.ok(g.n_in >= 3 * 576, `bundle of thumbnail + crops, got n_in = ${g.n_in}`);
});

test('encode/compress errors: 0-byte, corrupt, over-limit, bad flags', async () => {
  const empty = join(dir, 'empty.jpg');
  writeFileSync(empty, '');
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, readFileSync(photo).subarray(0, 60));
  const cases: [string[], number, RegExp][] = [
    [
      ['encode', empty, '--out', join(dir, 'x.safetensors')],
      1,
      /^vtc: error: .*empty\.jpg: file is empty \(0 bytes\), expected an image\n$/,
    ],
    [
      ['encode', corrupt, '--out', join(dir, 'x.safetensors')],
      1,
      /^vtc: error: .*corrupt\.png: (not a readable image|cannot decode png) \(.+\)\n$/,
    ],
    [
      ['encode', photo, '--max-pixels', '1000', '--out', join(dir, 'x.safetensors')],
      1,
      /image is 640x480 = 307200 pixels, above the limit of 1000/,
    ],
    [
      ['encode', photo, '--resize', 'stretch', '--out', join(dir, 'x.safetensors')],
      2,
      /--resize must be one of squash, shortest, letterbox/,
    ],
    [
      ['encode', photo, '--encoder', join(dir, 'missing-model'), '--out', join(dir, 'x.safetensors')],
      1,
      /encoder not found/,
    ],
    [
      ['compress', photo, '--method', 'random', '--out', join(dir, 'o.png')],
      2,
      /give exactly one of --ratio or --budget/,
    ],
    [
      ['compress', photo, '--method', 'nope', '--ratio', '0.5', '--out', join(dir, 'o.png')],
      2,
      /unknown method "nope"/,
    ],
  ];
  for (const [args, code, pattern] of cases) {
    const result = await runCli(args);
    assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
    assert.ok(!result.stderr.includes('    at '), 'no stack trace');
  }
});

test('vtc models pull downloads from a local hub with --json; vtc models presets lists the towers', async () => {
  const blob = Buffer.from('tiny onnx bytes for the CLI test');
  const sha = createHash('sha256').update(blob).digest('hex');
  const server = createServer((req, res) => {
    if (req.url === '/org/vit/resolve/main/model.onnx') {
      res.writeHead(302, {
        location: '/cdn/model.onnx',
        'x-linked-etag': `"${sha}"`,
        'x-linked-size': String(blob.length),
      });
      return void res.end();
    }
    if (req.url === '/cdn/model.onnx') {
      res.writeHead(200, { 'content-length': blob.length });
      return void res.end(req.method === 'HEAD' ? undefined : blob);
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const target = join(dir, 'models');
    const result = await runCli(['models', 'pull', 'org/vit', '--file', 'model.onnx', '--dir', target, '--json'], {
      env: { VTC_HF_ENDPOINT: endpoint },
    });
    assert.equal(result.code, 0, result.stderr);
    const json = JSON.parse(result.stdout);
    assert.deepEqual(
      json.files.map((f: { status: string; verified: string; sha256: string }) => [f.status, f.verified, f.sha256]),
      [['downloaded', 'sha256', sha]],
    );
    assert.deepEqual(readFileSync(join(target, 'model.onnx')), blob);
    const missing = await runCli(['models', 'pull', 'org/vit', '--file', 'other.onnx', '--dir', target], {
      env: { VTC_HF_ENDPOINT: endpoint },
    });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /other.onnx: not found in org\/vit at revision main \(HTTP 404\)/);
  } finally {
    server.close();
  }
  const presets = await runCli(['models', 'presets', '--json']);
  assert.equal(presets.code, 0, presets.stderr);
  assert.deepEqual(Object.keys(JSON.parse(presets.stdout)), [
    'clip-vit-l-14-336',
    'clip-vit-b-32',
    'siglip-so400m-384',
  ]);
});

test('vtc encode on a video samples frames through the video pipeline, keeping timestamps', async () => {
  const video = join(dir, 'clip.mp4');
  const { ffmpegPath } = await import('../../encoders/ffmpeg.js');
  // 2 s of a moving red square at 4 fps, generated with ffmpeg's lavfi source.
  const made = spawnSync(ffmpegPath(), [
    '-y',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=64x48:rate=4:duration=2',
    '-pix_fmt',
    'yuv420p',
    video,
  ]);
  assert.equal(made.status, 0, String(made.stderr));
  const result = await runCli(['encode', video, '--fps', '1', '--out', join(dir, 'v.safetensors'), '--json']);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  assert.equal(json.kind, 'video');
  assert.deepEqual(json.times, [0, 1]);
  assert.equal(json.n, 2 * 576);
  const anyres = await runCli(['encode', video, '--anyres', '--out', join(dir, 'v2.safetensors')]);
  assert.equal(anyres.code, 2);
  assert.match(anyres.stderr, /--anyres applies to images, not videos/);
});

test("vtc encode --scenes stores the sample video's three cuts in the JSON and the file metadata", async () => {
  const out = join(dir, 'scenes.safetensors');
  const result = await runCli([
    'encode',
    join(repoRoot, 'samples', 'video', 'scenes.mp4'),
    '--scenes',
    '0.3',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  assert.deepEqual(json.times, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(json.scene_changes, [1.5, 3, 4.5]);
  const { loadTokens } = await import('../../encoders/tokenfile.js');
  assert.equal((await loadTokens(out)).meta.scene_changes, '1.5,3,4.5');
  const bad = await runCli(['encode', join(repoRoot, 'samples', 'video', 'scenes.mp4'), '--scenes', '1', '--out', out]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^vtc: error: encode: --scenes must be in \(0, 1\), got 1\n$/);
});

test('vtc encode --encoder <ONNX model dir> --anyres stores CLS scores and CLS vectors in the bundle', async () => {
  const { writeTinyVit } = await import('./tiny-vit.js');
  const { decodeSafetensors } = await import('../../core/safetensors.js');
  const modelDir = join(dir, 'tiny-vit');
  await writeTinyVit(
    modelDir,
    { inputSize: 28, patchSize: 7, dim: 8, heads: 2, seed: 4, embed: 'conv', cls: true },
    { name: 'tiny-vit', attention: 'attention_logits' },
  );
  const out = join(dir, 'onnx-bundle.safetensors');
  const result = await runCli([
    'encode',
    photo,
    '--encoder',
    modelDir,
    '--anyres',
    '--threads',
    '1',
    '--batch-size',
    '2',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  assert.deepEqual([json.encoder, json.n, json.d, json.tiles], ['tiny-vit', 16 * 5, 8, 5]);
  const file = decodeSafetensors(readFileSync(out), out);
  assert.deepEqual(file.tensors.thumbnail_cls_token!.shape, [8]);
  assert.deepEqual(file.tensors.crops_cls_token!.shape, [4, 8]);
  assert.deepEqual(file.tensors.crops_cls!.shape, [4, 16]);
});
