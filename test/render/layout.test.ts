import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONFIG, type RenderConfig } from '../../render/config.js';
import { layoutText, parseNewlineMarkup, splitCjk } from '../../render/layout.js';

// A fake monospace font: every code point is 10 px wide, ascent 8 px. With dpi 72,
// no margins and no frame padding, a 100×50 pt page is a 100 px wide, 5-line frame.
const mono = { measure: (s: string) => Array.from(s).length * 10, ascent: 8 };
const config = (over: Partial<RenderConfig> = {}): RenderConfig => ({
  ...DEFAULT_CONFIG,
  pageSize: [100, 50],
  marginX: 0,
  marginY: 0,
  framePadding: 0,
  lineHeight: 10,
  fallbackFonts: [],
  ...over,
});
const lines = (text: string, over: Partial<RenderConfig> = {}) =>
  layoutText(text, config(over), mono).flatMap((p) => p.lines.map((l) => l.text));

test('wraps at the last space that fits and drops the space at the break', () => {
  assert.deepEqual(lines('hello world foo'), ['hello', 'world foo']);
});

test('breaks a word wider than the line between characters, losing nothing', () => {
  assert.deepEqual(lines('abcdefghijklmno xy'), ['abcdefghij', 'klmno xy']);
});

test('newlines are line breaks; blank lines stay as empty lines', () => {
  assert.deepEqual(lines('a\n\nb'), ['a', '', 'b']);
});

test('runs of spaces are kept and do not break', () => {
  assert.deepEqual(lines('ab  cd efgh'), ['ab  cd', 'efgh']);
  const [line] = layoutText('x  y', config(), mono)[0]!.lines;
  assert.deepEqual(line!.fragments, [{ text: 'x  y', x: 0 }]);
});

test('tabs advance to the next stop of tabSize spaces', () => {
  const [line] = layoutText('a\tb\tc', config({ tabSize: 4 }), mono)[0]!.lines;
  assert.deepEqual(line!.fragments, [
    { text: 'a', x: 0 },
    { text: 'b', x: 40 },
    { text: 'c', x: 80 },
  ]);
});

test('CJK breaks between characters but never before closing punctuation', () => {
  assert.deepEqual(splitCjk('中文字符。测试'), ['中', '文', '字', '符。', '测', '试']);
  assert.deepEqual(splitCjk('「引用」ok'), ['「引', '用」', 'ok']);
  assert.deepEqual(lines('中文字符。测试', { pageSize: [40, 50] }), ['中文字', '符。测试']);
});

test('paginates: 12 lines at 5 lines per page → 5, 5, 2 with baselines at ascent + i·leading', () => {
  const pages = layoutText(Array.from({ length: 12 }, (_, i) => `l${i}`).join('\n'), config(), mono);
  assert.deepEqual(
    pages.map((p) => p.lines.length),
    [5, 5, 2],
  );
  assert.deepEqual(
    pages[1]!.lines.map((l) => l.baseline),
    [8, 18, 28, 38, 48],
  );
  assert.equal(pages[2]!.lines[0]!.text, 'l10');
});

test('alignment: RIGHT, CENTER and JUSTIFY (soft-broken lines only)', () => {
  assert.equal(layoutText('ab', config({ alignment: 'RIGHT' }), mono)[0]!.lines[0]!.fragments[0]!.x, 80);
  assert.equal(layoutText('ab', config({ alignment: 'CENTER' }), mono)[0]!.lines[0]!.fragments[0]!.x, 40);
  const [first, last] = layoutText('aa bb cc dd', config({ alignment: 'JUSTIFY' }), mono)[0]!.lines;
  assert.deepEqual(
    first!.fragments.map((f) => f.x),
    [0, 40, 80],
  ); // 20 px slack over 2 spaces
  assert.deepEqual(last!.fragments, [{ text: 'dd', x: 0 }]);
});

test('first-line indent applies to the first line of each paragraph (paragraphLines source lines)', () => {
  const page = layoutText('a\nb\nc', config({ firstLineIndent: 20, paragraphLines: 2 }), mono)[0]!;
  assert.deepEqual(
    page.lines.map((l) => l.fragments[0]!.x),
    [20, 0, 20],
  );
});

