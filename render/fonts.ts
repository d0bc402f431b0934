import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { GlobalFonts } from '@napi-rs/canvas';
import { InputError, UsageError, describe } from '../core/errors.js';

/**
 * Fonts for the renderer. Every font is registered explicitly from a file
 * under a private alias, so layout never depends on the system's fonts; the
 * default is DejaVu Sans from the `dejavu-fonts-ttf` npm package. The cmap
 * is parsed here to know which characters a font really has, so missing
 * glyphs are reported instead of silently drawn as boxes or system fallbacks.
 */
export interface LoadedFont {
  /** Family alias registered with @napi-rs/canvas (unique per file). */
  alias: string;
  path: string;
  /** Code points the font maps to a glyph (cmap formats 4 and 12). */
  coverage: Set<number>;
  /** hhea ascender / unitsPerEm, used to place the first baseline like reportlab. */
  ascent: number;
  descent: number;
}

const require = createRequire(import.meta.url);

/** Directory of the DejaVu TTFs shipped by the `dejavu-fonts-ttf` package. */
export function dejavuDir(): string {
  return join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
}

/** Families that `font-family` accepts, mapped to files of the dejavu-fonts-ttf package. */
const FAMILIES: Record<string, string> = {
  'DejaVu Sans': 'DejaVuSans.ttf',
  'DejaVu Sans Bold': 'DejaVuSans-Bold.ttf',
  'DejaVu Sans Condensed': 'DejaVuSansCondensed.ttf',
  'DejaVu Sans Mono': 'DejaVuSansMono.ttf',
  'DejaVu Serif': 'DejaVuSerif.ttf',
  'DejaVu Serif Condensed': 'DejaVuSerifCondensed.ttf',
};

/** Family names accepted by `font-family`. */
export function fontFamilies(): string[] {
  return Object.keys(FAMILIES);
}

/**
 * Resolves a family name to its font file; unknown names are a UsageError listing the known ones.
 *
 * @example
 * familyPath('DejaVu Sans Mono'); // …/dejavu-fonts-ttf/ttf/DejaVuSansMono.ttf
 */
export function familyPath(family: string): string {
  const file = FAMILIES[family];
  if (!file)
    throw new UsageError(
      `unknown font family ${describe(family)} (expected one of: ${fontFamilies().join(', ')}; or give "font-path" to a .ttf/.otf file)`,
      'E_FONT',
    );
  return join(dejavuDir(), file);
}

const loaded = new Map<string, LoadedFont>();

/**
 * Registers a TTF/OTF file once and returns its alias, glyph coverage and metrics.
 *
 * @example
 * const font = loadFont(familyPath('DejaVu Sans'));
 * font.coverage.has(0x41); // true ('A')
 */
export function loadFont(path: string): LoadedFont {
  const cached = loaded.get(path);
  if (cached) return cached;
  if (!existsSync(path)) throw new InputError(`font file not found: ${path}`, 'E_FONT');
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new InputError(`cannot read font ${path}: ${(error as Error).message}`, 'E_FONT');
  }
  const tables = parseFontTables(bytes, path);
  const alias = `vtc-font-${loaded.size}-${basename(path).replace(/[^A-Za-z0-9]/g, '')}`;
  const key = GlobalFonts.registerFromPath(path, alias);
  if (!key) throw new InputError(`font ${path} could not be registered (not a TrueType/OpenType font?)`, 'E_FONT');
  const font: LoadedFont = { alias, path, ...tables };
  loaded.set(path, font);
  return font;
}

interface FontTables {
  coverage: Set<number>;
  ascent: number;
  descent: number;
}

