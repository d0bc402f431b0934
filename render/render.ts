import { createCanvas, type Canvas, type SKRSContext2D } from '@napi-rs/canvas';
import { InputError } from '../core/errors.js';
import { checkPixelBudget } from '../core/pixels.js';
import { LIGHT_TEXT_GAMMA_MIN_PX, type RenderConfig } from './config.js';
import { familyPath, loadFont, type LoadedFont } from './fonts.js';
import { layoutText, normalizeText, parseNewlineMarkup, pixelSize, type LayoutPage } from './layout.js';

/**
 * Rasterising laid-out pages on @napi-rs/canvas (Skia) into raw 8-bit
 * pixels: greyscale when every colour in the config is grey (the usual
 * black-on-white case), RGB otherwise. Horizontal scale squeezes the drawing
 * (Glyph resizes the rendered page instead; same geometry, crisper glyphs).
 * Auto-crop follows Glyph: background = median of the top-left 2×2 pixels,
 * content = |grey − background| > 5, keep margin-x / margin-y pixels after it.
 *
 * Light-text gamma (config `lightTextGamma`, on by default): Skia shapes
 * anti-aliased glyph coverage by the paint's luminance, and dark text comes
 * out thin and grey at 9 px (few pixels reach full black). Text darker than
 * the page is therefore drawn with every colour inverted (light on dark) and
 * the pixels are inverted back on read-out, which is free (the read-out loop
 * runs anyway) and gives fuller stems: raw-page OCR CER at dpi 72 drops from
 * ~18% to ~12% (docs/render.md). Fills and borders are unchanged by the round
 * trip; only glyph edges differ. Below 9 px the fuller stems clump, so "auto"
 * (the default) keeps Skia's dark-text gamma there.
 */
export interface RenderedPage {
  /** 0-based page number. */
  index: number;
  width: number;
  height: number;
  channels: 1 | 3;
  /** Resolution the page was rendered at. */
  dpi: number;
  /** Row-major 8-bit pixels, width·height·channels bytes. */
  pixels: Uint8Array;
  /** The text laid out on this page, one line per layout line (the OCR reference). */
  text: string;
}

export interface MissingGlyph {
  char: string;
  codePoint: string;
  count: number;
}

export interface RenderPlan {
  pageCount: number;
  /** Characters no configured font has (only with missing-glyphs "warn"; "error" throws). */
  missingGlyphs: MissingGlyph[];
  /** The laid-out pages (what page(i) rasterises). */
  layout: LayoutPage[];
  /** Lazily rasterises page i. */
  page(index: number): RenderedPage;
  /** Pages in order, rasterised one at a time (lets encoding of page i overlap rasterising page i+1). */
  pages(): Iterable<RenderedPage>;
}

/** Fonts for a config: the main font (font-path or font-family) then the fallbacks. */
export function configFonts(config: RenderConfig): LoadedFont[] {
  const main = loadFont(config.fontPath ?? familyPath(config.fontFamily));
  return [main, ...config.fallbackFonts.map((path) => loadFont(path))];
}

/** The canvas font string for a config: its fonts (registered on first use) at the size in pixels. */
export function canvasFont(config: RenderConfig): string {
  const px = (config.fontSize * config.dpi) / 72;
  return `${px}px ${configFonts(config)
    .map((f) => `"${f.alias}"`)
    .join(', ')}`;
}

const widthCaches = new Map<string, Map<string, number>>();
const WIDTH_CACHE_LIMIT = 200_000;

/**
 * Width of a string in a canvas font, measured by Skia (with kerning) and
 * cached per font for the life of the process: repeated renders (the config
 * search, a server) measure each distinct word once.
 */
