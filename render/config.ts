import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { InputError, UsageError, describe } from '../core/errors.js';
import { formatZodError } from '../core/schema.js';

/**
 * Render configuration in Glyph's vocabulary. Files use Glyph's kebab-case
 * keys (config/config_en.json loads unchanged; its relative "font-path" is
 * resolved against the config file's folder). Keys a file leaves out take the
 * values of Glyph's published best config (config_en.json), with DejaVu Sans
 * as the font. Extensions beyond Glyph are marked "vtc:" below.
 */
export interface RenderConfig {
  /** Page size in points (1/72 inch). */
  pageSize: [number, number];
  dpi: number;
  /** Horizontal / vertical page margins in points; also the padding (in pixels) left by auto-crop, as in Glyph. */
  marginX: number;
  marginY: number;
  /** Font file (.ttf/.otf); when absent, fontFamily picks one of the bundled DejaVu fonts. */
  fontPath?: string;
  fontFamily: string;
  /** vtc: extra font files used for characters the main font lacks. */
  fallbackFonts: string[];
  fontSize: number;
  /** Baseline-to-baseline distance (reportlab "leading") in points. */
  lineHeight: number;
  fontColor: string;
  pageBgColor: string;
  paraBgColor: string;
  paraBorderColor: string;
  alignment: Alignment;
  /** Page images are squeezed horizontally by this factor (Glyph resizes the page; vtc draws squeezed text). */
  horizontalScale: number;
  firstLineIndent: number;
  leftIndent: number;
  rightIndent: number;
  spaceBefore: number;
  spaceAfter: number;
  borderWidth: number;
  borderPadding: number;
  /** What a newline in the text becomes: "<br/>" (a line break, Glyph's default) or inline markup such as `<font color="#FF0000"> \n </font>`. */
  newlineMarkup: string;
  autoCropWidth: boolean;
  autoCropLastPage: boolean;
  /** vtc: reportlab's frame padding (6 pt inside the margins in Glyph's SimpleDocTemplate). */
  framePadding: number;
  /** vtc: Glyph builds one reportlab Paragraph per 30 source lines; space-before/after, first-line indent and backgrounds apply per such paragraph. */
  paragraphLines: number;
  /** vtc: tab stops every tabSize space widths. */
  tabSize: number;
  /** vtc: join single newlines into spaces and make blank lines the paragraph breaks (off: newlines are line breaks, as in Glyph). */
  reflow: boolean;
  /** vtc: characters no font has: "error" (default) refuses to render, "warn" renders them anyway and reports them (Skia then takes them from an installed system font or draws a missing-glyph box, so those pixels depend on the machine). */
  missingGlyphs: 'error' | 'warn';
  /**
   * vtc: draw dark-on-light text as light-on-dark and invert the pixels back, so Skia applies its
   * light-text gamma, which gives small text fuller, darker stems (raw-page OCR CER at dpi 72: 18% → 12%,
   * see docs/render.md). "auto" (default): only when the font is at least LIGHT_TEXT_GAMMA_MIN_PX pixels,
   * because below that the fuller stems clump (OCR of upscaled pages gets worse). false: Skia's default.
   */
  lightTextGamma: boolean | 'auto';
}

export type Alignment = 'LEFT' | 'RIGHT' | 'CENTER' | 'JUSTIFY';
export const ALIGNMENTS: readonly Alignment[] = ['LEFT', 'RIGHT', 'CENTER', 'JUSTIFY'];

/** Named page sizes in points (reportlab.lib.pagesizes). */
export const PAGE_SIZES: Record<string, [number, number]> = {
  A3: [841.89, 1190.55],
  A4: [595.28, 841.89],
  A5: [419.53, 595.28],
  B4: [708.66, 1000.63],
  B5: [498.9, 708.66],
  Letter: [612, 792],
  Legal: [612, 1008],
  Tabloid: [792, 1224],
};

