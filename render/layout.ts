import bidiModule, { type Bidi } from 'bidi-js';
import { InputError, UsageError } from '../core/errors.js';
import type { RenderConfig } from './config.js';

/**
 * Pure text layout: paragraphs → lines → pages, in device pixels at the
 * config's dpi (before horizontal scaling). Widths come from a measure
 * function so the algorithm is testable with a fake monospace font.
 *
 * Rules (Glyph/reportlab semantics unless noted):
 * - a newline is a line break (newline-markup "<br/>"); every `paragraphLines`
 *   source lines form one paragraph (Glyph batches 30 lines per Paragraph);
 * - single spaces are break opportunities and vanish at a soft line end;
 *   runs of ≥ 2 spaces are kept as non-breaking space (Glyph turns them into &nbsp;);
 * - tabs advance to the next multiple of tabSize space widths (vtc);
 * - a word wider than the line is broken between characters;
 * - CJK text breaks between any two characters, except before closing and
 *   after opening punctuation (kinsoku);
 * - JUSTIFY stretches the spaces of soft-broken lines only;
 * - right-to-left scripts (Hebrew, Arabic, …): lines are broken in logical
 *   order, then each line's words are placed in visual order by the Unicode
 *   Bidirectional Algorithm (bidi-js levels, rule L2 applied to words; the
 *   base direction of each line is its first strong character). Skia shapes
 *   each right-to-left word (Arabic joining) as it draws it. Alignment stays
 *   the config's (vtc; Glyph's renderer has no bidi).
 */
export interface Fragment {
  text: string;
  /** Left edge in px from the page's left edge. */
  x: number;
  /** Colour override (newline markup); undefined = font colour. */
  color?: string;
}

export interface LayoutLine {
  fragments: Fragment[];
  /** Baseline in px from the page top. */
  baseline: number;
  /** Text of the line as OCR should read it (spaces kept, tabs as spaces). */
  text: string;
}

export interface ParagraphBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LayoutPage {
  lines: LayoutLine[];
  /** Paragraph rectangles (for para-bg-color and borders), already padded by border-padding. */
  boxes: ParagraphBox[];
}

export interface LayoutMetrics {
  /** Width in px of a string drawn in the font at the config's size and dpi. */
  measure(text: string): number;
  /** Font ascent in px (first baseline sits this far below the frame top, as in reportlab). */
  ascent: number;
}

type Item =
  | { kind: 'box'; text: string; width: number; color?: string }
  | { kind: 'glue'; width: number }
  | { kind: 'tab' }
  | { kind: 'break' };

interface HardLine {
  items: Item[];
}

interface BuiltLine {
  items: Item[];
  /** Widths per item after tab resolution. */
  widths: number[];
  width: number;
  soft: boolean;
}

const EPS = 1e-6;

/** Normalises raw text as Glyph does (drops soft hyphens and zero-width spaces) and unifies line ends. */
export function normalizeText(text: string): string {
  return text
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[\f\v\u2028\u2029]/g, '\n')
    .replace(/[\u00AD\u200B]/g, '');
}

/**
 * Lays out text into pages.
 *
 * @example
 * const pages = layoutText('hello world', DEFAULT_CONFIG, { measure: (s) => s.length * 5, ascent: 8 });
 * pages[0].lines[0].text; // 'hello world'
 */
