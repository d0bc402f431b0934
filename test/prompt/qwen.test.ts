import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShapeError, UsageError } from '../../core/errors.js';
import { createTokenSet, selectTokens } from '../../core/tokenset.js';
import { qwenTokens } from './fixtures.js';
import {
  formatOneDecimal,
  planQwenPrompt,
  QWEN_TOKEN_IDS,
  temporalIndex,
  type PromptSegment,
  type QwenPromptFamily,
} from '../../prompt/qwen.js';

const { visionStart: VS, visionEnd: VE, imagePad: IP, videoPad: VP } = QWEN_TOKEN_IDS;

/** A stand-in tokenizer: one id per space-separated word (ids from a running dictionary). */
function wordTokenizer() {
  const vocab = new Map<string, number>();
  const idOf = (word: string): number => {
    if (!vocab.has(word)) vocab.set(word, 1000 + vocab.size);
    return vocab.get(word)!;
  };
  return { encode: (text: string) => text.split(' ').filter(Boolean).map(idOf) };
}

const columns = (plan: { positionIds: [Int32Array, Int32Array, Int32Array] }) =>
  plan.positionIds.map((p) => Array.from(p));

test('qwen2.5-vl image, hand-derived: text 0,1; vision_start 2; pads at 3 + (0, h, w); vision_end 5; text 6', () => {
  const plan = planQwenPrompt(
    [
      { type: 'ids', ids: [10, 11] },
      { type: 'image', tokens: qwenTokens('image', [1, 4, 4]) },
      { type: 'ids', ids: [12] },
    ],
    { family: 'qwen2.5-vl' },
  );
  assert.deepEqual(Array.from(plan.ids), [10, 11, VS, IP, IP, IP, IP, VE, 12]);
  assert.deepEqual(columns(plan), [
    [0, 1, 2, 3, 3, 3, 3, 5, 6],
    [0, 1, 2, 3, 3, 4, 4, 5, 6],
    [0, 1, 2, 3, 4, 3, 4, 5, 6],
  ]);
  assert.equal(plan.ropeDelta, 7 - 9);
  assert.equal(plan.blocks[0]!.base, 3);
});

test('qwen2.5-vl video, hand-derived: time index floor(t · 1.0 s · 2) = 0, 2; text restarts at max + 1', () => {
  const plan = planQwenPrompt([{ type: 'video', tokens: qwenTokens('video', [2, 4, 4]) }], { family: 'qwen2.5-vl' });
  assert.deepEqual(Array.from(plan.ids), [VS, VP, VP, VP, VP, VP, VP, VP, VP, VE]);
  assert.deepEqual(columns(plan), [
    [0, 1, 1, 1, 1, 3, 3, 3, 3, 4],
    [0, 1, 1, 2, 2, 1, 1, 2, 2, 4],
    [0, 1, 2, 1, 2, 1, 2, 1, 2, 4],
  ]);
  assert.equal(plan.ropeDelta, 5 - 10);
  // 4 fps: 0.5 s per grid → 0, 1; seconds per grid given directly wins over fps.
  const fast = planQwenPrompt([{ type: 'video', tokens: qwenTokens('video', [2, 4, 4]), fps: 4 }], {
    family: 'qwen2.5-vl',
  });
  assert.deepEqual(Array.from(fast.positionIds[0]), [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]);
  const slow = planQwenPrompt([{ type: 'video', tokens: qwenTokens('video', [2, 4, 4]), fps: 4, secondsPerGrid: 2 }], {
    family: 'qwen2.5-vl',
  });
  assert.deepEqual(Array.from(slow.positionIds[0]), [0, 1, 1, 1, 1, 5, 5, 5, 5, 6]);
});

