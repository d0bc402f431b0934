import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { InputError, UsageError } from '../../core/errors.js';
import { DEFAULT_CONFIG, loadConfig, parseConfig, toConfigFile } from '../../render/config.js';
import { dejavuDir, familyPath, loadFont } from '../../render/fonts.js';
import { measureCompression, planRender, renderText, writePages } from '../../render/index.js';
import { encodePngSync } from '../../encoders/codecs.js';
import { invertHexColor, usesLightTextGamma } from '../../render/render.js';
import { tempDir } from '../helpers.js';

const PROSE = 'It was a bright cold day in the print shop, and the compositor set the last line of the page.\n'.repeat(
  4,
);

test("Glyph's config_en.json loads as is, with its relative font path resolved against the file", () => {
  const dir = tempDir('vtc-render-');
  mkdirSync(join(dir, 'config'));
  mkdirSync(join(dir, 'scripts'));
  copyFileSync(familyPath('DejaVu Sans'), join(dir, 'config', 'Verdana.ttf')); // stands in for Glyph's Verdana.ttf
  const glyphConfig = {
    'page-size': '595,842',
    dpi: 72,
    'margin-x': 10,
    'margin-y': 10,
    'font-path': '../config/Verdana.ttf',
    'font-size': 9,
    'line-height': 10,
    'font-color': '#000000',
    alignment: 'LEFT',
    'horizontal-scale': 1.0,
    'first-line-indent': 0,
    'left-indent': 0,
    'right-indent': 0,
    'space-after': 0,
    'space-before': 0,
    'border-width': 0,
    'border-padding': 0,
    'page-bg-color': '#FFFFFF',
    'para-bg-color': '#FFFFFF',
    'auto-crop-width': true,
    'auto-crop-last-page': true,
  };
  writeFileSync(join(dir, 'scripts', 'config_en.json'), JSON.stringify(glyphConfig));
  const config = loadConfig(join(dir, 'scripts', 'config_en.json'));
  assert.equal(config.fontPath, join(dir, 'config', 'Verdana.ttf'));
  assert.deepEqual(config.pageSize, [595, 842]);
  assert.equal(config.lineHeight, 10);
  assert.equal(renderText('hello', config).pages.length, 1);
  assert.deepEqual(toConfigFile(config)['page-size'], '595,842');
});

test('config validation: named page sizes, Glyph line-height default, clear errors', () => {
  assert.deepEqual(parseConfig({ 'page-size': 'letter' }).pageSize, [612, 792]);
  assert.equal(parseConfig({ 'font-size': 12 }).lineHeight, 13); // Glyph: font size + 1 when line-height is absent
  assert.equal(parseConfig({ 'font-size': 12, 'line-height': 12 }).lineHeight, 12);
  assert.throws(
    () => parseConfig({ 'font-sise': 9 }),
    (e: unknown) => e instanceof UsageError && /unknown key "font-sise"/.test(e.message),
  );
  assert.throws(
    () => parseConfig({ alignment: 'MIDDLE' }),
    (e: unknown) =>
      e instanceof UsageError &&
      /"alignment" expected one of LEFT, RIGHT, CENTER, JUSTIFY, got "MIDDLE"/.test(e.message),
  );
  assert.throws(
    () => parseConfig({ 'page-size': '595x842' }),
    (e: unknown) => e instanceof UsageError && /"page-size" expected "width,height"/.test(e.message),
  );
  assert.throws(
    () => parseConfig({ 'font-color': 'black' }),
    (e: unknown) => e instanceof UsageError && /"font-color" expected a hex colour/.test(e.message),
  );
  assert.throws(() => parseConfig([1, 2]), /expected a JSON object/);
  assert.throws(
    () => renderText('x', parseConfig({ 'font-family': 'Comic Sans' })),
    (e: unknown) => e instanceof UsageError && /unknown font family "Comic Sans"/.test(e.message),
  );
  assert.throws(
    () => renderText('x', parseConfig({ 'font-path': '/nonexistent/font.ttf' })),
    (e: unknown) => e instanceof InputError && /font file not found/.test(e.message),
  );
  const dir = tempDir('vtc-render-');
  writeFileSync(join(dir, 'bad.json'), '{"dpi": 72,');
  assert.throws(
    () => loadConfig(join(dir, 'bad.json')),
    (e: unknown) => e instanceof InputError && /is not valid JSON/.test(e.message),
  );
});