export function layoutText(raw: string, config: RenderConfig, metrics: LayoutMetrics): LayoutPage[] {
  const text = normalizeText(raw);
  if (text.trim().length === 0) throw new InputError('text is empty: nothing to render', 'E_EMPTY_TEXT');
  const s = config.dpi / 72;
  const pageW = pixelSize(config.pageSize[0], s);
  const pageH = pixelSize(config.pageSize[1], s);
  const inset = (config.marginX + config.framePadding) * s;
  const frameTop = (config.marginY + config.framePadding) * s;
  const frameBottom = pageH - (config.marginY + config.framePadding) * s;
  const leading = config.lineHeight * s;
  const frameLeft = inset + config.leftIndent * s;
  const frameWidth = pageW - 2 * inset - (config.leftIndent + config.rightIndent) * s;
  if (frameBottom - frameTop + EPS < leading)
    throw new UsageError(
      `page ${config.pageSize.join('×')} pt with margin-y ${config.marginY} has no room for one line of line-height ${config.lineHeight}`,
      'E_CONFIG',
    );
  if (frameWidth - Math.max(0, config.firstLineIndent * s) < metrics.measure('M'))
    throw new UsageError(
      `page width ${config.pageSize[0]} pt minus margins and indents leaves no room for a character`,
      'E_CONFIG',
    );

  const spaceWidth = metrics.measure(' ');
  const tabWidth = spaceWidth * config.tabSize;
  const markup = parseNewlineMarkup(config.newlineMarkup);
  const paragraphs = splitParagraphs(text, config, markup, metrics);

  const pages: LayoutPage[] = [];
  let page: LayoutPage = { lines: [], boxes: [] };
  let y = frameTop;
  const newPage = () => {
    pages.push(page);
    page = { lines: [], boxes: [] };
    y = frameTop;
  };

  for (const paragraph of paragraphs) {
    if (page.lines.length > 0) y += config.spaceBefore * s;
    let boxTop = y;
    let boxLines = 0;
    const closeBox = (bottom: number) => {
      if (boxLines === 0) return;
      const pad = config.borderPadding * s;
      page.boxes.push({
        x: frameLeft - pad,
        y: boxTop - pad,
        width: frameWidth + 2 * pad,
        height: bottom - boxTop + 2 * pad,
      });
    };
    paragraph.forEach((hard, hardIndex) => {
      const firstIndent = hardIndex === 0 ? config.firstLineIndent * s : 0;
      const built = breakLine(hard.items, frameWidth - firstIndent, frameWidth, metrics, tabWidth);
      built.forEach((line, lineIndex) => {
        if (y + leading > frameBottom + EPS && page.lines.length > 0) {
          closeBox(y);
          newPage();
          boxTop = y;
          boxLines = 0;
        }
        const indent = lineIndex === 0 ? firstIndent : 0;
        page.lines.push(placeLine(line, frameLeft + indent, frameWidth - indent, y + metrics.ascent, config.alignment));
        boxLines++;
        y += leading;
      });
    });
    closeBox(y);
    y += config.spaceAfter * s;
  }
  if (page.lines.length > 0 || pages.length === 0) pages.push(page);
  return pages;
}

/** Page side in pixels: poppler rounds partial pixels up. */
export function pixelSize(points: number, scale: number): number {
  return Math.max(1, Math.ceil(points * scale - 1e-6));
}

interface Markup {
  lineBreak: boolean;
  text: string;
  color?: string;
}

