import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, ShapeError } from '../../core/errors.js';
import { toNchw } from '../../encoders/image.js';
import {
  checkGrid,
  inversePermutation,
  patchifyFrames,
  preprocessQwenImage,
  qwenImageSize,
  qwenVideoSize,
  qwenWindowIndex,
  QWEN_FAMILY_SPECS,
} from '../../encoders/qwen-preprocess.js';

const Q25 = QWEN_FAMILY_SPECS['qwen2.5-vl'];
const Q3 = QWEN_FAMILY_SPECS['qwen3-vl'];

test("smart_resize sizes: factor 28 / 32, image and video bounds (values from the processors' Python formula)", () => {
  assert.deepEqual(qwenImageSize('qwen2.5-vl', 640, 480), [644, 476]);
  assert.deepEqual(qwenImageSize('qwen3-vl', 640, 480), [640, 480]);
  // 288×192 = 55296 < 65536: scaled up by √(65536/60000), ceil to 32 → 320×224.
  assert.deepEqual(qwenImageSize('qwen3-vl', 300, 200), [320, 224]);
  assert.deepEqual(qwenImageSize('qwen3-vl', 5000, 4000), [4576, 3648]);
  assert.deepEqual(qwenImageSize('qwen3-vl', 300, 200, { minPixels: 1024 }), [288, 192]);
  // Qwen2.5-VL video frames: 128·28·28 … 768·28·28 per frame.
  assert.deepEqual(qwenVideoSize('qwen2.5-vl', 8, 640, 360), [644, 364]);
  assert.deepEqual(qwenVideoSize('qwen2.5-vl', 8, 1920, 1080), [1008, 560]);
  // Qwen3-VL video: frames (rounded to pairs, half to even) count in the budget.
  assert.deepEqual(qwenVideoSize('qwen3-vl', 8, 1280, 720), [1280, 704]);
  assert.deepEqual(qwenVideoSize('qwen3-vl', 64, 1920, 1080), [832, 448]);
  assert.deepEqual(qwenVideoSize('qwen3-vl', 3, 64, 48), [64, 64]); // 48/32 = 1.5 → 2
  assert.throws(
    () => qwenVideoSize('qwen3-vl', 1, 640, 480),
    (e: unknown) =>
      e instanceof InputError &&
      /1 frame\(s\); the video processor needs at least temporal_patch_size = 2/.test(e.message),
  );
  assert.throws(() => qwenVideoSize('qwen3-vl', 4, 640, 20), /smaller than the factor 32/);
});

/** Planar frames whose value encodes (frame, channel, y, x) exactly. */
function coded(frames: number, side: number): Float32Array {
  const out = new Float32Array(frames * 3 * side * side);
  for (let i = 0; i < out.length; i++) out[i] = i;
  return out;
}

test('patchify: rows in (t, h/2, w/2, 2, 2) order, each row (channel, frame, y, x); an image is repeated, an odd clip pads its last frame', () => {
  const image = patchifyFrames(coded(1, 56), 1, 56, 56, Q25);
  assert.deepEqual(image.grid, [1, 4, 4]);
  assert.equal(image.patchDim, 1176);
  assert.equal(image.pixelValues.length, 16 * 1176);
  const at = (p: typeof image, row: number, column: number) => p.pixelValues[row * p.patchDim + column];
  // value(f, c, y, x) = ((f·3 + c)·56 + y)·56 + x
  assert.equal(at(image, 0, 0), 0);
  assert.equal(at(image, 1, 0), 14); // patch (0, 1)
  assert.equal(at(image, 2, 0), 784); // patch (1, 0): y = 14
  assert.equal(at(image, 4, 0), 28); // patch (0, 2): next merge group
  // Row 6 = patch (1, 2); column ((c·2 + tt)·14 + py)·14 + px with c=1, tt=1, py=3, px=5 → 635: pixel (y 17, x 33) of channel 1.
  assert.equal(at(image, 6, 635), (1 * 56 + 17) * 56 + 33);
  assert.equal(at(image, 6, 439), (1 * 56 + 17) * 56 + 33); // tt = 0: the same frame (image repeated)
  const clip = patchifyFrames(coded(3, 56), 3, 56, 56, Q25);
  assert.deepEqual(clip.grid, [2, 4, 4]);
  assert.equal(at(clip, 6, 439), (1 * 56 + 17) * 56 + 33); // t 0, frame 0
  assert.equal(at(clip, 6, 635), ((3 + 1) * 56 + 17) * 56 + 33); // t 0, frame 1
  assert.equal(at(clip, 22, 439), ((6 + 1) * 56 + 17) * 56 + 33); // t 1, frame 2
  assert.equal(at(clip, 22, 635), ((6 + 1) * 56 + 17) * 56 + 33); // t 1, frame 3 = frame 2 repeated
  const q3 = patchifyFrames(coded(1, 64), 1, 64, 64, Q3);
  assert.deepEqual([q3.grid, q3.patchDim], [[1, 4, 4], 1536]);
  assert.equal(at(q3, 3, 0), 16 * 64 + 16); // patch (1, 1)
  assert.throws(
    () => patchifyFrames(coded(1, 42), 1, 42, 42, Q25),
    (e: unknown) => e instanceof ShapeError && /42x42 is not a positive multiple of 28/.test(e.message),
  );
  assert.throws(
    () => patchifyFrames(new Float32Array(10), 1, 56, 56, Q25),
    /pixels have 10 values, expected frames·3·height·width/,
  );
});

