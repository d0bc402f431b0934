import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, UsageError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { anyresUnpadLayout, bilinearResize } from '../../reducers/anyres-unpad.js';
import { cropRetentionRatios, globalcom2Reducer } from '../../reducers/globalcom2.js';
import { anyresTokens, assertClose, checkSelection, randomTokens } from './fixtures.js';

const T = 576;

test('unpad layout: 640×480 on 2×2 keeps canvas rows 6..41; 1280×720 keeps 28 rows (LLaVA-NeXT: 1948 tokens); tall images pad columns', () => {
  const layout = anyresUnpadLayout({
    gridRows: 2,
    gridCols: 2,
    imageWidth: 640,
    imageHeight: 480,
    patchRows: 24,
    patchCols: 24,
  });
  assert.deepEqual([layout.rowStart, layout.rowEnd, layout.colStart, layout.colEnd], [6, 42, 0, 48]);
  assert.deepEqual(layout.crops, [
    { top: 6, left: 0, height: 18, width: 24 },
    { top: 6, left: 0, height: 18, width: 24 },
    { top: 0, left: 0, height: 18, width: 24 },
    { top: 0, left: 0, height: 18, width: 24 },
  ]);
  // 640×480: 36 rows × (48 + newline) + 576 thumbnail = 2340
  assert.equal((layout.rowEnd - layout.rowStart) * (48 + 1) + 576, 2340);
  const hd = anyresUnpadLayout({
    gridRows: 2,
    gridCols: 2,
    imageWidth: 1280,
    imageHeight: 720,
    patchRows: 24,
    patchCols: 24,
  });
  assert.deepEqual([hd.rowStart, hd.rowEnd], [10, 38]);
  assert.equal((hd.rowEnd - hd.rowStart) * 49 + 576, 1948);
  const tall = anyresUnpadLayout({
    gridRows: 2,
    gridCols: 2,
    imageWidth: 480,
    imageHeight: 640,
    patchRows: 24,
    patchCols: 24,
  });
  assert.deepEqual([tall.rowStart, tall.rowEnd, tall.colStart, tall.colEnd], [0, 48, 6, 42]);
  assert.deepEqual(tall.crops[1], { top: 0, left: 0, height: 24, width: 18 });
});

test('bilinearResize equals PyTorch F.interpolate(bilinear, align_corners=False)', () => {
  // torch.nn.functional.interpolate(tensor([[0., 1.], [2., 3.]])[None, None], size=(4, 4), mode='bilinear', align_corners=False)
  const up = bilinearResize([0, 1, 2, 3], 2, 2, 4, 4);
  assertClose(up, [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3], 1e-12, 'up');
  // 4 → 3 rows of a ramp 0..3: src = (r + 0.5)·4/3 − 0.5 = 1/6, 3/2, 17/6
  const down = bilinearResize([0, 1, 2, 3], 4, 1, 3, 1);
  assertClose(down, [1 / 6, 1.5, 17 / 6], 1e-12, 'down');
});

/** Thumbnail map: 2 in the top-left 12×12 quadrant, 1 elsewhere → region sums [288, 144, 144, 144]. */
function quadrantScores(): Float32Array {
  return Float32Array.from({ length: T }, (_, i) => (Math.floor(i / 24) < 12 && i % 24 < 12 ? 2 : 1));
}

function expectedRatios(R: number): number[] {
  const e = Math.exp(-14.4); // (144 − 288) / 10
  const denominator = 1 + 3 * e + 1e-8;
  const sigma = [1 / denominator, e / denominator, e / denominator, e / denominator];
  const mean = sigma.reduce((a, b) => a + b, 0) / 4;
  return sigma.map((s) => Math.min(1, R * (1 + s - mean)));
}

