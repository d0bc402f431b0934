import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { InputError, UsageError } from '../../core/errors.js';
import { planImage } from '../../ask/plan.js';
import { largestFit } from '../../ask/fit.js';
import type { EncodedTile, RgbImage, VisionEncoder } from '../../encoders/types.js';
import type { DualEncoder } from '../../video/dual-encoder.js';
import { getProfile } from '../../profiles/index.js';

/** White W×H picture with a black/white checkerboard patch at [x, y, s, s] (the only detail). */
function pictureWithPatch(width: number, height: number, x: number, y: number, side: number): RgbImage {
  const data = new Uint8Array(width * height * 3).fill(255);
  for (let r = y; r < y + side; r++)
    for (let c = x; c < x + side; c++)
      if (((r >> 2) + (c >> 2)) % 2 === 0) data.fill(0, (r * width + c) * 3, (r * width + c) * 3 + 3);
  return { data, width, height };
}

async function png(image: RgbImage): Promise<Uint8Array> {
  return new Uint8Array(
    await sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: 3 } })
      .png()
      .toBuffer(),
  );
}

async function decodedSize(bytes: Uint8Array): Promise<[number, number]> {
  const meta = await sharp(bytes).metadata();
  return [meta.width!, meta.height!];
}

test('downsample: one image at the largest size whose billed tokens fit; tokens_full is the original', async () => {
  const bytes = await png(pictureWithPatch(600, 400, 10, 10, 40));
  const plan = await planImage(bytes, { profile: 'qwen2.5-vl', budget: 100 });
  // 600×400 → smart_resize 588×392 → 21·14 = 294 tokens as it is.
  assert.equal(plan.tokens_full, 294);
  assert.equal(plan.images.length, 1);
  const fit = largestFit(600, 400, getProfile('qwen2.5-vl'), 100)!;
  const [image] = plan.images;
  assert.deepEqual([image!.width, image!.height, image!.tokens], [fit.width, fit.height, fit.tokens]);
  assert.deepEqual(image!.box, [0, 0, 600, 400]);
  assert.deepEqual(await decodedSize(image!.bytes), [fit.width, fit.height]);
  assert.ok(plan.tokens_sent <= 100 && plan.tokens_sent === fit.tokens);
  // A budget the whole image fits: the original bytes go as they are.
  const whole = await planImage(bytes, { profile: 'qwen2.5-vl', budget: 294 });
  assert.deepEqual(Buffer.from(whole.images[0]!.bytes), Buffer.from(bytes));
  // --ratio: budget = ⌊ratio · tokens_full⌋
  assert.equal((await planImage(bytes, { profile: 'qwen2.5-vl', ratio: 0.25 })).budget, 73);
});

test('focus: thumbnail plus sharper crops of the salient region, boxes in source pixels, within budget', async () => {
  const picture = pictureWithPatch(800, 600, 600, 440, 96);
  const plan = await planImage(await png(picture), { profile: 'qwen2.5-vl', budget: 150, method: 'focus' });
  assert.equal(plan.method, 'focus');
  assert.ok(plan.tokens_sent <= 150, `sent ${plan.tokens_sent}`);
  assert.equal(
    plan.tokens_sent,
    plan.images.reduce((s, i) => s + i.tokens, 0),
  );
  const [thumb, ...regions] = plan.images;
  assert.equal(thumb!.role, 'thumbnail');
  assert.deepEqual(thumb!.box, [0, 0, 800, 600]);
  assert.ok(regions.length >= 1);
  // The best region holds the only detail in the picture, at a finer scale than the thumbnail.
  const [x, y, w, h] = regions[0]!.box;
  assert.ok(
    x <= 600 + 48 && x + w >= 600 + 48 && y <= 440 + 48 && y + h >= 440 + 48,
    `region ${regions[0]!.box} misses the patch`,
  );
  assert.ok(regions[0]!.width / w > thumb!.width / 800, 'regions are sharper than the thumbnail');
  for (const image of plan.images) {
    assert.deepEqual(await decodedSize(image.bytes), [image.width, image.height]);
    assert.equal(image.tokens, getProfile('qwen2.5-vl').tokens(image.width, image.height));
  }
  assert.ok(
    plan.notes.some((n) => /query-free saliency/.test(n)),
    plan.notes.join('; '),
  );
});

test('focus says what it uses instead: no dual encoder for a question, an encoder without usable scores', async () => {
  const picture = pictureWithPatch(800, 600, 40, 40, 96);
  const flat: VisionEncoder = {
    name: 'flat',
    inputSize: 32,
    patchSize: 16,
    dim: 2,
    hasCls: false,
    async encode(images) {
      return images.map(
        (): EncodedTile => ({
          features: new Float32Array(8).fill(1),
          rows: 2,
          cols: 2,
          dim: 2,
          scores: new Float32Array(4),
        }),
      );
    },
    async dispose() {},
  };
  const plan = await planImage(picture, {
    profile: 'qwen2.5-vl',
    budget: 150,
    method: 'focus',
    question: 'What is in the corner?',
    encoder: flat,
  });
  assert.ok(
    plan.notes.includes(
      'focus: the question is not used to choose regions (no dual encoder configured); using query-free saliency',
    ),
    plan.notes.join('; '),
  );
  assert.ok(
    plan.notes.includes(
      "focus: encoder flat gives no usable token scores; using the built-in patch encoder's saliency instead",
    ),
    plan.notes.join('; '),
  );
  const [x, y] = plan.images[1]!.box;
  assert.ok(x <= 88 && y <= 88, 'the patch encoder fallback still finds the detail');
});

