import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../core/errors.js';
import {
  effectiveFps,
  frameSize,
  parseProbe,
  parseShowinfoTimes,
  probeVideo,
  readFrames,
  rotationFilter,
  sceneChanges,
  summariseFfmpegError,
} from '../../encoders/ffmpeg.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { encodeVideo, tilesToFrameTokens } from '../../encoders/video.js';
import { repoRoot, tempDir } from '../helpers.js';

const sample = join(repoRoot, 'samples', 'video', 'scenes.mp4');

test('probe: the sample video is 320x180, 6 s, 10 fps h264', async () => {
  const info = await probeVideo(sample);
  assert.deepEqual(
    { w: info.width, h: info.height, d: info.duration, fps: info.fps, codec: info.codec },
    { w: 320, h: 180, d: 6, fps: 10, codec: 'h264' },
  );
});

test('readFrames: 2 fps gives 12 frames at 0, 0.5, …, 5.5 s, and each scene shows its own colour', async () => {
  const { frames } = await readFrames(sample, { fps: 2, maxSide: 160 });
  assert.deepEqual(
    frames.map((f) => f.time),
    Array.from({ length: 12 }, (_, i) => i * 0.5),
  );
  for (const f of frames)
    assert.deepEqual([f.image.width, f.image.height, f.image.data.length], [160, 90, 160 * 90 * 3]);
  // Top-left pixel: sunset sky is red-orange (R high, B low), ocean sky is blue (B high), night is near black.
  const px = (i: number) => Array.from(frames[i]!.image.data.subarray(0, 3));
  assert.ok(px(0)[0]! > 200 && px(0)[2]! < 100, `sunset ${px(0)}`);
  assert.ok(px(4)[2]! > 200 && px(4)[0]! < 120, `ocean ${px(4)}`);
  assert.ok(px(10)[0]! < 30 && px(10)[1]! < 30, `night ${px(10)}`);
});

test('readFrames: maxFrames lowers the rate so the frames still span the whole video', async () => {
  const { frames } = await readFrames(sample, { fps: 10, maxFrames: 8, width: 32, height: 18 });
  assert.deepEqual(
    frames.map((f) => f.time),
    // the first 10 fps frame at or after each k·0.75 s, stamped with its own time
    [0, 0.8, 1.5, 2.3, 3, 3.8, 4.5, 5.3],
  );
  assert.equal(effectiveFps(6, 10, 8), 8 / 6);
  assert.equal(effectiveFps(Number.NaN, 2, 8), 2);
});

test('each sampled frame is the decoded frame at its timestamp (ramp video: frame n has grey 16 + 6n)', async () => {
  const { spawnSync } = await import('node:child_process');
  const { ffmpegPath } = await import('../../encoders/ffmpeg.js');
  const video = join(tempDir(), 'ramp.mp4');
  const lavfi = "color=black:s=32x16:r=10:d=3,geq=lum='16+6*N':cb=128:cr=128";
  const made = spawnSync(ffmpegPath(), [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    lavfi,
    '-c:v',
    'libx264',
    '-qp',
    '0',
    '-pix_fmt',
    'yuv444p',
    video,
  ]);
  assert.equal(made.status, 0, String(made.stderr));
  const all = (await readFrames(video, { fps: 10 })).frames;
  assert.deepEqual(
    all.map((f) => f.time),
    Array.from({ length: 30 }, (_, n) => n / 10),
  );
  const at = new Map(all.map((f) => [f.time, f.image.data[0]]));
  assert.ok(all[29]!.image.data[0]! > all[1]!.image.data[0]! + 150, 'the ramp is visible in red');
  for (const options of [{ fps: 1 }, { fps: 2 }, { fps: 3 }, { fps: 4, maxFrames: 5 }]) {
    const { frames } = await readFrames(video, options);
    for (const f of frames)
      assert.equal(
        f.image.data[0],
        at.get(f.time),
        `${JSON.stringify(options)}: frame stamped ${f.time} s shows another moment`,
      );
    if (options.fps === 2)
      assert.deepEqual(
        frames.map((f) => f.time),
        [0, 0.5, 1, 1.5, 2, 2.5],
      );
    if (options.fps === 3)
      assert.deepEqual(
        frames.map((f) => f.time),
        [0, 0.4, 0.7, 1, 1.4, 1.7, 2, 2.4, 2.7],
      );
  }
});