test('crop retention ratios: region sums, softmax((s − max)/10) with +1e-8, r = R(1 + σ − mean σ) clipped at 1', () => {
  const info = { gridRows: 2, gridCols: 2, imageWidth: 640, imageHeight: 480, patchRows: 24, patchCols: 24 };
  const ratios = cropRetentionRatios(quadrantScores(), info, 0.25);
  assertClose(ratios, expectedRatios(0.25), 1e-15, 'ratios');
  assertClose(ratios, [0.4375, 0.1875, 0.1875, 0.1875], 1e-6, 'ratios ≈');
  // R = 0.75: crop 0 would get 1.3125 → clipped at 1
  assertClose(cropRetentionRatios(quadrantScores(), info, 0.75), [1, 0.5625, 0.5625, 0.5625], 1e-6, 'clipped');
});

test('GlobalCom² on a 640×480 LLaVA-NeXT bundle (2×2 grid of 24×24): per-crop ratios and kept sets', async () => {
  const R = 0.25;
  const ratios = expectedRatios(R);
  // 432 valid tokens per crop; ⌊432·0.43749958⌋ = 188 (not 189), ⌊432·0.1875001⌋ = 81
  const kept = ratios.map((r) => Math.floor(432 * r));
  assert.deepEqual(kept, [188, 81, 81, 81]);
  const score = new Float32Array(5 * T);
  score.set(quadrantScores(), 0);
  const rng = new Rng(17);
  const chosen: number[][] = [];
  for (let c = 0; c < 4; c++) {
    const top = c < 2 ? 6 : 0; // valid local rows: 6..23 for the top crops, 0..17 for the bottom ones
    const local = new Float32Array(T).fill(100); // padding: huge scores that must never be picked
    for (let r = top; r < top + 18; r++) for (let col = 0; col < 24; col++) local[r * 24 + col] = 0;
    // A crafted set S of exactly the kept count scores 1: L2norm(local) on S (≥ 1/√188 = 0.073)
    // outweighs the spread of the normalised thumbnail term (≤ 0.025), so S is the kept set.
    const picks = Array.from(rng.sample(432, kept[c]!)).map((p) => (top + Math.floor(p / 24)) * 24 + (p % 24));
    for (const p of picks) local[p] = 1;
    score.set(local, (c + 1) * T);
    chosen.push(picks.sort((a, b) => a - b).map((p) => (c + 1) * T + p));
  }
  const tokens = anyresTokens({ imageWidth: 640, imageHeight: 480, gridRows: 2, gridCols: 2, patch: 24, d: 4, score });
  const result = await globalcom2Reducer.run(tokens, { ratio: R });
  assertClose(result.stats.crop_ratios as number[], ratios, 1e-15, 'crop_ratios');
  assert.deepEqual(result.stats.crop_kept, [188, 81, 81, 81]);
  assert.deepEqual(result.stats.crop_valid, [432, 432, 432, 432]);
  assert.equal(result.stats.thumbnail_kept, 144);
  const thumbnail = Array.from({ length: T }, (_, i) => i).filter((i) => Math.floor(i / 24) < 12 && i % 24 < 12);
  assert.deepEqual(Array.from(result.keep!), [...thumbnail, ...chosen.flat()]);
  checkSelection(tokens, result, 144 + 188 + 3 * 81);
  assert.equal(result.tokens.n, 575);

  // order 'canvas': same set, crop tokens in raster order of the stitched 48-wide canvas
  const canvas = await globalcom2Reducer.run(tokens, { ratio: R, order: 'canvas' });
  const canvasIndex = (i: number) => {
    const crop = Math.floor(i / T) - 1;
    return (Math.floor(crop / 2) * 24 + Math.floor((i % T) / 24)) * 48 + (crop % 2) * 24 + (i % 24);
  };
  const expectedCanvas = chosen.flat().sort((a, b) => canvasIndex(a) - canvasIndex(b));
  assert.deepEqual(Array.from(canvas.keep!), [...thumbnail, ...expectedCanvas]);
  // the first canvas row (row 6) starts in crop 0 and continues into crop 1
  const firstRow = expectedCanvas.filter((i) => canvasIndex(i) < 7 * 48);
  assert.ok(firstRow.some((i) => i < 2 * T) && firstRow.some((i) => i >= 2 * T), 'row 6 interleaves crops 0 and 1');
  await assert.rejects(
    globalcom2Reducer.run(tokens, { ratio: R, order: 'image' as 'canvas' }),
    /globalcom2: order must be "bundle" or "canvas", got "image"/,
  );
});

