import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { EvalSample } from '../../eval/datasets.js';
import { downsampleRgb, getMethod } from '../../eval/methods.js';
import { buildPrompt } from '../../eval/models.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { repoRoot, tempDir } from '../helpers.js';

const sample = (images: EvalSample['images'], extra: Partial<EvalSample> = {}): EvalSample => ({
  id: 'x',
  question: 'Q?',
  answer: 'a',
  images,
  where: 'test:1',
  ...extra,
});

describe('pixel methods', () => {
  it('sends web-format originals untouched at K=1 and re-encodes the rest as PNG', async () => {
    const jpeg = new Uint8Array(
      await sharp({ create: { width: 30, height: 20, channels: 3, background: '#336699' } })
        .jpeg()
        .toBuffer(),
    );
    const tiff = new Uint8Array(
      await sharp({ create: { width: 30, height: 20, channels: 3, background: '#336699' } })
        .tiff()
        .toBuffer(),
    );
    const input = await getMethod('downsample').prepare(sample([{ bytes: jpeg }, { bytes: tiff }]), 1, {});
    assert.equal(input.images[0]!.mime, 'image/jpeg');
    assert.equal(input.images[0]!.bytes, jpeg);
    assert.equal(input.images[1]!.mime, 'image/png');
    assert.equal((await sharp(input.images[1]!.bytes).metadata()).format, 'png');
    assert.equal(input.pixels, 2 * 30 * 20);
  });

  it('downsamples by K per side (rounded, at least 1 px)', async () => {
    const image = { data: new Uint8Array(31 * 7 * 3).fill(200), width: 31, height: 7 };
    const half = await downsampleRgb(image, 2);
    assert.deepEqual([half.width, half.height], [16, 4]);
    const tiny = await downsampleRgb(image, 10);
    assert.deepEqual([tiny.width, tiny.height], [3, 1]);
    assert.equal(tiny.data[0], 200);
    const png = new Uint8Array(
      await sharp({ create: { width: 40, height: 30, channels: 3, background: '#000' } })
        .png()
        .toBuffer(),
    );
    const input = await getMethod('downsample').prepare(sample([{ bytes: png }]), 4, {});
    assert.deepEqual([input.images[0]!.width, input.images[0]!.height, input.pixels], [10, 8, 80]);
  });

  it('names a corrupt image file', async () => {
    const dir = tempDir('vtc-methods-');
    writeFileSync(join(dir, 'bad.png'), 'not an image');
    await assert.rejects(
      getMethod('downsample').prepare(sample([{ path: join(dir, 'bad.png') }]), 2, {}),
      /bad\.png: not a readable image/,
    );
  });

  it('knows which inputs each method handles', () => {
    assert.equal(
      getMethod('glyph').unsupported(sample([{ bytes: new Uint8Array(1) }])),
      'glyph renders text-only inputs',
    );
    assert.equal(getMethod('glyph').unsupported(sample([], { text: 'hello' })), undefined);
    assert.equal(getMethod('keyframes').unsupported(sample([])), 'keyframes needs a video input');
    assert.equal(getMethod('pool').level, 'token');
    assert.throws(() => getMethod('fastv'), /unknown method "fastv"/);
  });

  it('video reducers (evs, fastvid) take a video input: its uniform frames as one frame token set', async () => {
    assert.equal(
      getMethod('evs').unsupported(sample([{ bytes: new Uint8Array(1) }])),
      'evs (token level, video) needs a video input',
    );
    assert.equal(getMethod('fastvid').unsupported(sample([], { video: 'v.mp4' })), undefined);
    assert.equal(
      getMethod('cdpruner').unsupported(sample([], { video: 'v.mp4' })),
      'cdpruner (token level) needs image inputs',
    );
    const video = sample([], { video: join(repoRoot, 'samples', 'video', 'scenes.mp4') });
    // 4 frames × 576 patch tokens at K = 2 (R = 1/4): evs keeps max(576, round(2304/4)) = 576 rows in one block.
    const input = await getMethod('evs').prepare(video, 2, { encoder: createPatchEncoder(), videoFrames: 4 });
    assert.equal(input.embeds.length, 1);
    assert.deepEqual([input.embeds[0]!.shape[0], input.tokens], [576, 576]);
  });

  it('token-level methods need an encoder', async () => {
    await assert.rejects(
      getMethod('pool').prepare(sample([{ bytes: new Uint8Array(1) }]), 2, {}),
      /method pool is token level: give a vision encoder/,
    );
  });
});

describe('prompts', () => {
  it('builds lmms-eval style prompts', () => {
    assert.equal(
      buildPrompt({ question: 'Colour?', options: ['red', 'blue'] }),
      "Colour?\nA. red\nB. blue\nAnswer with the option's letter from the given choices directly.",
    );
    assert.equal(buildPrompt({ question: 'Total?' }), 'Total?\nAnswer the question using a single word or phrase.');
  });
});
