import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeNpy } from '../../core/npy.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { getMethod, methodNames } from '../../eval/methods.js';
import { Rng } from '../../core/rng.js';
import { createTokenSet, type TokenSet } from '../../core/tokenset.js';
import { reduceFramesFile } from '../../encoders/frame-reduce.js';
import { encodeTokens, loadTokens, saveTokens } from '../../encoders/tokenfile.js';
import { getReducer, reduce } from '../../reducers/index.js';
import { runReducer } from '../../reducers/run.js';
import { temporalMergeFrames } from '../../reducers/temporal-merge.js';
import { samplesRoot } from '../../samples/paths.js';
import { fixture, runCli, tempDir } from '../helpers.js';

const dir = tempDir();

/**
 * Four frames of P = 2 patches × d = 2, by hand:
 *   f0 = (1,0 | 1,0), f1 = (1,1 | 1,0), f2 = (0,1 | 0,1), f3 = (0,1 | 1,1).
 * Adjacent similarities (mean per-patch cosine): s01 = (1/√2 + 1)/2, s12 = (1/√2 + 0)/2, s23 = (1 + 1/√2)/2.
 * s01 = s23 tie → the earlier pair merges first: H01 = (1,½ | 1,0); s(H01, f2) = (½/√1.25 + 0)/2.
 * Then f2, f3 (s23 is now the largest): H23 = (0,1 | ½,1). s(H01, H23) = (½/√1.25 + ½/√1.25)/2 = 1/√5.
 * Down to one frame: H = (½,¾ | ¾,½).
 */
function handVideo(): TokenSet {
  const data = Float32Array.of(1, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1);
  const sources = [0, 1, 2, 3].map((index) => ({ kind: 'frame' as const, index, rows: 1, cols: 2, time: index }));
  const source = Int32Array.of(0, 0, 1, 1, 2, 2, 3, 3);
  return createTokenSet({ data, n: 8, d: 2, sources, source });
}

const s01 = (Math.SQRT1_2 + 1) / 2;

test('temporal-merge by hand: merge order, (Ha + Hb)/2 values, assign, representative, sizes', async () => {
  const two = await reduce(handVideo(), 'temporal-merge', { budget: 4 });
  assert.deepEqual(two.stats.groups, [
    [0, 1],
    [2, 3],
  ]);
  assert.deepEqual(two.stats.merged_similarities, [s01, s01]);
  assert.deepEqual(Array.from(two.tokens.data), [1, 0.5, 1, 0, 0, 1, 0.5, 1]);
  assert.deepEqual(Array.from(two.assign!), [0, 1, 0, 1, 2, 3, 2, 3]);
  assert.deepEqual(Array.from(two.representative!), [0, 1, 4, 5]);
  assert.deepEqual(Array.from(two.tokens.size), [2, 2, 2, 2]);
  assert.deepEqual(Array.from(two.tokens.source), [0, 0, 2, 2]);
  assert.deepEqual(
    [two.stats.budget, two.stats.frames_in, two.stats.frames_out, two.stats.tokens_per_frame],
    [4, 4, 2, 2],
  );
  assert.deepEqual(two.stats.warnings, []);

  const one = await reduce(handVideo(), 'temporal-merge', { budget: 2 });
  assert.deepEqual(one.stats.groups, [[0, 1, 2, 3]]);
  const third = one.stats.merged_similarities as number[];
  assert.deepEqual(third.slice(0, 2), [s01, s01]);
  assert.ok(Math.abs(third[2]! - 1 / Math.sqrt(5)) < 1e-12, `third merge at ${third[2]}`);
  assert.deepEqual(Array.from(one.tokens.data), [0.5, 0.75, 0.75, 0.5]);
  assert.deepEqual(Array.from(one.assign!), [0, 1, 0, 1, 0, 1, 0, 1]);

  // Three frames: only the first merge (the tie goes to frames 0 and 1).
  const three = await reduce(handVideo(), 'temporal-merge', { budget: 6 });
  assert.deepEqual(three.stats.groups, [[0, 1], [2], [3]]);
});