test('space-before/after and paragraph boxes with border padding', () => {
  const page = layoutText(
    'a\nb\nc',
    config({ paragraphLines: 2, spaceBefore: 5, spaceAfter: 3, borderPadding: 2, pageSize: [100, 100] }),
    mono,
  )[0]!;
  assert.deepEqual(
    page.lines.map((l) => l.baseline),
    [8, 18, 8 + 20 + 3 + 5],
  );
  assert.deepEqual(page.boxes, [
    { x: -2, y: -2, width: 104, height: 24 },
    { x: -2, y: 26, width: 104, height: 14 },
  ]);
});

test('reflow joins wrapped lines and splits paragraphs at blank lines', () => {
  assert.deepEqual(lines('one two\nthree\n\nfour', { reflow: true, pageSize: [200, 50] }), ['one two three', 'four']);
});

test('inline newline markup (Glyph) draws a coloured marker instead of breaking', () => {
  assert.deepEqual(parseNewlineMarkup('<font color="#FF0000"> \\n </font>'), {
    lineBreak: false,
    text: ' \\n ',
    color: '#FF0000',
  });
  const page = layoutText(
    'ab\ncd',
    config({ newlineMarkup: '<font color="#FF0000"> \\n </font>', pageSize: [200, 50] }),
    mono,
  )[0]!;
  assert.equal(page.lines.length, 1);
  assert.equal(page.lines[0]!.text, 'ab \\n cd');
  assert.deepEqual(
    page.lines[0]!.fragments.map((f) => f.color),
    [undefined, '#FF0000', undefined],
  );
});

test('empty text and pages too small for a line are clear errors', () => {
  assert.throws(() => layoutText(' \n\t ', config(), mono), /text is empty/);
  assert.throws(() => layoutText('a', config({ pageSize: [100, 5] }), mono), /no room for one line/);
});

test('line breaking is linear in the text length: characters measured grow in proportion to a space-free line', () => {
  // Counts the code points every measure call looks at (what a real font's measureText costs).
  const measuredFor = (text: string) => {
    let measured = 0;
    const counting = {
      measure: (s: string) => {
        measured += s.length;
        return s.length * 10;
      },
      ascent: 8,
    };
    const pages = layoutText(text, config({ pageSize: [400, 100000] }), counting);
    const laid = pages.flatMap((p) => p.lines.map((l) => l.text)).join('');
    assert.equal(laid, text); // nothing lost or duplicated
    return measured;
  };
  for (const unit of ['x', 'x  ']) {
    const small = measuredFor(unit.repeat(5000));
    const large = measuredFor(unit.repeat(40000));
    // 8× the text: linear work is ≈ 8× (quadratic would be 64×); allow the log factor of bisecting within a line.
    assert.ok(
      large / small < 10,
      `${JSON.stringify(unit)}: ${small} → ${large} characters measured (×${(large / small).toFixed(1)})`,
    );
    assert.ok(
      large < 40 * unit.length * 40000,
      `${large} characters measured for a ${unit.length * 40000}-character line`,
    );
  }
});

test('right-to-left words are placed in visual order (Unicode bidi), the OCR text stays logical', () => {
  const wide = config({ pageSize: [400, 50] });
  const [mixed] = layoutText('abc אבג דהו xyz', wide, mono)[0]!.lines;
  // Left-to-right line: the Hebrew run is reversed as a whole, each word drawn alone (Skia shapes it right to left).
  assert.deepEqual(mixed!.fragments, [
    { text: 'abc', x: 0 },
    { text: 'דהו', x: 40 },
    { text: 'אבג', x: 80 },
    { text: 'xyz', x: 120 },
  ]);
  assert.equal(mixed!.text, 'abc אבג דהו xyz');
  // A line whose first strong character is Hebrew is right-to-left: its first word ends up rightmost.
  const [rtl] = layoutText('אבג דהו abc', wide, mono)[0]!.lines;
  assert.deepEqual(
    rtl!.fragments.map((f) => [f.text, f.x]),
    [
      ['abc', 0],
      ['דהו', 40],
      ['אבג', 80],
    ],
  );
  // Arabic too, and left-to-right text is untouched (one fragment as before).
  assert.deepEqual(
    layoutText('سلام عليكم', wide, mono)[0]!.lines[0]!.fragments.map((f) => f.text),
    ['عليكم', 'سلام'],
  );
  assert.deepEqual(layoutText('plain words', wide, mono)[0]!.lines[0]!.fragments, [{ text: 'plain words', x: 0 }]);
});