/** Reads cmap coverage and hhea metrics from an sfnt (TrueType/OpenType) file. */
export function parseFontTables(bytes: Buffer, path = 'font'): FontTables {
  const bad = (why: string) => new InputError(`font ${path} is not a valid TrueType/OpenType file: ${why}`, 'E_FONT');
  if (bytes.length < 12) throw bad('file too short');
  const tag = bytes.toString('latin1', 0, 4);
  if (tag !== '\x00\x01\x00\x00' && tag !== 'OTTO' && tag !== 'true')
    throw bad(`unknown sfnt version ${describe(tag)}`);
  const numTables = bytes.readUInt16BE(4);
  const tables = new Map<string, { offset: number; length: number }>();
  for (let i = 0; i < numTables; i++) {
    const rec = 12 + i * 16;
    if (rec + 16 > bytes.length) throw bad('truncated table directory');
    tables.set(bytes.toString('latin1', rec, rec + 4), {
      offset: bytes.readUInt32BE(rec + 8),
      length: bytes.readUInt32BE(rec + 12),
    });
  }
  const cmap = tables.get('cmap');
  const head = tables.get('head');
  const hhea = tables.get('hhea');
  if (!cmap || !head || !hhea) throw bad('missing cmap/head/hhea table');
  const unitsPerEm = bytes.readUInt16BE(head.offset + 18);
  const ascent = bytes.readInt16BE(hhea.offset + 4) / unitsPerEm;
  const descent = -bytes.readInt16BE(hhea.offset + 6) / unitsPerEm;
  return { coverage: parseCmap(bytes, cmap.offset), ascent, descent };
}

function parseCmap(bytes: Buffer, base: number): Set<number> {
  const coverage = new Set<number>();
  const count = bytes.readUInt16BE(base + 2);
  for (let i = 0; i < count; i++) {
    const platform = bytes.readUInt16BE(base + 4 + i * 8);
    const encoding = bytes.readUInt16BE(base + 6 + i * 8);
    const offset = base + bytes.readUInt32BE(base + 8 + i * 8);
    const unicode = platform === 0 || (platform === 3 && (encoding === 1 || encoding === 10));
    if (!unicode) continue;
    const format = bytes.readUInt16BE(offset);
    if (format === 4) readFormat4(bytes, offset, coverage);
    else if (format === 12) readFormat12(bytes, offset, coverage);
  }
  return coverage;
}

/** cmap format 4: segments of BMP code points; a code maps to glyph 0 (missing) when its computed id is 0. */
function readFormat4(bytes: Buffer, offset: number, coverage: Set<number>): void {
  const segCount = bytes.readUInt16BE(offset + 6) / 2;
  const ends = offset + 14;
  const starts = ends + segCount * 2 + 2;
  const deltas = starts + segCount * 2;
  const rangeOffsets = deltas + segCount * 2;
  for (let s = 0; s < segCount; s++) {
    const end = bytes.readUInt16BE(ends + s * 2);
    const start = bytes.readUInt16BE(starts + s * 2);
    const delta = bytes.readInt16BE(deltas + s * 2);
    const rangeOffset = bytes.readUInt16BE(rangeOffsets + s * 2);
    for (let c = start; c <= end && c !== 0xffff; c++) {
      let glyph: number;
      if (rangeOffset === 0) glyph = (c + delta) & 0xffff;
      else {
        const at = rangeOffsets + s * 2 + rangeOffset + (c - start) * 2;
        glyph = at + 2 <= bytes.length ? bytes.readUInt16BE(at) : 0;
        if (glyph !== 0) glyph = (glyph + delta) & 0xffff;
      }
      if (glyph !== 0) coverage.add(c);
    }
  }
}

/** cmap format 12: sequential groups over the full Unicode range. */
function readFormat12(bytes: Buffer, offset: number, coverage: Set<number>): void {
  const groups = bytes.readUInt32BE(offset + 12);
  for (let g = 0; g < groups; g++) {
    const rec = offset + 16 + g * 12;
    const start = bytes.readUInt32BE(rec);
    const end = bytes.readUInt32BE(rec + 4);
    const firstGlyph = bytes.readUInt32BE(rec + 8);
    for (let c = start; c <= end; c++) if (firstGlyph + (c - start) !== 0) coverage.add(c);
  }
}