test('qwen3-vl video, hand-derived: one block per temporal patch, timestamp text first, time index 0', () => {
  const tokenizer = wordTokenizer();
  const plan = planQwenPrompt([{ type: 'video', tokens: qwenTokens('video', [2, 4, 4], [0.25, 1.25]) }], {
    family: 'qwen3-vl',
    tokenizer,
  });
  // "<0.2 seconds>" = 2 word tokens ("<0.2", "seconds>"): Python rounds the tie 0.25 to even.
  assert.deepEqual(
    plan.blocks.map((b) => b.timestamp),
    ['<0.2 seconds>', '<1.2 seconds>'],
  );
  const [a, s] = tokenizer.encode('<0.2 seconds>');
  const [b] = tokenizer.encode('<1.2');
  assert.deepEqual(Array.from(plan.ids), [a, s, VS, VP, VP, VP, VP, VE, b, s, VS, VP, VP, VP, VP, VE]);
  assert.deepEqual(columns(plan), [
    [0, 1, 2, 3, 3, 3, 3, 5, 6, 7, 8, 9, 9, 9, 9, 11],
    [0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 9, 9, 10, 10, 11],
    [0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8, 9, 10, 9, 10, 11],
  ]);
  assert.equal(plan.ropeDelta, 12 - 16);
  assert.deepEqual(
    plan.blocks.map((x) => [x.frame, x.start, x.end, x.base]),
    [
      [0, 2, 7, 3],
      [1, 10, 15, 9],
    ],
  );
});

test('pruned blocks: kept tokens keep their offsets, text restarts after the largest kept position, empty blocks', () => {
  const full = qwenTokens('image', [1, 4, 4]);
  // keep (0,0,1) and (0,1,1), given in reverse order: pads come in raster order, rows name the token-set rows
  const kept = selectTokens(full, [3, 1]);
  const plan = planQwenPrompt(
    [
      { type: 'image', tokens: kept },
      { type: 'ids', ids: [7] },
    ],
    { family: 'qwen2.5-vl' },
  );
  assert.deepEqual(columns(plan), [
    [0, 1, 1, 3, 4],
    [0, 1, 2, 3, 4],
    [0, 2, 2, 3, 4],
  ]);
  assert.deepEqual(Array.from(plan.blocks[0]!.rows), [1, 0]);
  // nothing kept: vision_end continues from vision_start + 1
  const none = selectTokens(full, []);
  const empty = planQwenPrompt(
    [
      { type: 'ids', ids: [5, 6] },
      { type: 'image', tokens: none },
      { type: 'ids', ids: [7] },
    ],
    { family: 'qwen2.5-vl' },
  );
  assert.deepEqual(Array.from(empty.ids), [5, 6, VS, VE, 7]);
  assert.deepEqual(Array.from(empty.positionIds[0]), [0, 1, 2, 3, 4]);
  // qwen3-vl: a frame with no kept token loses its timestamp and markers (unless keepEmptyFrames)
  const video = qwenTokens('video', [2, 4, 4], [0.5, 1.5]);
  const firstFrameOnly = selectTokens(video, [0, 3]);
  const tokenizer = wordTokenizer();
  const dropped = planQwenPrompt([{ type: 'video', tokens: firstFrameOnly }], { family: 'qwen3-vl', tokenizer });
  assert.deepEqual(
    dropped.blocks.map((b) => b.frame),
    [0],
  );
  assert.equal(dropped.ids.length, 2 + 1 + 2 + 1);
  const kept2 = planQwenPrompt([{ type: 'video', tokens: firstFrameOnly }], {
    family: 'qwen3-vl',
    tokenizer,
    keepEmptyFrames: true,
  });
  assert.deepEqual(
    kept2.blocks.map((b) => b.frame),
    [0, 1],
  );
  // frame 0 ends with vision_end at 5 (largest kept position 4, + 1); frame 1: timestamp 6, 7; vision_start 8; vision_end 9 = vision_start + 1
  assert.deepEqual(Array.from(kept2.positionIds[0]), [0, 1, 2, 3, 3, 5, 6, 7, 8, 9]);
});

/**
 * transformers' get_rope_index (4.x), re-stated from input ids and grids: it
 * scans for each vision block's first pad, numbers the text before it from
 * the previous maximum + 1, places the block's full grid, and numbers trailing
 * text. Qwen3-VL splits every video grid into t grids of t = 1 and uses no
 * time scaling; Qwen2.5-VL scales video time by seconds per grid × 2.
 */