test('empty text and characters no font has are errors, never silently dropped', () => {
  assert.throws(
    () => renderText('', DEFAULT_CONFIG),
    (e: unknown) => e instanceof InputError && /text is empty/.test(e.message),
  );
  assert.throws(
    () => renderText('abc 中文 中', DEFAULT_CONFIG),
    (e: unknown) =>
      e instanceof InputError &&
      /lacks 2 distinct characters \(3 in the text\) — "中" U\+4E2D ×2, "文" U\+6587 ×1/.test(e.message),
  );
  const warned = renderText('abc 中', parseConfig({ 'missing-glyphs': 'warn' }));
  assert.deepEqual(warned.missingGlyphs, [{ char: '中', codePoint: 'U+4E2D', count: 1 }]);
  // A fallback font that has the character makes it renderable.
  const sans = loadFont(familyPath('DejaVu Sans'));
  const math = loadFont(join(dejavuDir(), 'DejaVuMathTeXGyre.ttf'));
  const onlyInMath = [...math.coverage].find((cp) => !sans.coverage.has(cp) && cp > 0x2000)!;
  const ch = String.fromCodePoint(onlyInMath);
  assert.throws(() => renderText(`x ${ch}`, DEFAULT_CONFIG), /lacks 1 distinct character/);
  assert.equal(renderText(`x ${ch}`, { ...DEFAULT_CONFIG, fallbackFonts: [math.path] }).missingGlyphs.length, 0);
});

test('page geometry: pt × dpi/72, horizontal scale, auto-crop of width and last page', () => {
  const noCrop = { ...DEFAULT_CONFIG, autoCropWidth: false, autoCropLastPage: false };
  const page = renderText(PROSE, noCrop).pages[0]!;
  assert.deepEqual([page.width, page.height, page.channels, page.dpi], [595, 842, 1, 72]);
  assert.equal(page.pixels.length, 595 * 842);
  assert.deepEqual(((p) => [p.width, p.height])(renderText(PROSE, { ...noCrop, dpi: 144 }).pages[0]!), [1190, 1684]);
  assert.deepEqual(
    ((p) => [p.width, p.height])(renderText(PROSE, { ...noCrop, pageSize: [595.28, 841.89] }).pages[0]!),
    [596, 842],
  );
  assert.equal(renderText(PROSE, { ...noCrop, horizontalScale: 0.8 }).pages[0]!.width, 476);
  const cropped = renderText(PROSE, DEFAULT_CONFIG).pages[0]!;
  assert.ok(cropped.width < 595 && cropped.height < 842);
  // Glyph's crop keeps margin-x (10) px after the last ink column and margin-y (10) px after the last ink row.
  let right = 0;
  let bottom = 0;
  for (let y = 0; y < 842; y++)
    for (let x = 0; x < 595; x++)
      if (Math.abs(page.pixels[y * 595 + x]! - 255) > 5) {
        right = Math.max(right, x);
        bottom = Math.max(bottom, y);
      }
  assert.equal(cropped.width, right + 1 + 10);
  assert.equal(cropped.height, bottom + 10);
  // The cropped page is the top-left part of the uncropped one.
  for (let y = 0; y < cropped.height; y += 7)
    for (let x = 0; x < cropped.width; x += 5)
      assert.equal(cropped.pixels[y * cropped.width + x], page.pixels[y * 595 + x]);
  assert.equal(cropped.text, PROSE.trimEnd());
});

test('long text paginates without losing or repeating a character', () => {
  const words = Array.from({ length: 3000 }, (_, i) => `w${i}`).join(' ');
  const result = renderText(words, DEFAULT_CONFIG);
  assert.ok(result.pages.length >= 2);
  assert.equal(
    result.pages
      .map((p) => p.text)
      .join(' ')
      .replace(/\s+/g, ' '),
    words,
  );
  assert.equal(result.pages.at(-1)!.height < 842, true);
});