export function widthMeasurer(fontSpec: string): (text: string) => number {
  let cache = widthCaches.get(fontSpec);
  if (!cache) {
    cache = new Map();
    widthCaches.set(fontSpec, cache);
  }
  const widths = cache;
  const ctx = createCanvas(8, 8).getContext('2d');
  // A fixed language keeps shaping independent of the host locale (same pixels on every machine).
  ctx.lang = 'en';
  ctx.font = fontSpec;
  return (text) => {
    let width = widths.get(text);
    if (width === undefined) {
      width = ctx.measureText(text).width;
      if (widths.size < WIDTH_CACHE_LIMIT) widths.set(text, width);
    }
    return width;
  };
}

/** Forgets every cached text width (benchmarks use it to time cold renders). */
export function clearWidthCache(): void {
  widthCaches.clear();
}

/** Characters of the text that none of the fonts can draw (whitespace excluded), most frequent first. */
export function findMissingGlyphs(text: string, fonts: LoadedFont[]): MissingGlyph[] {
  const counts = new Map<string, number>();
  for (const ch of text) {
    if (ch === '\n' || ch === '\t' || ch === ' ') continue;
    const cp = ch.codePointAt(0)!;
    if (fonts.some((f) => f.coverage.has(cp))) continue;
    counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([char, count]) => ({
      char,
      codePoint: `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`,
      count,
    }));
}

/**
 * Lays out the text and returns a plan that rasterises pages on demand.
 *
 * @example
 * const plan = planRender('Hello, world.', parseConfig({}));
 * const first = plan.page(0); // { width, height, channels: 1, pixels, text: 'Hello, world.' }
 */
export function planRender(text: string, config: RenderConfig): RenderPlan {
  // The page canvas comes from options (page size × dpi): same pixel limit as input images, checked before layout or allocation.
  const scale = config.dpi / 72;
  checkPixelBudget(
    pixelSize(config.pageSize[0], scale),
    pixelSize(config.pageSize[1], scale),
    `render: page ${config.pageSize.join('×')} pt at ${config.dpi} dpi`,
  );
  const fonts = configFonts(config);
  const normalized = normalizeText(text);
  const missingGlyphs = findMissingGlyphs(normalized, fonts);
  if (missingGlyphs.length && config.missingGlyphs === 'error') {
    const sample = missingGlyphs
      .slice(0, 5)
      .map((g) => `${JSON.stringify(g.char)} ${g.codePoint} ×${g.count}`)
      .join(', ');
    const total = missingGlyphs.reduce((n, g) => n + g.count, 0);
    throw new InputError(
      `font ${fonts[0]!.path} lacks ${missingGlyphs.length} distinct character${missingGlyphs.length > 1 ? 's' : ''} (${total} in the text) — ${sample}; add a font that has them with "fallback-fonts" (vtc render --fallback-font FILE) or "font-path", or set "missing-glyphs": "warn"`,
      'E_MISSING_GLYPH',
    );
  }
  const fontPx = (config.fontSize * config.dpi) / 72;
  const fontSpec = canvasFont(config);
  const layout = layoutText(normalized, config, {
    measure: widthMeasurer(fontSpec),
    ascent: fonts[0]!.ascent * fontPx,
  });
  const rasteriser = new Rasteriser(config);
  return {
    pageCount: layout.length,
    missingGlyphs,
    layout,
    page: (index) => rasteriser.draw(layout[index]!, index, index === layout.length - 1),
    *pages() {
      for (let i = 0; i < layout.length; i++) yield rasteriser.draw(layout[i]!, i, i === layout.length - 1);
    },
  };
}

type Rgb = [number, number, number];

