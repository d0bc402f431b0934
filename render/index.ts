import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { UsageError, describe } from '../core/errors.js';
import type { RenderConfig } from './config.js';
import { encodePng } from './png.js';
import { getProfile, type VisionProfile } from './profiles.js';
import { planRender, type MissingGlyph, type RenderedPage } from './render.js';
import { loadTextTokenizer, type TextTokenizer } from './text-tokens.js';

/**
 * Glyph renderer, library entry points: text → page images, token
 * accounting for a VLM profile, OCR fidelity. The CLI (`vtc render`) is a
 * thin layer over these.
 */
export { ALIGNMENTS, DEFAULT_CONFIG, PAGE_SIZES, loadConfig, parseConfig, toConfigFile } from './config.js';
export type { Alignment, RenderConfig } from './config.js';
export { fontFamilies } from './fonts.js';
export { characterErrorRate, createOcr, levenshtein, normalizeForCer, ocrPages } from './ocr.js';
export type { FidelityReport, OcrEngine, PageFidelity } from './ocr.js';
export { encodePng } from './png.js';
export { claudeTokens, geminiTokens, getProfile, gpt4oTokens, profileNames, smartResize, visionTokens } from './profiles.js';
export type { VisionProfile } from './profiles.js';
export { planRender } from './render.js';
export type { MissingGlyph, RenderPlan, RenderedPage } from './render.js';
export { loadTextTokenizer } from './text-tokens.js';
export { searchConfig, paretoFront } from './search.js';
export type { Candidate, Genome, SearchOptions, SearchResult } from './search.js';
export type { TextTokenizer } from './text-tokens.js';

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

export interface CompressionReport {
  profile: string;
  tokenizer: string;
  textTokens: number;
  visionTokens: number;
  /** text tokens / vision tokens (Glyph's ρ). */
  compression: number;
  /** Vision tokens of each page. */
  pageTokens: number[];
}

/**
 * Glyph's compression ratio for rendered pages under a VLM profile.
 *
 * @example
 * const report = await measureCompression(text, pages, { profile: 'qwen2.5-vl' });
 * report.compression; // ≈ 3 at dpi 72
 */
export async function measureCompression(
  text: string,
  pages: readonly { width: number; height: number }[],
  options: { profile?: string | VisionProfile; tokenizer?: string | TextTokenizer } = {},
): Promise<CompressionReport> {
  const profile = typeof options.profile === 'object' ? options.profile : getProfile(options.profile ?? 'qwen2.5-vl');
  const tokenizer = typeof options.tokenizer === 'object' ? options.tokenizer : await loadTextTokenizer(options.tokenizer ?? 'o200k_base');
  const textTokens = tokenizer.count(text);
  const pageTokens = pages.map((p) => profile.tokens(p.width, p.height));
  const visionTokens = pageTokens.reduce((a, b) => a + b, 0);
  return { profile: profile.name, tokenizer: tokenizer.name, textTokens, visionTokens, compression: visionTokens === 0 ? 0 : textTokens / visionTokens, pageTokens };
}
