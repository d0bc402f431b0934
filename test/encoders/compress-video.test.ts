import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { compressVideo } from '../../encoders/compress.js';
import { readFrames } from '../../encoders/ffmpeg.js';
import { resizeImage } from '../../encoders/image.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { drawReductionOverlay, framesLayout } from '../../encoders/overlay.js';
import { loadTokens } from '../../encoders/tokenfile.js';
import type { RgbImage } from '../../encoders/types.js';
import { createTokenSet, selectTokens } from '../../core/tokenset.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';

const video = join(repoRoot, 'samples', 'video', 'scenes.mp4');
const image = join(repoRoot, 'samples', 'images', 'meadow.png');
const dir = tempDir('vtc-compress-video-');
after(() => rmSync(dir, { recursive: true, force: true }));

const pixel = (img: RgbImage, x: number, y: number) =>
  Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

test('framesLayout: a contact sheet ⌈√F⌉ frames wide, 8 px apart, frame f is source f', () => {
  const frame = (v: number): RgbImage => ({ data: new Uint8Array(2 * 2 * 3).fill(v), width: 2, height: 2 });
  const layout = framesLayout([frame(10), frame(200), frame(30)], 1);
  assert.deepEqual([layout.canvas.width, layout.canvas.height], [12, 12]); // 2 columns, 2 rows: 2 + 8 + 2
  assert.deepEqual(layout.tiles, [
    { x: 0, y: 0 },
    { x: 10, y: 0 },
    { x: 0, y: 10 },
  ]);
  assert.deepEqual(
    [pixel(layout.canvas, 1, 1), pixel(layout.canvas, 11, 1), pixel(layout.canvas, 1, 11)],
    [
      [10, 10, 10],
      [200, 200, 200],
      [30, 30, 30],
    ],
  );
  assert.deepEqual(pixel(layout.canvas, 5, 5), [48, 48, 48]); // the gap
  assert.deepEqual(pixel(layout.canvas, 11, 11), [48, 48, 48]); // the empty fourth cell
  // Token 6 (frame 1, row 1, col 0) dropped: its pixel at (10, 1) on the second frame is dimmed to 0.2·200 + 16.
  const tokens = createTokenSet({
    data: new Float32Array(8),
    n: 8,
    d: 1,
    source: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1),
    row: Int32Array.of(0, 0, 1, 1, 0, 0, 1, 1),
    col: Int32Array.of(0, 1, 0, 1, 0, 1, 0, 1),
    sources: [0, 1].map((index) => ({ kind: 'frame' as const, index, rows: 2, cols: 2, time: index })),
  });
  const keep = Int32Array.of(0, 1, 2, 3, 4, 5, 7);
  const { image: drawn } = drawReductionOverlay(layout, tokens, {
    tokens: selectTokens(tokens, keep),
    keep,
    stats: {},
  });
  assert.deepEqual(
    [pixel(drawn, 10, 1), pixel(drawn, 11, 1), pixel(drawn, 0, 1)],
    [
      [56, 56, 56],
      [200, 200, 200],
      [10, 10, 10],
    ],
  );
  assert.throws(() => framesLayout([], 1), /no frames/);
  assert.throws(
    () => framesLayout([frame(1), { data: new Uint8Array(12 * 3), width: 3, height: 4 }], 1),
    /frames must share one size \(the first is 2×2\)/,
  );
});

test('compressVideo per frame: pool on 2 frames keeps each frame’s 2×2 means, frame 0 first', async () => {
  const result = await compressVideo(video, { method: 'pool', ratio: 0.25, perFrame: true, maxFrames: 2 });
  const { input } = result;
  const out = result.reduction.tokens;
  assert.deepEqual([input.n, input.sources.length, out.n, input.d], [1152, 2, 288, 58]);
  assert.deepEqual(result.reduction.stats.kept_per_frame, [144, 144]);
  assert.deepEqual(Array.from(out.source), [...new Array(144).fill(0), ...new Array(144).fill(1)]);
  // Output f·144 + 12r + c is the mean of frame f's tokens (2r, 2c), (2r, 2c+1), (2r+1, 2c), (2r+1, 2c+1) of the 24×24 grid.
  for (let f = 0; f < 2; f++) {
    for (let cell = 0; cell < 144; cell++) {
      const [r, c] = [Math.floor(cell / 12), cell % 12];
      const base = f * 576 + 2 * r * 24 + 2 * c;
      const group = [base, base + 1, base + 24, base + 25];
      const o = f * 144 + cell;
      assert.deepEqual(
        [...out.origin[o]!].sort((a, b) => a - b),
        group,
      );
      for (let k = 0; k < input.d; k++) {
        const mean = group.reduce((sum, i) => sum + input.data[i * input.d + k]!, 0) / 4;
        assert.ok(Math.abs(out.data[o * out.d + k]! - mean) <= 1e-6 * Math.max(1, Math.abs(mean)), `output ${o}, ${k}`);
      }
    }
  }
  assert.deepEqual(
    result.stats.perSource.map((s) => [s.kind, s.index, s.covered, s.outputs]),
    [
      ['frame', 0, 576, 144],
      ['frame', 1, 576, 144],
    ],
  );
  assert.deepEqual([result.overlay.width, result.overlay.height], [336 + 8 + 336, 336]);
  // A budget is split evenly, the remainder to the first frames; keep indexes the input, frame by frame.
  const kept = await compressVideo(video, { method: 'random', budget: 3, perFrame: true, maxFrames: 2, seed: 5 });
  const keep = [...kept.reduction.keep!];
  assert.deepEqual(
    keep.map((i) => (i < 576 ? 0 : 1)),
    [0, 0, 1],
  );
  assert.deepEqual(
    kept.stats.perSource.map((s) => s.covered),
    [2, 1],
  );
});