/** Glyph's best config (config_en.json) with DejaVu Sans: the defaults for every missing key. */
export const DEFAULT_CONFIG: Readonly<RenderConfig> = Object.freeze<RenderConfig>({
  pageSize: [595, 842],
  dpi: 72,
  marginX: 10,
  marginY: 10,
  fontFamily: 'DejaVu Sans',
  fallbackFonts: [],
  fontSize: 9,
  lineHeight: 10,
  fontColor: '#000000',
  pageBgColor: '#FFFFFF',
  paraBgColor: '#FFFFFF',
  paraBorderColor: '#FFFFFF',
  alignment: 'LEFT',
  horizontalScale: 1,
  firstLineIndent: 0,
  leftIndent: 0,
  rightIndent: 0,
  spaceBefore: 0,
  spaceAfter: 0,
  borderWidth: 0,
  borderPadding: 0,
  newlineMarkup: '<br/>',
  autoCropWidth: true,
  autoCropLastPage: true,
  framePadding: 6,
  paragraphLines: 30,
  tabSize: 4,
  reflow: false,
  missingGlyphs: 'error',
  lightTextGamma: 'auto',
});

/** Smallest font size in pixels at which lightTextGamma "auto" switches the light-text gamma on. */
export const LIGHT_TEXT_GAMMA_MIN_PX = 9;

const color = z.string().regex(/^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'expected a hex colour like "#000000"');
const nonNegative = z.number().finite().min(0);

const pageSize = z.unknown().transform((value, ctx): [number, number] => {
  if (typeof value === 'string') {
    const named = Object.keys(PAGE_SIZES).find((name) => name.toLowerCase() === value.trim().toLowerCase());
    if (named) return [...PAGE_SIZES[named]!] as [number, number];
    const parts = value.split(',').map((p) => Number(p.trim()));
    if (parts.length === 2 && parts.every((n) => Number.isFinite(n) && n > 0)) return parts as [number, number];
  } else if (
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((n) => typeof n === 'number' && Number.isFinite(n) && n > 0)
  ) {
    return [value[0], value[1]];
  }
  ctx.addIssue({
    code: 'custom',
    message: `expected "width,height" in points or one of ${Object.keys(PAGE_SIZES).join(', ')}, got ${describe(value)}`,
  });
  return z.NEVER;
});

/** Schema of a config file: Glyph's kebab-case keys, all optional, no unknown keys. */
export const configFileSchema = z
  .object({
    'page-size': pageSize,
    dpi: z.number().finite().min(10).max(1200),
    'margin-x': nonNegative,
    'margin-y': nonNegative,
    'font-path': z.string().min(1),
    'font-family': z.string().min(1),
    'fallback-fonts': z.array(z.string().min(1)),
    'font-size': z.number().finite().min(1).max(200),
    'line-height': z.number().finite().positive().nullable(),
    'font-color': color,
    'page-bg-color': color,
    'para-bg-color': color,
    'para-border-color': color,
    alignment: z.enum(ALIGNMENTS as unknown as [Alignment, ...Alignment[]], {
      message: `expected one of ${ALIGNMENTS.join(', ')}`,
    }),
    'horizontal-scale': z.number().finite().min(0.1).max(4),
    'first-line-indent': z.number().finite(),
    'left-indent': nonNegative,
    'right-indent': nonNegative,
    'space-before': nonNegative,
    'space-after': nonNegative,
    'border-width': nonNegative,
    'border-padding': nonNegative,
    'newline-markup': z.string(),
    'auto-crop-width': z.boolean(),
    'auto-crop-last-page': z.boolean(),
    'frame-padding': nonNegative,
    'paragraph-lines': z.number().int().min(1),
    'tab-size': z.number().int().min(1).max(64),
    reflow: z.boolean(),
    'missing-glyphs': z.enum(['error', 'warn']),
    'light-text-gamma': z.union([z.boolean(), z.literal('auto')], { message: 'expected true, false or "auto"' }),
  })
  .partial()
  .strict();

export type ConfigFile = z.input<typeof configFileSchema>;

