import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { integer, oneOf, parseOptions } from '../core/validate.js';
import { DEFAULT_CONFIG, type RenderConfig } from './config.js';
import { encodeJpeg, encodePng, encodeWebp } from '../encoders/codecs.js';
import { planRender, type MissingGlyph, type RenderedPage } from './render.js';

export interface RenderResult {
  pages: RenderedPage[];
  missingGlyphs: MissingGlyph[];
  /** Wall time of layout + rasterising in ms. */
  ms: number;
}

/**
 * Renders text to pages held in memory (raw pixels + the text on each page),
 * with Glyph's default config (DEFAULT_CONFIG) unless one is given.
 *
 * @example
 * const { pages: defaultPages } = renderText(longText);
 * const { pages } = renderText(longText, parseConfig({ dpi: 96 }));
 * pages.map((p) => [p.width, p.height]);
 */
export function renderText(text: string, config: RenderConfig = DEFAULT_CONFIG): RenderResult {
  const started = performance.now();
  const plan = planRender(text, config);
  const pages = [...plan.pages()];
  return { pages, missingGlyphs: plan.missingGlyphs, ms: performance.now() - started };
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];

const pageOutputSchema = z.object({ format: oneOf(['png', 'jpeg', 'webp']).optional(), quality: integer(1, 100).optional(), concurrency: integer(1).optional() });

/**
 * Checks page-output options (what `vtc render` checks for --format,
 * --quality): UsageError "render: quality must be an integer in [1, 100], got 0".
 */
export function checkPageOutput(options: { format?: unknown; quality?: unknown; concurrency?: unknown }): void {
  parseOptions(pageOutputSchema, options, 'render');
}

/**
 * Encodes one page: PNG with the fast raw writer, JPEG/WebP through sharp.
 *
 * @example
 * const webp = await encodePage(renderText(text, config).pages[0], 'webp', 80);
 */
export async function encodePage(page: RenderedPage, format: ImageFormat = 'png', quality = 90): Promise<Buffer> {
  checkPageOutput({ format, quality });
  const pixels = { data: page.pixels, width: page.width, height: page.height, channels: page.channels };
  if (format === 'png') return encodePng(pixels);
  return format === 'jpeg' ? encodeJpeg(pixels, quality) : encodeWebp(pixels, quality);
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
  checkPageOutput(options);
  const format = options.format ?? 'png';
  const concurrency = options.concurrency ?? 4;
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
