import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTokenSet, mergeTokens, selectTokens } from '../../core/tokenset.js';
import { anyresLayout, drawReductionOverlay, groupColour, imageLayout, outputOfInput } from '../../encoders/overlay.js';
import type { RgbImage } from '../../encoders/types.js';

const white: RgbImage = { data: new Uint8Array(4 * 4 * 3).fill(255), width: 4, height: 4 };
const tokens = createTokenSet({ data: Float32Array.from({ length: 8 }, (_, i) => i), n: 4, d: 2 }); // 2×2 grid of 2-px patches
const pixel = (image: RgbImage, x: number, y: number) =>
  Array.from(image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));

test('selection overlay: kept patches untouched, dropped ones dimmed to 0.2·v + 16', () => {
  const reduction = { tokens: selectTokens(tokens, [3, 0]), keep: Int32Array.of(3, 0), stats: {} };
  const { image, stats } = drawReductionOverlay(imageLayout(white, 2), tokens, reduction);
  assert.equal(stats.mode, 'select');
  assert.deepEqual(stats.perSource, [{ kind: 'image', index: 0, tokens: 4, covered: 2, outputs: 2 }]);
  assert.deepEqual(pixel(image, 0, 0), [255, 255, 255]);
  assert.deepEqual(pixel(image, 3, 3), [255, 255, 255]);
  assert.deepEqual(pixel(image, 2, 0), [67, 67, 67]); // token 1 dropped: round(255·0.2 + 16)
  assert.deepEqual(pixel(image, 1, 3), [67, 67, 67]); // token 2 dropped
  assert.deepEqual(Array.from(outputOfInput(tokens, reduction)), [1, -1, -1, 0]);
});

test('merge overlay: one colour per output token, dark border between groups', () => {
  const assign = Int32Array.of(0, 0, 1, 1); // top row → 0, bottom row → 1
  const reduction = { tokens: mergeTokens(tokens, assign, 2), assign, stats: {} };
  const { image, stats } = drawReductionOverlay(imageLayout(white, 2), tokens, reduction);
  assert.equal(stats.mode, 'merge');
  assert.equal(stats.perSource[0]!.outputs, 2);
  const tint = (j: number) => groupColour(j).map((c) => Math.round(255 * 0.45 + c * 0.55));
  assert.deepEqual(pixel(image, 0, 0), tint(0));
  assert.deepEqual(pixel(image, 3, 0), tint(0));
  assert.deepEqual(pixel(image, 0, 2), tint(1));
  assert.deepEqual(pixel(image, 0, 1), [20, 20, 20]); // bottom edge of the top group
  assert.notDeepEqual(tint(0), tint(1));
  // Without `assign`, origins give the same grouping.
  assert.deepEqual(Array.from(outputOfInput(tokens, { tokens: reduction.tokens, stats: {} })), [0, 0, 1, 1]);
});

test('mixed result (VisionZip-like): singleton outputs stay untinted, merged groups are tinted', () => {
  const assign = Int32Array.of(0, 0, 1, 2); // top row merged; tokens 2 and 3 kept on their own
  const reduction = { tokens: mergeTokens(tokens, assign, 3), assign, stats: {} };
  const { image, stats } = drawReductionOverlay(imageLayout(white, 2), tokens, reduction);
  assert.equal(stats.mode, 'merge');
  const tint = groupColour(0).map((c) => Math.round(255 * 0.45 + c * 0.55));
  assert.deepEqual(pixel(image, 0, 0), tint);
  assert.deepEqual(pixel(image, 0, 2), [255, 255, 255]); // token 2: alone, untouched
  assert.deepEqual(pixel(image, 2, 3), [255, 255, 255]); // token 3: alone, untouched
  assert.deepEqual(pixel(image, 1, 2), [20, 20, 20]); // border between tokens 2 and 3
});

test('anyresLayout places the thumbnail left and crops row-major on the canvas', () => {
  const thumb: RgbImage = { data: new Uint8Array(4 * 4 * 3).fill(9), width: 4, height: 4 };
  const canvas: RgbImage = { data: new Uint8Array(8 * 4 * 3).fill(200), width: 8, height: 4 };
  const layout = anyresLayout(thumb, canvas, 1, 2, 2);
  assert.deepEqual([layout.canvas.width, layout.canvas.height], [4 + 8 + 8, 4]);
  assert.deepEqual(layout.tiles, [
    { x: 0, y: 0 },
    { x: 12, y: 0 },
    { x: 16, y: 0 },
  ]);
  assert.deepEqual(pixel(layout.canvas, 0, 0), [9, 9, 9]);
  assert.deepEqual(pixel(layout.canvas, 5, 0), [48, 48, 48]);
  assert.deepEqual(pixel(layout.canvas, 19, 3), [200, 200, 200]);
});
