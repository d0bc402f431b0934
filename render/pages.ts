import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { UsageError, describe } from '../core/errors.js';
import type { RenderConfig } from './config.js';
import { encodePng } from './png.js';
import { planRender, type MissingGlyph, type RenderedPage } from './render.js';

export interface RenderResult {
  pages: RenderedPage[];
  missingGlyphs: MissingGlyph[];
  /** Wall time of layout + rasterising in ms. */
  ms: number;
}

/**
 * Renders text to pages held in memory (raw pixels + the text on each page).
 *
 * @example
 * const { pages } = renderText(longText, parseConfig({ dpi: 96 }));
 * pages.map((p) => [p.width, p.height]);
 */
export function renderText(text: string, config: RenderConfig): RenderResult {
  const started = performance.now();
  const plan = planRender(text, config);
  const pages = [...plan.pages()];
  return { pages, missingGlyphs: plan.missingGlyphs, ms: performance.now() - started };
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];

/**
 * Encodes one page: PNG with the fast raw writer, JPEG/WebP through sharp.
 *
 * @example
 * const webp = await encodePage(renderText(text, config).pages[0], 'webp', 80);
 */
export async function encodePage(page: RenderedPage, format: ImageFormat = 'png', quality = 90): Promise<Buffer> {
  if (format === 'png') return encodePng(page.pixels, page.width, page.height, page.channels);
  const image = sharp(Buffer.from(page.pixels.buffer, page.pixels.byteOffset, page.pixels.byteLength), { raw: { width: page.width, height: page.height, channels: page.channels } });
  if (format === 'jpeg') return image.jpeg({ quality }).toBuffer();
  if (format === 'webp') return image.webp({ quality }).toBuffer();
  throw new UsageError(`unknown image format ${describe(format)} (expected one of: ${IMAGE_FORMATS.join(', ')})`);
}

export interface WriteOptions {
  format?: ImageFormat;
  quality?: number;
  /** Pages encoded at once (encoding runs on the thread pool while the next page rasterises). */
  concurrency?: number;
  onPage?: (done: number) => void;
}

/**
 * Encodes and writes pages as page_001.png, page_002.png, … into dir. Pages
 * may be a lazy iterable (planRender(...).pages()) so rasterising page i+1
 * overlaps encoding page i.
 *
 * @example
 * const files = await writePages(planRender(text, config).pages(), 'out', { format: 'png' });
 */
export async function writePages(pages: Iterable<RenderedPage>, dir: string, options: WriteOptions = {}): Promise<string[]> {
  const format = options.format ?? 'png';
  if (!IMAGE_FORMATS.includes(format)) throw new UsageError(`unknown image format ${describe(format)} (expected one of: ${IMAGE_FORMATS.join(', ')})`);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const pending = new Set<Promise<void>>();
  let done = 0;
  for (const page of pages) {
    const file = join(dir, `page_${String(page.index + 1).padStart(3, '0')}.${format === 'jpeg' ? 'jpg' : format}`);
    files.push(file);
    const job: Promise<void> = encodePage(page, format, options.quality)
      .then((bytes) => writeFile(file, bytes))
      .then(() => {
        pending.delete(job);
        options.onPage?.(++done);
      });
    pending.add(job);
    if (pending.size >= concurrency) await Promise.race(pending);
  }
  await Promise.all(pending);
  return files;
}
