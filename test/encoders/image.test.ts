import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { InputError, UsageError } from '../../core/errors.js';
import {
  cropImage,
  NORMALIZATION_PRESETS,
  padImage,
  readImage,
  resizeImage,
  shortestSideSize,
  toNchw,
} from '../../encoders/image.js';
import type { RgbImage } from '../../encoders/types.js';

const dir = await mkdtemp(join(tmpdir(), 'vtc-image-'));
after(() => rm(dir, { recursive: true, force: true }));

/** 40×20 gradient: R = x·6, G = y·12, B = 7. */
function gradient(width = 40, height = 20): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set([x * 6, y * 12, 7], (y * width + x) * 3);
  return raw;
}
const rawOptions = { raw: { width: 40, height: 20, channels: 3 as const } };

test('readImage decodes PNG exactly and every common format to RGB', async () => {
  const png = await sharp(gradient(), rawOptions).png().toBuffer();
  const image = await readImage(png);
  assert.equal(image.format, 'png');
  assert.deepEqual([image.width, image.height], [40, 20]);
  assert.deepEqual(Buffer.from(image.data), gradient());
  for (const format of ['jpeg', 'webp', 'avif', 'tiff', 'gif'] as const) {
    const bytes = await sharp(gradient(), rawOptions)[format]().toBuffer();
    const decoded = await readImage(bytes);
    assert.deepEqual([decoded.width, decoded.height, decoded.data.length], [40, 20, 2400], format);
  }
});

test('readImage: EXIF orientation, greyscale and alpha become upright RGB', async () => {
  const rotated = await sharp(gradient(), rawOptions).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const upright = await readImage(rotated);
  assert.deepEqual([upright.width, upright.height], [20, 40]);
  const grey = await readImage(
    await sharp(Buffer.alloc(12, 100), { raw: { width: 4, height: 3, channels: 1 } })
      .png()
      .toBuffer(),
  );
  assert.deepEqual(Array.from(grey.data), new Array(36).fill(100));
  const rgba = await readImage(
    await sharp(Buffer.alloc(48, 200), { raw: { width: 4, height: 3, channels: 4 } })
      .png()
      .toBuffer(),
  );
  assert.equal(rgba.data.length, 36);
});

test('readImage: animated GIF yields its first frame', async () => {
  const frame = (v: number) => sharp(Buffer.alloc(2400, v), rawOptions).png().toBuffer();
  const gif = await sharp([await frame(10), await frame(250)], { join: { animated: true } })
    .gif()
    .toBuffer();
  const image = await readImage(gif);
  assert.deepEqual([image.width, image.height, image.data[0]], [40, 20, 10]);
});

test('readImage: missing, empty, corrupt, truncated and over-limit inputs give clear InputErrors', async () => {
  const missing = join(dir, 'nope.png');
  await assert.rejects(
    readImage(missing),
    (e: unknown) => e instanceof InputError && e.message === `${missing}: file not found`,
  );
  const empty = join(dir, 'empty.png');
  await writeFile(empty, new Uint8Array(0));
  await assert.rejects(
    readImage(empty),
    (e: unknown) => e instanceof InputError && e.message === `${empty}: file is empty (0 bytes), expected an image`,
  );
  const junk = join(dir, 'junk.jpg');
  await writeFile(junk, 'this is not an image at all');
  await assert.rejects(
    readImage(junk),
    (e: unknown) => e instanceof InputError && e.message.startsWith(`${junk}: not a readable image (`),
  );
  const jpeg = await sharp(gradient(), rawOptions).jpeg().toBuffer();
  const truncated = join(dir, 'truncated.jpg');
  await writeFile(truncated, jpeg.subarray(0, jpeg.length >> 1));
  await assert.rejects(
    readImage(truncated),
    (e: unknown) =>
      e instanceof InputError && e.message.startsWith(`${truncated}: `) && /premature end of JPEG/i.test(e.message),
  );
  const big = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: 'white' } })
    .png()
    .toBuffer();
  await assert.rejects(
    readImage(big, { maxPixels: 1_000_000 }),
    (e: unknown) =>
      e instanceof InputError &&
      e.code === 'E_PIXEL_LIMIT' &&
      /3000x3000 = 9000000 pixels, above the limit of 1000000/.test(e.message),
  );
});