/** Reads Glyph's newline-markup: "<br/>" breaks the line; other markup is drawn inline (tags stripped, <font color> honoured). */
export function parseNewlineMarkup(markup: string): Markup {
  const lineBreak = /<br\s*\/?>/i.test(markup);
  const color = /<font[^>]*\bcolor\s*=\s*["']?(#[0-9a-fA-F]{3,6})/i.exec(markup)?.[1];
  const text = markup
    .replace(/<br\s*\/?>/gi, '')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  return color ? { lineBreak, text, color } : { lineBreak, text };
}

/** Groups source lines into paragraphs of hard lines (Glyph: 30 lines per paragraph; reflow: blank-line separated). */
function splitParagraphs(text: string, config: RenderConfig, markup: Markup, metrics: LayoutMetrics): HardLine[][] {
  const toItems = (line: string, color?: string) => tokenize(line, metrics, color);
  if (config.reflow) {
    return text
      .split(/\n[ \t]*\n+/)
      .map((p) => p.replace(/\n/g, ' ').trim())
      .filter((p) => p.length > 0)
      .map((p) => [{ items: toItems(p) }]);
  }
  const lines = text.replace(/\n+$/, '').split('\n');
  const paragraphs: HardLine[][] = [];
  for (let i = 0; i < lines.length; i += config.paragraphLines) {
    const batch = lines.slice(i, i + config.paragraphLines);
    if (markup.lineBreak && markup.text.length === 0) {
      paragraphs.push(batch.map((line) => ({ items: toItems(line) })));
      continue;
    }
    // Inline markup: the batch is one run of text with the marker between source lines (and a break after it when it also holds <br/>).
    const hard: HardLine[] = [];
    let current: Item[] = [];
    batch.forEach((line, index) => {
      current.push(...toItems(line));
      if (index === batch.length - 1) return;
      current.push(...toItems(markup.text, markup.color));
      if (markup.lineBreak) {
        hard.push({ items: current });
        current = [];
      }
    });
    hard.push({ items: current });
    paragraphs.push(hard);
  }
  return paragraphs;
}

const CJK =
  /[\u2E80-\u2FFF\u3000-\u303F\u3040-\u30FF\u3100-\u31FF\u3200-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uFF00-\uFFEF]|[\u{20000}-\u{3FFFF}]/u;
/** Must not start a line (closing punctuation, small kana, prolonged sound mark). */
const NO_LINE_START = new Set(
  Array.from(
    '、。，．,.：；:;！？!?）)］]｝}〕〉》」』】〙〗〟’”｠»ゝゞーァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎゕゖ・…‥々〻',
  ),
);
/** Must not end a line (opening punctuation). */
const NO_LINE_END = new Set(Array.from('（(［[｛{〔〈《「『【〘〖〝‘“｟«'));

/** Splits one hard line into boxes (words, CJK characters), glue (single spaces), tabs and CJK break points. */
export function tokenize(line: string, metrics: LayoutMetrics, color?: string): Item[] {
  const items: Item[] = [];
  const pushBox = (text: string) => {
    // Boxes with nothing breakable between them (a word and a run of non-breaking spaces) form one unbreakable box.
    // Widths are measured once at the end: re-measuring a growing box would be quadratic in its length.
    const last = items[items.length - 1];
    if (last?.kind === 'box' && last.color === color) {
      last.text += text;
      return;
    }
    const box: Item = color
      ? { kind: 'box', text, width: Number.NaN, color }
      : { kind: 'box', text, width: Number.NaN };
    items.push(box);
  };
  const re = /( {2,})|( )|(\t)|([^ \t]+)/gu;
  for (const match of line.matchAll(re)) {
    if (match[1]) pushBox(match[1]);
    else if (match[2]) items.push({ kind: 'glue', width: measureCached(metrics, ' ') });
    else if (match[3]) items.push({ kind: 'tab' });
    else
      splitCjk(match[4]!).forEach((segment, i) => {
        if (i > 0) items.push({ kind: 'break' });
        pushBox(segment);
      });
  }
  for (const item of items) if (item.kind === 'box') item.width = measureCached(metrics, item.text);
  return items;
}

/** Cuts a space-free run into unbreakable segments: Latin runs whole, CJK per character with kinsoku glue. */
export function splitCjk(word: string): string[] {
  if (!CJK.test(word)) return [word];
  const chars = Array.from(word);
  const segments: string[] = [];
  let current = '';
  let currentIsCjk = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const isCjk = CJK.test(ch);
    const prev = chars[i - 1];
    const canBreak =
      current.length > 0 &&
      (isCjk || currentIsCjk) &&
      !NO_LINE_START.has(ch) &&
      !(prev !== undefined && NO_LINE_END.has(prev));
    if (canBreak) {
      segments.push(current);
      current = '';
    }
    current += ch;
    currentIsCjk = isCjk;
  }
  if (current) segments.push(current);
  return segments;
}

const widthCaches = new WeakMap<LayoutMetrics, Map<string, number>>();

function measureCached(metrics: LayoutMetrics, text: string): number {
  let cache = widthCaches.get(metrics);
  if (!cache) {
    cache = new Map();
    widthCaches.set(metrics, cache);
  }
  let width = cache.get(text);
  if (width === undefined) {
    width = metrics.measure(text);
    cache.set(text, width);
  }
  return width;
}

