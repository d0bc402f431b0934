import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evsReducer, frameDissimilarity } from '../../reducers/evs.js';
import { checkSelection, randomTokens, videoTokens } from './fixtures.js';

/*
 * 3 frames × 2 tokens. Dissimilarity 1 − cos to the same token of the previous frame:
 *   frame 0: 255, 255 (always kept)
 *   frame 1: t0 (2, 0) vs (1, 0) → 0;   t1 (1, 0) vs (0, 1) → 1
 *   frame 2: t0 (−1, 0) vs (2, 0) → 2;  t1 (0, 1) vs (1, 0) → 1
 * flat: [255, 255, 0, 1, 2, 1]; descending stable order 0, 1, 4, 3, 5, 2.
 */
const video = [
  [
    [1, 0],
    [0, 1],
  ],
  [
    [2, 0],
    [1, 0],
  ],
  [
    [-1, 0],
    [0, 1],
  ],
];

test('evs: dissimilarity to the previous frame, frame 0 always kept, ties to the lower flat index', async () => {
  const tokens = videoTokens(video);
  assert.deepEqual(Array.from(await frameDissimilarity(tokens.data, 3, 2, 2)), [255, 255, 0, 1, 2, 1]);
  const three = await evsReducer.run(tokens, { budget: 3 });
  assert.deepEqual(Array.from(three.keep!), [0, 1, 4]);
  assert.deepEqual(three.stats.kept_per_frame, [2, 0, 1]);
  // budget 4: t3 and t5 tie at 1 → t3.
  assert.deepEqual(Array.from((await evsReducer.run(tokens, { budget: 4 })).keep!), [0, 1, 3, 4]);
  // At least one frame's worth: ratio 0.1 → round(0.6) = 1 → max(2, 1) = 2.
  const small = await evsReducer.run(tokens, { ratio: 0.1 });
  assert.deepEqual(Array.from(small.keep!), [0, 1]);
  assert.equal(small.stats.budget, 2);
  // R = 0.5 → 3 (vLLM: q = 0.5, int(6·0.5) = 3, the same mask).
  assert.deepEqual(Array.from((await evsReducer.run(tokens, { ratio: 0.5 })).keep!), [0, 1, 4]);
});

test('evs: output keeps the frame structure; budget respected, distinct, ascending', async () => {
  const frames = 6;
  const perFrame = 9;
  const base = randomTokens(frames * perFrame, 5, 12);
  const tokens = videoTokens(
    Array.from({ length: frames }, (_, f) =>
      Array.from({ length: perFrame }, (_, p) =>
        Array.from(base.data.subarray((f * perFrame + p) * 5, (f * perFrame + p + 1) * 5)),
      ),
    ),
  );
  for (const ratio of [0.2, 0.25, 0.5, 1]) {
    const result = await evsReducer.run(tokens, { ratio });
    const expected = Math.max(perFrame, Math.round(frames * perFrame * ratio));
    checkSelection(tokens, result, expected);
    assert.ok(result.keep!.every((v, i, a) => i === 0 || a[i - 1]! < v));
    for (let p = 0; p < perFrame; p++) assert.equal(result.keep![p], p, 'frame 0 whole');
    assert.deepEqual(result.tokens.sources, tokens.sources);
    result.keep!.forEach((i, o) => assert.equal(result.tokens.source[o], Math.floor(i / perFrame)));
  }
});

test('evs: needs a video token set; names what is wrong', async () => {
  await assert.rejects(
    evsReducer.run(randomTokens(16, 4, 1), { ratio: 0.5 }),
    /evs: needs a video token set \[frames, tokens, d\] \(sources of kind 'frame'\); token 0 comes from a source of kind 'image'/,
  );
  const tokens = videoTokens(video);
  const uneven = { ...tokens, source: Int32Array.of(0, 0, 0, 1, 2, 2) };
  await assert.rejects(
    evsReducer.run({ ...tokens, col: Int32Array.of(0, 1, 1, 0, 0, 1) }, { ratio: 0.5 }),
    /evs: token 0 of frame 1 is at \(0, 1\) but at \(0, 0\) in frame 0; frames must share one token grid/,
  );
  await assert.rejects(
    evsReducer.run(uneven, { ratio: 0.5 }),
    /evs: token 4 belongs to another frame than token 3; expected 3 tokens per frame \(as frame 0\)/,
  );
});