/** "#rgb" / "#rrggbb" → [r, g, b]. */
export function parseHexColor(hex: string): Rgb {
  let h = hex.replace('#', '');
  if (h.length === 3)
    h = h
      .split('')
      .map((c) => c + c)
      .join('');
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

/** Draws laid-out pages of one config into raw pixels, reusing one canvas. */
export class Rasteriser {
  private canvas: Canvas | null = null;
  private ctx: SKRSContext2D | null = null;
  private readonly width: number;
  private readonly height: number;
  private readonly channels: 1 | 3;
  private readonly drawParaBg: boolean;

  private readonly fontSpec: string;
  /** Draw with inverted colours and invert on read-out (light-text gamma for dark text). */
  private readonly inverted: boolean;

  constructor(private readonly config: RenderConfig) {
    this.fontSpec = canvasFont(config);
    this.inverted = usesLightTextGamma(config);
    const scale = config.dpi / 72;
    this.width = Math.max(1, Math.round(pixelSize(config.pageSize[0], scale) * config.horizontalScale));
    this.height = pixelSize(config.pageSize[1], scale);
    this.drawParaBg = config.paraBgColor.toLowerCase() !== config.pageBgColor.toLowerCase();
    const used = [config.fontColor, config.pageBgColor];
    if (this.drawParaBg) used.push(config.paraBgColor);
    if (config.borderWidth > 0) used.push(config.paraBorderColor);
    const markupColor = parseNewlineMarkup(config.newlineMarkup).color;
    if (markupColor) used.push(markupColor);
    this.channels = used.every((c) => {
      const [r, g, b] = parseHexColor(c);
      return r === g && g === b;
    })
      ? 1
      : 3;
  }

  draw(page: LayoutPage, index: number, isLast: boolean): RenderedPage {
    const { config, width, height } = this;
    if (!this.canvas) {
      this.canvas = createCanvas(width, height);
      this.ctx = this.canvas.getContext('2d');
    }
    const ctx = this.ctx!;
    const paint = this.inverted ? invertHexColor : (c: string) => c;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = paint(config.pageBgColor);
    ctx.fillRect(0, 0, width, height);
    ctx.setTransform(config.horizontalScale, 0, 0, 1, 0, 0);
    const scale = config.dpi / 72;
    for (const box of page.boxes) {
      if (this.drawParaBg) {
        ctx.fillStyle = paint(config.paraBgColor);
        ctx.fillRect(box.x, box.y, box.width, box.height);
      }
      if (config.borderWidth > 0) {
        ctx.strokeStyle = paint(config.paraBorderColor);
        ctx.lineWidth = config.borderWidth * scale;
        ctx.strokeRect(box.x, box.y, box.width, box.height);
      }
    }
    ctx.lang = 'en';
    ctx.font = this.fontSpec;
    ctx.textBaseline = 'alphabetic';
    ctx.textAlign = 'left';
    let fill = config.fontColor;
    ctx.fillStyle = paint(fill);
    for (const line of page.lines) {
      for (const fragment of line.fragments) {
        const color = fragment.color ?? config.fontColor;
        if (color !== fill) ctx.fillStyle = paint((fill = color));
        ctx.fillText(fragment.text, fragment.x, line.baseline);
      }
    }
    const rgba = ctx.getImageData(0, 0, width, height).data;
    // Grey configs draw only grey (r = g = b), so the red channel is the grey value.
    const flip = this.inverted ? 255 : 0;
    const grey = this.channels === 1 ? redChannel(rgba, flip) : rgbaToGrey(rgba, flip);
    let pixels = this.channels === 1 ? grey : rgbaToRgb(rgba, flip);
    let outW = width;
    let outH = height;
    if (config.autoCropWidth || (config.autoCropLastPage && isLast)) {
      const bounds = contentBounds(grey, width, height);
      if (bounds && config.autoCropWidth) outW = Math.min(width, bounds.right + 1 + Math.round(config.marginX));
      if (bounds && config.autoCropLastPage && isLast)
        outH = Math.min(height, bounds.bottom + Math.round(config.marginY));
      if (outW !== width || outH !== height) pixels = cropRows(pixels, width, this.channels, outW, outH);
    }
    return {
      index,
      width: outW,
      height: outH,
      channels: this.channels,
      dpi: config.dpi,
      pixels,
      text: page.lines.map((l) => l.text).join('\n'),
    };
  }
}

/**
 * Whether a config draws its text through the light-text gamma: dark text on a lighter page, and
 * lightTextGamma true, or "auto" with a font of at least LIGHT_TEXT_GAMMA_MIN_PX pixels.
 *
 * @example
 * usesLightTextGamma(DEFAULT_CONFIG); // true (9 pt at dpi 72 = 9 px)
 * usesLightTextGamma({ ...DEFAULT_CONFIG, dpi: 50 }); // false (6.25 px)
 */
export function usesLightTextGamma(config: RenderConfig): boolean {
  if (config.lightTextGamma === false || luminance(config.fontColor) >= luminance(config.pageBgColor)) return false;
  return config.lightTextGamma === true || (config.fontSize * config.dpi) / 72 >= LIGHT_TEXT_GAMMA_MIN_PX - 1e-9;
}

/** Perceived luminance (Rec. 601 weights, 0–255) of a hex colour. */
function luminance(hex: string): number {
  const [r, g, b] = parseHexColor(hex);
  return 0.299 * r + 0.587 * g + 0.114 * b;
}

/**
 * The colour with every channel inverted ("#000000" → "#ffffff").
 *
 * @example
 * invertHexColor('#FF8000'); // '#007fff'
 */
export function invertHexColor(hex: string): string {
  return `#${parseHexColor(hex)
    .map((v) => (255 - v).toString(16).padStart(2, '0'))
    .join('')}`;
}

// The read-out helpers take `flip` = 255 to undo the inverted drawing (v ^ 255 = 255 − v) or 0 to copy.
function rgbaToGrey(rgba: Uint8ClampedArray, flip: number): Uint8Array {
  const n = rgba.length >> 2;
  const out = new Uint8Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 4)
    out[i] = ((rgba[p]! ^ flip) * 77 + (rgba[p + 1]! ^ flip) * 150 + (rgba[p + 2]! ^ flip) * 29 + 128) >> 8;
  return out;
}

