import { promisify } from 'node:util';
import { crc32, deflate, deflateSync } from 'node:zlib';
import sharp from 'sharp';

/**
 * Image codecs for raw 8-bit pixels, one place for the toolkit: PNG (a
 * minimal writer: greyscale or RGB, filter "None", zlib level 1 by default;
 * Glyph pages are mostly flat background, so this is ~10× faster than a
 * general encoder at a similar size, and async deflate runs on libuv's
 * thread pool, in parallel with the layout and rasterising of the next
 * page), JPEG and WebP through sharp.
 */

/** Raw row-major 8-bit pixels; channels defaults to 3 (an RgbImage). */
export interface RawPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels?: PngChannels;
}

const deflateAsync = promisify(deflate);

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export type PngChannels = 1 | 3;

/** Raw scanlines with a leading filter byte (0 = None) per row. */
function scanlines(pixels: Uint8Array, width: number, height: number, channels: PngChannels): Buffer {
  const stride = width * channels;
  if (pixels.length !== stride * height)
    throw new RangeError(
      `encodePng: expected ${stride * height} bytes for ${width}×${height}×${channels}, got ${pixels.length}`,
    );
  const raw = Buffer.allocUnsafe((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const at = y * (stride + 1);
    raw[at] = 0;
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), at + 1);
  }
  return raw;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function assemble(width: number, height: number, channels: PngChannels, idat: Buffer): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = channels === 1 ? 0 : 2; // colour type: greyscale or truecolour
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * Encodes raw 8-bit pixels (row-major, 1 or 3 channels) as PNG, deflating off the main thread.
 *
 * @example
 * const png = await encodePng({ data: new Uint8Array([0, 255, 255, 0]), width: 2, height: 2, channels: 1 }); // 2×2 checkerboard
 * await writeFile('overlay.png', await encodePng(overlayImage)); // an RgbImage
 */
export async function encodePng(image: RawPixels, options: { level?: number } = {}): Promise<Buffer> {
  const channels = image.channels ?? 3;
  return assemble(
    image.width,
    image.height,
    channels,
    await deflateAsync(scanlines(image.data, image.width, image.height, channels), { level: options.level ?? 1 }),
  );
}

/** Synchronous variant of encodePng (for small images and tests). */
export function encodePngSync(image: RawPixels, options: { level?: number } = {}): Buffer {
  const channels = image.channels ?? 3;
  return assemble(
    image.width,
    image.height,
    channels,
    deflateSync(scanlines(image.data, image.width, image.height, channels), { level: options.level ?? 1 }),
  );
}

function sharpInput(image: RawPixels) {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels ?? 3 } });
}

/**
 * Encodes raw pixels as JPEG (quality 1–100) through sharp.
 *
 * @example
 * const jpeg = await encodeJpeg(plan.keyframes[0].image, 85);
 */
export async function encodeJpeg(image: RawPixels, quality = 85): Promise<Buffer> {
  return sharpInput(image).jpeg({ quality }).toBuffer();
}

/** Encodes raw pixels as WebP (quality 1–100) through sharp. */
export async function encodeWebp(image: RawPixels, quality = 80): Promise<Buffer> {
  return sharpInput(image).webp({ quality }).toBuffer();
}
