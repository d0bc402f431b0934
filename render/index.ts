/**
 * Glyph renderer, library entry points: text → page images, token
 * accounting for a VLM profile, OCR fidelity. The CLI (`vtc render`) is a
 * thin layer over these.
 */
export { ALIGNMENTS, DEFAULT_CONFIG, PAGE_SIZES, loadConfig, parseConfig, toConfigFile } from './config.js';
export type { Alignment, RenderConfig } from './config.js';
export { fontFamilies } from './fonts.js';
export { characterErrorRate, checkOcrOptions, createOcr, levenshtein, normalizeForCer, ocrPages } from './ocr.js';
export type { FidelityReport, OcrEngine, PageFidelity } from './ocr.js';
export { planRender } from './render.js';
export type { MissingGlyph, RenderPlan, RenderedPage } from './render.js';
export { searchConfig, paretoFront } from './search.js';
export type { Candidate, Genome, SearchOptions, SearchResult } from './search.js';
export {
  checkPageOutput,
  encodePage,
  existingPageFiles,
  IMAGE_FORMATS,
  PAGE_FILE_PATTERN,
  renderText,
  writePages,
} from './pages.js';
export type { ImageFormat, RenderResult, WriteOptions } from './pages.js';
export { measureCompression } from './compression.js';
export type { CompressionReport } from './compression.js';
