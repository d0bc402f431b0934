import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';
import { UsageError } from '../core/errors.js';
import type { RgbImage } from '../encoders/types.js';
import { familyPath, loadFont } from '../render/fonts.js';
import { checkInteger } from '../core/validate.js';
import { formatTime } from './time.js';

/**
 * A contact sheet: the chosen frames in a grid, each captioned with its
 * timestamp (and an optional note such as the clip it came from), as PNG.
 */

export interface SheetFrame {
  image: RgbImage;
  time: number;
  caption?: string;
}

export interface ContactSheetOptions {
  /** Columns in the grid (default min(4, frames)). */
  columns?: number;
  /** Width of each thumbnail in pixels (default 240). */
  thumbWidth?: number;
  /** Heading drawn above the grid. */
  title?: string;
}

function rgbToCanvas(image: RgbImage) {
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  const imageData = ctx.createImageData(image.width, image.height);
  const rgba = imageData.data;
  for (let p = 0, q = 0; q < image.data.length; p += 4, q += 3) {
    rgba[p] = image.data[q]!;
    rgba[p + 1] = image.data[q + 1]!;
    rgba[p + 2] = image.data[q + 2]!;
    rgba[p + 3] = 255;
  }
  ctx.putImageData(imageData, 0, 0);
  return canvas;
}

// formatTime lives in video/time.ts (no canvas there, for the CLI's report); exported from here as before.
export { formatTime };

function text(ctx: SKRSContext2D, value: string, x: number, y: number, size: number, colour: string): void {
  ctx.font = `${size}px "${loadFont(familyPath('DejaVu Sans')).alias}"`;
  ctx.fillStyle = colour;
  ctx.fillText(value, x, y);
}

/**
 * Renders frames as a captioned grid; returns PNG bytes.
 *
 * @example
 * const png = await contactSheet(plan.keyframes.map((k) => ({ image: k.image, time: k.time })), { title: 'scenes.mp4' });
 * writeFileSync('sheet.png', png);
 */
export async function contactSheet(frames: SheetFrame[], options: ContactSheetOptions = {}): Promise<Uint8Array> {
  if (frames.length === 0) throw new UsageError('contact sheet: no frames to draw');
  const columns = options.columns ?? Math.min(4, frames.length);
  checkInteger(columns, 'columns', { min: 1, where: 'contact sheet' });
  const thumbWidth = options.thumbWidth ?? 240;
  const aspect = frames[0]!.image.height / frames[0]!.image.width;
  const thumbHeight = Math.round(thumbWidth * aspect);
  const gap = 8;
  const captionHeight = 20;
  const titleHeight = options.title ? 28 : 0;
  const rows = Math.ceil(frames.length / columns);
  const width = gap + columns * (thumbWidth + gap);
  const height = titleHeight + gap + rows * (thumbHeight + captionHeight + gap);
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#1e1e1e';
  ctx.fillRect(0, 0, width, height);
  if (options.title) text(ctx, options.title, gap, 20, 15, '#ffffff');
  frames.forEach((frame, i) => {
    const x = gap + (i % columns) * (thumbWidth + gap);
    const y = titleHeight + gap + Math.floor(i / columns) * (thumbHeight + captionHeight + gap);
    ctx.drawImage(rgbToCanvas(frame.image), x, y, thumbWidth, thumbHeight);
    const caption = `t=${formatTime(frame.time)}${frame.caption ? `  ${frame.caption}` : ''}`;
    text(ctx, caption, x + 2, y + thumbHeight + 15, 12, '#e0e0e0');
  });
  return new Uint8Array(await canvas.encode('png'));
}
