import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { characterErrorRate, createOcr, levenshtein, normalizeForCer, ocrPages, ocrUpscale } from '../../render/ocr.js';
import { DEFAULT_CONFIG } from '../../render/config.js';
import { measureCompression, renderText } from '../../render/index.js';
import { excerpt, paretoFront, searchConfig, type Candidate } from '../../render/search.js';

// Runs from test/render (tsx) or dist/test/render (compiled): find the repo's samples either way.
const here = dirname(fileURLToPath(import.meta.url));
const essayPath = [
  join(here, '../../samples/text/essay-35k.txt'),
  join(here, '../../../samples/text/essay-35k.txt'),
].find((p) => existsSync(p))!;
const essay = readFileSync(essayPath, 'utf8');
// The title and first paragraph of the sample essay (~600 characters): OCR of a few lines keeps this file fast.
const SAMPLE = excerpt(essay, 1100);

test('Levenshtein distance and CER with whitespace normalisation', () => {
  assert.equal(levenshtein('kitten', 'sitting'), 3);
  assert.equal(levenshtein('', 'abc'), 3);
  assert.equal(levenshtein('中文', '中'), 1);
  assert.equal(normalizeForCer('  a\tb\n\nc  '), 'a b c');
  assert.deepEqual(characterErrorRate('hello world', 'hallo  world\n'), {
    cer: 1 / 11,
    distance: 1,
    referenceLength: 11,
  });
  assert.equal(ocrUpscale(72), 2);
  assert.equal(ocrUpscale(150), 1);
  assert.equal(ocrUpscale(45), 4);
});

test('OCR round trip (one reused worker): best config CER ≤ 8% at dpi 72, ≤ 3% at dpi 96', async () => {
  const engine = await createOcr();
  try {
    const at72 = await ocrPages(renderText(SAMPLE, DEFAULT_CONFIG).pages, { engine });
    const at96 = await ocrPages(renderText(SAMPLE, { ...DEFAULT_CONFIG, dpi: 96 }).pages, { engine });
    assert.ok(at72.cer <= 0.08, `dpi 72 CER ${at72.cer}`);
    assert.ok(at96.cer <= 0.03, `dpi 96 CER ${at96.cer}`);
    assert.equal(at72.pages.length, 1);
    assert.ok(at72.pages[0]!.referenceLength > 500);
    assert.ok(at72.pages[0]!.ocrText.includes('history of writing'));
  } finally {
    await engine.close();
  }
});

test('raw pages (no OCR upscale, what a VLM sees): light-text gamma keeps dpi 72 CER ≤ 15% on one small page (16.5% without it)', async () => {
  const text = excerpt(essay, 2000);
  const engine = await createOcr();
  try {
    const on = await ocrPages(renderText(text, DEFAULT_CONFIG).pages, { engine, upscale: 1 });
    const off = await ocrPages(renderText(text, { ...DEFAULT_CONFIG, lightTextGamma: false }).pages, {
      engine,
      upscale: 1,
    });
    assert.equal(on.pages.length, 1);
    assert.equal(on.pages[0]!.referenceLength, 1793);
    assert.ok(on.cer <= 0.15, `dpi 72 raw CER with light-text gamma ${on.cer}`);
    assert.ok(on.cer < off.cer, `light-text gamma ${on.cer} vs Skia's default ${off.cer}`);
  } finally {
    await engine.close();
  }
});

test('quality bar: the 35 KB essay at the best config compresses ≥ 2× under qwen2.5-vl (Qwen text tokens)', async () => {
  const { pages } = renderText(essay, DEFAULT_CONFIG);
  const report = await measureCompression(essay, pages, { profile: 'qwen2.5-vl' });
  assert.equal(report.tokenizer, 'qwen');
  assert.equal(report.textTokens, 6660);
  assert.equal(
    (await measureCompression(essay, pages, { profile: 'qwen2.5-vl', tokenizer: 'o200k_base' })).textTokens,
    6632,
  );
  assert.equal(pages.length, 5);
  assert.ok(report.compression >= 2, `compression ${report.compression}`);
});

test('Pareto front keeps only non-dominated (compression ↑, CER ↓) candidates', () => {
  const c = (compression: number, cer: number, dpi: number) =>
    ({ compression, cer, genome: { dpi } }) as unknown as Candidate;
  const front = paretoFront([c(3, 0.05, 1), c(2, 0.01, 2), c(2.5, 0.06, 3), c(1, 0.01, 4), c(4, 0.2, 5)]);
  assert.deepEqual(
    front.map((x) => x.genome.dpi),
    [5, 1, 2],
  );
});

test('search: seeded, never worse than the base config, respects the CER limit', async () => {
  const text = excerpt(essay, 2500);
  const run = () =>
    searchConfig(text, DEFAULT_CONFIG, {
      profile: 'qwen2.5-vl',
      maxCer: 0.05,
      generations: 2,
      population: 3,
      seed: 0,
      sampleChars: 600,
    });
  const result = await run();
  assert.ok(result.best, 'a feasible config exists (the base config is feasible)');
  assert.ok(result.best!.cer <= 0.05);
  assert.ok(
    result.best!.compression > result.baseline.compression,
    `best ${result.best!.compression} vs baseline ${result.baseline.compression}`,
  );
  assert.equal(result.evaluated.length, 6);
  assert.deepEqual(result.evaluated[0]!.genome, {
    dpi: 72,
    fontSize: 9,
    lineExtra: 1,
    marginX: 10,
    marginY: 10,
    horizontalScale: 1,
    alignment: 'LEFT',
    pageSize: 'base',
  });
  assert.deepEqual(result.evaluated[0]!.config, DEFAULT_CONFIG);
  const again = await run();
  assert.deepEqual(
    again.evaluated.map((c) => c.genome),
    result.evaluated.map((c) => c.genome),
  );
});
