import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeSafetensors } from '../../core/safetensors.js';
import { Rng } from '../../core/rng.js';
import { createTokenSet, mergeTokens, selectTokens, type TokenSet } from '../../core/tokenset.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { encodeTokens, loadTokens, saveTokens } from '../../encoders/tokenfile.js';
import { createTokenStream, isFrameFile, openFrameFile } from '../../encoders/tokenstream.js';
import { encodeVideo, encodeVideoToSafetensors } from '../../encoders/video.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';

const dir = tempDir('vtc-tokenstream-st-');
after(() => rmSync(dir, { recursive: true, force: true }));
const sample = join(repoRoot, 'samples', 'video', 'scenes.mp4');

/** A video token set: `frames` frames of a rows×cols grid, d features, scores, times, positions. */
function videoTokens(frames: number, rows: number, cols: number, d: number, seed: number): TokenSet {
  const rng = new Rng(seed);
  const perFrame = rows * cols;
  const n = frames * perFrame;
  const source = new Int32Array(n);
  for (let f = 0; f < frames; f++) source.fill(f, f * perFrame, (f + 1) * perFrame);
  const tokens = createTokenSet({
    data: Float32Array.from({ length: n * d }, () => rng.float() * 2 - 1),
    n,
    d,
    sources: Array.from({ length: frames }, (_, f) => ({ kind: 'frame' as const, index: f, rows, cols, time: f / 2 })),
    source,
    score: Float32Array.from({ length: n }, () => rng.float()),
    meta: { video: 'v.mp4', encoder: 'patch' },
  });
  const positions = new Int32Array(3 * n);
  for (let i = 0; i < n; i++) positions.set([tokens.source[i]!, tokens.row[i]!, tokens.col[i]!], 3 * i);
  tokens.positions = positions;
  return tokens;
}

/** The token set with d = 1 zeros: the metadata the streaming writer takes at close. */
function skeletonOf(tokens: TokenSet): TokenSet {
  return { ...tokens, d: 1, data: new Float32Array(tokens.n) };
}

test('streaming .safetensors writer: rows in blocks + metadata at close give saveTokens bytes, with and without a reservation', async () => {
  const video = videoTokens(5, 2, 3, 4, 1);
  // A selection and a merge (origins, sizes ≠ 1) too.
  const kept = selectTokens(video, Int32Array.of(0, 3, 7, 8, 20, 29));
  const assign = Int32Array.from({ length: video.n }, (_, i) => Math.floor(i / 3));
  const merged = mergeTokens(video, assign, 10);
  for (const [name, tokens] of Object.entries({ video, kept, merged })) {
    for (const dtype of ['float32', 'float16'] as const) {
      for (const reserve of [false, true]) {
        const path = join(dir, `${name}-${dtype}-${reserve}.safetensors`);
        const out = await createTokenStream(path, {
          d: tokens.d,
          dtype,
          ...(reserve ? { expect: skeletonOf(tokens) } : {}),
        });
        const cut = Math.min(tokens.n, 4) * tokens.d;
        await out.append(tokens.data.subarray(0, cut));
        assert.ok(!readdirSync(dir).includes(`${name}-${dtype}-${reserve}.safetensors`));
        await out.append(tokens.data.subarray(cut));
        assert.equal(out.count, tokens.n);
        await out.close(skeletonOf(tokens));
        assert.deepEqual(readFileSync(path), Buffer.from(encodeTokens(tokens, path, { dtype })), path);
      }
    }
  }
  // A reservation larger than the final prefix (the expected run was longer): moved down, file cut to length.
  const path = join(dir, 'shrunk.safetensors');
  const out = await createTokenStream(path, { d: 4, expect: skeletonOf(video) });
  await out.append(kept.data);
  await out.close(skeletonOf(kept));
  assert.deepEqual(readFileSync(path), Buffer.from(encodeTokens(kept, path)));
  assert.deepEqual((await loadTokens(path)).origin, kept.origin);
});

test('streaming .safetensors writer: wrong row counts, partial rows, extras, other extensions; abort leaves nothing', async () => {
  const video = videoTokens(2, 2, 2, 3, 2);
  const short = await createTokenStream(join(dir, 'short.safetensors'), { d: 3 });
  await assert.rejects(short.append(new Float32Array(4)), /a block of 4 values is not whole rows of d = 3/);
  await short.append(video.data.subarray(0, 9));
  await assert.rejects(
    short.close(skeletonOf(video)),
    /short\.safetensors: the metadata describes 8 tokens, 3 rows were written/,
  );
  const extra = await createTokenStream(join(dir, 'extra.safetensors'), { d: 3 });
  await extra.append(video.data);
  await assert.rejects(
    extra.close({ ...skeletonOf(video), extra: { deepstack_0: new Float32Array(8) } }),
    /carries no extra tensors \(deepstack_0\)/,
  );
  const aborted = await createTokenStream(join(dir, 'aborted.safetensors'), { d: 3 });
  await aborted.append(video.data);
  await aborted.abort();
  await assert.rejects(createTokenStream(join(dir, 'x.npy'), { d: 3 }), /writes \.safetensors files only/);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.tmp-') || /^(short|extra|aborted)/.test(f)),
    [],
  );
});