test('budget → frames: ⌊budget / tokens per frame⌋; a ratio below one frame keeps one (warned), a budget below one frame is refused', async () => {
  assert.deepEqual(temporalMergeFrames(3600, 196, { ratio: 0.1 }), { frames: 360, budget: 70560, ratio: 0.1 });
  assert.deepEqual(temporalMergeFrames(4, 2, { budget: 5 }), { frames: 2, budget: 4, ratio: 5 / 8 });
  // ratio 0.5 on 8 tokens: budget 4 → 2 frames.
  assert.equal((await reduce(handVideo(), 'temporal-merge', { ratio: 0.5 })).tokens.n, 4);
  // ratio 0.1: budget max(1, round(0.8)) = 1 token, below a frame → one frame, and the run says so.
  const floor = await runReducer(getReducer('temporal-merge'), handVideo(), { ratio: 0.1 });
  assert.equal(floor.n_out, 2);
  assert.deepEqual(floor.warnings, [
    "temporal-merge: the method's own budget rule keeps 2 tokens, more than the 1 asked for (docs/methods.md: at least one frame)",
  ]);
  await assert.rejects(
    reduce(handVideo(), 'temporal-merge', { budget: 1 }),
    (e: Error & { code?: string }) =>
      e.code === 'E_RANGE' &&
      e.message ===
        'temporal-merge: a budget of 1 tokens is below one frame (2 tokens per frame); temporal merge keeps whole frames, give at least 2',
  );
  await assert.rejects(
    reduce(handVideo(), 'temporal-merge', { budget: 4, cacheMb: -1 }),
    /temporal-merge: cacheMb \(--cache-mb\) must be an integer ≥ 0, got -1/,
  );
});

test('temporal-merge refuses an image token set (no frames), naming what it needs', async () => {
  const image = createTokenSet({ data: new Float32Array(8), n: 4, d: 2 });
  await assert.rejects(
    reduce(image, 'temporal-merge', { ratio: 0.5 }),
    /temporal-merge: needs a video token set \[frames, tokens, d\] \(sources of kind 'frame'\); token 0 comes from a source of kind 'image'/,
  );
  await assert.rejects(
    reduce(handVideo(), 'temporal-merge', { ratio: 0.5, perFrame: true }),
    /temporal-merge: per-frame reduction runs the method on one frame at a time, but temporal-merge works on several frames together/,
  );
});

function randomVideo(frames: number, perFrame: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(frames * perFrame * d);
  // Slow drift with a jump every 7 frames, so similarities differ and merges nest.
  for (let i = 0; i < out.length; i++) {
    const f = Math.floor(i / (perFrame * d));
    const before = f % 7 !== 0 ? out[i - perFrame * d]! : rng.float() * 2 - 1;
    out[i] = before + 0.4 * (rng.float() * 2 - 1);
  }
  return out;
}

test('temporal-merge on a 3-D .npy, block by block: the same tokens file, assign and stats as in memory', async () => {
  const [frames, perFrame, d] = [19, 6, 5];
  const path = join(dir, 'tm.npy');
  writeFileSync(path, encodeNpy([frames, perFrame, d], randomVideo(frames, perFrame, d, 4)));
  const loaded = await loadTokens(path);
  const reducer = getReducer('temporal-merge');
  for (const options of [{ ratio: 0.25 }, { budget: 6 }, { ratio: 1 }, { ratio: 0.5, cacheMb: 0 }]) {
    const memory = await runReducer(reducer, loaded, options);
    for (const block of [1, 4, 19]) {
      const run = await reduceFramesFile(reducer, path, options, block);
      const what = `${JSON.stringify(options)} block ${block}`;
      assert.deepEqual(run.reduction.stats, memory.reduction.stats, what);
      assert.deepEqual(Array.from(run.reduction.assign!), Array.from(memory.reduction.assign!), what);
      assert.deepEqual(Array.from(run.reduction.representative!), Array.from(memory.reduction.representative!), what);
      assert.deepEqual(
        encodeTokens(run.reduction.tokens, 'x.safetensors'),
        encodeTokens(memory.reduction.tokens, 'x.safetensors'),
        what,
      );
      assert.deepEqual([run.n_in, run.n_out, run.budget], [memory.n_in, memory.n_out, memory.budget], what);
    }
  }
});