test('GlobalCom² on a tall 480×640 bundle keeps only unpadded columns, ⌊432·r_j⌋ per crop', async () => {
  const rng = new Rng(3);
  const score = Float32Array.from({ length: 5 * T }, () => rng.float());
  const tokens = anyresTokens({ imageWidth: 480, imageHeight: 640, gridRows: 2, gridCols: 2, patch: 24, d: 2, score });
  const result = await globalcom2Reducer.run(tokens, { ratio: 0.5 });
  const ratios = result.stats.crop_ratios as number[];
  assert.deepEqual(result.stats.crop_valid, [432, 432, 432, 432]);
  assert.deepEqual(
    result.stats.crop_kept,
    ratios.map((r) => Math.floor(432 * r)),
  );
  const keep = Array.from(result.keep!);
  assert.equal(keep.length, 288 + ratios.reduce((a, r) => a + Math.floor(432 * r), 0));
  for (const i of keep.slice(288)) {
    const crop = Math.floor(i / T) - 1;
    const col = i % 24;
    // canvas columns 6..41: left crops keep local columns 6..23, right crops 0..17
    assert.ok(crop % 2 === 0 ? col >= 6 : col < 18, `crop ${crop} column ${col} is padding`);
  }
  // within each crop the kept tokens are in raster order
  for (let c = 1; c <= 4; c++) {
    const inCrop = keep.slice(288).filter((i) => Math.floor(i / T) === c);
    assert.deepEqual(
      inCrop,
      [...inCrop].sort((a, b) => a - b),
    );
  }
});

test('GlobalCom² thumbnail keeps descending score order; without CLS scores s = −cos(x, tile mean)', async () => {
  const scored = anyresTokens({
    imageWidth: 672,
    imageHeight: 672,
    gridRows: 2,
    gridCols: 2,
    patch: 4,
    d: 2,
    score: Float32Array.from({ length: 80 }, (_, i) => (i * 37) % 80),
  });
  const byScore = await globalcom2Reducer.run(scored, { ratio: 0.25 });
  // thumbnail scores (i·37) mod 80 for i < 16: the top 4 are 75 (i = 15), 74 (2), 68 (4), 62 (6), in that order
  assert.deepEqual(Array.from(byScore.keep!.subarray(0, 4)), [15, 2, 4, 6]);

  // 16 thumbnail tokens: 12 along e1 and 4 along e2 → the e2 ones are least like the mean
  const d = 2;
  const data = new Float32Array(80 * d);
  for (let i = 0; i < 80; i++) data.set(i % 4 === 3 ? [0, 1] : [1, 0.01 * (i % 4)], i * d);
  const plain = anyresTokens({ imageWidth: 672, imageHeight: 672, gridRows: 2, gridCols: 2, patch: 4, d, data });
  const result = await globalcom2Reducer.run(plain, { ratio: 0.25 });
  assert.equal(result.stats.scores, 'mean-cosine');
  assert.deepEqual(Array.from(result.keep!.subarray(0, 4)), [3, 7, 11, 15]);
});

