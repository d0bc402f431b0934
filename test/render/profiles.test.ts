import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../core/errors.js';
import { claudeTokens, geminiTokens, getProfile, gpt4oTokens, profileNames, smartResize, visionTokens } from '../../render/profiles.js';

const QWEN = { factor: 28, minPixels: 3136, maxPixels: 12845056 };

test('smartResize matches transformers Qwen2-VL smart_resize (values from the Python formula)', () => {
  assert.deepEqual(smartResize(595, 842, QWEN), [588, 840]);
  assert.deepEqual(smartResize(4000, 3000, QWEN), [4004, 2996]);
  assert.deepEqual(smartResize(20, 20, QWEN), [56, 56]); // below min_pixels: scaled up
  assert.deepEqual(smartResize(5000, 10000, QWEN), [2520, 5068]); // above max_pixels: scaled down
  assert.deepEqual(smartResize(900, 30, QWEN), [896, 28]);
  assert.deepEqual(smartResize(42, 70, QWEN), [56, 56]); // 42/28 = 1.5 and 70/28 = 2.5 round half to even → 2
});

test('qwen2.5-vl / qwen2-vl / glm-4.1v: one token per 28×28 px', () => {
  assert.equal(visionTokens('qwen2.5-vl', 595, 842), 21 * 30);
  assert.equal(visionTokens('qwen2-vl', 4000, 3000), 143 * 107);
  assert.equal(visionTokens('glm-4.1v', 595, 842), 630);
  assert.equal(visionTokens('glm-4.1v', 20, 20), 16); // min 112×112 → 4×4 tokens
});

test('llava-1.5 spends 576 tokens on any image', () => {
  assert.equal(visionTokens('llava-1.5', 595, 842), 576);
  assert.equal(visionTokens('llava-1.5', 1, 1), 576);
});

test('llava-next uses the AnyRes count (DESIGN: 640x480 → 2340, 1280x720 → 1948)', () => {
  assert.equal(visionTokens('llava-next', 640, 480), 2340);
  assert.equal(visionTokens('llava-next', 1280, 720), 1948);
});

test('gpt-4o reproduces the OpenAI pricing-guide examples', () => {
  assert.equal(gpt4oTokens(1024, 1024), 765); // 768² → 4 tiles
  assert.equal(gpt4oTokens(2048, 4096), 1105); // 768×1536 → 6 tiles
  assert.equal(gpt4oTokens(512, 512), 255); // 1 tile, no upscaling
});

test('claude: w·h/750 with the 1568 px / 1.15 MP cap', () => {
  assert.equal(claudeTokens(1092, 1092), 1590); // Anthropic docs table: ~1590
  assert.equal(claudeTokens(200, 200), 54); // 40000/750 = 53.3 → 54
  assert.equal(claudeTokens(4000, 4000), 1599); // scaled to 1095×1095 (≤ 1.2 MP) → 1598.7 → 1599
  assert.equal(claudeTokens(3136, 200), 210); // long edge 3136 → 1568×100 → 209.07 → 210
});

test('gemini: 258 per image ≤ 384 px, else 258 per 768×768 tile', () => {
  assert.equal(geminiTokens(384, 384), 258);
  assert.equal(geminiTokens(595, 842), 516);
  assert.equal(geminiTokens(1600, 800), 3 * 2 * 258);
});

test('unknown profile names and bad sizes are usage errors', () => {
  assert.throws(() => getProfile('qwen3'), (e: unknown) => e instanceof UsageError && /unknown vision profile "qwen3" \(expected one of: qwen2-vl, /.test(e.message));
  assert.throws(() => visionTokens('qwen2.5-vl', 0, 10), UsageError);
  assert.throws(() => visionTokens('qwen2.5-vl', 10.5, 10), UsageError);
  assert.deepEqual(profileNames(), ['qwen2-vl', 'qwen2.5-vl', 'glm-4.1v', 'llava-1.5', 'llava-next', 'gpt-4o', 'claude', 'gemini']);
});
