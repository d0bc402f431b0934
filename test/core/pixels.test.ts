import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../core/errors.js';
import { checkPixelBudget, DEFAULT_MAX_PIXELS } from '../../core/pixels.js';
import { planAnyRes } from '../../encoders/anyres.js';
import { frameSize } from '../../encoders/ffmpeg.js';
import { DEFAULT_CONFIG } from '../../render/config.js';
import { planRender } from '../../render/render.js';

const overLimit = (e: unknown) => e instanceof UsageError && e.code === 'E_PIXEL_LIMIT' && e.exitCode === 2;

test('the pixel limit of input images also bounds sizes that come from options, before anything is allocated', () => {
  assert.equal(DEFAULT_MAX_PIXELS, 100_000_000);
  checkPixelBudget(10_000, 10_000, 'exactly the limit');
  assert.throws(
    () => checkPixelBudget(10_000, 10_001, 'x'),
    (e: unknown) =>
      overLimit(e) &&
      (e as Error).message.startsWith(
        'x is 10000x10001 = 100010000 pixels, above the limit of 100000000 that input images also obey',
      ),
  );
  // AnyRes pinpoints: every candidate canvas is checked, even one this image would not pick.
  assert.throws(
    () =>
      planAnyRes(640, 480, {
        pinpoints: [
          [672, 672],
          [33600, 33600],
        ],
      }),
    (e: unknown) =>
      overLimit(e) && /^planAnyRes: pinpoint 33600x33600 is 33600x33600 = 1128960000 pixels/.test((e as Error).message),
  );
  assert.equal(planAnyRes(640, 480, { pinpoints: [[33600, 33600]], maxPixels: 2e9 }).gridCols, 100);
  // Page canvases: page size × dpi.
  assert.throws(
    () => planRender('hello', { ...DEFAULT_CONFIG, dpi: 7200 }),
    (e: unknown) =>
      overLimit(e) &&
      /^render: page 595×842 pt at 7200 dpi is 59500x84200 = 5009900000 pixels/.test((e as Error).message),
  );
  // Video frame sizes.
  assert.throws(
    () => frameSize({ width: 320, height: 180 }, { width: 20_000, height: 20_000 }),
    (e: unknown) => overLimit(e) && /^frame size is 20000x20000/.test((e as Error).message),
  );
});