/** Greedy line breaking of one hard line: the first line has `firstWidth` px, the others `width`. */
function breakLine(
  items: Item[],
  firstWidth: number,
  width: number,
  metrics: LayoutMetrics,
  tabWidth: number,
): BuiltLine[] {
  const lines: BuiltLine[] = [];
  let available = firstWidth;
  let current: BuiltLine = { items: [], widths: [], width: 0, soft: false };
  const finish = (soft: boolean) => {
    // Drop trailing glue and break points: spaces vanish at a line end.
    while (
      current.items.length &&
      current.items[current.items.length - 1]!.kind !== 'box' &&
      current.items[current.items.length - 1]!.kind !== 'tab'
    ) {
      current.items.pop();
      current.width -= current.widths.pop()!;
    }
    current.soft = soft;
    lines.push(current);
    available = width;
    current = { items: [], widths: [], width: 0, soft: false };
  };
  const queue = items;
  for (let index = 0; index < queue.length; index++) {
    const item = queue[index]!;
    if (item.kind === 'glue' || item.kind === 'break') {
      if (current.items.length === 0 && lines.length > 0) continue; // no leading space after a soft break
      const width = item.kind === 'glue' ? item.width : 0;
      current.items.push(item);
      current.widths.push(width);
      current.width += width;
      continue;
    }
    if (item.kind === 'tab') {
      const next = (Math.floor(current.width / tabWidth + EPS) + 1) * tabWidth;
      if (next > available + EPS && current.items.length > 0) {
        finish(true);
        continue;
      }
      const width = Math.min(next, available) - current.width;
      current.items.push(item);
      current.widths.push(width);
      current.width += width;
      continue;
    }
    if (current.width + item.width <= available + EPS) {
      current.items.push(item);
      current.widths.push(item.width);
      current.width += item.width;
      continue;
    }
    const hasBox = current.items.some((it) => it.kind === 'box');
    if (hasBox) {
      finish(true);
      index--; // place this item again, on the fresh line
      continue;
    }
    // An over-long word on an empty line: cut it into line-long pieces (each the longest prefix that
    // fits, at least one character). Only the pieces are measured, never the rest of the word, so a
    // word of n characters costs O(n log line) measuring, not O(n²).
    const chars = Array.from(item.text);
    let start = 0;
    while (start < chars.length) {
      const count = longestFit(chars, start, available - current.width, metrics);
      const head = chars.slice(start, start + count).join('');
      const headBox: Item = { ...item, text: head, width: metrics.measure(head) };
      current.items.push(headBox);
      current.widths.push(headBox.width);
      current.width += headBox.width;
      start += count;
      if (start < chars.length) finish(true);
    }
  }
  finish(false);
  return lines;
}

/**
 * How many code points from `start` fit in `width` (at least one): doubles the
 * candidate length until it overflows or reaches the end, then bisects, so the
 * strings measured are at most twice as long as the answer.
 */
function longestFit(chars: string[], start: number, width: number, metrics: LayoutMetrics): number {
  const rest = chars.length - start;
  const fits = (count: number) => metrics.measure(chars.slice(start, start + count).join('')) <= width + EPS;
  let lo = 1;
  let hi = 1;
  while (hi < rest && fits(Math.min(rest, hi * 2))) {
    lo = hi = Math.min(rest, hi * 2);
  }
  if (hi >= rest) return rest;
  hi = Math.min(rest, hi * 2) - 1; // hi * 2 overflowed (or lo is 1 and may itself be the answer)
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Longest prefix (by code points, ≥ 1) of text whose width fits, and the rest. */
export function splitToFit(text: string, width: number, metrics: LayoutMetrics): [string, string] {
  const chars = Array.from(text);
  let lo = 1;
  let hi = chars.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (metrics.measure(chars.slice(0, mid).join('')) <= width + EPS) lo = mid;
    else hi = mid - 1;
  }
  return [chars.slice(0, lo).join(''), chars.slice(lo).join('')];
}

// bidi-js is CommonJS: its module.exports is the factory, which NodeNext types as the default's default.
const bidiFactory = ((bidiModule as unknown as { default?: () => Bidi }).default ??
  bidiModule) as unknown as () => Bidi;
