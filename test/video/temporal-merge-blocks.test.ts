import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../core/rng.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { encodeVideoFrames } from '../../encoders/video.js';
import { arrayFrames, type FrameBlockSource } from '../../reducers/frame-blocks.js';
import {
  framePatchSimilarity,
  frameSimilarityBlocks,
  mergeAdjacentFrames,
  mergeFrameBlocks,
} from '../../reducers/temporal-merge.js';
import { samplesRoot } from '../../samples/paths.js';
import { segmentBySimilarity, segmentFrameBlocks } from '../../video/segment.js';

/** Frames that drift (adjacent cosines high and unequal) with jumps, so merges nest at several depths. */
function driftingFrames(frames: number, size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(frames * size);
  for (let f = 0; f < frames; f++) {
    const jump = f % 9 === 0;
    for (let i = 0; i < size; i++) {
      const before = f > 0 && !jump ? out[(f - 1) * size + i]! : rng.float() * 2 - 1;
      out[f * size + i] = before + 0.3 * (rng.float() * 2 - 1);
    }
  }
  return out;
}

/** A source that records every read's frame count (and hands out copies it then scribbles over, like a reused buffer). */
function countingSource(source: FrameBlockSource): FrameBlockSource & { reads: number[] } {
  const reads: number[] = [];
  let last: Float32Array | undefined;
  return {
    frames: source.frames,
    perFrame: source.perFrame,
    d: source.d,
    reads,
    async readFrames(start, end) {
      reads.push(end - start);
      // The previous result is no longer valid: poison it so a kept view would show.
      last?.fill(Number.NaN);
      last = (await source.readFrames(start, end)).slice();
      return last;
    },
  };
}

function framesOfArray(data: Float32Array, frames: number): Float32Array[] {
  const size = data.length / frames;
  return Array.from({ length: frames }, (_, f) => data.subarray(f * size, (f + 1) * size));
}

/** The in-memory similarities of adjacent frames, one framePatchSimilarity each. */
function adjacentPatchSimilarities(data: Float32Array, frames: number, d: number): number[] {
  const list = framesOfArray(data, frames);
  return list.slice(1).map((f, i) => framePatchSimilarity(list[i]!, f, d));
}

function assertSameMerge(
  blocks: Awaited<ReturnType<typeof mergeFrameBlocks>>,
  memory: ReturnType<typeof mergeAdjacentFrames>,
  what: string,
): void {
  assert.deepEqual(blocks.groups, memory.groups, what);
  assert.deepEqual(blocks.steps, memory.steps, what);
  assert.deepEqual(blocks.mergedSimilarities, memory.mergedSimilarities, what);
  const expected = new Float32Array(blocks.features.length);
  memory.features.forEach((f, g) => expected.set(f, g * f.length));
  // Bit for bit: the replayed merge trees do the running average's float operations.
  assert.deepEqual(Buffer.from(blocks.features.buffer), Buffer.from(expected.buffer), what);
}

test('merge on frame blocks = the in-memory merge: groups, steps, similarities, bit-identical features, any block and cache', async () => {
  const frames = 23;
  const perFrame = 5;
  const d = 7;
  const size = perFrame * d;
  const data = driftingFrames(frames, size, 3);
  for (const budget of [1, 4, 11, 22, 23, 40]) {
    const memory = mergeAdjacentFrames(framesOfArray(data, frames), d, Math.min(budget, frames));
    assert.equal(memory.groups.length, Math.min(budget, frames));
    for (const block of [1, 2, 3, 5, 23, 100]) {
      // No cache, one frame's worth (evictions all the time), and room for everything.
      for (const cacheBytes of [0, size * 4, Number.POSITIVE_INFINITY]) {
        const source = countingSource(arrayFrames(data, frames, perFrame, d));
        const blocks = await mergeFrameBlocks(source, budget, { block, cacheBytes });
        assertSameMerge(blocks, memory, `budget ${budget}, block ${block}, cache ${cacheBytes}`);
        assert.ok(
          Math.max(...source.reads) <= Math.min(block, frames),
          `block ${block}: read ${Math.max(...source.reads)} frames at once`,
        );
        if (cacheBytes === Number.POSITIVE_INFINITY)
          // One similarity pass, then each frame at most once more (its first load, or the output pass).
          assert.ok(
            source.reads.reduce((a, b) => a + b, 0) <= 2 * frames,
            `block ${block}: ${source.reads.reduce((a, b) => a + b, 0)} frames read`,
          );
      }
    }
  }
});

test('merge on frame blocks with segment quotas = the in-memory merge with the same quotas', async () => {
  const frames = 17;
  const data = driftingFrames(frames, 12, 8);
  const quotas = { segment: [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2], quota: [1, 3, 2] };
  const memory = mergeAdjacentFrames(framesOfArray(data, frames), 4, 1, quotas);
  assert.equal(memory.groups.length, 6);
  for (const block of [1, 4]) {
    const blocks = await mergeFrameBlocks(arrayFrames(data, frames, 3, 4), 1, { block, cacheBytes: 0, quotas });
    assertSameMerge(blocks, memory, `quotas, block ${block}`);
  }
});

