import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { InputError } from '../../core/errors.js';
import { decodeNpy } from '../../core/npy.js';
import { readFrames, streamFrames } from '../../encoders/ffmpeg.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { encodeTokens } from '../../encoders/tokenfile.js';
import { encodeVideo, encodeVideoToNpy } from '../../encoders/video.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';

const sample = join(repoRoot, 'samples', 'video', 'scenes.mp4');
const dir = tempDir('vtc-stream-');
after(() => rmSync(dir, { recursive: true, force: true }));
// Cut after the first scenes: ffmpeg decodes the frames at 0, 1 and 2 s, then reports a partial file.
const cut = join(dir, 'cut.mp4');
writeFileSync(cut, readFileSync(sample).subarray(0, 9000));

test('streamFrames yields the same frames as readFrames, one at a time, and stops ffmpeg when the consumer leaves early', async () => {
  const { frames } = await readFrames(sample, { fps: 2, maxSide: 160 });
  const streamed = [];
  for await (const frame of streamFrames(sample, { fps: 2, maxSide: 160, readAhead: 1 })) streamed.push(frame);
  assert.deepEqual(
    streamed.map((f) => f.time),
    frames.map((f) => f.time),
  );
  streamed.forEach((f, i) => assert.deepEqual(f.image.data, frames[i]!.image.data, `frame ${i}`));
  const firstTwo = [];
  for await (const frame of streamFrames(sample, { fps: 2, maxSide: 160, readAhead: 1 })) {
    firstTwo.push(frame.time);
    if (firstTwo.length === 2) break;
  }
  assert.deepEqual(firstTwo, [0, 0.5]);
});

test('a truncated video: an error by default; with partial, the frames before the cut and what was cut', async () => {
  await assert.rejects(
    encodeVideo(cut, { encoder: createPatchEncoder() }),
    (e: Error) => e instanceof InputError && /frames stop at 2 s of 6 s$/.test(e.message),
  );
  const tokens = await encodeVideo(cut, { encoder: createPatchEncoder(), partial: true });
  assert.deepEqual(
    tokens.sources.map((s) => s.time),
    [0, 1, 2],
  );
  assert.equal(tokens.n, 3 * 24 * 24);
  assert.match(tokens.meta.truncated!, /^stream 0, offset 0x[0-9a-f]+: partial file: frames stop at 2 s of 6 s$/);
  const whole = await encodeVideo(sample, { encoder: createPatchEncoder(), maxFrames: 3 });
  assert.equal(whole.meta.truncated, undefined);
});

test('vtc encode --partial keeps a cut video as [frames, tokens, d] in .npy and says what was cut; without it exit 1', async () => {
  const out = join(dir, 'cut.npy');
  const failed = await runCli(['encode', cut, '--out', out]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /cut\.mp4 is truncated .*frames stop at 2 s of 6 s/);
  const ok = await runCli(['encode', cut, '--partial', '--json', '--out', out]);
  assert.equal(ok.code, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout) as { times: number[]; truncated: string; n: number; d: number };
  assert.deepEqual(summary.times, [0, 1, 2]);
  assert.match(summary.truncated, /partial file: frames stop at 2 s of 6 s$/);
  assert.deepEqual(decodeNpy(readFileSync(out)).shape, [3, 576, summary.d]);
  const usage = await runCli([
    'encode',
    join(repoRoot, 'samples', 'images', 'ocean.png'),
    '--partial',
    '--out',
    join(dir, 'x.npy'),
  ]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--partial applies to videos, not images/);
});

test('encodeVideoToNpy streams batches into the bytes saveTokens writes for encodeVideo; a failed run leaves no file', async () => {
  const encoder = createPatchEncoder();
  const tokens = await encodeVideo(sample, { encoder, fps: 2, maxFrames: 7, batchSize: 3 });
  for (const [name, maxFrames] of [
    ['seven.npy', 7],
    ['one.npy', 1],
  ] as const) {
    const out = join(dir, name);
    const streamed = await encodeVideoToNpy(sample, out, { encoder, fps: 2, maxFrames, batchSize: 3 });
    assert.equal(streamed.frames, maxFrames);
    const expected = maxFrames === 7 ? tokens : await encodeVideo(sample, { encoder, fps: 2, maxFrames });
    assert.deepEqual(
      streamed.times,
      expected.sources.map((s) => s.time),
    );
    // One frame is [tokens, d], as saveTokens writes it; several are [frames, tokens, d].
    assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(expected, out)));
  }
  const failedOut = join(dir, 'failed.npy');
  await assert.rejects(encodeVideoToNpy(cut, failedOut, { encoder, batchSize: 1 }), /frames stop at 2 s of 6 s$/);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('failed') || f.includes('.failed.npy.tmp')),
    [],
  );
});
