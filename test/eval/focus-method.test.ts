import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import sharp from 'sharp';
import { getMethod, methodNames } from '../../eval/methods.js';
import type { EvalSample } from '../../eval/datasets.js';
import { getProfile } from '../../profiles/index.js';
import { repoRoot } from '../helpers.js';

test('eval focus runs at the token budget downsample spends at the same K', async () => {
  assert.ok(methodNames().includes('focus'));
  const path = join(repoRoot, 'samples', 'bench', 'detail', 'images', 'label_001.png');
  const sample: EvalSample = {
    id: 'x',
    question: 'What is the "Lot" number on the sticker?',
    answer: '7607',
    images: [{ path }],
    where: 'test',
  };
  const profile = getProfile('qwen2.5-vl');
  for (const k of [2, 3]) {
    const input = await getMethod('focus').prepare(sample, k, { profile: 'qwen2.5-vl' });
    // 1024×768 downsampled by K: the budget focus gets.
    const budget = profile.tokens(Math.round(1024 / k), Math.round(768 / k));
    const billed = input.images.reduce((s, i) => s + profile.tokens(i.width, i.height), 0);
    assert.equal(input.tokens, billed);
    assert.ok(billed <= budget, `K=${k}: ${billed} > ${budget}`);
    assert.ok(input.images.length >= 2, 'a thumbnail and at least one region');
    for (const image of input.images) {
      const meta = await sharp(image.bytes).metadata();
      assert.deepEqual([meta.width, meta.height], [image.width, image.height]);
    }
  }
  assert.equal(getMethod('focus').unsupported({ ...sample, images: [], text: 'abc' }), 'focus needs image inputs');
  // K = 1 is the uncompressed input, as for every pixel method.
  const full = await getMethod('focus').prepare(sample, 1, {});
  assert.deepEqual(
    full.images.map((i) => [i.width, i.height]),
    [[1024, 768]],
  );
});