function referenceRopeIndex(
  ids: number[],
  images: number[][],
  videos: number[][],
  secondsPerGrid: number[],
  family: QwenPromptFamily,
): { positions: number[][]; delta: number } {
  const videoGrids =
    family === 'qwen3-vl' ? videos.flatMap(([t, h, w]) => Array.from({ length: t! }, () => [1, h!, w!])) : videos;
  const videoSeconds = family === 'qwen3-vl' ? [] : secondsPerGrid;
  const out: number[][] = [[], [], []];
  let st = 0;
  let imageIndex = 0;
  let videoIndex = 0;
  const blocks = ids.filter((id, k) => id === VS && (ids[k + 1] === IP || ids[k + 1] === VP)).length;
  const maxSoFar = () => (out[0]!.length ? Math.max(...out.flat()) + 1 : 0);
  for (let b = 0; b < blocks; b++) {
    const edImage = imageIndex < images.length ? ids.indexOf(IP, st) : -1;
    const edVideo = videoIndex < videoGrids.length ? ids.indexOf(VP, st) : -1;
    const isImage = edImage >= 0 && (edVideo < 0 || edImage < edVideo);
    const [t, h, w] = (isImage ? images[imageIndex++] : videoGrids[videoIndex])!;
    const seconds = isImage ? 0 : (videoSeconds[videoIndex] ?? 1);
    if (!isImage) videoIndex++;
    const ed = isImage ? edImage : edVideo;
    const start = maxSoFar();
    const textLength = ed - st;
    for (let k = 0; k < textLength; k++) for (const axis of out) axis.push(start + k);
    const [gt, gh, gw] = [t!, h! / 2, w! / 2];
    for (let ti = 0; ti < gt; ti++) {
      const time = family === 'qwen3-vl' ? ti : Math.floor(Math.fround(Math.fround(ti * Math.fround(seconds)) * 2));
      for (let hi = 0; hi < gh; hi++)
        for (let wi = 0; wi < gw; wi++) {
          out[0]!.push(time + textLength + start);
          out[1]!.push(hi + textLength + start);
          out[2]!.push(wi + textLength + start);
        }
    }
    st = ed + gt * gh * gw;
  }
  if (st < ids.length) {
    const start = maxSoFar();
    for (let k = 0; k < ids.length - st; k++) for (const axis of out) axis.push(start + k);
  }
  return { positions: out, delta: Math.max(...out.flat()) + 1 - ids.length };
}

test('full keep equals the reference get_rope_index for a mixed conversation, both families', () => {
  for (const family of ['qwen2.5-vl', 'qwen3-vl'] as const) {
    const tokenizer = wordTokenizer();
    const segments: PromptSegment[] = [
      { type: 'text', text: 'system: you look closely' },
      { type: 'image', tokens: qwenTokens('image', [1, 6, 4]) },
      { type: 'text', text: 'and then' },
      { type: 'video', tokens: qwenTokens('video', [3, 4, 6], [0.25, 1.25, 2.25]), fps: 1 },
      { type: 'image', tokens: qwenTokens('image', [1, 2, 8]) },
      { type: 'text', text: 'what changed ?' },
    ];
    const plan = planQwenPrompt(segments, { family, tokenizer });
    const reference = referenceRopeIndex(
      Array.from(plan.ids),
      [
        [1, 6, 4],
        [1, 2, 8],
      ],
      [[3, 4, 6]],
      [2 / 1],
      family,
    );
    assert.deepEqual(columns(plan), reference.positions, family);
    assert.equal(plan.ropeDelta, reference.delta, family);
  }
  // spot values, qwen2.5-vl: video at 1 fps → 2 s per grid → time index 0, 4, 8
  const plan = planQwenPrompt([{ type: 'video', tokens: qwenTokens('video', [3, 2, 2]), fps: 1 }], {
    family: 'qwen2.5-vl',
  });
  assert.deepEqual(Array.from(plan.positionIds[0]), [0, 1, 5, 9, 10]);
});

test('temporal index follows the product rule; timestamps format like Python', () => {
  assert.equal(temporalIndex(3, 0.5, 2), 3);
  assert.equal(temporalIndex(5, 1.5, 2), 15);
  assert.equal(temporalIndex(3, 0.7, 2), 4); // 4.2 → 4
  assert.deepEqual([0.25, 0.75, 1.25, 0.35, 2, 1.05].map(formatOneDecimal), ['0.2', '0.8', '1.2', '0.3', '2.0', '1.1']);
});