test('colour configs render RGB; grey configs render one channel', () => {
  const page = renderText('red on white', {
    ...DEFAULT_CONFIG,
    fontColor: '#CC0000',
    autoCropWidth: false,
    autoCropLastPage: false,
  }).pages[0]!;
  assert.equal(page.channels, 3);
  let reddest = 0;
  for (let i = 0; i < page.pixels.length; i += 3) reddest = Math.max(reddest, page.pixels[i]! - page.pixels[i + 1]!);
  assert.ok(reddest > 100, `expected red ink, max r−g = ${reddest}`);
});

test('paragraph background, border and page background are drawn where the layout puts them', () => {
  const base = {
    ...DEFAULT_CONFIG,
    autoCropWidth: false,
    autoCropLastPage: false,
    pageSize: [200, 100] as [number, number],
    marginX: 20,
    marginY: 20,
    framePadding: 0,
  };
  const page = renderText('x', {
    ...base,
    pageBgColor: '#F0F0F0',
    paraBgColor: '#C8C8C8',
    borderWidth: 1,
    borderPadding: 5,
    paraBorderColor: '#000000',
  }).pages[0]!;
  const at = (x: number, y: number) => page.pixels[y * page.width + x]!;
  assert.equal(at(2, 2), 0xf0); // page background outside the box
  // Box: frame 20..180 × 20..30 (one 10 pt line), padded by 5 → 15..185 × 15..35; border stroked on that rectangle.
  assert.equal(at(100, 25), 0xc8); // paragraph background inside
  assert.ok(at(100, 15) < 0x80, `border row at y=15 is dark, got ${at(100, 15)}`);
  assert.ok(at(15, 25) < 0x80, `border column at x=15 is dark, got ${at(15, 25)}`);
  assert.equal(at(100, 40), 0xf0);
});

test('light-text gamma: dark text gets fuller stems (more near-black pixels), same page and background; light text is untouched', () => {
  const base = { ...DEFAULT_CONFIG, autoCropWidth: false, autoCropLastPage: false };
  const on = renderText(PROSE, base).pages[0]!;
  const off = renderText(PROSE, { ...base, lightTextGamma: false }).pages[0]!;
  assert.equal(DEFAULT_CONFIG.lightTextGamma, 'auto');
  assert.equal(usesLightTextGamma(DEFAULT_CONFIG), true); // 9 pt at dpi 72 = 9 px
  assert.equal(usesLightTextGamma({ ...DEFAULT_CONFIG, dpi: 64 }), false); // 8 px: fuller stems would clump
  assert.equal(usesLightTextGamma({ ...DEFAULT_CONFIG, dpi: 64, lightTextGamma: true }), true);
  assert.equal(usesLightTextGamma({ ...DEFAULT_CONFIG, fontColor: '#FFFFFF', pageBgColor: '#000000' }), false);
  assert.deepEqual([on.width, on.height, on.channels], [off.width, off.height, off.channels]);
  const count = (pixels: Uint8Array, keep: (v: number) => boolean) => pixels.reduce((n, v) => n + (keep(v) ? 1 : 0), 0);
  const blackOn = count(on.pixels, (v) => v < 64);
  const blackOff = count(off.pixels, (v) => v < 64);
  // Measured: 9 px DejaVu Sans has ~1% of its ink pixels near black with Skia's dark-text gamma and ~50% with the light-text one.
  assert.ok(blackOn > 5 * blackOff, `near-black pixels ${blackOn} (on) vs ${blackOff} (off)`);
  assert.ok(
    Math.abs(count(on.pixels, (v) => v === 255) - count(off.pixels, (v) => v === 255)) < 0.01 * on.pixels.length,
    'background area unchanged',
  );
  assert.equal(on.pixels[0], 255);
  // White on black is already light text: the option changes nothing.
  const dark = { ...base, fontColor: '#FFFFFF', pageBgColor: '#000000', paraBgColor: '#000000' };
  assert.deepEqual(
    renderText(PROSE, dark).pages[0]!.pixels,
    renderText(PROSE, { ...dark, lightTextGamma: false }).pages[0]!.pixels,
  );
  // Coloured text keeps its hue through the inverted drawing.
  const red = renderText('red', { ...base, fontColor: '#CC0000', pageSize: [80, 60] }).pages[0]!;
  assert.deepEqual([...red.pixels.subarray(0, 3)], [255, 255, 255]);
  let reddest = 0;
  for (let i = 0; i < red.pixels.length; i += 3) reddest = Math.max(reddest, red.pixels[i]! - red.pixels[i + 1]!);
  assert.ok(reddest > 150, `expected red ink, max r−g = ${reddest}`);
  assert.equal(invertHexColor('#FF8000'), '#007fff');
  assert.equal(parseConfig({ 'light-text-gamma': false }).lightTextGamma, false);
  assert.equal(toConfigFile(DEFAULT_CONFIG)['light-text-gamma'], 'auto');
  assert.throws(
    () => parseConfig({ 'light-text-gamma': 'yes' }),
    (e: unknown) => e instanceof UsageError && /"light-text-gamma" expected true, false or "auto"/.test(e.message),
  );
});