test('preprocessQwenImage: rescale 1/255 and normalise with the family constants (CLIP for Qwen2.5-VL, 0.5/0.5 for Qwen3-VL)', async () => {
  const white = { data: new Uint8Array(56 * 56 * 3).fill(255), width: 56, height: 56 };
  const q25 = await preprocessQwenImage(white, 'qwen2.5-vl');
  assert.deepEqual([q25.width, q25.height, q25.grid], [56, 56, [1, 4, 4]]);
  assert.ok(Math.abs(q25.pixelValues[0]! - (1 - 0.48145466) / 0.26862954) < 1e-5);
  assert.ok(Math.abs(q25.pixelValues[392]! - (1 - 0.4578275) / 0.26130258) < 1e-5); // channel 1 starts at 2·196
  assert.ok(Math.abs(q25.pixelValues[15 * 1176 + 1175]! - (1 - 0.40821073) / 0.27577711) < 1e-5);
  const q3 = await preprocessQwenImage(white, 'qwen3-vl'); // 56² < 65536: upscaled to 256×256
  assert.deepEqual([q3.width, q3.height, q3.grid], [256, 256, [1, 16, 16]]);
  assert.ok(q3.pixelValues.every((v) => Math.abs(v - 1) < 1e-6));
  assert.deepEqual(toNchw([white], 'siglip').slice(0, 1), Float32Array.of(1));
});

test('window index of Qwen2.5-VL (112 px windows = 4×4 merged units; full padding window when a side is a multiple) and its inverse', () => {
  assert.deepEqual([...qwenWindowIndex([[1, 4, 10]]).windowIndex], [0, 1, 2, 3, 5, 6, 7, 8, 4, 9]);
  assert.deepEqual([...qwenWindowIndex([[1, 4, 10]]).cuWindowSeqlens], [0, 32, 40]);
  const grid5x6 = qwenWindowIndex([[1, 10, 12]]);
  assert.deepEqual(
    [...grid5x6.windowIndex],
    [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21, 4, 5, 10, 11, 16, 17, 22, 23, 24, 25, 26, 27, 28, 29],
  );
  assert.deepEqual([...grid5x6.cuWindowSeqlens], [0, 64, 96, 112, 120]);
  const exact = qwenWindowIndex([[1, 8, 8]]); // 4×4 units padded by a whole window: 3 empty windows dropped
  assert.deepEqual(
    [...exact.windowIndex],
    Array.from({ length: 16 }, (_, i) => i),
  );
  assert.deepEqual([...exact.cuWindowSeqlens], [0, 64]);
  const several = qwenWindowIndex([
    [2, 4, 4],
    [1, 2, 2],
  ]);
  assert.deepEqual([...several.windowIndex], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...several.cuWindowSeqlens], [0, 16, 32, 36]);
  const inverse = inversePermutation(grid5x6.windowIndex);
  for (let i = 0; i < 30; i++) assert.equal(grid5x6.windowIndex[inverse[i]!], i);
  assert.deepEqual([...inversePermutation(Int32Array.of(2, 0, 1))], [1, 2, 0]);
  assert.throws(() => inversePermutation(Int32Array.of(0, 0)), /entry 1 = 0 is out of range or repeated/);
  assert.throws(
    () => qwenWindowIndex([[1, 5, 4]]),
    (e: unknown) =>
      e instanceof ShapeError && /grid_thw\[0\]: h = 5 and w = 4 must be multiples of the merge size 2/.test(e.message),
  );
});

test('checkGrid names the field and what disagrees', () => {
  assert.deepEqual(checkGrid([2, 4, 6], 48, Q25), [2, 4, 6]);
  assert.throws(
    () => checkGrid([1, 4, 6], 48, Q25, 'video_grid_thw'),
    /video_grid_thw: \[1, 4, 6\] describes t·h·w = 24 patches, but pixel_values has 48 rows/,
  );
  assert.throws(() => checkGrid([1, 4], 8, Q25), /grid_thw: expected 3 positive integers \(t, h, w\), got \[1, 4\]/);
  assert.throws(() => checkGrid([0, 4, 4], 0, Q25), /expected 3 positive integers/);
});
