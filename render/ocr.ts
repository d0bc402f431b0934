import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { createWorker, type Worker } from 'tesseract.js';
import { VtcError } from '../core/errors.js';
import { encodePng } from '../encoders/codecs.js';
import type { RenderedPage } from './render.js';
import { levenshtein } from '../core/edit-distance.js';
import { checkInteger } from '../core/validate.js';

export { levenshtein };

/**
 * OCR fidelity of rendered pages: tesseract.js with the offline English
 * model of @tesseract.js-data/eng (4.0.0, LSTM), one worker reused for all
 * pages, and the character error rate CER = Levenshtein(ref, hyp) / |ref|.
 *
 * Tesseract's LSTM model is trained on ~300 dpi scans and misreads 9 px
 * glyphs, so pages are upscaled (Lanczos) by ocrUpscale(dpi) before OCR
 * only — the images a VLM receives are unchanged.
 *
 * Normalisation (both sides, before the distance): Unicode NFC, every run of
 * whitespace (spaces, tabs, newlines) becomes one space, ends trimmed. Case
 * and punctuation are kept, so a misread comma or quote counts as an error.
 */
export interface PageFidelity {
  page: number;
  cer: number;
  distance: number;
  referenceLength: number;
  ocrText: string;
}

export interface FidelityReport {
  /** Σ distance / Σ reference length over the OCR'd pages. */
  cer: number;
  pages: PageFidelity[];
}

const require = createRequire(import.meta.url);

/** Folder of the eng.traineddata.gz that tesseract.js loads offline. */
export function englishDataDir(): string {
  return join(dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0');
}

/**
 * Upscale factor applied before OCR: enough to bring the page to ≥ 144 dpi, at most 4.
 *
 * @example
 * ocrUpscale(72); // 2
 */
export function ocrUpscale(dpi: number): number {
  return Math.min(4, Math.max(1, Math.ceil(144 / dpi - 1e-9)));
}

/** PNG handed to tesseract for a page (upscaled per ocrUpscale). */
export async function ocrImage(page: RenderedPage, factor = ocrUpscale(page.dpi)): Promise<Buffer> {
  if (factor === 1)
    return encodePng({ data: page.pixels, width: page.width, height: page.height, channels: page.channels });
  return sharp(Buffer.from(page.pixels.buffer, page.pixels.byteOffset, page.pixels.byteLength), {
    raw: { width: page.width, height: page.height, channels: page.channels },
  })
    .resize(page.width * factor, page.height * factor, { kernel: 'lanczos3' })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

/** Whitespace/Unicode normalisation applied to reference and OCR text before CER. */
export function normalizeForCer(text: string): string {
  return text.normalize('NFC').replace(/\s+/gu, ' ').trim();
}

/**
 * Character error rate of a hypothesis against a reference, after normalizeForCer.
 *
 * @example
 * characterErrorRate('hello world', 'hallo  world\n'); // 1/11
 */
export function characterErrorRate(
  reference: string,
  hypothesis: string,
): { cer: number; distance: number; referenceLength: number } {
  const ref = normalizeForCer(reference);
  const hyp = normalizeForCer(hypothesis);
  const distance = levenshtein(ref, hyp);
  const referenceLength = Array.from(ref).length;
  return {
    cer: referenceLength === 0 ? (distance === 0 ? 0 : 1) : distance / referenceLength,
    distance,
    referenceLength,
  };
}

/** A reusable OCR engine (one tesseract worker). Call close() when done. */
export interface OcrEngine {
  /** Text of an image; `dpi` is the image's effective resolution (tesseract warns and guesses without it). */
  recognize(image: Buffer, dpi?: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts one offline English tesseract worker.
 *
 * @example
 * const ocr = await createOcr();
 * const text = await ocr.recognize(pngBuffer);
 * await ocr.close();
 */
export async function createOcr(): Promise<OcrEngine> {
  let worker: Worker;
  try {
    worker = await createWorker('eng', 1, { langPath: englishDataDir(), cacheMethod: 'none', gzip: true });
  } catch (error) {
    throw new VtcError(
      `cannot start tesseract.js with the offline English data in ${englishDataDir()}: ${(error as Error).message ?? String(error)}`,
      'E_OCR',
    );
  }
  let currentDpi: number | undefined;
  return {
    async recognize(image, dpi) {
      if (dpi !== undefined && dpi !== currentDpi) {
        await worker.setParameters({ user_defined_dpi: String(Math.round(dpi)) });
        currentDpi = dpi;
      }
      const result = await worker.recognize(image);
      return result.data.text;
    },
    close: async () => {
      await worker.terminate();
    },
  };
}

/**
 * Checks OCR options (what `vtc render --ocr-upscale` checks):
 * UsageError "render: upscale (--ocr-upscale) must be an integer in [1, 8], got 9".
 */
export function checkOcrOptions(options: { upscale?: unknown }): void {
  if (options.upscale !== undefined)
    checkInteger(options.upscale, 'upscale (--ocr-upscale)', { min: 1, max: 8, where: 'render' });
}

/**
 * OCRs pages with one worker and scores each against its laid-out text.
 *
 * @example
 * const report = await ocrPages(renderText(text, config).pages);
 * report.cer; // e.g. 0.05
 */
export async function ocrPages(
  pages: Iterable<RenderedPage>,
  options: {
    engine?: OcrEngine;
    onPage?: (
      done: number,
    ) => void /** Upscale factor before OCR, an integer in [1, 8] (default ocrUpscale(dpi); 1 = the page as rendered). */;
    upscale?: number;
  } = {},
): Promise<FidelityReport> {
  checkOcrOptions(options);
  const engine = options.engine ?? (await createOcr());
  const results: PageFidelity[] = [];
  try {
    for (const page of pages) {
      const factor = options.upscale ?? ocrUpscale(page.dpi);
      const ocrText = await engine.recognize(await ocrImage(page, factor), page.dpi * factor);
      const score = characterErrorRate(page.text, ocrText);
      results.push({ page: page.index, ...score, ocrText });
      options.onPage?.(results.length);
    }
  } finally {
    if (!options.engine) await engine.close();
  }
  const distance = results.reduce((n, r) => n + r.distance, 0);
  const length = results.reduce((n, r) => n + r.referenceLength, 0);
  return { cer: length === 0 ? 0 : distance / length, pages: results };
}
