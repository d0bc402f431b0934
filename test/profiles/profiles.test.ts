import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../core/errors.js';
import {
  claudeImage,
  claudeTokens,
  geminiTokens,
  getProfile,
  glmResize,
  gpt4oTokens,
  openaiPatchImage,
  processedImage,
  profileNames,
  smartResize,
  visionTokens,
} from '../../profiles/index.js';

const QWEN = { factor: 28, minPixels: 3136, maxPixels: 12845056 };

test('smartResize matches transformers Qwen2-VL smart_resize (values from the Python formula)', () => {
  assert.deepEqual(smartResize(595, 842, QWEN), [588, 840]);
  assert.deepEqual(smartResize(4000, 3000, QWEN), [4004, 2996]);
  assert.deepEqual(smartResize(20, 20, QWEN), [56, 56]); // below min_pixels: scaled up
  assert.deepEqual(smartResize(5000, 10000, QWEN), [2520, 5068]); // above max_pixels: scaled down
  assert.deepEqual(smartResize(900, 30, QWEN), [896, 28]);
  assert.deepEqual(smartResize(42, 70, QWEN), [56, 56]); // 42/28 = 1.5 and 70/28 = 2.5 round half to even → 2
});

test('qwen2.5-vl / qwen2-vl: one token per 28×28 px', () => {
  assert.equal(visionTokens('qwen2.5-vl', 595, 842), 21 * 30);
  assert.equal(visionTokens('qwen2-vl', 4000, 3000), 143 * 107);
  assert.deepEqual(processedImage('qwen2.5-vl', 595, 842), { width: 588, height: 840, tokens: 630 });
});

test('qwen3-vl: factor 32 (patch 16 × merge 2), min 65536 / max 16777216 px', () => {
  assert.deepEqual(processedImage('qwen3-vl', 1024, 768), { width: 1024, height: 768, tokens: 32 * 24 });
  // 120×90 rounds to 128×96 = 12288 px < 65536: β = √(65536/10800) → ⌈9.24⌉·32 × ⌈6.93⌉·32
  assert.deepEqual(processedImage('qwen3-vl', 120, 90), { width: 320, height: 224, tokens: 70 });
});

test("glm-4.1v uses GLM's own smart_resize (two temporal frames against the pixel bounds)", () => {
  // 595×842 → 588×840; 2·588·840 is inside [12544, 9633792] → 21·30 tokens
  assert.equal(visionTokens('glm-4.1v', 595, 842), 630);
  // 20×20: sides below 28 scale up to 28×28; 2·28·28 < 12544 → β = √8 → ⌈2.83⌉·28 = 84
  assert.deepEqual(glmResize(20, 20), { width: 84, height: 84, tokens: 9 });
  // 4000×3000: 2·4004·2996 > 9633792 → β = √(2·12e6 / 9633792) → ⌊90.5⌋·28 × ⌊67.9⌋·28
  assert.deepEqual(glmResize(4000, 3000), { width: 2520, height: 1876, tokens: 90 * 67 });
});

test('llava-1.5 spends 576 tokens on any image; llava-next uses the AnyRes count', () => {
  assert.equal(visionTokens('llava-1.5', 595, 842), 576);
  assert.equal(visionTokens('llava-1.5', 1, 1), 576);
  assert.equal(visionTokens('llava-next', 640, 480), 2340);
  assert.equal(visionTokens('llava-next', 1280, 720), 1948);
  assert.deepEqual(processedImage('llava-next', 640, 480), { width: 672, height: 672, tokens: 2340 });
});

test('OpenAI tile models reproduce the images guide examples', () => {
  assert.equal(gpt4oTokens(1024, 1024), 765); // 768² → 4 tiles
  assert.deepEqual(processedImage('gpt-4o', 2048, 4096), { width: 768, height: 1536, tokens: 1105 }); // 1024×2048 → 768×1536 → 6 tiles
  assert.equal(visionTokens('gpt-4o-low', 4096, 8192), 85); // detail low: fixed
  assert.equal(visionTokens('gpt-4.1', 1024, 1024), 765);
  assert.equal(gpt4oTokens(512, 512), 255); // 1 tile, no upscaling
  assert.equal(visionTokens('gpt-4o-mini', 1024, 1024), 2833 + 4 * 5667);
  assert.equal(visionTokens('o3', 1024, 1024), 75 + 4 * 150);
  assert.equal(getProfile('gpt-4o').detail, 'high');
  assert.equal(getProfile('gpt-4o-low').detail, 'low');
});