function redChannel(rgba: Uint8ClampedArray, flip: number): Uint8Array {
  const n = rgba.length >> 2;
  const out = new Uint8Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 4) out[i] = rgba[p]! ^ flip;
  return out;
}

function rgbaToRgb(rgba: Uint8ClampedArray, flip: number): Uint8Array {
  const n = rgba.length >> 2;
  const out = new Uint8Array(n * 3);
  for (let i = 0, p = 0, o = 0; i < n; i++, p += 4, o += 3) {
    out[o] = rgba[p]! ^ flip;
    out[o + 1] = rgba[p + 1]! ^ flip;
    out[o + 2] = rgba[p + 2]! ^ flip;
  }
  return out;
}

/**
 * Rightmost column and lowest row of a grey image that differ from the background (Glyph: median of the top-left 2×2, tolerance 5), or null for a blank page.
 *
 * @example
 * contentBounds(Uint8Array.from([255, 255, 255, 255, 0, 255]), 3, 2); // { right: 1, bottom: 1 }
 */
export function contentBounds(
  grey: Uint8Array,
  width: number,
  height: number,
): { right: number; bottom: number } | null {
  const corner = [grey[0]!, grey[1]!, grey[width]!, grey[width + 1]!].sort((a, b) => a - b);
  const bg = (corner[1]! + corner[2]!) / 2;
  const lo = bg - 5;
  const hi = bg + 5;
  let right = -1;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let rowHasInk = false;
    // Scan right to left: the first ink pixel gives this row's extent; rows never need to look left of it again.
    for (let x = width - 1; x >= 0; x--) {
      const v = grey[row + x]!;
      if (v < lo || v > hi) {
        rowHasInk = true;
        if (x > right) right = x;
        break;
      }
    }
    if (rowHasInk) bottom = y;
  }
  return right < 0 ? null : { right, bottom };
}

function cropRows(pixels: Uint8Array, width: number, channels: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * channels);
  const srcStride = width * channels;
  const dstStride = outW * channels;
  for (let y = 0; y < outH; y++) out.set(pixels.subarray(y * srcStride, y * srcStride + dstStride), y * dstStride);
  return out;
}
