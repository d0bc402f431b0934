import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { integer, oneOf, parseOptions } from '../core/schema.js';
import { DEFAULT_CONFIG, type RenderConfig } from './config.js';
import { encodeJpeg, encodePng, encodeWebp } from '../encoders/codecs.js';
import { VtcError } from '../core/errors.js';
import { ensureDir, writeFailure, writeFileAtomic } from '../io/write.js';
import { planRender, type MissingGlyph, type RenderedPage } from './render.js';
import { IMAGE_FORMATS, type ImageFormat } from './formats.js';

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

// The list lives in render/formats.ts (no imports, for the CLI's help); exported from here as before.
export { IMAGE_FORMATS, type ImageFormat };

const pageOutputSchema = z.object({
  format: oneOf(['png', 'jpeg', 'webp']).optional(),
  quality: integer(1, 100).optional(),
  concurrency: integer(1).optional(),
  existing: oneOf(['refuse', 'clean']).optional(),
});

/**
 * Checks page-output options (what `vtc render` checks for --format,
 * --quality): UsageError "render: quality must be an integer in [1, 100], got 0".
 */
export function checkPageOutput(options: {
  format?: unknown;
  quality?: unknown;
  concurrency?: unknown;
  existing?: unknown;
}): void {
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
  /**
   * Page files (page_NNN.png/.jpg/.webp) already in the folder from an earlier
   * render: 'refuse' (default) fails before writing anything, so old pages are
   * never mixed with new ones; 'clean' deletes them first (only page files,
   * nothing else in the folder).
   */
  existing?: 'refuse' | 'clean';
}

/** The names writePages gives pages: page_001.png, page_002.jpg, … */
export const PAGE_FILE_PATTERN = /^page_\d{3,}\.(png|jpg|webp)$/;

/** Page files (by name, sorted) in a folder; none when the folder does not exist. */
export async function existingPageFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => PAGE_FILE_PATTERN.test(name)).sort();
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return [];
    throw writeFailure(error, dir);
  }
}

/**
 * Encodes and writes pages as page_001.png, page_002.png, … into dir. Pages
 * may be a lazy iterable (planRender(...).pages()) so rasterising page i+1
 * overlaps encoding page i.
 *
 * @example
 * const files = await writePages(planRender(text, config).pages(), 'out', { format: 'png' });
 */
export async function writePages(
  pages: Iterable<RenderedPage>,
  dir: string,
  options: WriteOptions = {},
): Promise<string[]> {
  checkPageOutput(options);
  const format = options.format ?? 'png';
  const concurrency = options.concurrency ?? 4;
  await ensureDir(dir);
  const stale = await existingPageFiles(dir);
  if (stale.length > 0) {
    if (options.existing !== 'clean') {
      throw new VtcError(
        `${dir} already holds ${stale.length} page file${stale.length === 1 ? '' : 's'} from an earlier render (${stale[0]}${stale.length > 1 ? ` … ${stale.at(-1)}` : ''}); choose another folder or clean them first (vtc render --clean)`,
        'E_STALE_PAGES',
      );
    }
    for (const name of stale) await rm(join(dir, name), { force: true });
  }
  const files: string[] = [];
  const pending = new Set<Promise<void>>();
  let done = 0;
  try {
    for (const page of pages) {
      const file = join(dir, `page_${String(page.index + 1).padStart(3, '0')}.${format === 'jpeg' ? 'jpg' : format}`);
      files.push(file);
      const job: Promise<void> = encodePage(page, format, options.quality)
        .then((bytes) => writeFileAtomic(file, bytes))
        .then(() => {
          pending.delete(job);
          options.onPage?.(++done);
        });
      pending.add(job);
      if (pending.size >= concurrency) await Promise.race(pending);
    }
    await Promise.all(pending);
  } catch (error) {
    // A render that fails half way must not leave half a document to be mistaken for a whole one.
    await Promise.allSettled(pending);
    await Promise.all(files.map((file) => rm(file, { force: true }).catch(() => undefined)));
    throw error;
  }
  return files;
}
