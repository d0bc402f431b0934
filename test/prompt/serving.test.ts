import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectTokens } from '../../core/tokenset.js';
import { embedsOf } from '../../eval/methods.js';
import { embedsPart } from '../../eval/models.js';
import { qwenServingInput } from '../../prompt/serving.js';
import { reducers } from '../../reducers/index.js';
import { qwenTokens } from './fixtures.js';

/** Index of `needle` inside `hay`, or -1. */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

test('full and pooled Qwen sets serve as embeddings + image_grid_thw; pruned sets as embeddings + positions', async () => {
  const full = qwenTokens('image', [1, 8, 8]);
  assert.deepEqual(qwenServingInput(full).grid, [1, 8, 8]);
  const pooled = (await reducers.pool!.run(full, { ratio: 0.25 })).tokens;
  const served = qwenServingInput(pooled);
  // 4×4 merged cells pooled 2×2 → a 2×2 lattice at rows/cols {0, 2} → grid 1×4×4 in patches
  assert.deepEqual(served.grid, [1, 4, 4]);
  assert.deepEqual(Array.from(served.positions), [0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2, 2]);
  const pruned = selectTokens(full, [9, 2, 5]);
  const prunedInput = qwenServingInput(pruned);
  assert.equal(prunedInput.grid, undefined);
  // raster order: token 2 (0,0,2), token 5 (0,1,1), token 9 (0,2,1)
  assert.deepEqual(Array.from(prunedInput.rows), [1, 2, 0]);
  assert.deepEqual(Array.from(prunedInput.positions), [0, 0, 2, 0, 1, 1, 0, 2, 1]);
  assert.deepEqual(Array.from(prunedInput.data.subarray(0, 2)), Array.from(pruned.data.subarray(2, 4)));
  // video: every temporal patch keeps the same lattice → grid keeps t
  const video = qwenTokens('video', [2, 4, 4]);
  assert.deepEqual(qwenServingInput(video).grid, [2, 4, 4]);
  assert.equal(qwenServingInput(selectTokens(video, [0, 1, 2, 3, 4])).grid, undefined);
  // a rectangle that does not start at the grid origin is a crop, not a pooling: positions, no grid
  assert.equal(qwenServingInput(selectTokens(full, [5, 6, 9, 10])).grid, undefined);
});

test("eval sends vLLM's dict form with image_grid_thw as a torch int64 tensor; LLaVA sets stay a plain base64 string", async () => {
  const pooled = (await reducers.pool!.run(qwenTokens('image', [1, 8, 8]), { ratio: 0.25 })).tokens;
  const part = embedsPart(embedsOf(pooled), 'torch') as Record<string, string>;
  assert.deepEqual(Object.keys(part), ['image_embeds', 'image_grid_thw']);
  const grid = new Uint8Array(Buffer.from(part.image_grid_thw!, 'base64'));
  assert.ok(indexOfBytes(grid, new TextEncoder().encode('torch\nLongStorage')) > 0, 'int64 storage');
  assert.ok(
    indexOfBytes(grid, new Uint8Array(BigInt64Array.of(1n, 4n, 4n).buffer)) > 0,
    'grid values 1, 4, 4 as int64',
  );
  const pruned = embedsPart(embedsOf(selectTokens(qwenTokens('image', [1, 4, 4]), [3])), 'torch') as Record<
    string,
    string
  >;
  assert.deepEqual(Object.keys(pruned), ['image_embeds', 'image_positions']);
  const llava = embedsPart({ data: new Float32Array(4), shape: [2, 2] });
  assert.equal(typeof llava, 'string');
});