test('GlobalCom² errors: no AnyRes info, reduced bundle, ratio out of range, bad temperature', async () => {
  await assert.rejects(
    globalcom2Reducer.run(randomTokens(16, 2, 1), { ratio: 0.5 }),
    (e: Error) =>
      e instanceof InputError && /globalcom2: input has no AnyRes information \(field anyres/.test(e.message),
  );
  const bundle = anyresTokens({ imageWidth: 640, imageHeight: 480, gridRows: 2, gridCols: 2, patch: 4, d: 2 });
  await assert.rejects(globalcom2Reducer.run(bundle, { ratio: 1.2 }), /globalcom2: ratio must be in \(0, 1\], got 1.2/);
  await assert.rejects(
    globalcom2Reducer.run(bundle, { ratio: 0.5, temperature: 0 }),
    /globalcom2: temperature must be > 0, got 0/,
  );
  // floors that keep nothing: a usage error instead of an empty output
  await assert.rejects(
    globalcom2Reducer.run(bundle, { budget: 1 }),
    (e: Error) =>
      e instanceof UsageError &&
      /globalcom2: ratio 0\.0125 keeps no token \(thumbnail ⌊16·R⌋ = 0 and every crop ⌊N_valid·r_j⌋ = 0\)/.test(
        e.message,
      ),
  );
  const reduced = await globalcom2Reducer.run(bundle, { ratio: 0.5 });
  await assert.rejects(
    globalcom2Reducer.run(reduced.tokens, { ratio: 0.5 }),
    /globalcom2: an AnyRes bundle of 2x2 crops of 4x4 tokens needs n = 80 tokens, got \d+/,
  );
});

test('GlobalCom² keep lists equal a NumPy port of the reference (llava_arch.py) on 6×6 tiles, wide and tall, R = 0.5 and 0.25', async () => {
  // Scores ((i·37) mod 101)/101 for thumbnail then crops: local and interpolated thumbnail terms both matter.
  // Expected lists printed by test/reference/globalcom2_keep.py, a NumPy port of compress_thumbnail /
  // generate_scale_for_crop_features / interpolate_and_split_cls_attn_scores / select_topk_crop_features
  // (F.interpolate re-implemented, align_corners=False); test/reference/reference.test.ts reruns it when NumPy is there.
  const score = Float32Array.from({ length: 5 * 36 }, (_, i) => ((i * 37) % 101) / 101);
  const thumbnail = [30, 19, 8, 27, 16, 5, 35, 24, 13, 2, 32, 21, 10, 29, 18, 7, 26, 15];
  const expected: Array<[number, number, number, number[]]> = [
    [
      0.5,
      640,
      480,
      [
        ...thumbnail,
        46,
        49,
        51,
        53,
        56,
        57,
        58,
        59,
        60,
        62,
        64,
        65,
        67,
        68,
        79,
        81,
        83,
        84,
        86,
        87,
        89,
        90,
        92,
        97,
        98,
        103,
        105,
        106,
        108,
        109,
        111,
        114,
        116,
        117,
        120,
        125,
        127,
        128,
        130,
        131,
        132,
        133,
        136,
        144,
        147,
        150,
        155,
        156,
        157,
        158,
        160,
        161,
        163,
        166,
        169,
        171,
        173,
      ],
    ],
    [
      0.5,
      480,
      640,
      [
        ...thumbnail,
        38,
        40,
        46,
        49,
        51,
        53,
        57,
        59,
        62,
        65,
        67,
        68,
        69,
        70,
        73,
        75,
        76,
        79,
        81,
        84,
        86,
        87,
        90,
        92,
        97,
        98,
        103,
        106,
        109,
        111,
        116,
        117,
        119,
        121,
        122,
        125,
        127,
        128,
        130,
        131,
        133,
        136,
        139,
        144,
        147,
        150,
        157,
        158,
        160,
        162,
        163,
        165,
        166,
        169,
        171,
        177,
        178,
      ],
    ],
    [
      0.25,
      640,
      480,
      [
        ...thumbnail.slice(0, 9),
        46,
        57,
        59,
        60,
        62,
        65,
        68,
        81,
        83,
        87,
        90,
        92,
        98,
        103,
        109,
        114,
        117,
        120,
        131,
        133,
        136,
        144,
        150,
        155,
        157,
        158,
        161,
        166,
      ],
    ],
    [
      0.25,
      480,
      640,
      [
        ...thumbnail.slice(0, 9),
        40,
        46,
        53,
        57,
        59,
        62,
        68,
        76,
        81,
        87,
        90,
        92,
        98,
        103,
        109,
        111,
        117,
        128,
        131,
        133,
        139,
        144,
        150,
        163,
        166,
        169,
        171,
        177,
      ],
    ],
  ];
  for (const [R, imageWidth, imageHeight, keep] of expected) {
    const tokens = anyresTokens({ imageWidth, imageHeight, gridRows: 2, gridCols: 2, patch: 6, d: 2, score });
    const result = await globalcom2Reducer.run(tokens, { ratio: R });
    assert.deepEqual(Array.from(result.keep!), keep, `R = ${R}, ${imageWidth}×${imageHeight}`);
  }
});