let bidi: Bidi | undefined;
/** Strong right-to-left characters (Hebrew, Arabic, Syriac, Thaana, N'Ko, …, and their presentation forms). */
const RTL = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]|[\u{10800}-\u{10FFF}]|[\u{1E800}-\u{1EFFF}]/u;

/**
 * Visual order of a line's items (indices, left to right) by the Unicode
 * Bidirectional Algorithm, or undefined when the line is all left-to-right.
 * Levels come from bidi-js on the line's text; rule L2 (reverse every run at
 * level ≥ k, for k from the highest level down to the lowest odd one) is
 * applied to whole items, so a word is drawn as one piece.
 */
export function visualOrder(items: readonly { kind: string; text?: string }[]): number[] | undefined {
  const pieces = items.map((item) =>
    item.kind === 'box' ? (item.text ?? '') : item.kind === 'glue' ? ' ' : item.kind === 'tab' ? '\t' : '',
  );
  const text = pieces.join('');
  if (!RTL.test(text)) return undefined;
  bidi ??= bidiFactory();
  const { levels, paragraphs } = bidi.getEmbeddingLevels(text);
  const base = paragraphs[0]?.level ?? 0;
  const itemLevels: number[] = [];
  let offset = 0;
  for (const piece of pieces) {
    itemLevels.push(piece.length > 0 ? levels[offset]! : (itemLevels.at(-1) ?? base));
    offset += piece.length;
  }
  const order = items.map((_, i) => i);
  const highest = Math.max(...itemLevels);
  const lowestOdd = Math.min(...itemLevels.filter((l) => l % 2 === 1));
  if (!Number.isFinite(lowestOdd)) return undefined;
  for (let level = highest; level >= lowestOdd; level--) {
    for (let i = 0; i < order.length; ) {
      if (itemLevels[order[i]!]! < level) {
        i++;
        continue;
      }
      let j = i;
      while (j < order.length && itemLevels[order[j]!]! >= level) j++;
      order.splice(i, j - i, ...order.slice(i, j).reverse());
      i = j;
    }
  }
  return order;
}

/** Turns a built line into positioned fragments for its alignment. */
function placeLine(
  line: BuiltLine,
  left: number,
  available: number,
  baseline: number,
  alignment: RenderConfig['alignment'],
): LayoutLine {
  const slack = Math.max(0, available - line.width);
  let offset = 0;
  if (alignment === 'RIGHT') offset = slack;
  else if (alignment === 'CENTER') offset = slack / 2;
  const glueCount = line.items.filter((it) => it.kind === 'glue').length;
  const stretch = alignment === 'JUSTIFY' && line.soft && glueCount > 0 ? slack / glueCount : 0;

  const fragments: Fragment[] = [];
  let x = left + offset;
  let open: Fragment | null = null;
  let text = '';
  const visual = visualOrder(line.items);
  if (visual) {
    // Right-to-left words: every word its own fragment, placed in visual order; the OCR text stays logical.
    for (let i = 0; i < line.items.length; i++) {
      const item = line.items[i]!;
      text += item.kind === 'box' ? item.text : item.kind === 'glue' || item.kind === 'tab' ? ' ' : '';
    }
    for (const i of visual) {
      const item = line.items[i]!;
      if (item.kind === 'box')
        fragments.push(item.color ? { text: item.text, x, color: item.color } : { text: item.text, x });
      x += line.widths[i]! + (item.kind === 'glue' ? stretch : 0);
    }
    return { fragments, baseline, text };
  }
  for (let i = 0; i < line.items.length; i++) {
    const item = line.items[i]!;
    const width = line.widths[i]!;
    if (item.kind === 'box') {
      text += item.text;
      if (open !== null && open.color === item.color && stretch === 0) open.text += item.text;
      else {
        open = item.color ? { text: item.text, x, color: item.color } : { text: item.text, x };
        fragments.push(open);
      }
      x += width;
    } else if (item.kind === 'glue') {
      text += ' ';
      if (open !== null && stretch === 0) open.text += ' ';
      else open = null;
      x += width + stretch;
    } else {
      if (item.kind === 'tab') text += ' ';
      open = null; // tabs and CJK break points restart positioning
      x += width;
    }
  }
  return { fragments, baseline, text };
}