test('merge on frame blocks of the sample video (patch-encoded frames) = in memory', async () => {
  const { tokens, frames } = await encodeVideoFrames(join(samplesRoot, 'video', 'scenes.mp4'), {
    encoder: createPatchEncoder({ inputSize: 112, patchSize: 14 }),
    fps: 2,
    maxFrames: 16,
  });
  const perFrame = tokens.n / frames.length;
  const source = arrayFrames(tokens.data, frames.length, perFrame, tokens.d);
  const memory = mergeAdjacentFrames(framesOfArray(tokens.data, frames.length), tokens.d, 4);
  for (const block of [1, 3]) {
    const counting = countingSource(source);
    const blocks = await mergeFrameBlocks(counting, 4, { block, cacheBytes: 2 * perFrame * tokens.d * 4 });
    assertSameMerge(blocks, memory, `sample video, block ${block}`);
    assert.ok(Math.max(...counting.reads) <= block);
  }
});

test('a group larger than the block is replayed frame by frame: reads of one frame, same features', async () => {
  // 40 nearly equal frames merge into one group; with no cache its features are recomputed from 40 frames, blocks of 4.
  const frames = 40;
  const data = driftingFrames(frames, 6, 12).map((v, i) => v * 0.01 + (i % 6));
  const memory = mergeAdjacentFrames(framesOfArray(data, frames), 3, 1);
  const source = countingSource(arrayFrames(data, frames, 2, 3));
  const blocks = await mergeFrameBlocks(source, 1, { block: 4, cacheBytes: 0 });
  assertSameMerge(blocks, memory, 'one group of 40');
  assert.deepEqual(blocks.groups, [Array.from({ length: 40 }, (_, f) => f)]);
  assert.deepEqual(source.reads.slice(0, 10), new Array(10).fill(4), 'the similarity pass reads blocks of 4');
  assert.ok(Math.max(...source.reads) <= 4);
});

test('frameSimilarityBlocks: the adjacent mean per-patch cosines in one pass, for every block size', async () => {
  const frames = 11;
  const data = driftingFrames(frames, 10, 5);
  const expected = adjacentPatchSimilarities(data, frames, 2);
  for (const block of [1, 3, 11]) {
    const source = countingSource(arrayFrames(data, frames, 5, 2));
    assert.deepEqual(await frameSimilarityBlocks(source, block), expected);
    assert.equal(
      source.reads.reduce((a, b) => a + b, 0),
      frames,
      'each frame read once',
    );
  }
  // By hand: frames (1,0 | 0,1), (1,0 | 1,0), (0,1 | 1,0): [(1 + 0)/2, (0 + 1)/2].
  const tiny = arrayFrames(Float32Array.of(1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0), 3, 2, 2);
  assert.deepEqual(await frameSimilarityBlocks(tiny, 2), [0.5, 0.5]);
  await assert.rejects(frameSimilarityBlocks(tiny, 0), /frame similarities: block must be an integer ≥ 1, got 0/);
});

test('segmentFrameBlocks cuts exactly where segmentBySimilarity cuts on the same similarities', async () => {
  const frames = 30;
  const data = driftingFrames(frames, 8, 9);
  const similarities = adjacentPatchSimilarities(data, frames, 4);
  for (const options of [{}, { segments: 3, threshold: 0 }, { segments: 1, threshold: 0.5 }]) {
    const expected = segmentBySimilarity(similarities, options);
    for (const block of [1, 7])
      assert.deepEqual(await segmentFrameBlocks(arrayFrames(data, frames, 2, 4), options, block), expected);
  }
  // The jumps at frames 9, 18 and 27 are the three least similar transitions.
  assert.deepEqual(await segmentFrameBlocks(arrayFrames(data, frames, 2, 4), { segments: 4, threshold: -1 }), [
    { start: 0, end: 9 },
    { start: 9, end: 18 },
    { start: 18, end: 27 },
    { start: 27, end: 30 },
  ]);
});

test('mergeFrameBlocks rejects a bad budget, block or cache, and reads of the wrong length', async () => {
  const source = arrayFrames(new Float32Array(12).fill(1), 3, 2, 2);
  await assert.rejects(mergeFrameBlocks(source, 0), /temporal merge: frame budget must be an integer ≥ 1, got 0/);
  await assert.rejects(mergeFrameBlocks(source, 1, { block: 0 }), /temporal merge: block must be an integer ≥ 1/);
  await assert.rejects(mergeFrameBlocks(source, 1, { cacheBytes: -1 }), /cache bytes must be ≥ 0, got -1/);
  const short: FrameBlockSource = { ...source, readFrames: async () => new Float32Array(3) };
  await assert.rejects(mergeFrameBlocks(short, 1), /frames \[0, 3\) gave 3 values, expected 12/);
});