test('sceneChanges finds the three hard cuts at 1.5, 3 and 4.5 s', async () => {
  assert.deepEqual(await sceneChanges(sample, 0.3), [1.5, 3, 4.5]);
});

test('encodeVideo: one frame source per sampled frame with its time, tokens grouped by frame', async () => {
  const encoder = createPatchEncoder({ inputSize: 112, patchSize: 14 });
  const tokens = await encodeVideo(sample, { encoder, fps: 1, maxFrames: 64 });
  assert.equal(tokens.sources.length, 6);
  assert.deepEqual(
    tokens.sources.map((s) => [s.kind, s.index, s.time, s.rows, s.cols]),
    [0, 1, 2, 3, 4, 5].map((t) => ['frame', t, t, 8, 8]),
  );
  assert.equal(tokens.n, 6 * 64);
  assert.equal(tokens.d, encoder.dim);
  assert.equal(tokens.source[64], 1);
  assert.deepEqual([tokens.row[64 + 9], tokens.col[64 + 9]], [1, 1]);
  assert.equal(tokens.meta.video, sample);
});

test('tilesToFrameTokens keeps CLS vectors and rejects mismatched inputs', () => {
  const tile = {
    features: Float32Array.of(1, 0, 0, 1),
    rows: 1,
    cols: 2,
    dim: 2,
    scores: Float32Array.of(0.5, -0.5),
    clsToken: Float32Array.of(3, 4),
  };
  const tokens = tilesToFrameTokens([tile, tile], [0.25, 0.75]);
  assert.deepEqual(
    tokens.sources.map((s) => s.time),
    [0.25, 0.75],
  );
  assert.deepEqual(Array.from(tokens.sources[1]!.cls!), [3, 4]);
  assert.deepEqual(Array.from(tokens.score!), [0.5, -0.5, 0.5, -0.5]);
  assert.throws(() => tilesToFrameTokens([tile], [0, 1]), /1 tiles but 2 timestamps/);
});

test('missing, empty and corrupt videos fail with one clear line', async () => {
  const dir = tempDir();
  const empty = join(dir, 'empty.mp4');
  writeFileSync(empty, '');
  const corrupt = join(dir, 'corrupt.mp4');
  writeFileSync(corrupt, 'this is not a video at all');
  await assert.rejects(
    readFrames(join(dir, 'missing.mp4')),
    (e: Error) => e instanceof InputError && e.message === `video not found: ${join(dir, 'missing.mp4')}`,
  );
  await assert.rejects(
    readFrames(empty),
    (e: Error) => e instanceof InputError && e.message === `video ${empty} is empty (0 bytes)`,
  );
  await assert.rejects(
    readFrames(corrupt),
    (e: Error) =>
      e instanceof InputError &&
      e.message.includes('Invalid data found when processing input') &&
      !e.message.includes('\n'),
  );
  await assert.rejects(readFrames(dir), /is not a regular file/);
  // A truncated MP4 (first 3 KB): the moov atom is at the front (+faststart) but the media data is gone.
  const { readFileSync } = await import('node:fs');
  const truncated = join(dir, 'truncated.mp4');
  writeFileSync(truncated, readFileSync(sample).subarray(0, 3000));
  await assert.rejects(
    readFrames(truncated, { fps: 2 }),
    (e: Error) =>
      e instanceof InputError &&
      /^video .*truncated\.mp4: ffmpeg failed \(exit 1\): stream 0, offset 0x[0-9a-f]+: partial file$/.test(e.message),
  );
  // Cut after the first scenes: ffmpeg decodes 3 frames and exits 0, but the file is still truncated.
  writeFileSync(truncated, readFileSync(sample).subarray(0, 9000));
  await assert.rejects(
    readFrames(truncated, { fps: 1 }),
    (e: Error) =>
      e instanceof InputError &&
      /^video .*truncated\.mp4 is truncated \(stream 0, offset 0x[0-9a-f]+: partial file\): frames stop at 2 s of 6 s$/.test(
        e.message,
      ),
  );
});