test('block reader over a video .safetensors: frames [a, b), skeleton as loadTokens, float16; refusals', async () => {
  const video = videoTokens(7, 3, 3, 5, 3);
  for (const dtype of ['float32', 'float16'] as const) {
    const path = join(dir, `read-${dtype}.safetensors`);
    await saveTokens(path, video, { dtype });
    const loaded = await loadTokens(path);
    assert.equal(await isFrameFile(path), true);
    const file = await openFrameFile(path, 'evs');
    try {
      assert.deepEqual([file.frames, file.perFrame, file.d, file.rows, file.cols, file.dtype], [7, 9, 5, 3, 3, dtype]);
      for (const [a, b] of [
        [0, 7],
        [2, 5],
        [6, 7],
      ] as const)
        assert.deepEqual(Array.from(await file.readFrames(a, b)), Array.from(loaded.data.subarray(a * 45, b * 45)));
      const skeleton = file.skeleton();
      assert.deepEqual(skeleton.sources, loaded.sources);
      assert.deepEqual(skeleton.score, loaded.score);
      assert.deepEqual(skeleton.positions, loaded.positions);
      assert.deepEqual([skeleton.row, skeleton.col, skeleton.meta], [loaded.row, loaded.col, loaded.meta]);
      // Identity origins are made when read (no array per token held for a long video), equal to loadTokens's.
      assert.deepEqual(
        skeleton.origin.map((o) => Array.from(o)),
        loaded.origin.map((o) => Array.from(o)),
      );
      assert.notEqual(skeleton.origin[4], skeleton.origin[4]);
      await assert.rejects(file.readFrames(3, 8), /frames \[3, 8\) are not a range within \[0, 7\)/);
    } finally {
      await file.close();
    }
  }
  // Not frames: an image's tokens are read whole, not by blocks.
  const image = join(dir, 'image.safetensors');
  await saveTokens(image, createTokenSet({ data: new Float32Array(16), n: 4, d: 4 }));
  assert.equal(await isFrameFile(image), false);
  await assert.rejects(openFrameFile(image, 'evs'), /evs: needs a video token set .* kind 'image'/);
  // Frames with unequal counts: the in-memory path's error.
  const unequal = join(dir, 'unequal.safetensors');
  await saveTokens(
    unequal,
    selectTokens(
      video,
      Int32Array.from({ length: 62 }, (_, i) => i),
    ),
  );
  await assert.rejects(openFrameFile(unequal, 'fastvid'), /fastvid: frame 0 has 9 tokens but the input has 62/);
});

test('block reader: a truncated .safetensors names the file and the expected vs actual bytes', async () => {
  const video = videoTokens(4, 2, 2, 3, 4);
  const path = join(dir, 'cut.safetensors');
  const bytes = encodeTokens(video, path);
  writeFileSync(path, bytes);
  truncateSync(path, bytes.length - 10);
  await assert.rejects(
    openFrameFile(path, 'evs'),
    new RegExp(`cut\\.safetensors: .*${bytes.length}.*${bytes.length - 10}`),
  );
  // A header whose tokens lie past the end (the loader's own check, same numbers).
  const shortHeader = join(dir, 'short-header.safetensors');
  writeFileSync(
    shortHeader,
    encodeSafetensors({ tokens: { shape: [2, 2], data: new Float32Array(4) } }).subarray(0, 30),
  );
  await assert.rejects(openFrameFile(shortHeader, 'evs'), /short-header\.safetensors: /);
});

test('encodeVideoToSafetensors and vtc encode --out .safetensors stream into the bytes saveTokens writes for encodeVideo', async () => {
  const encoder = createPatchEncoder();
  const tokens = await encodeVideo(sample, { encoder, fps: 2, maxFrames: 7, batchSize: 3 });
  const out = join(dir, 'seven.safetensors');
  const streamed = await encodeVideoToSafetensors(sample, out, { encoder, fps: 2, maxFrames: 7, batchSize: 3 });
  assert.deepEqual(
    [streamed.frames, streamed.perFrame, streamed.d, streamed.times],
    [7, 576, tokens.d, tokens.sources.map((s) => s.time)],
  );
  assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(tokens, out)));
  const cli = join(dir, 'cli.safetensors');
  const result = await runCli([
    'encode',
    sample,
    '--fps',
    '2',
    '--max-frames',
    '7',
    '--dtype',
    'float16',
    '--json',
    '--out',
    cli,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(readFileSync(cli), Buffer.from(encodeTokens(tokens, cli, { dtype: 'float16' })));
  // A cut video without --partial: exit 1 and no file.
  const cut = join(dir, 'cut.mp4');
  writeFileSync(cut, readFileSync(sample).subarray(0, 9000));
  const failed = await runCli(['encode', cut, '--out', join(dir, 'failed.safetensors')]);
  assert.equal(failed.code, 1);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('failed.safetensors')),
    [],
  );
});
