import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../core/rng.js';
import { arrayFrames, type FrameBlockSource } from '../../reducers/frame-blocks.js';
import { mergeAdjacentFrames, mergeFrameBlocks } from '../../reducers/temporal-merge.js';

/** Frames drifting by noise of varying size with a cut every 7, so merges nest and pairs differ. */
function drifting(frames: number, size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(frames * size);
  for (let f = 0; f < frames; f++) {
    const amplitude = 0.05 + 0.5 * rng.float();
    for (let i = 0; i < size; i++) {
      const before = f % 7 === 0 ? rng.float() * 2 - 1 : out[(f - 1) * size + i]!;
      out[f * size + i] = before + amplitude * (rng.float() * 2 - 1);
    }
  }
  return out;
}

/** Records each read's [start, end) and hands out a copy it poisons at the next read (a reused buffer). */
function recording(source: FrameBlockSource): FrameBlockSource & { reads: [number, number][] } {
  const reads: [number, number][] = [];
  let last: Float32Array | undefined;
  return {
    ...source,
    reads,
    async readFrames(start, end) {
      reads.push([start, end]);
      last?.fill(Number.NaN);
      last = (await source.readFrames(start, end)).slice();
      return last;
    },
  };
}

const framesRead = (reads: [number, number][]) => reads.reduce((sum, [a, b]) => sum + b - a, 0);

/** The in-memory merge of `data` down to `budget` frames, and its features as one array. */
function inMemory(data: Float32Array, frames: number, d: number, budget: number) {
  const size = data.length / frames;
  const memory = mergeAdjacentFrames(
    Array.from({ length: frames }, (_, f) => data.subarray(f * size, (f + 1) * size)),
    d,
    budget,
  );
  const expected = new Float32Array(budget * size);
  memory.features.forEach((f, g) => expected.set(f, g * size));
  return { memory, expected };
}

test('temporal merge cache: frames read by the similarity pass fill it, so a cache that holds the video reads each frame once', async () => {
  const [frames, perFrame, d] = [30, 3, 4];
  const size = perFrame * d;
  const data = drifting(frames, size, 5);
  const { memory, expected } = inMemory(data, frames, d, 6);
  for (const block of [1, 4, 30]) {
    // Exactly the video's bytes, and unbounded: one pass, every later load and the output from the cache.
    for (const cacheBytes of [frames * size * 4, Number.POSITIVE_INFINITY]) {
      const source = recording(arrayFrames(data, frames, perFrame, d));
      const merged = await mergeFrameBlocks(source, 6, { block, cacheBytes });
      const starts = source.reads.map(([a]) => a);
      assert.deepEqual(
        starts,
        Array.from({ length: Math.ceil(frames / block) }, (_, k) => k * block),
        `block ${block}, cache ${cacheBytes}: only the similarity pass reads`,
      );
      assert.equal(framesRead(source.reads), frames);
      assert.deepEqual(merged.groups, memory.groups);
      assert.deepEqual(merged.mergedSimilarities, memory.mergedSimilarities);
      assert.deepEqual(Buffer.from(merged.features.buffer), Buffer.from(expected.buffer));
    }
  }
});

test('temporal merge cache: smaller caches read more but give the same bits; no cache keeps nothing from the first pass', async () => {
  const [frames, perFrame, d] = [40, 2, 5];
  const size = perFrame * d;
  const data = drifting(frames, size, 9);
  const { memory, expected } = inMemory(data, frames, d, 5);
  let previous = Number.POSITIVE_INFINITY;
  for (const cached of [0, 1, 2, 5, 10, 20, 40]) {
    const source = recording(arrayFrames(data, frames, perFrame, d));
    const merged = await mergeFrameBlocks(source, 5, { block: 8, cacheBytes: cached * size * 4 });
    assert.deepEqual(Buffer.from(merged.features.buffer), Buffer.from(expected.buffer), `${cached} frames cached`);
    assert.deepEqual(merged.steps, memory.steps);
    const read = framesRead(source.reads);
    // The first pass reads every frame once; with no cache, so does the output pass, and the merge loads more.
    assert.ok(read >= frames, `${cached} frames cached: ${read} read`);
    if (cached === 0) assert.ok(read > 2 * frames, `no cache: ${read} frames read`);
    if (cached === 40) assert.equal(read, frames);
    assert.ok(read <= previous || cached <= 2, `${cached} frames cached read ${read}, fewer cached read ${previous}`);
    previous = read;
  }
});
