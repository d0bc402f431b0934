import { promisify } from 'node:util';
import { crc32, deflate, deflateSync } from 'node:zlib';

/**
 * Minimal PNG writer for rendered pages: 8-bit greyscale or RGB straight
 * from raw pixels, filter "None" and zlib level 1. Text pages are mostly flat
 * background, so this is ~10× faster than a general encoder at a similar
 * size; async deflate runs on libuv's thread pool, in parallel with the
 * layout and rasterising of the next page.
 */
const deflateAsync = promisify(deflate);

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export type PngChannels = 1 | 3;

/** Raw scanlines with a leading filter byte (0 = None) per row. */
function scanlines(pixels: Uint8Array, width: number, height: number, channels: PngChannels): Buffer {
  const stride = width * channels;
  if (pixels.length !== stride * height) throw new RangeError(`encodePng: expected ${stride * height} bytes for ${width}×${height}×${channels}, got ${pixels.length}`);
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
 * const png = await encodePng(new Uint8Array([0, 255, 255, 0]), 2, 2, 1); // 2×2 checkerboard
 */
export async function encodePng(pixels: Uint8Array, width: number, height: number, channels: PngChannels, level = 1): Promise<Buffer> {
  return assemble(width, height, channels, await deflateAsync(scanlines(pixels, width, height, channels), { level }));
}

/** Synchronous variant of encodePng (for small images and tests). */
export function encodePngSync(pixels: Uint8Array, width: number, height: number, channels: PngChannels, level = 1): Buffer {
  return assemble(width, height, channels, deflateSync(scanlines(pixels, width, height, channels), { level }));
}
