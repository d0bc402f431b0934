import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG, createOcr, ocrPages, planRender, renderText, writePages } from '../render/index.js';
import { clearWidthCache } from '../render/render.js';
import { measure, type Benchmark } from './harness.js';

/** The ~95 KB sample text, found from bench/ (tsx) or dist/bench/ (compiled). */
function sampleText(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const path = [join(here, '../samples/text/prose-95k.txt'), join(here, '../../samples/text/prose-95k.txt')].find((p) =>
    existsSync(p),
  );
  if (!path) throw new Error('bench render: samples/text/prose-95k.txt not found');
  return readFileSync(path, 'utf8');
}

/**
 * Glyph renderer throughput on the ~95 KB sample with Glyph's best config
 * (A4, dpi 72, 9/10 pt DejaVu Sans, margins 10, LEFT, auto-crop):
 * pages/s for layout + raster + PNG encode + write, layout + raster alone,
 * and OCR (tesseract.js, one worker) separately.
 */
export const renderBenchmark: Benchmark = {
  description: 'Glyph renderer pages/s on a 95 KB text (best config), and OCR pages/s',
  async run({ runs, log }) {
    const text = sampleText();
    const pageCount = planRender(text, DEFAULT_CONFIG).pageCount;
    const dir = mkdtempSync(join(tmpdir(), 'vtc-bench-render-'));
    try {
      // Cold: the process-wide width cache is emptied first, as in a one-shot `vtc render`.
      const cold = await measure(
        `render ${(text.length / 1024).toFixed(0)} KB → ${pageCount} PNG pages (layout+raster+encode+write), cold`,
        runs,
        () => {
          clearWidthCache();
          return writePages(planRender(text, DEFAULT_CONFIG).pages(), dir, { existing: 'clean' });
        },
      );
      cold.extra = {
        'pages/s': +((pageCount * 1000) / cold.medianMs).toFixed(1),
        'ms/page': +(cold.medianMs / pageCount).toFixed(2),
      };
      log(
        `render+write (cold): ${cold.medianMs.toFixed(1)} ms for ${pageCount} pages = ${cold.extra['pages/s']} pages/s`,
      );
      const warm = await measure(`same, word widths cached (repeated renders in one process)`, runs, () =>
        writePages(planRender(text, DEFAULT_CONFIG).pages(), dir, { existing: 'clean' }),
      );
      warm.extra = {
        'pages/s': +((pageCount * 1000) / warm.medianMs).toFixed(1),
        'ms/page': +(warm.medianMs / pageCount).toFixed(2),
      };
      log(`render+write (warm): ${warm.extra['pages/s']} pages/s`);
      const raster = await measure(`layout+raster only (${pageCount} pages), cold`, runs, () => {
        clearWidthCache();
        return renderText(text, DEFAULT_CONFIG);
      });
      raster.extra = {
        'pages/s': +((pageCount * 1000) / raster.medianMs).toFixed(1),
        'ms/page': +(raster.medianMs / pageCount).toFixed(2),
      };
      log(`layout+raster: ${raster.extra['pages/s']} pages/s`);
      const ocrSample = renderText(text, DEFAULT_CONFIG).pages.slice(0, 2);
      const engine = await createOcr();
      try {
        const ocr = await measure(
          `OCR ${ocrSample.length} pages (tesseract.js eng, 2× upscale)`,
          Math.min(runs, 2),
          () => ocrPages(ocrSample, { engine }),
          1,
        );
        ocr.extra = {
          'pages/s': +((ocrSample.length * 1000) / ocr.medianMs).toFixed(2),
          'ms/page': +(ocr.medianMs / ocrSample.length).toFixed(0),
        };
        log(`OCR: ${ocr.extra['ms/page']} ms/page`);
        return [cold, warm, raster, ocr];
      } finally {
        await engine.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