test('horizontal scale squeezes the drawing: ink extent shrinks by the factor', () => {
  const base = { ...DEFAULT_CONFIG, autoCropWidth: false, autoCropLastPage: false };
  const inkRight = (p: { pixels: Uint8Array; width: number; height: number }) => {
    let right = 0;
    for (let y = 0; y < p.height; y++)
      for (let x = p.width - 1; x > right; x--)
        if (p.pixels[y * p.width + x]! < 128) {
          right = x;
          break;
        }
    return right;
  };
  const full = inkRight(renderText(PROSE, base).pages[0]!);
  const squeezed = inkRight(renderText(PROSE, { ...base, horizontalScale: 0.75 }).pages[0]!);
  assert.ok(Math.abs(squeezed - full * 0.75) <= 2, `ink right edge ${squeezed} vs 0.75 × ${full}`);
});

test('PNG writer round-trips exact pixels (grey and RGB) through a real decoder', async () => {
  const grey = Uint8Array.from({ length: 7 * 5 }, (_, i) => (i * 37) % 256);
  const decoded = await sharp(encodePngSync({ data: grey, width: 7, height: 5, channels: 1 }))
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  assert.deepEqual([decoded.info.width, decoded.info.height, decoded.info.channels], [7, 5, 1]);
  assert.deepEqual(new Uint8Array(decoded.data), grey);
  const rgb = Uint8Array.from({ length: 3 * 4 * 3 }, (_, i) => (i * 53) % 256);
  const decodedRgb = await sharp(encodePngSync({ data: rgb, width: 4, height: 3 }))
    .raw()
    .toBuffer();
  assert.deepEqual(new Uint8Array(decodedRgb), rgb);
});

test('writePages writes page_001.png… that decode to the rendered pixels; jpeg and webp via sharp', async () => {
  const dir = tempDir('vtc-render-');
  const plan = planRender(Array.from({ length: 200 }, (_, i) => `line ${i}`).join('\n'), DEFAULT_CONFIG);
  const files = await writePages(plan.pages(), dir);
  assert.deepEqual(readdirSync(dir).sort(), ['page_001.png', 'page_002.png', 'page_003.png']);
  const page = plan.page(1);
  const decoded = await sharp(files[1]!).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([decoded.info.width, decoded.info.height], [page.width, page.height]);
  assert.deepEqual(new Uint8Array(decoded.data), page.pixels);
  const jpegDir = join(dir, 'jpeg');
  await writePages([page], jpegDir, { format: 'jpeg' });
  assert.equal((await sharp(join(jpegDir, 'page_002.jpg')).metadata()).format, 'jpeg');
  await assert.rejects(
    writePages([page], jpegDir, { format: 'webp' }),
    /already holds 1 page file from an earlier render \(page_002\.jpg\)/,
  );
  await writePages([page], jpegDir, { format: 'webp', existing: 'clean' });
  assert.deepEqual(readdirSync(jpegDir), ['page_002.webp']);
  assert.equal((await sharp(join(jpegDir, 'page_002.webp')).metadata()).width, page.width);
});

test('measureCompression: text tokens (the Qwen tokenizer for a Qwen profile) over profile vision tokens', async () => {
  const report = await measureCompression(
    'hello world',
    [
      { width: 595, height: 842 },
      { width: 560, height: 100 },
    ],
    { profile: 'qwen2.5-vl' },
  );
  assert.equal(report.tokenizer, 'qwen');
  assert.equal(report.textTokens, 2);
  // 595×842 → 588×840 → 630; 560×100 → 560×112 → 20·4 = 80
  assert.deepEqual(report.pageTokens, [630, 80]);
  assert.equal(report.compression, 2 / 710);
});
