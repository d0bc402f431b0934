import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTokenSet, type TokenSet } from '../../core/tokenset.js';
import { saveTokens } from '../../encoders/tokenfile.js';
import { planQwenPrompt } from '../../prompt/qwen.js';
import { reduce } from '../../reducers/index.js';
import { runCli, tempDir } from '../helpers.js';
import { qwenTokens } from '../prompt/fixtures.js';

/**
 * A Qwen3-VL video of 2 temporal patches, each a 2×2 merged grid (video_grid_thw 2,4,4), d = 2.
 * Frame 1 repeats frame 0 exactly, so a merge over the whole set pairs tokens across frames.
 * DeepStack: one extra tensor of width 1 holding 10·(input index).
 */
function qwen3Video(): TokenSet {
  const base = qwenTokens('video', [2, 4, 4], [0.5, 1.5]);
  const frame = [1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9];
  return createTokenSet({
    ...base,
    data: Float32Array.from([...frame, ...frame]),
    extra: { deepstack_0: Float32Array.from({ length: 8 }, (_, i) => 10 * i) },
    meta: { ...base.meta, family: 'qwen3-vl' },
  });
}

test('a merge across frames of a qwen3-vl video is refused, naming the token, the frames and the field', async () => {
  await assert.rejects(
    reduce(qwen3Video(), 'tome', { ratio: 0.5 }),
    (e: Error & { code?: string }) =>
      e.code === 'E_CROSS_FRAME' &&
      /^tome: output token \d merges tokens of frames 0 and 1 \(source\), but qwen3-vl places each frame in its own block \(video_grid_thw 2,4,4\); reduce per frame \(--per-frame, library: perFrame: true\)/.test(
        e.message,
      ),
  );
});

test('perFrame: tome merges within each frame only; assign, representatives, positions and DeepStack follow', async () => {
  const stages: string[] = [];
  const result = await reduce(qwen3Video(), 'tome', {
    ratio: 0.5,
    perFrame: true,
    onProgress: ({ stage, done, total }) => stages.push(`${stage} ${done}/${total}`),
  });
  // One report per frame; tome's own rounds inside a frame are not passed on.
  assert.deepEqual(stages, ['frames 1/2', 'frames 2/2']);
  // Each frame holds tokens (1,0), (0.9,0.1), (0,1), (0.1,0.9): A = local {0, 2}, B = {1, 3}; A0's best is B1 and A2's is
  // B3 (cos 0.994 each), r = 2, so both merge: outputs {0, 1} and {2, 3} per frame, destinations the B tokens.
  assert.deepEqual([...result.assign!], [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.deepEqual([...result.representative!], [1, 3, 5, 7]);
  assert.deepEqual(result.stats.kept_per_frame, [2, 2]);
  assert.equal(result.stats.per_frame, true);
  const { tokens } = result;
  assert.deepEqual([...tokens.source], [0, 0, 1, 1]);
  // Positions are the representatives' (t, h, w): token 1 = (0, 0, 1), 3 = (0, 1, 1), 5 = (1, 0, 1), 7 = (1, 1, 1).
  assert.deepEqual([...tokens.positions!], [0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1]);
  assert.deepEqual(
    tokens.origin.map((o) => [...o]),
    [
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ],
  );
  // DeepStack rows are size-weighted means of the members, like the features: (0 + 10) / 2, (20 + 30) / 2, …
  assert.deepEqual([...tokens.extra!.deepstack_0!], [5, 25, 45, 65]);
  assert.deepEqual([...tokens.size], [2, 2, 2, 2]);
});

test('perFrame budget split: even with the remainder to the first frames; below one per frame is an error', async () => {
  const three = await reduce(qwen3Video(), 'random', { budget: 3, perFrame: true, seed: 1 });
  assert.deepEqual(three.stats.kept_per_frame, [2, 1]);
  assert.equal(three.keep!.length, 3);
  assert.ok(three.keep!.slice(0, 2).every((i) => i < 4) && three.keep![2]! >= 4);
  await assert.rejects(
    reduce(qwen3Video(), 'random', { budget: 1, perFrame: true }),
    /random: budget 1 is smaller than the number of frames \(2\); each frame keeps at least one token/,
  );
  await assert.rejects(
    reduce(qwen3Video(), 'evs', { ratio: 0.5, perFrame: true }),
    /evs: per-frame reduction runs the method on one frame at a time, but evs works on several frames together/,
  );
  await assert.rejects(
    reduce(qwen3Video(), 'random', { ratio: 0.5, perFrame: 'yes' as unknown as boolean }),
    /random: perFrame must be true or false, got "yes"/,
  );
  const image = qwenTokens('image', [1, 4, 4]);
  await assert.rejects(
    reduce(image, 'random', { ratio: 0.5, perFrame: true }),
    /random: per-frame reduction needs a video token set whose sources are frames, got a source of kind image/,
  );
});

/** Timestamps only need some ids here: one per character. */
const oneIdPerCharacter = { encode: (text: string) => [...text].map((c) => c.charCodeAt(0)) };

test('a global selection that empties a qwen3-vl frame is reported; the prompt plan then drops that frame, per-frame keeps both', async () => {
  const video = qwen3Video();
  const global = await reduce(video, 'random', { budget: 1, seed: 3 });
  const keptFrame = global.keep![0]! < 4 ? 0 : 1;
  assert.deepEqual(global.stats.warnings, [
    `random: frames ${1 - keptFrame} kept no tokens; the qwen3-vl prompt plan drops their timestamp and vision block (keepEmptyFrames keeps them; per-frame reduction keeps a token in every frame)`,
  ]);
  const dropped = planQwenPrompt([{ type: 'video', tokens: global.tokens }], {
    family: 'qwen3-vl',
    tokenizer: oneIdPerCharacter,
  });
  assert.deepEqual(
    dropped.blocks.map((b) => b.frame),
    [keptFrame],
  );
  const perFrame = await reduce(video, 'random', { budget: 2, seed: 3, perFrame: true });
  assert.deepEqual(perFrame.stats.warnings, []);
  const both = planQwenPrompt([{ type: 'video', tokens: perFrame.tokens }], {
    family: 'qwen3-vl',
    tokenizer: oneIdPerCharacter,
  });
  assert.deepEqual(
    both.blocks.map((b) => [b.frame, b.rows.length]),
    [
      [0, 1],
      [1, 1],
    ],
  );
});

test('vtc reduce --per-frame on a qwen3-vl token file; without it a cross-frame merge exits 2 with the message', async () => {
  const dir = tempDir('vtc-per-frame-');
  const input = join(dir, 'video.safetensors');
  await saveTokens(input, qwen3Video());
  const out = join(dir, 'out.safetensors');
  const ok = await runCli([
    'reduce',
    '--in',
    input,
    '--method',
    'tome',
    '--ratio',
    '0.5',
    '--per-frame',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const json = JSON.parse(ok.stdout);
  assert.deepEqual(json.assign, [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.deepEqual(json.kept_per_frame, [2, 2]);
  assert.equal(json.n_out, 4);
  const refused = await runCli(['reduce', '--in', input, '--method', 'tome', '--ratio', '0.5', '--out', out]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /tome: output token \d merges tokens of frames 0 and 1 \(source\).*--per-frame/);
});