test('focus with a dual encoder ranks regions by the question', async () => {
  // Dark windows match the "question" embedding [1, 0]; bright ones [0, 1].
  const dual: DualEncoder = {
    name: 'stub',
    imageSize: 32,
    async embedImages(images) {
      return images.map((im) => {
        let sum = 0;
        for (const v of im.data) sum += v;
        const dark = 1 - sum / im.data.length / 255;
        const n = Math.hypot(dark, 1 - dark) || 1;
        return Float32Array.of(dark / n, (1 - dark) / n);
      });
    },
    async embedText() {
      return Float32Array.of(1, 0);
    },
    async dispose() {},
  };
  const picture = pictureWithPatch(800, 600, 680, 40, 96);
  const plan = await planImage(picture, {
    profile: 'qwen2.5-vl',
    budget: 150,
    method: 'focus',
    question: 'Where is the dark pattern?',
    dualEncoder: dual,
  });
  assert.ok(plan.notes.includes('focus: regions ranked by the question through dual encoder stub'));
  const [x, y, w, h] = plan.images[1]!.box;
  assert.ok(x <= 728 && x + w >= 728 && y <= 88 && y + h >= 88, `region ${plan.images[1]!.box}`);
});

test('glyph plans a text input at the highest dpi whose pages fit', async () => {
  const text = 'The quarterly review covers shipping delays and inventory counts. '.repeat(40);
  const plan = await planImage({ text }, { profile: 'qwen2.5-vl', budget: 300 });
  assert.equal(plan.method, 'glyph');
  assert.ok(plan.tokens_sent <= 300 && plan.tokens_sent > 0);
  assert.ok(plan.tokens_full > 400, `text tokens ${plan.tokens_full}`);
  assert.ok(plan.images.every((i) => i.role === 'page'));
  assert.match(plan.notes[0]!, /^glyph: rendered at \d+ dpi \(\d+ pages?\)$/);
});

test('bad input: budget below the minimum, unknown profile, pixel limit, wrong method, both budgets', async () => {
  const picture = pictureWithPatch(400, 300, 0, 0, 8);
  await assert.rejects(
    planImage(picture, { profile: 'qwen2.5-vl', budget: 3 }),
    (e: unknown) =>
      e instanceof UsageError &&
      /smallest image qwen2\.5-vl accepts for this 400x300 picture: 4 tokens/.test(e.message),
  );
  await assert.rejects(
    planImage(picture, { profile: 'llava-1.5', budget: 575, method: 'focus' }),
    (e: unknown) => e instanceof UsageError && /: 576 tokens/.test(e.message),
  );
  await assert.rejects(
    planImage(picture, { profile: 'gpt-5', budget: 300 }),
    (e: unknown) =>
      e instanceof UsageError && /unknown vision profile "gpt-5" \(expected one of: qwen2-vl/.test(e.message),
  );
  await assert.rejects(
    planImage(await png(picture), { budget: 300, maxPixels: 1000 }),
    (e: unknown) => e instanceof InputError && e.code === 'E_PIXEL_LIMIT',
  );
  await assert.rejects(
    planImage(picture, { budget: 300, method: 'glyph' }),
    (e: unknown) => e instanceof UsageError && /method glyph does not apply to a image input/.test(e.message),
  );
  await assert.rejects(planImage(picture, { budget: 300, ratio: 0.5 }), /either a token budget or a ratio/);
  await assert.rejects(planImage(picture, { ratio: 1.5 }), /ratio must be in \(0, 1\], got 1\.5/);
  await assert.rejects(
    planImage(new Uint8Array([1, 2, 3]), { budget: 300 }),
    (e: unknown) => e instanceof InputError && /not a readable image/.test(e.message),
  );
});

test('several images share one budget in proportion to their full cost', async () => {
  const a = pictureWithPatch(800, 600, 0, 0, 8);
  const b = pictureWithPatch(200, 150, 0, 0, 8);
  const plan = await planImage([a, b], { profile: 'qwen2.5-vl', budget: 200 });
  assert.equal(plan.images.length, 2);
  assert.deepEqual(
    plan.images.map((i) => i.source),
    [0, 1],
  );
  assert.ok(plan.tokens_sent <= 200);
  assert.ok(plan.images[0]!.tokens > plan.images[1]!.tokens);
  assert.equal(plan.tokens_full, getProfile('qwen2.5-vl').tokens(800, 600) + getProfile('qwen2.5-vl').tokens(200, 150));
});

test('planImage agrees with the providers published examples', async () => {
  const flat = (width: number, height: number): RgbImage => ({
    data: new Uint8Array(width * height * 3).fill(200),
    width,
    height,
  });
  const square = await planImage(flat(1024, 1024), { profile: 'gpt-4o', budget: 765 });
  assert.deepEqual([square.tokens_full, square.tokens_sent, square.images[0]!.width], [765, 765, 1024]); // 768² → 4 tiles
  const smaller = await planImage(flat(1024, 1024), { profile: 'gpt-4o', budget: 764 });
  assert.deepEqual([smaller.tokens_sent, smaller.images[0]!.width, smaller.images[0]!.height], [255, 512, 512]);
  const patches = await planImage(flat(1800, 2400), { profile: 'gpt-4.1-mini', budget: 5000 });
  assert.equal(patches.tokens_full, 2353); // 1452 patches × 1.62, rounded up
  assert.deepEqual([patches.images[0]!.width, patches.images[0]!.height], [1800, 2400]);
  const low = await planImage(flat(1024, 1024), { profile: 'gpt-4o-low', budget: 85 });
  assert.deepEqual([low.tokens_full, low.tokens_sent, low.images[0]!.width], [85, 85, 1024]);
});