const KEY_MAP: Record<string, keyof RenderConfig> = {
  'page-size': 'pageSize',
  dpi: 'dpi',
  'margin-x': 'marginX',
  'margin-y': 'marginY',
  'font-path': 'fontPath',
  'font-family': 'fontFamily',
  'fallback-fonts': 'fallbackFonts',
  'font-size': 'fontSize',
  'line-height': 'lineHeight',
  'font-color': 'fontColor',
  'page-bg-color': 'pageBgColor',
  'para-bg-color': 'paraBgColor',
  'para-border-color': 'paraBorderColor',
  alignment: 'alignment',
  'horizontal-scale': 'horizontalScale',
  'first-line-indent': 'firstLineIndent',
  'left-indent': 'leftIndent',
  'right-indent': 'rightIndent',
  'space-before': 'spaceBefore',
  'space-after': 'spaceAfter',
  'border-width': 'borderWidth',
  'border-padding': 'borderPadding',
  'newline-markup': 'newlineMarkup',
  'auto-crop-width': 'autoCropWidth',
  'auto-crop-last-page': 'autoCropLastPage',
  'frame-padding': 'framePadding',
  'paragraph-lines': 'paragraphLines',
  'tab-size': 'tabSize',
  reflow: 'reflow',
  'missing-glyphs': 'missingGlyphs',
  'light-text-gamma': 'lightTextGamma',
};

/**
 * Validates a kebab-case config object and merges it over the defaults.
 * `baseDir` resolves relative font paths (the config file's folder).
 * Errors name the key, what was expected and what was given: UsageError
 * for an object passed in code, InputError (fromFile) for a config file.
 *
 * @example
 * const config = parseConfig({ 'font-size': 10, 'page-size': 'Letter' });
 * config.pageSize; // [612, 792]
 */
export function parseConfig(
  input: unknown,
  options: { baseDir?: string; source?: string; fromFile?: boolean } = {},
): RenderConfig {
  const source = options.source ?? 'render config';
  const Invalid = options.fromFile ? InputError : UsageError;
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new Invalid(`${source}: expected a JSON object of Glyph config keys, got ${describe(input)}`, 'E_CONFIG');
  const parsed = configFileSchema.safeParse(input);
  if (!parsed.success) {
    const message = formatZodError(parsed.error, source, {
      input,
      label: (key) => `"${key}"`,
      knownKeys: Object.keys(KEY_MAP),
    });
    throw options.fromFile ? new InputError(message, 'E_CONFIG') : new UsageError(message, 'E_CONFIG');
  }
  const config: RenderConfig = {
    ...DEFAULT_CONFIG,
    pageSize: [...DEFAULT_CONFIG.pageSize] as [number, number],
    fallbackFonts: [],
  };
  const record = config as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(parsed.data)) {
    if (value === undefined) continue;
    record[KEY_MAP[key]!] = value;
  }
  // Glyph: a missing or null line-height means font-size + 1.
  const lineHeight = (parsed.data as Record<string, unknown>)['line-height'];
  if (lineHeight === null || (lineHeight === undefined && parsed.data['font-size'] !== undefined))
    config.lineHeight = config.fontSize + 1;
  const base = options.baseDir ?? process.cwd();
  if (config.fontPath && !isAbsolute(config.fontPath)) config.fontPath = resolve(base, config.fontPath);
  config.fallbackFonts = config.fallbackFonts.map((p) => (isAbsolute(p) ? p : resolve(base, p)));
  return config;
}

/**
 * Reads a JSON config file (Glyph's format) and validates it.
 *
 * @example
 * const config = loadConfig('Glyph/config/config_en.json'); // font-path resolved against Glyph/config
 */
export function loadConfig(path: string): RenderConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read config ${path}: ${(error as Error).message}`, 'E_CONFIG');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`config ${path} is not valid JSON: ${(error as Error).message}`, 'E_CONFIG');
  }
  return parseConfig(json, { baseDir: dirname(resolve(path)), source: `config ${path}`, fromFile: true });
}

/**
 * Converts a RenderConfig back to Glyph's kebab-case keys (for `--out best.json`).
 *
 * @example
 * toConfigFile(DEFAULT_CONFIG)['font-size']; // 9
 */
export function toConfigFile(config: RenderConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const record = config as unknown as Record<string, unknown>;
  for (const [key, field] of Object.entries(KEY_MAP)) {
    const value = record[field];
    if (value === undefined) continue;
    out[key] = field === 'pageSize' ? (value as number[]).join(',') : value;
  }
  return out;
}
