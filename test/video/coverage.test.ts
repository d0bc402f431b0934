import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { mergeAdjacentFrames } from '../../reducers/temporal-merge.js';
import { allocateFrames, isBlankFrame, lumaStd } from '../../video/coverage.js';
import { tempDir } from '../helpers.js';

test('lumaStd and isBlankFrame: uniform frames are blank, any picture is not', () => {
  assert.equal(lumaStd({ width: 2, height: 1, data: Uint8Array.of(0, 0, 0, 255, 255, 255) }), 127.5);
  const black = { width: 8, height: 8, data: new Uint8Array(192) };
  const nearBlack = { width: 8, height: 8, data: Uint8Array.from({ length: 192 }, (_, i) => (i % 6 === 0 ? 6 : 2)) };
  const dimPicture = {
    width: 8,
    height: 8,
    data: Uint8Array.from({ length: 192 }, (_, i) => (Math.floor(i / 24) % 2 ? 30 : 12)),
  };
  assert.deepEqual([black, nearBlack, dimPicture].map(isBlankFrame), [true, true, false]);
});

test("allocateFrames: every shot ≥ duration/frames gets a frame, the rest by D'Hondt, capped by candidates", () => {
  // 80 s: 40 + 30 qualify (≥ 20 s); D'Hondt: 40/2 = 20 > 30/2 = 15 > 6 → shot 0, then 30/2 = 15 > 40/3 → shot 1
  assert.deepEqual(
    allocateFrames(
      [
        { duration: 40, candidates: 80 },
        { duration: 30, candidates: 60 },
        { duration: 6, candidates: 12 },
        { duration: 4, candidates: 8 },
      ],
      4,
    ),
    [2, 2, 0, 0],
  );
  // The late 19 s shot of an 80 s video is ≥ 80/8 = 10 s: it is represented although earlier shots are longer
  const late = allocateFrames(
    [
      { duration: 25, candidates: 50 },
      { duration: 24, candidates: 48 },
      { duration: 12, candidates: 24 },
      { duration: 19, candidates: 38 },
    ],
    8,
  );
  assert.deepEqual(late, [3, 2, 1, 2]);
  // a shot of blank frames only (no candidates) gets nothing; a shot with one candidate at most one
  assert.deepEqual(
    allocateFrames(
      [
        { duration: 1, candidates: 0 },
        { duration: 5, candidates: 1 },
        { duration: 5, candidates: 10 },
      ],
      4,
    ),
    [0, 1, 3],
  );
  // ties go to the earlier shot; the budget is never exceeded
  assert.deepEqual(
    allocateFrames(
      [
        { duration: 1.5, candidates: 3 },
        { duration: 1.5, candidates: 3 },
        { duration: 1.5, candidates: 3 },
        { duration: 1.5, candidates: 3 },
      ],
      3,
    ),
    [1, 1, 1, 0],
  );
  assert.deepEqual(allocateFrames([{ duration: 2, candidates: 1 }], 5), [1]);
});

test('mergeAdjacentFrames with quotas never merges across a segment and stops each segment at its quota', () => {
  // frames 0..5 along one direction but two segments [0..2] and [3..5]: without quotas 2 ↔ 3 (identical) would merge first
  const f = (x: number) => Float32Array.of(1, x);
  const frames = [f(0), f(0.1), f(5), f(5), f(0.1), f(0)];
  const free = mergeAdjacentFrames(frames, 2, 2);
  assert.ok(
    free.groups.some((g) => g.includes(2) && g.includes(3)),
    'unconstrained merges across the boundary',
  );
  const split = mergeAdjacentFrames(frames, 2, 2, { segment: [0, 0, 0, 1, 1, 1], quota: [1, 2] });
  assert.deepEqual(split.groups, [[0, 1, 2], [3], [4, 5]]);
  assert.throws(
    () => mergeAdjacentFrames(frames, 2, 2, { segment: [0, 0, 0, 1, 1, 1], quota: [1, 4] }),
    /segment 1 has 3 frames, its quota must be an integer in \[1, 3\], got 4/,
  );
  assert.throws(
    () => mergeAdjacentFrames(frames, 2, 2, { segment: [0, 1, 0, 1, 1, 1], quota: [1, 1] }),
    /frame 2 has segment 0; segments must be non-decreasing/,
  );
});

test('a query-free plan skips a black fade-in and covers a long late shot', async () => {
  const { ffmpegPath } = await import('../../encoders/ffmpeg.js');
  const { planVideo } = await import('../../video/pipeline.js');
  const dir = tempDir('vtc-coverage-');
  const video = join(dir, 'fade.mp4');
  // 1 s black, 2 s of red/white bars, then 5 s of a test pattern: three shots, the longest last
  const graph = '[0][1][2]concat=n=3:v=1:a=0,format=yuv420p[v]';
  const made = spawnSync(ffmpegPath(), [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    'color=c=black:s=160x90:r=10:d=1',
    '-f',
    'lavfi',
    '-i',
    'color=c=red:s=160x90:r=10:d=2,drawbox=x=0:y=0:w=80:h=90:color=white:t=fill',
    '-f',
    'lavfi',
    '-i',
    'testsrc=s=160x90:r=10:d=5',
    '-filter_complex',
    graph,
    '-map',
    '[v]',
    '-c:v',
    'libx264',
    '-qp',
    '0',
    '-y',
    video,
  ]);
  assert.equal(made.status, 0, made.stderr.toString());
  const plan = await planVideo(video, { frames: 3, fps: 2 });
  assert.equal(plan.retrieval, 'query-free');
  assert.equal(plan.keyframes.length, 3);
  for (const k of plan.keyframes) assert.ok(k.time >= 1, `keyframe at ${k.time}s is in the black fade-in`);
  assert.ok(
    plan.keyframes.some((k) => k.time >= 3),
    'the 5 s test-pattern shot is represented',
  );
  // visible time 7 s, 3 frames: the 5 s shot qualifies (≥ 7/3 s); D'Hondt then gives 5/2 > 2/1 to it and 2/1 > 5/3 to the bars
  assert.ok(
    plan.keyframes.some((k) => k.time >= 1 && k.time < 3),
    'the 2 s bars shot is represented',
  );
});
