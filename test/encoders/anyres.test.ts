import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  anyresTokenCount,
  defaultPinpoints,
  planAnyRes,
  qwenResize,
  qwenTokenCount,
  resizeAndPadGeometry,
  selectBestResolution,
  unpadWindow,
} from '../../encoders/anyres.js';
import { UsageError } from '../../core/errors.js';

test('anyresTokenCount matches LLaVA-NeXT for the documented sizes', () => {
  assert.equal(anyresTokenCount(640, 480), 2340);
  assert.equal(anyresTokenCount(1280, 720), 1948);
  assert.equal(anyresTokenCount(2000, 2000), 2928);
  assert.equal(anyresTokenCount(672, 672), 2928);
});

test('selectBestResolution: effective resolution first, then least waste', () => {
  assert.deepEqual(selectBestResolution(640, 480), [672, 672]);
  assert.deepEqual(selectBestResolution(1280, 720), [672, 672]);
  // 1000x300: [1008,336] scale min(1.008,1.12)=1.008 → 1008x302 = 304416 > 300000 → effective 300000 (also [672,336]: 0.672 → 672x201).
  assert.deepEqual(selectBestResolution(1000, 300), [1008, 336]);
  assert.deepEqual(selectBestResolution(300, 1000), [336, 1008]);
  // Small images: every candidate reaches w·h; least waste wins ([336,672] before [672,336] on equal waste).
  assert.deepEqual(selectBestResolution(100, 100), [336, 672]);
  assert.deepEqual(
    selectBestResolution(200, 100, [
      [672, 672],
      [672, 336],
    ]),
    [672, 336],
  );
});

test('resizeAndPadGeometry: ceil on the free side, centred', () => {
  assert.deepEqual(resizeAndPadGeometry(640, 480, [672, 672]), {
    targetWidth: 672,
    targetHeight: 672,
    resizedWidth: 672,
    resizedHeight: 504,
    offsetX: 0,
    offsetY: 84,
  });
  // 1280x720 → scale 0.525, height = ceil(378) = 378, offset (672-378)//2 = 147.
  assert.deepEqual(resizeAndPadGeometry(1280, 720, [672, 672]), {
    targetWidth: 672,
    targetHeight: 672,
    resizedWidth: 672,
    resizedHeight: 378,
    offsetX: 0,
    offsetY: 147,
  });
  // 300x1000 into 336x1008: scaleW=1.12 > scaleH=1.008 → height 1008, width ceil(302.4)=303, offset 16.
  assert.deepEqual(resizeAndPadGeometry(300, 1000, [336, 1008]), {
    targetWidth: 336,
    targetHeight: 1008,
    resizedWidth: 303,
    resizedHeight: 1008,
    offsetX: 16,
    offsetY: 0,
  });
});

test('unpadWindow cuts padding symmetrically like unpad_image', () => {
  assert.deepEqual(unpadWindow(640, 480, 48, 48), {
    rowStart: 6,
    rowEnd: 42,
    colStart: 0,
    colEnd: 48,
    rows: 36,
    cols: 48,
  });
  // 1280x720: int(720·48/1280) = 27, padding (48−27)//2 = 10 → 28 rows (not 27).
  assert.deepEqual(unpadWindow(1280, 720, 48, 48), {
    rowStart: 10,
    rowEnd: 38,
    colStart: 0,
    colEnd: 48,
    rows: 28,
    cols: 48,
  });
  // Tall: 300x1000 on a 72x24 map → int(300·72/1000)=21 cols, padding 1.
  assert.deepEqual(unpadWindow(300, 1000, 72, 24), {
    rowStart: 0,
    rowEnd: 72,
    colStart: 1,
    colEnd: 23,
    rows: 72,
    cols: 22,
  });
});

test('planAnyRes: grid, crops in row-major order, custom tile sizes', () => {
  const plan = planAnyRes(1000, 300);
  assert.equal(plan.gridRows, 1);
  assert.equal(plan.gridCols, 3);
  assert.deepEqual(
    plan.crops.map((c) => [c.x, c.y]),
    [
      [0, 0],
      [336, 0],
      [672, 0],
    ],
  );
  const small = planAnyRes(64, 48, { tileSize: 28, patchSize: 7 });
  assert.deepEqual(small.best, [56, 56]);
  assert.deepEqual(defaultPinpoints(28), [
    [28, 56],
    [56, 28],
    [56, 56],
    [84, 28],
    [28, 84],
  ]);
  assert.equal(small.patchRows, 4);
  // 8x8 map, 64x48: int(48·8/64)=6 rows, padding 1 → 6 rows; 16 + 48 + 6 = 70.
  assert.equal(small.tokenCount, 16 + 6 * 8 + 6);
  assert.throws(() => planAnyRes(10, 10, { tileSize: 6, patchSize: 7 }), UsageError);
  assert.equal(planAnyRes(384, 384, { tileSize: 384, patchSize: 14 }).patchRows, 27);
  assert.throws(() => planAnyRes(10, 10, { pinpoints: [[300, 336]] }), /multiples of the tile size 336/);
  assert.throws(() => anyresTokenCount(0, 10), /positive integers, got 0x10/);
});

test('qwenResize follows smart_resize (round half to even, min/max pixels)', () => {
  assert.deepEqual(qwenResize(640, 480), { width: 644, height: 476, tokens: 391, gridRows: 17, gridCols: 23 });
  assert.equal(qwenTokenCount(1280, 720, { maxPixels: 1003520 }), 1196);
  // 70/28 = 2.5 rounds to 2 (half to even) → 56; 126/28 = 4.5 → 4 → 112.
  assert.deepEqual(qwenResize(70, 126), { width: 56, height: 112, tokens: 8, gridRows: 4, gridCols: 2 });
  // Above max: 4000x3000 with maxPixels 1003520: beta = sqrt(12e6/1003520) → floor to 28-multiples.
  const big = qwenResize(4000, 3000, { maxPixels: 1003520 });
  assert.equal(big.width % 28, 0);
  assert.ok(big.width * big.height <= 1003520);
  assert.deepEqual([big.width, big.height], [1148, 840]);
  // Below min: 10x10 → 28x28 = 784 < 3136 → ceil(10·5.6/28)·28 = 56.
  assert.deepEqual(qwenResize(10, 10), { width: 56, height: 56, tokens: 4, gridRows: 2, gridCols: 2 });
  assert.throws(() => qwenResize(1, 300), /aspect ratio must be below 200/);
});
