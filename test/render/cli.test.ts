import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers.js';

// Compiled: dist/test/render → dist/cli/main.js; under tsx: test/render → cli/main.ts.
const here = dirname(fileURLToPath(import.meta.url));
const compiled = join(here, '../../cli/main.js');
const cli = existsSync(compiled) ? [compiled] : ['--import', 'tsx', join(here, '../../cli/main.ts')];
const vtc = (args: string[], input?: string) =>
  spawnSync(process.execPath, [...cli, ...args], { encoding: 'utf8', input });

const TEXT = Array.from(
  { length: 120 },
  (_, i) => `Line ${i}: the compositor set another line of type and pulled a proof.`,
).join('\n');

test('vtc render --json prints {pages, text_tokens, vision_tokens, compression, page_sizes, files, ms} and writes the pages', () => {
  const dir = tempDir('vtc-render-cli-');
  writeFileSync(join(dir, 'in.txt'), TEXT);
  const run = vtc(['render', join(dir, 'in.txt'), '--out', join(dir, 'pages'), '--json']);
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.deepEqual(Object.keys(out), [
    'pages',
    'text_tokens',
    'vision_tokens',
    'compression',
    'page_sizes',
    'files',
    'ms',
  ]);
  assert.deepEqual(out.files, [join(dir, 'pages', 'page_001.png'), join(dir, 'pages', 'page_002.png')]);
  assert.equal(out.pages, 2); // 120 lines at 81 lines per A4 page (822 − 12 pt frame padding → 81 lines of 10 pt)
  assert.equal(out.page_sizes.length, 2);
  assert.equal(out.page_sizes[0][1], 842);
  assert.ok(out.page_sizes[1][1] < 842);
  // qwen2.5-vl: one token per 28×28 px after rounding each side to a multiple of 28
  const tokens = out.page_sizes.reduce(
    (n: number, [w, h]: [number, number]) => n + Math.round(w / 28) * Math.round(h / 28),
    0,
  );
  assert.equal(out.vision_tokens, tokens);
  assert.equal(out.compression, out.text_tokens / out.vision_tokens);
  assert.deepEqual(readdirSync(join(dir, 'pages')), ['page_001.png', 'page_002.png']);
});

test('vtc render --ocr adds cer (OCR excluded from ms)', () => {
  const dir = tempDir('vtc-render-cli-');
  const run = vtc(
    ['render', '-', '--out', dir, '--ocr', '--json'],
    'The quick brown fox jumps over the lazy dog.\nPack my box with five dozen liquor jugs.',
  );
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.deepEqual(Object.keys(out), [
    'pages',
    'text_tokens',
    'vision_tokens',
    'compression',
    'cer',
    'page_sizes',
    'files',
    'ms',
  ]);
  assert.ok(out.cer >= 0 && out.cer <= 0.08, `cer ${out.cer}`);
});

test('vtc render reads stdin, honours --config and --format', () => {
  const dir = tempDir('vtc-render-cli-');
  writeFileSync(
    join(dir, 'cfg.json'),
    JSON.stringify({ dpi: 96, 'page-size': 'A5', 'auto-crop-width': false, 'auto-crop-last-page': false }),
  );
  const run = vtc(
    [
      'render',
      '-',
      '--config',
      join(dir, 'cfg.json'),
      '--profile',
      'llava-1.5',
      '--format',
      'jpeg',
      '--out',
      dir,
      '--json',
    ],
    'short text',
  );
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.deepEqual(out.page_sizes, [[560, 794]]); // A5 419.53×595.28 pt at 96 dpi, rounded up
  assert.equal(out.vision_tokens, 576);
  assert.ok(existsSync(join(dir, 'page_001.jpg')));
});

test('vtc render search: shared flags (--profile, --out, --json) reach the search; the best config loads back', () => {
  const dir = tempDir('vtc-render-cli-');
  writeFileSync(join(dir, 'in.txt'), 'A short line of plain English text for the search.');
  const run = vtc([
    'render',
    'search',
    join(dir, 'in.txt'),
    '--max-cer',
    '0.5',
    '--generations',
    '1',
    '--population',
    '2',
    '--profile',
    'llava-1.5',
    '--out',
    join(dir, 'best.json'),
    '--json',
  ]);
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.evaluated, 2);
  assert.equal(out.baseline.vision_tokens, 576);
  assert.ok(out.best.compression >= out.baseline.compression);
  const saved = JSON.parse(readFileSync(join(dir, 'best.json'), 'utf8'));
  assert.deepEqual(saved, out.best.config);
  const again = vtc([
    'render',
    join(dir, 'in.txt'),
    '--config',
    join(dir, 'best.json'),
    '--profile',
    'llava-1.5',
    '--out',
    join(dir, 'pages'),
    '--json',
  ]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).compression, out.best.compression);
});

test('bad input: one-line errors and exit codes (2 usage, 1 input)', () => {
  const dir = tempDir('vtc-render-cli-');
  writeFileSync(join(dir, 'in.txt'), 'hello');
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ 'font-size': 'big' }));
  writeFileSync(join(dir, 'font.json'), JSON.stringify({ 'font-path': 'missing.ttf' }));
  const cases: [string[], number, RegExp][] = [
    [['render', join(dir, 'in.txt'), '--out', dir, '--profile', 'qwen9'], 2, /unknown vision profile "qwen9"/],
    // A config file's content is input (exit 1), a flag is usage (exit 2).
    [
      ['render', join(dir, 'in.txt'), '--out', dir, '--config', join(dir, 'bad.json')],
      1,
      /"font-size" .*expected number/,
    ],
    [
      ['render', join(dir, 'in.txt'), '--out', dir, '--config', join(dir, 'font.json')],
      1,
      /font file not found: .*missing\.ttf/,
    ],
    [
      ['render', join(dir, 'in.txt'), '--out', dir, '--format', 'gif'],
      2,
      /render: format must be one of png, jpeg, webp, got "gif"/,
    ],
    [['render', join(dir, 'nope.txt'), '--out', dir], 1, /cannot read text/],
    [['render', '-', '--out', dir], 1, /text is empty/],
    [
      ['render', 'search', join(dir, 'in.txt'), '--max-cer', '2'],
      2,
      /render search: maxCer \(--max-cer\) must be in \(0, 1\], got 2/,
    ],
  ];
  for (const [args, code, message] of cases) {
    const run = vtc(args, '');
    assert.equal(run.status, code, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
  assert.equal(readFileSync(join(dir, 'in.txt'), 'utf8'), 'hello');
});