test("rotation is read the same from the 2018 rotate tag and the ffmpeg ≥ 5 display matrix, and undone by vtc's own filter", () => {
  const old =
    'Input #0, mov\n  Duration: 00:00:01.00, start: 0\n    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 64x32 [SAR 1:1 DAR 2:1], 13 kb/s, 5 fps, 5 tbr, 10240 tbn, 10 tbc (default)\n    Metadata:\n      rotate          : 270\n    Side data:\n      displaymatrix: rotation of 90.00 degrees\n';
  const debian =
    'Input #0, mov\n  Duration: 00:00:01.00, start: 0\n  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 64x32 [SAR 1:1 DAR 2:1], 13 kb/s, 5 fps, 5 tbr, 10240 tbn (default)\n    Side data:\n      displaymatrix: rotation of 90.00 degrees\n';
  for (const text of [old, debian]) {
    const info = parseProbe('r.mp4', text);
    assert.deepEqual([info.width, info.height, info.rotation], [32, 64, 270]);
  }
  assert.equal(parseProbe('r.mp4', debian.replace('90.00', '-90.00')).rotation, 90);
  assert.equal(parseProbe('r.mp4', debian.replace('90.00', '180.00')).rotation, 180);
  assert.deepEqual(
    [90, 180, 270, 0].map((r) => rotationFilter(r)),
    ['transpose=clock', 'hflip,vflip', 'transpose=cclock', ''],
  );
});

test('parse helpers: probe without a video stream, showinfo times, error summary', () => {
  const audioOnly =
    "Input #0, mp3, from 'a.mp3':\n  Duration: 00:00:03.00, start: 0.0, bitrate: 128 kb/s\n    Stream #0:0: Audio: mp3, 44100 Hz, stereo\nAt least one output file must be specified\n";
  assert.throws(() => parseProbe('a.mp3', audioOnly), /video a\.mp3 has no video stream/);
  const info = parseProbe(
    'v.mkv',
    'Input #0, matroska\n  Duration: 01:02:03.50, start: 0\n    Stream #0:0: Video: vp9 (Profile 0), yuv420p(tv), 1920x1080, SAR 1:1 DAR 16:9, 29.97 fps, 29.97 tbr\n',
  );
  assert.deepEqual([info.codec, info.width, info.height, info.duration, info.fps], ['vp9', 1920, 1080, 3723.5, 29.97]);
  assert.deepEqual(
    parseShowinfoTimes(
      '[Parsed_showinfo_2 @ 0x1] n:   0 pts:      0 pts_time:0       pos: 1\n[Parsed_showinfo_2 @ 0x1] n:   1 pts:   512 pts_time:0.5     pos: 2\n',
    ),
    [0, 0.5],
  );
  assert.equal(
    summariseFfmpegError(
      'Input #0, mov\n  Stream #0:0: Video: h264\n[h264 @ 0x1] error while decoding MB 3 4\nx.mp4: Invalid data\n',
    ),
    'x.mp4: Invalid data',
  );
  // Generic closing lines are skipped, demuxer prefixes dropped, truncation preferred over other causes.
  assert.equal(
    summariseFfmpegError(
      '[mov,mp4,m4a @ 0x5f] stream 0, offset 0xc59: partial file\nx.mp4: Invalid data found\nConversion failed!\n',
    ),
    'stream 0, offset 0xc59: partial file',
  );
  assert.equal(
    summariseFfmpegError('[h264 @ 0xa] mmco: unref short failure\nConversion failed!\n'),
    'mmco: unref short failure',
  );
  assert.equal(summariseFfmpegError(''), 'ffmpeg failed without a message');
  assert.deepEqual(frameSize({ width: 1920, height: 1080 }, { maxSide: 448 }), { width: 448, height: 252 });
  assert.deepEqual(frameSize({ width: 320, height: 180 }, { maxSide: 448 }), { width: 320, height: 180 });
});

test('a rotate tag (phone portrait video) swaps the frame size, as ffmpeg auto-rotates the pixels', async () => {
  const { spawnSync } = await import('node:child_process');
  const { ffmpegPath } = await import('../../encoders/ffmpeg.js');
  const dir = tempDir();
  const plain = join(dir, 'plain.mp4');
  const rotated = join(dir, 'rotated.mp4');
  const run = (args: string[]) =>
    assert.equal(spawnSync(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', ...args]).status, 0);
  run(['-f', 'lavfi', '-i', 'testsrc=duration=1:size=64x32:rate=5', '-pix_fmt', 'yuv420p', '-y', plain]);
  run(['-i', plain, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', '-y', rotated]);
  const info = await probeVideo(rotated);
  assert.deepEqual([info.width, info.height], [32, 64]);
  const { frames } = await readFrames(rotated, { fps: 5 });
  assert.deepEqual([frames.length, frames[0]!.image.width, frames[0]!.image.height], [5, 32, 64]);
});