const tiny: RgbImage = { data: Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => i * 10), width: 4, height: 2 };

test('crop and pad move pixels exactly', () => {
  const crop = cropImage(tiny, 1, 1, 2, 1);
  assert.deepEqual(Array.from(crop.data), [150, 160, 170, 180, 190, 200]);
  const padded = padImage(crop, 4, 3, 1, 1, [1, 2, 3]);
  assert.deepEqual(Array.from(padded.data.subarray(0, 3)), [1, 2, 3]);
  assert.deepEqual(Array.from(padded.data.subarray(15, 21)), [150, 160, 170, 180, 190, 200]);
  assert.throws(() => cropImage(tiny, 3, 0, 2, 1), /outside the 4x2 image/);
});

test('resize modes: squash, shortest side + centre crop, letterbox', async () => {
  const image = await readImage(await sharp(gradient(), rawOptions).png().toBuffer());
  const squash = await resizeImage(image, 10, 10, { mode: 'squash' });
  assert.deepEqual([squash.width, squash.height], [10, 10]);
  // Shortest side 20 → 10: 40x20 → 20x10, centre crop 10x10 keeps x ∈ [5, 15) of the half-size image.
  const shortest = await resizeImage(image, 10, 10, { mode: 'shortest' });
  assert.deepEqual([shortest.width, shortest.height], [10, 10]);
  const half = await resizeImage(image, 20, 10);
  assert.deepEqual(Array.from(shortest.data), Array.from(cropImage(half, 5, 0, 10, 10).data));
  // Letterbox: 40x20 into 10x10 → 10x5 at y = 2, rows 0–1 and 7–9 are the background.
  const boxed = await resizeImage(image, 10, 10, { mode: 'letterbox', background: [9, 9, 9] });
  assert.deepEqual(Array.from(boxed.data.subarray(0, 3)), [9, 9, 9]);
  assert.deepEqual(Array.from(boxed.data.subarray(9 * 30, 9 * 30 + 3)), [9, 9, 9]);
  const inner = await resizeImage(image, 10, 5);
  assert.deepEqual(Array.from(boxed.data.subarray(2 * 30, 7 * 30)), Array.from(inner.data));
  await assert.rejects(resizeImage(image, 10, 10, { mode: 'stretch' as never }), UsageError);
  // HF rule: 640x480 → 448x336 (int(336·640/480)), 480x1000 → 336x700.
  assert.deepEqual(shortestSideSize(640, 480, 336, 336), { width: 448, height: 336 });
  assert.deepEqual(shortestSideSize(480, 1000, 336, 336), { width: 336, height: 700 });
});

test('toNchw normalises per channel into planes', () => {
  const t = toNchw([tiny], 'imagenet');
  assert.equal(t.length, 24);
  const { mean, std } = NORMALIZATION_PRESETS.imagenet;
  // Pixel 1 (x=1, y=0) is [30, 40, 50]; channel planes are 8 values long.
  assert.ok(Math.abs(t[1]! - (30 / 255 - mean[0]) / std[0]) < 1e-6);
  assert.ok(Math.abs(t[8 + 1]! - (40 / 255 - mean[1]) / std[1]) < 1e-6);
  assert.ok(Math.abs(t[16 + 1]! - (50 / 255 - mean[2]) / std[2]) < 1e-6);
  const s = toNchw([tiny, tiny], { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  assert.equal(s.length, 48);
  assert.ok(Math.abs(s[24]! - (0 / 255 - 0.5) / 0.5) < 1e-6);
  assert.throws(() => toNchw([tiny], 'nope' as never), /unknown normalisation preset "nope"/);
});