test('a folder holding an earlier render is refused (nothing written); --clean replaces only the page files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtc-render-cli-'));
  try {
    const out = join(dir, 'pages');
    assert.equal(vtc(['render', '-', '--out', out, '--json'], TEXT).status, 0);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const short = vtc(['render', '-', '--out', out, '--json'], 'one short line');
    assert.equal(short.status, 1);
    assert.equal(
      short.stderr,
      `vtc: error: ${out} already holds 2 page files from an earlier render (page_001.png … page_002.png); choose another folder or clean them first (vtc render --clean)\n`,
    );
    assert.deepEqual(readdirSync(out).sort(), ['notes.txt', 'page_001.png', 'page_002.png']);
    const cleaned = vtc(['render', '-', '--out', out, '--clean', '--json'], 'one short line');
    assert.equal(cleaned.status, 0, cleaned.stderr);
    assert.deepEqual(JSON.parse(cleaned.stdout).files, [join(out, 'page_001.png')]);
    assert.deepEqual(readdirSync(out).sort(), ['notes.txt', 'page_001.png']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('render search exits 1 with one line when no config meets the constraint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtc-render-cli-'));
  try {
    // Cyrillic under an English OCR model: no config reaches CER 1%.
    writeFileSync(join(dir, 'in.txt'), 'Съешь же ещё этих мягких французских булок, да выпей чаю.');
    const run = vtc([
      'render',
      'search',
      join(dir, 'in.txt'),
      '--max-cer',
      '0.01',
      '--generations',
      '1',
      '--population',
      '2',
      '--out',
      join(dir, 'best.json'),
      '--json',
    ]);
    assert.equal(run.status, 1, run.stderr);
    assert.equal(JSON.parse(run.stdout).best, null);
    assert.match(
      run.stderr,
      /^vtc: error: render search: no config met CER ≤ 0\.01 \(2 evaluated\); .*best\.json not written\n$/,
    );
    assert.equal(existsSync(join(dir, 'best.json')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text encodings: UTF-16 with a BOM reads like UTF-8; Latin-1 is an error naming the byte, or decoded with --encoding', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtc-render-cli-'));
  try {
    const text = 'Café au lait, naïve façade — ½ price.';
    writeFileSync(join(dir, 'utf8.txt'), text);
    writeFileSync(join(dir, 'utf16le.txt'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]));
    writeFileSync(join(dir, 'latin1.txt'), Buffer.from(text.replace('—', '-'), 'latin1'));
    writeFileSync(join(dir, 'utf8-dash.txt'), text.replace('—', '-'));
    const tokens = (file: string, extra: string[] = []) => {
      const run = vtc(['render', join(dir, file), '--out', join(dir, file + '.pages'), '--json', ...extra]);
      assert.equal(run.status, 0, run.stderr);
      return JSON.parse(run.stdout).text_tokens as number;
    };
    assert.equal(tokens('utf16le.txt'), tokens('utf8.txt'));
    const bad = vtc(['render', join(dir, 'latin1.txt'), '--out', join(dir, 'x'), '--json']);
    assert.equal(bad.status, 1);
    assert.equal(
      bad.stderr,
      `vtc: error: ${join(dir, 'latin1.txt')} is not valid UTF-8: byte 0xe9 at offset 3 (line 1); if it is Latin-1 or another legacy encoding, name it with --encoding (e.g. --encoding latin1)\n`,
    );
    assert.equal(tokens('latin1.txt', ['--encoding', 'latin1']), tokens('utf8-dash.txt'));
    const unknown = vtc(['render', join(dir, 'latin1.txt'), '--out', join(dir, 'y'), '--encoding', 'klingon']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown text encoding "klingon"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--fallback-font supplies characters the main font lacks (CJK, emoji, or here Hebrew for DejaVu Sans Mono)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtc-render-cli-'));
  try {
    const fonts = join(dirname(fileURLToPath(import.meta.resolve('dejavu-fonts-ttf/package.json'))), 'ttf');
    writeFileSync(join(dir, 'mono.json'), JSON.stringify({ 'font-path': join(fonts, 'DejaVuSansMono.ttf') }));
    writeFileSync(join(dir, 'in.txt'), 'Shalom שלום, salam سلام.');
    const without = vtc(['render', join(dir, 'in.txt'), '--config', join(dir, 'mono.json'), '--out', join(dir, 'a')]);
    assert.equal(without.status, 1);
    assert.match(without.stderr, /DejaVuSansMono\.ttf lacks 4 distinct characters .*--fallback-font FILE/);
    const withFont = vtc([
      'render',
      join(dir, 'in.txt'),
      '--config',
      join(dir, 'mono.json'),
      '--fallback-font',
      join(fonts, 'DejaVuSans.ttf'),
      '--out',
      join(dir, 'b'),
      '--json',
    ]);
    assert.equal(withFont.status, 0, withFont.stderr);
    assert.equal(withFont.stderr, '');
    assert.equal(JSON.parse(withFont.stdout).pages, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