test('compressVideo with an encoder that crops (shortest side): the sheet shows exactly the pixels the encoder saw', async () => {
  const encoder = { ...createPatchEncoder(), preferredResize: 'shortest' as const };
  const result = await compressVideo(video, { method: 'random', ratio: 1, maxFrames: 1, encoder });
  // Decoded at 2 × 336 on the long side (672×378), then centre-cropped to 336² as encodeFrames fits it.
  const { frames } = await readFrames(video, { fps: 1, maxFrames: 1, maxSide: 672 });
  const seen = await resizeImage(frames[0]!.image, 336, 336, { mode: 'shortest' });
  assert.deepEqual([result.overlay.width, result.overlay.height], [336, 336]);
  assert.ok(Buffer.from(result.overlay.data).equals(Buffer.from(seen.data)), 'ratio 1 keeps every patch untouched');
  const [tile] = await encoder.encode([seen]);
  assert.deepEqual(result.input.data, tile!.features);
});

test('vtc compress <video> --per-frame: JSON, overlay sheet and tokens; misuse exits 2 with one line', async () => {
  const overlay = join(dir, 'sheet.png');
  const tokensOut = join(dir, 'kept.safetensors');
  const args = ['--method', 'tome', '--ratio', '0.25', '--max-frames', '2', '--out', overlay];
  const r = await runCli(['compress', video, ...args, '--per-frame', '--tokens-out', tokensOut, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  assert.deepEqual(
    [json.n_in, json.n_out, json.budget, json.frames, json.per_frame, json.mode],
    [1152, 288, 288, 2, true, 'merge'],
  );
  assert.deepEqual(
    json.per_source.map((s: { covered: number; outputs: number }) => [s.covered, s.outputs]),
    [
      [576, 144],
      [576, 144],
    ],
  );
  const meta = await sharp(overlay).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 680, 336]);
  // No output token mixes frames: every output's origins lie in its own frame.
  const tokens = await loadTokens(tokensOut);
  for (let o = 0; o < tokens.n; o++) {
    const frame = tokens.source[o]!;
    assert.ok(
      tokens.origin[o]!.every((i) => Math.floor(i / 576) === frame),
      `output ${o} stays in frame ${frame}`,
    );
  }
  const cases: [string[], RegExp][] = [
    [
      ['compress', image, '--method', 'random', '--ratio', '0.5', '--per-frame', '--out', overlay],
      /^vtc: error: compress: --per-frame applies to videos, not images \(.*meadow\.png is an image: one tile or an AnyRes bundle, no frames\)\n$/,
    ],
    [
      ['compress', video, '--method', 'evs', '--ratio', '0.5', '--per-frame', '--out', overlay],
      /^vtc: error: evs: per-frame reduction runs the method on one frame at a time, but evs works on several frames together\n$/,
    ],
    [
      ['compress', video, '--method', 'random', '--budget', '1', '--per-frame', '--max-frames', '2', '--out', overlay],
      /^vtc: error: random: budget 1 is smaller than the number of frames \(2\); each frame keeps at least one token\n$/,
    ],
    [
      ['compress', video, '--method', 'globalcom2', '--ratio', '0.5', '--out', overlay],
      /^vtc: error: compress: globalcom2 works on a LLaVA-NeXT AnyRes bundle of one image, not on video frames\n$/,
    ],
    [
      ['compress', video, '--method', 'pool', '--ratio', '0.5', '--max-frames', '0', '--out', overlay],
      /^vtc: error: compress: maxFrames \(--max-frames\) must be an integer ≥ 1, got 0\n$/,
    ],
    [
      ['compress', video, '--method', 'pool', '--ratio', '0.5', '--anyres', '--out', overlay],
      /^vtc: error: compress: --anyres applies to images, not videos/,
    ],
  ];
  // Each is refused before anything is encoded, so they run side by side.
  const refusals = await Promise.all(cases.map(([argv]) => runCli(argv)));
  for (const [k, [argv, pattern]] of cases.entries()) {
    assert.equal(refusals[k]!.code, 2, `${argv.join(' ')}: ${refusals[k]!.stderr}`);
    assert.match(refusals[k]!.stderr, pattern);
  }
  // A video method on an image is refused by the method itself, as vtc reduce refuses a 2-D token file (exit 1).
  const fastvid = await runCli(['compress', image, '--method', 'fastvid', '--ratio', '0.5', '--out', overlay]);
  assert.equal(fastvid.code, 1, fastvid.stderr);
  assert.match(fastvid.stderr, /^vtc: error: fastvid: needs a video token set \[frames, tokens, d\].*kind 'image'/);
});
