import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeNpy } from '../../core/npy.js';
import { Rng } from '../../core/rng.js';
import { selectTokens } from '../../core/tokenset.js';
import { meanCosineHints, reduceFramesFile } from '../../encoders/frame-reduce.js';
import { encodeTokens, loadTokens } from '../../encoders/tokenfile.js';
import { createNpyStream, frameSelection, npyShapeOf, openNpyFrames } from '../../encoders/tokenstream.js';
import { evsBlocks, evsReducer } from '../../reducers/evs.js';
import { fastvidBlocks, fastvidReducer, MAX_SEGMENT_FRAMES } from '../../reducers/fastvid.js';
import { gatherRows } from '../../reducers/frame-blocks.js';
import { runReducer } from '../../reducers/run.js';
import { runCli, tempDir } from '../helpers.js';

const dir = tempDir();

function randomVideo(frames: number, perFrame: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: frames * perFrame * d }, () => rng.float() * 2 - 1);
}

test('streaming .npy writer: blocks of frames give the bytes encodeNpy gives, float32 and float16, atomically', async () => {
  const data = randomVideo(7, 4, 3, 1);
  for (const dtype of ['float32', 'float16'] as const) {
    const path = join(dir, `stream-${dtype}.npy`);
    const out = await createNpyStream(path, { trailing: [4, 3], dtype });
    // Blocks of 3, 1 and 3 frames; nothing under the final name until close.
    await out.append(data.subarray(0, 3 * 12));
    await out.append(data.subarray(3 * 12, 4 * 12));
    assert.ok(!readdirSync(dir).includes(`stream-${dtype}.npy`));
    await out.append(data.subarray(4 * 12));
    assert.equal(out.count, 7);
    await out.close();
    assert.deepEqual(readFileSync(path), Buffer.from(encodeNpy([7, 4, 3], data, dtype)));
  }
  // A 2-D stream of rows.
  const rows = join(dir, 'rows.npy');
  const out = await createNpyStream(rows, { trailing: [3] });
  await out.append(data.subarray(0, 6));
  await out.close();
  assert.deepEqual(readFileSync(rows), Buffer.from(encodeNpy([2, 3], data.subarray(0, 6))));
  // Partial entries are refused; abort leaves no temp file behind.
  const bad = await createNpyStream(join(dir, 'bad.npy'), { trailing: [4, 3] });
  await assert.rejects(bad.append(new Float32Array(5)), /block of 5 values is not whole entries of \(4, 3\) = 12/);
  await bad.abort();
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('block reader: frames [a, b) of a 3-D .npy equal the loaded file; float16 too', async () => {
  const data = randomVideo(9, 4, 5, 2);
  for (const dtype of ['float32', 'float16'] as const) {
    const path = join(dir, `read-${dtype}.npy`);
    writeFileSync(path, encodeNpy([9, 4, 5], data, dtype));
    const whole = (await loadTokens(path)).data;
    assert.deepEqual(await npyShapeOf(path), [9, 4, 5]);
    const file = await openNpyFrames(path);
    try {
      assert.deepEqual([file.frames, file.perFrame, file.d, file.rows, file.cols], [9, 4, 5, 2, 2]);
      for (const [a, b] of [
        [0, 9],
        [2, 5],
        [8, 9],
      ] as const)
        assert.deepEqual(Array.from(await file.readFrames(a, b)), Array.from(whole.subarray(a * 20, b * 20)));
      await assert.rejects(file.readFrames(3, 10), /frames \[3, 10\) are not a range within \[0, 9\)/);
    } finally {
      await file.close();
    }
  }
});

test('block reader: truncated file, wrong rank, missing file → errors naming the file and the bytes', async () => {
  const path = join(dir, 'cut.npy');
  writeFileSync(path, encodeNpy([6, 4, 5], randomVideo(6, 4, 5, 3)));
  truncateSync(path, 128 + 6 * 4 * 5 * 4 - 10);
  await assert.rejects(openNpyFrames(path), (error: Error) => {
    assert.match(error.message, /cut\.npy: truncated data: shape \(6, 4, 5\) needs 480 bytes, file has 470/);
    return true;
  });
  const flat = join(dir, 'flat.npy');
  writeFileSync(flat, encodeNpy([6, 5], randomVideo(6, 1, 5, 3)));
  await assert.rejects(
    openNpyFrames(flat),
    /flat\.npy: expected a 3-D \[frames, tokens, d\] array .* got shape \(6, 5\)/,
  );
  await assert.rejects(openNpyFrames(join(dir, 'none.npy')), /none\.npy: file not found/);
  const nan = join(dir, 'nan.npy');
  const bad = randomVideo(3, 4, 5, 4);
  bad[2 * 20 + 7] = Number.NaN;
  writeFileSync(nan, encodeNpy([3, 4, 5], bad));
  const file = await openNpyFrames(nan);
  await assert.rejects(file.readFrames(1, 3), /nan\.npy: token 9 \(frame 2\) has a non-finite value NaN at feature 2/);
  await file.close();
});

test('evs on a file, block by block: same keep, stats and output bytes as in memory; reads stay within a block', async () => {
  const frames = 23;
  const perFrame = 9;
  const d = 6;
  const data = randomVideo(frames, perFrame, d, 7);
  // Some frames repeat the previous one, so dissimilarities tie at 0.
  data.copyWithin(5 * perFrame * d, 4 * perFrame * d, 5 * perFrame * d);
  const path = join(dir, 'video.npy');
  writeFileSync(path, encodeNpy([frames, perFrame, d], data));
  const loaded = await loadTokens(path);
  for (const ratio of [0.05, 0.2, 0.5]) {
    const memory = await evsReducer.run(loaded, { ratio });
    for (const block of [1, 4, 23]) {
      const file = await openNpyFrames(path);
      let largest = 0;
      const read = file.readFrames.bind(file);
      file.readFrames = async (a, b) => {
        largest = Math.max(largest, b - a);
        return read(a, b);
      };
      const { keep, stats } = await evsBlocks(file, { ratio }, block);
      const rows = await gatherRows(file, keep, block);
      await file.close();
      assert.ok(largest <= block, `read ${largest} frames at once with blocks of ${block}`);
      assert.deepEqual(Array.from(keep), Array.from(memory.keep!));
      assert.deepEqual(stats, memory.stats);
      const selected = frameSelection({ frames, perFrame, d }, keep, rows);
      const expected = selectTokens(loaded, keep);
      for (const name of ['.safetensors', '.npy']) {
        if (name === '.npy' && new Set(stats.kept_per_frame as number[]).size > 1) continue;
        assert.deepEqual(encodeTokens(selected, `x${name}`), encodeTokens(expected, `x${name}`));
      }
    }
  }
  const run = await reduceFramesFile(evsReducer, path, { budget: 40 }, 3);
  assert.equal(run.n_in, frames * perFrame);
  assert.equal(run.n_out, 40);
  assert.deepEqual(Array.from(run.reduction.keep!), Array.from((await evsReducer.run(loaded, { budget: 40 })).keep!));
});

test('vtc reduce --method evs on a 3-D .npy: block path writes the same file and JSON as the in-memory run', async () => {
  const path = join(dir, 'cli.npy');
  writeFileSync(path, encodeNpy([12, 16, 8], randomVideo(12, 16, 8, 11)));
  const out = join(dir, 'cli-out.safetensors');
  const result = await runCli(['reduce', '--in', path, '--method', 'evs', '--ratio', '0.25', '--out', out, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  const memory = await evsReducer.run(await loadTokens(path), { ratio: 0.25 });
  assert.deepEqual(json.keep, Array.from(memory.keep!));
  assert.equal(json.n_in, 192);
  assert.equal(json.n_out, 48);
  assert.equal(json.d, 8);
  assert.deepEqual(json.kept_per_frame, memory.stats.kept_per_frame);
  assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(memory.tokens, out)));
  // Warnings as runReducer gives them: evs keeps at least one frame (16) when 3 are asked for.
  const floor = await runCli(['reduce', '--in', path, '--method', 'evs', '--budget', '3', '--out', out, '--json']);
  assert.equal(floor.code, 0, floor.stderr);
  const memoryRun = await runReducer(evsReducer, await loadTokens(path), { budget: 3 });
  assert.equal(memoryRun.warnings.length, 1);
  assert.deepEqual(JSON.parse(floor.stdout).warnings, memoryRun.warnings);
  // A truncated input: one line naming the file, expected vs got bytes, exit 1.
  truncateSync(path, 128 + 100);
  const cut = await runCli(['reduce', '--in', path, '--method', 'evs', '--ratio', '0.25', '--out', out]);
  assert.equal(cut.code, 1);
  assert.match(cut.stderr, /evs: .*cli\.npy: truncated data: shape \(12, 16, 8\) needs 6144 bytes, file has 100/);
});

/** A video whose frames drift slowly (adjacent cosines near 1) with a jump at frame `cut`. */
function driftingVideo(frames: number, perFrame: number, d: number, cut: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const base = randomVideo(2, perFrame, d, seed + 1);
  const out = new Float32Array(frames * perFrame * d);
  for (let f = 0; f < frames; f++)
    for (let i = 0; i < perFrame * d; i++)
      out[f * perFrame * d + i] = base[(f < cut ? 0 : perFrame * d) + i]! + 0.15 * (rng.float() * 2 - 1);
  return out;
}

test('fastvid on a file, segment by segment: same keep, assign, features and stats as in memory; long segments capped', async () => {
  for (const [frames, perFrame, options] of [
    [30, 9, { ratio: 0.3 }],
    [30, 6, { ratio: 0.5, segments: 3, anchorStride: 2 }],
    [80, 4, { ratio: 0.5, segments: 1, cutThreshold: -1 }],
    [12, 9, { ratio: 0.3, contextShare: 0 }],
  ] as const) {
    const d = 8;
    const path = join(dir, `fastvid-${frames}-${perFrame}.npy`);
    writeFileSync(path, encodeNpy([frames, perFrame, d], driftingVideo(frames, perFrame, d, 17, frames + perFrame)));
    const loaded = await loadTokens(path);
    const memory = await fastvidReducer.run(loaded, options);
    if (frames === 80) assert.deepEqual(memory.stats.segments, [MAX_SEGMENT_FRAMES, 80 - MAX_SEGMENT_FRAMES]);
    for (const block of [1, 7]) {
      const run = await reduceFramesFile(fastvidReducer, path, options, block);
      const { reduction } = run;
      assert.deepEqual(Array.from(reduction.keep!), Array.from(memory.keep!));
      assert.deepEqual(reduction.stats, memory.stats);
      if (memory.assign) assert.deepEqual(Array.from(reduction.assign!), Array.from(memory.assign));
      assert.deepEqual(
        encodeTokens(reduction.tokens, 'x.safetensors'),
        encodeTokens(memory.tokens, 'x.safetensors'),
        `${frames}×${perFrame} block ${block}`,
      );
    }
  }
});

test('fastvid block reads: at most max(block, one capped segment) frames at a time, never the whole file', async () => {
  const frames = 150;
  const path = join(dir, 'fastvid-reads.npy');
  writeFileSync(path, encodeNpy([frames, 4, 8], driftingVideo(frames, 4, 8, 70, 5)));
  const file = await openNpyFrames(path);
  const reads: number[] = [];
  const read = file.readFrames.bind(file);
  file.readFrames = async (a, b) => {
    reads.push(b - a);
    return read(a, b);
  };
  const plan = await fastvidBlocks(file, { ratio: 0.5, segments: 1, cutThreshold: -1 }, meanCosineHints(file), {
    block: 10,
  });
  await file.close();
  assert.deepEqual(plan.stats.segments, [64, 64, 22]);
  assert.equal(Math.max(...reads), MAX_SEGMENT_FRAMES);
  assert.equal(
    reads.reduce((a, b) => a + b, 0),
    2 * frames,
    'two passes: blocks of 10, then one segment at a time',
  );
});

test('vtc reduce --method fastvid on a 3-D .npy: block path, same output file and JSON as in memory', async () => {
  const path = join(dir, 'fastvid-cli.npy');
  writeFileSync(path, encodeNpy([20, 16, 8], driftingVideo(20, 16, 8, 9, 21)));
  const out = join(dir, 'fastvid-cli.safetensors');
  const result = await runCli([
    'reduce',
    '--in',
    path,
    '--method',
    'fastvid',
    '--ratio',
    '0.25',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  const memory = await fastvidReducer.run(await loadTokens(path), { ratio: 0.25 });
  assert.deepEqual(json.keep, Array.from(memory.keep!));
  assert.deepEqual(json.assign, Array.from(memory.assign!));
  assert.deepEqual(json.segments, memory.stats.segments);
  assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(memory.tokens, out)));
});
