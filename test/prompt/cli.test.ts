import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { saveTokens } from '../../encoders/tokenfile.js';
import { QWEN_TOKEN_IDS } from '../../prompt/qwen.js';
import { runCli, tempDir } from '../helpers.js';
import { qwenTokens } from './fixtures.js';

const dir = tempDir('vtc-prompt-');
after(() => rmSync(dir, { recursive: true, force: true }));

test("vtc reduce --method pool on a Qwen image, then vtc prompt --json: pads at the kept tokens' positions", async () => {
  await saveTokens(join(dir, 'image.safetensors'), qwenTokens('image', [1, 8, 8]));
  const reduced = await runCli([
    'reduce',
    '--in',
    join(dir, 'image.safetensors'),
    '--method',
    'pool',
    '--ratio',
    '0.25',
    '--out',
    join(dir, 'pooled.safetensors'),
    '--json',
  ]);
  assert.equal(reduced.code, 0, reduced.stderr);
  writeFileSync(
    join(dir, 'conv.json'),
    JSON.stringify({
      family: 'qwen2.5-vl',
      segments: [{ ids: [100, 101] }, { image: 'pooled.safetensors' }, { ids: [102] }],
    }),
  );
  const result = await runCli(['prompt', join(dir, 'conv.json'), '--json', '--out', join(dir, 'plan.json')]);
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as {
    input_ids: number[];
    position_ids: number[][];
    rope_delta: number;
    blocks: { rows: number[]; base: number; grid: number[] }[];
  };
  const { visionStart: VS, visionEnd: VE, imagePad: IP } = QWEN_TOKEN_IDS;
  assert.deepEqual(plan.input_ids, [100, 101, VS, IP, IP, IP, IP, VE, 102]);
  // 2×2 pooling keeps each cell's top-left position: (0,0,0), (0,0,2), (0,2,0), (0,2,2) from base 3
  assert.deepEqual(plan.position_ids, [
    [0, 1, 2, 3, 3, 3, 3, 6, 7],
    [0, 1, 2, 3, 3, 5, 5, 6, 7],
    [0, 1, 2, 3, 5, 3, 5, 6, 7],
  ]);
  assert.equal(plan.rope_delta, 8 - 9);
  assert.deepEqual(plan.blocks[0]!.grid, [1, 8, 8]);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')), plan);
  const human = await runCli(['prompt', join(dir, 'conv.json')]);
  assert.match(human.stdout, /qwen2\.5-vl: 9 tokens, 4 visual in 1 block\(s\), rope delta -1/);
});

test('vtc prompt, qwen3-vl video with text: the built-in Qwen tokenizer encodes the chat text and "<t seconds>" per frame', async () => {
  await saveTokens(join(dir, 'video.safetensors'), qwenTokens('video', [2, 4, 4], [0.25, 1.25]));
  writeFileSync(
    join(dir, 'video.json'),
    JSON.stringify([{ text: '<|im_start|>user\n' }, { video: 'video.safetensors' }]),
  );
  const result = await runCli(['prompt', join(dir, 'video.json'), '--family', 'qwen3-vl', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as {
    input_ids: number[];
    position_ids: number[][];
    blocks: { timestamp: string; base: number }[];
  };
  const { visionStart: VS, visionEnd: VE, videoPad: VP } = QWEN_TOKEN_IDS;
  // "<0.2 seconds>" = < 0 . 2 ␣seconds > (Qwen digits are single tokens)
  const first = [27, 15, 13, 17, 6486, 29];
  const second = [27, 16, 13, 17, 6486, 29];
  assert.deepEqual(plan.input_ids, [
    151644,
    872,
    198,
    ...first,
    VS,
    VP,
    VP,
    VP,
    VP,
    VE,
    ...second,
    VS,
    VP,
    VP,
    VP,
    VP,
    VE,
  ]);
  assert.deepEqual(
    plan.blocks.map((b) => [b.timestamp, b.base]),
    [
      ['<0.2 seconds>', 10],
      ['<1.2 seconds>', 20],
    ],
  );
  assert.deepEqual(plan.position_ids[1]!.slice(9, 16), [9, 10, 10, 11, 11, 12, 13]);
});

test('vtc prompt errors: usage (exit 2) for a bad family or a mismatch, input (exit 1) naming the field', async () => {
  await saveTokens(join(dir, 'img.safetensors'), qwenTokens('image', [1, 4, 4]));
  writeFileSync(join(dir, 'bad-grid.json'), JSON.stringify([{ image: 'img.safetensors', grid: [1, 2, 2] }]));
  const grid = await runCli(['prompt', join(dir, 'bad-grid.json'), '--family', 'qwen3-vl']);
  assert.equal(grid.code, 1);
  assert.match(grid.stderr, /segment 0: 4 tokens but image_grid_thw 1,2,2 holds 1·1·1 = 1 merged tokens/);
  const family = await runCli(['prompt', join(dir, 'bad-grid.json'), '--family', 'llava']);
  assert.equal(family.code, 2);
  assert.match(family.stderr, /--family must be one of qwen2\.5-vl, qwen3-vl, got "llava"/);
  writeFileSync(join(dir, 'mismatch.json'), JSON.stringify({ family: 'qwen3-vl', segments: [] }));
  const mismatch = await runCli(['prompt', join(dir, 'mismatch.json'), '--family', 'qwen2.5-vl']);
  assert.equal(mismatch.code, 2);
  assert.match(mismatch.stderr, /--family qwen2\.5-vl but .* says family qwen3-vl/);
  writeFileSync(join(dir, 'two.json'), JSON.stringify([{ image: 'img.safetensors', ids: [1] }]));
  const two = await runCli(['prompt', join(dir, 'two.json'), '--family', 'qwen3-vl']);
  assert.equal(two.code, 1);
  assert.match(two.stderr, /segments\[0\]: give exactly one of text, ids, image, video \(got ids and image\)/);
  const missing = await runCli(['prompt', join(dir, 'nope.json'), '--family', 'qwen3-vl']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.json: file not found/);
});