test("qwen3-vl refuses a token merged across frames; qwen2.5-vl (one block) takes it at its representative's position", async () => {
  const { mergeTokens } = await import('../../core/tokenset.js');
  const video = qwenTokens('video', [2, 4, 4], [0.5, 1.5]);
  // token 0 of frame 0 and token 4 (frame 1) merged into one output, representative token 0
  const assign = Int32Array.of(0, 1, 2, 3, 0, 4, 5, 6);
  const merged = mergeTokens(video, assign, 7);
  assert.throws(
    () => planQwenPrompt([{ type: 'video', tokens: merged }], { family: 'qwen3-vl', tokenizer: wordTokenizer() }),
    (e: unknown) =>
      e instanceof ShapeError &&
      /token 0 merges tokens of frames 0\.\.1 \(origin\), but qwen3-vl places each frame in its own block/.test(
        e.message,
      ),
  );
  const plan = planQwenPrompt([{ type: 'video', tokens: merged }], { family: 'qwen2.5-vl' });
  assert.equal(plan.blocks[0]!.rows.length, 7);
  assert.deepEqual([plan.positionIds[0][1], plan.positionIds[1][1], plan.positionIds[2][1]], [1, 1, 1]);
});

test('bad input: grids, positions, missing tokenizer — errors name the field', () => {
  const image = qwenTokens('image', [1, 4, 4]);
  const family = 'qwen2.5-vl' as const;
  assert.throws(
    () => planQwenPrompt([{ type: 'image', tokens: image, grid: [1, 2, 4] }], { family }),
    (e: unknown) =>
      e instanceof ShapeError && /4 tokens but image_grid_thw 1,2,4 holds 1·1·2 = 2 merged tokens/.test(e.message),
  );
  assert.throws(
    () => planQwenPrompt([{ type: 'image', tokens: image, grid: [1, 5, 4] }], { family }),
    /image_grid_thw 1,5,4: h and w must be multiples of the spatial merge 2/,
  );
  assert.throws(
    () => planQwenPrompt([{ type: 'image', tokens: image, grid: [2, 4, 4] }], { family }),
    /an image has t = 1/,
  );
  const video = qwenTokens('video', [2, 4, 4]);
  video.meta.frames = '5';
  assert.throws(
    () => planQwenPrompt([{ type: 'video', tokens: video }], { family }),
    /video_grid_thw t = 2 does not match 5 frames in temporal patches of 2 \(expected t = 3\)/,
  );
  const moved = qwenTokens('image', [1, 4, 4]);
  moved.positions![5] = 2;
  assert.throws(
    () => planQwenPrompt([{ type: 'image', tokens: moved }], { family }),
    /positions of token 1 = \(0, 0, 2\) lie outside the merged grid 1×2×2/,
  );
  const twice = qwenTokens('image', [1, 4, 4]);
  twice.positions!.set([0, 0, 0], 3);
  assert.throws(
    () => planQwenPrompt([{ type: 'image', tokens: twice }], { family }),
    /tokens 0 and 1 share position \(0, 0, 0\)/,
  );
  const bare = createTokenSet({ data: new Float32Array(4), n: 4, d: 1, meta: { image_grid_thw: '1,4,4' } });
  assert.throws(() => planQwenPrompt([{ type: 'image', tokens: bare }], { family }), /image tokens have no positions/);
  const noGrid = createTokenSet({ data: new Float32Array(4), n: 4, d: 1 });
  assert.throws(() => planQwenPrompt([{ type: 'image', tokens: noGrid }], { family }), /no image_grid_thw/);
  assert.throws(
    () => planQwenPrompt([{ type: 'text', text: 'hi' }], { family }),
    (e: unknown) => e instanceof UsageError && /segment 0 \(text\) needs a tokenizer/.test(e.message),
  );
  assert.throws(
    () => planQwenPrompt([], { family: 'qwen2-vl' as QwenPromptFamily }),
    /family must be one of qwen2\.5-vl, qwen3-vl/,
  );
  const noTimes = qwenTokens('video', [2, 4, 4]);
  noTimes.sources = noTimes.sources.map(({ time: _t, ...rest }) => rest);
  assert.throws(
    () => planQwenPrompt([{ type: 'video', tokens: noTimes }], { family: 'qwen3-vl', tokenizer: wordTokenizer() }),
    /needs the time of temporal patch 0/,
  );
});