test('vtc reduce --method temporal-merge: block path for a 3-D .npy, same file and JSON as the in-memory run; exit codes', async () => {
  const path = join(dir, 'cli.npy');
  writeFileSync(path, encodeNpy([12, 16, 8], randomVideo(12, 16, 8, 11)));
  const out = join(dir, 'cli-out.safetensors');
  const args = ['reduce', '--in', path, '--method', 'temporal-merge', '--out', out, '--json'];
  const result = await runCli([...args, '--ratio', '0.25']);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  const memory = await runReducer(getReducer('temporal-merge'), await loadTokens(path), { ratio: 0.25 });
  assert.deepEqual(
    [json.n_in, json.n_out, json.budget, json.frames_in, json.frames_out, json.tokens_per_frame],
    [192, 48, 48, 12, 3, 16],
  );
  assert.deepEqual(json.groups, memory.reduction.stats.groups);
  assert.deepEqual(json.assign, Array.from(memory.reduction.assign!));
  assert.deepEqual(json.representative, Array.from(memory.reduction.representative!));
  assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(memory.reduction.tokens, out)));
  // A .npy output keeps the video shape [frames, tokens, d].
  const npyOut = join(dir, 'cli-out.npy');
  const asNpy = await runCli(['reduce', '--in', path, '--method', 'temporal-merge', '--budget', '32', '--out', npyOut]);
  assert.equal(asNpy.code, 0, asNpy.stderr);
  assert.match(readFileSync(npyOut).subarray(0, 128).toString('latin1'), /'shape': \(2, 16, 8\)/);
  // A video .safetensors (frame sources) takes the block path too, rows written as they are merged.
  const video = join(dir, 'video.safetensors');
  await saveTokens(video, await loadTokens(path));
  const fromVideo = join(dir, 'from-video.safetensors');
  const streamed = await runCli([
    'reduce',
    '--in',
    video,
    '--method',
    'temporal-merge',
    '--ratio',
    '0.25',
    '--out',
    fromVideo,
  ]);
  assert.equal(streamed.code, 0, streamed.stderr);
  const videoMemory = await runReducer(getReducer('temporal-merge'), await loadTokens(video), { ratio: 0.25 });
  assert.deepEqual(readFileSync(fromVideo), Buffer.from(encodeTokens(videoMemory.reduction.tokens, fromVideo)));
  // --cache-mb is the method's own flag; it changes reads, never the result.
  const cached = await runCli([...args, '--ratio', '0.25', '--cache-mb', '0']);
  assert.equal(cached.code, 0, cached.stderr);
  assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(memory.reduction.tokens, out)));
  // Usage errors exit 2: a budget below one frame, a foreign flag, a bad cache size.
  const below = await runCli([...args, '--budget', '15']);
  assert.equal(below.code, 2);
  assert.match(below.stderr, /temporal-merge: a budget of 15 tokens is below one frame \(16 tokens per frame\)/);
  const foreign = await runCli([...args, '--ratio', '0.25', '--kernel', '2']);
  assert.equal(foreign.code, 2);
  assert.match(foreign.stderr, /temporal-merge: --kernel does not apply \(it is an option of pool\)/);
  assert.equal((await runCli([...args, '--ratio', '0.25', '--cache-mb', '-3'])).code, 2);
  // An image token file (2-D .npy) is not a video: exit 1 with the reason.
  const image = await runCli([
    'reduce',
    '--in',
    fixture('grid16.npy'),
    '--method',
    'temporal-merge',
    '--ratio',
    '0.5',
    '--out',
    out,
  ]);
  assert.equal(image.code, 1);
  assert.match(image.stderr, /temporal-merge: needs a video token set \[frames, tokens, d\]/);
  // vtc compress encodes one image: no frames to merge, the same one-line refusal.
  const compress = await runCli([
    'compress',
    join(samplesRoot, 'images', 'chart.png'),
    '--method',
    'temporal-merge',
    '--ratio',
    '0.25',
    '--out',
    join(dir, 'overlay.png'),
  ]);
  assert.equal(compress.code, 1);
  assert.match(compress.stderr, /^vtc: error: temporal-merge: needs a video token set .*kind 'image'/);
});

test('eval takes temporal-merge as a video method: an image sample is not applicable, a video keeps ⌊budget / frame⌋ frames', async () => {
  assert.ok(methodNames().includes('temporal-merge'));
  const sample = { id: '1', question: 'q', answer: 'a', images: [], where: 'test' };
  assert.equal(
    getMethod('temporal-merge').unsupported({ ...sample, images: [{ bytes: new Uint8Array(1) }] }),
    'temporal-merge (token level, video) needs a video input',
  );
  // 4 frames × 576 patch tokens at K = 2 (R = 1/4): budget 576 → one merged frame of 576 rows.
  const input = await getMethod('temporal-merge').prepare(
    { ...sample, video: join(samplesRoot, 'video', 'scenes.mp4') },
    2,
    { encoder: createPatchEncoder(), videoFrames: 4 },
  );
  assert.deepEqual([input.embeds.length, input.embeds[0]!.shape[0], input.tokens], [1, 576, 576]);
});