test('OpenAI patch models reproduce the guide examples (1024² → 1024 patches, 1800×2400 → 1452)', () => {
  assert.deepEqual(openaiPatchImage(1024, 1024, 1), { width: 1024, height: 1024, tokens: 1024 });
  // √(32²·1536 / (1800·2400)) = 0.603 → 1086×1448 → ×33/33.94 → 1056×1408 → 33·44 patches
  assert.deepEqual(openaiPatchImage(1800, 2400, 1), { width: 1056, height: 1408, tokens: 1452 });
  assert.equal(visionTokens('gpt-4.1-mini', 1024, 1024), Math.ceil(1024 * 1.62)); // 1659
  assert.equal(visionTokens('gpt-4.1-nano', 1800, 2400), 3572); // ⌈1452 · 2.46⌉
  assert.equal(visionTokens('o4-mini', 1800, 2400), 2498); // ⌈1452 · 1.72⌉
  // The cap holds for any size: never more than 1536 patches.
  for (const [w, h] of [
    [8000, 8000],
    [8000, 1],
    [1, 8000],
    [3001, 4097],
    [1537 * 32, 32],
  ] as const) {
    const p = openaiPatchImage(w, h, 1);
    assert.ok(p.tokens <= 1536, `${w}x${h} → ${p.tokens} patches`);
  }
});

test('claude: w·h/750 with the 1568 px / ~1600-token cap (Anthropic examples and table)', () => {
  assert.equal(claudeTokens(1092, 1092), 1590); // docs: ~1590
  assert.equal(claudeTokens(200, 200), 54); // docs: ~54
  assert.equal(claudeTokens(1000, 1000), 1334); // docs: ~1334
  assert.equal(claudeTokens(4000, 4000), 1599); // scaled to 1095×1095 (≤ 1.2 MP)
  assert.equal(claudeTokens(3136, 200), 210); // long edge 3136 → 1568×100 → 209.07 → 210
  // The published "not resized" sizes per aspect ratio: within 1.5% per side of our rule.
  for (const [w, h] of [
    [1092, 1092],
    [951, 1268],
    [896, 1344],
    [819, 1456],
    [784, 1568],
  ] as const) {
    const p = claudeImage(w, h);
    assert.ok(
      Math.abs(p.width - w) / w <= 0.015 && Math.abs(p.height - h) / h <= 0.015,
      `${w}x${h} → ${p.width}x${p.height}`,
    );
  }
});

test('gemini: 258 per image ≤ 384 px, else 258 per 768×768 tile; Gemini 3 levels are fixed', () => {
  assert.equal(geminiTokens(384, 384), 258);
  assert.equal(geminiTokens(595, 842), 516);
  assert.equal(geminiTokens(1600, 800), 3 * 2 * 258);
  assert.equal(visionTokens('gemini-3-low', 4000, 3000), 280);
  assert.equal(visionTokens('gemini-3-medium', 10, 10), 560);
  assert.equal(visionTokens('gemini-3-high', 1024, 1024), 1120);
  assert.equal(getProfile('gemini-3-high').fixedCost, true);
});

test('every profile bills integer tokens ≥ 1 and a processed size ≥ 1 on extreme sizes', () => {
  for (const name of profileNames()) {
    for (const [w, h] of [
      [1, 1],
      [1, 199],
      [199, 1],
      [8000, 8000],
      [8000, 41],
      [41, 8000],
      [333, 777],
    ] as const) {
      const p = processedImage(name, w, h);
      assert.ok(Number.isInteger(p.tokens) && p.tokens >= 1, `${name} ${w}x${h}: tokens ${p.tokens}`);
      assert.ok(
        Number.isInteger(p.width) && p.width >= 1 && Number.isInteger(p.height) && p.height >= 1,
        `${name} ${w}x${h}: ${p.width}x${p.height}`,
      );
    }
  }
});

test('unknown profile names and bad sizes are usage errors', () => {
  assert.throws(
    () => getProfile('qwen3'),
    (e: unknown) =>
      e instanceof UsageError && /unknown vision profile "qwen3" \(expected one of: qwen2-vl, /.test(e.message),
  );
  assert.throws(() => visionTokens('qwen2.5-vl', 0, 10), UsageError);
  assert.throws(() => visionTokens('qwen2.5-vl', 10.5, 10), UsageError);
  assert.deepEqual(profileNames().slice(0, 6), [
    'qwen2-vl',
    'qwen2.5-vl',
    'qwen3-vl',
    'glm-4.1v',
    'llava-1.5',
    'llava-next',
  ]);
});
