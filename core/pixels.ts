import { UsageError } from './errors.js';

/**
 * One pixel limit for everything vtc allocates from a size: decoded input
 * images (encoders/image.ts) and sizes that come from options — AnyRes
 * pinpoints, rendered page canvases (page size × dpi), video frame sizes.
 * Checked before any buffer is allocated, so a typo like 33600x33600 or
 * dpi 72000 is one clear line, not an out-of-memory crash.
 */

/** Default pixel limit: 100 megapixels (a 10000×10000 image); guards against decompression bombs and runaway canvases. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * Throws a UsageError when `width × height` exceeds `maxPixels` (or is not a
 * positive finite size). `what` names the size in the message.
 *
 * @example
 * checkPixelBudget(672, 672, 'AnyRes pinpoint 672x672'); // ok
 * checkPixelBudget(40000, 40000, 'AnyRes pinpoint 40000x40000'); // UsageError: … = 1600000000 pixels, above the limit of 100000000 …
 */
export function checkPixelBudget(
  width: number,
  height: number,
  what: string,
  maxPixels: number = DEFAULT_MAX_PIXELS,
): void {
  if (!(Number.isFinite(width) && Number.isFinite(height) && width > 0 && height > 0))
    throw new UsageError(`${what}: size must be positive, got ${width}x${height}`, 'E_PIXEL_LIMIT');
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new UsageError(
      `${what} is ${width}x${height} = ${pixels} pixels, above the limit of ${maxPixels} that input images also obey (raise maxPixels / --max-pixels if this is intended)`,
      'E_PIXEL_LIMIT',
    );
  }
}
