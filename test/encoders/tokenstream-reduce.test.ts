import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeNpy } from '../../core/npy.js';
import { Rng } from '../../core/rng.js';
import { createTokenSet, type TokenSet } from '../../core/tokenset.js';
import { reduceFramesFile, reduceFramesFileTo, usesBlockPath } from '../../encoders/frame-reduce.js';
import { encodeTokens, loadTokens, saveTokens } from '../../encoders/tokenfile.js';
import { evsReducer } from '../../reducers/evs.js';
import { fastvidReducer } from '../../reducers/fastvid.js';
import { runReducer } from '../../reducers/run.js';
import { runCli, tempDir } from '../helpers.js';

const dir = tempDir('vtc-tokenstream-reduce-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** Frames that drift from one base with a scene change at `cut`: features [frames·perFrame·d]. */
function sceneFrames(frames: number, perFrame: number, d: number, cut: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const scenes = [0, 1].map(() => Float32Array.from({ length: perFrame * d }, () => rng.float() * 2 - 1));
  return Float32Array.from({ length: frames * perFrame * d }, (_, i) => {
    const f = Math.floor(i / (perFrame * d));
    return scenes[f < cut ? 0 : 1]![i % (perFrame * d)]! + 0.2 * (rng.float() * 2 - 1);
  });
}

/** The same frames as a video token set with scores and times, as vtc encode writes it to .safetensors. */
function videoSet(data: Float32Array, frames: number, rows: number, cols: number, d: number): TokenSet {
  const perFrame = rows * cols;
  const source = Int32Array.from({ length: frames * perFrame }, (_, i) => Math.floor(i / perFrame));
  const rng = new Rng(frames);
  const tokens = createTokenSet({
    data,
    n: frames * perFrame,
    d,
    sources: Array.from({ length: frames }, (_, f) => ({ kind: 'frame' as const, index: f, rows, cols, time: f })),
    source,
    score: Float32Array.from({ length: frames * perFrame }, () => rng.float()),
    meta: { video: 'clip.mp4', encoder: 'patch' },
  });
  tokens.positions = Int32Array.from({ length: 3 * tokens.n }, (_, k) => {
    const i = Math.floor(k / 3);
    return [tokens.source[i]!, tokens.row[i]!, tokens.col[i]!][k % 3]!;
  });
  return tokens;
}

const frames = 21;
const [rows, cols, d] = [3, 3, 6];
const data = sceneFrames(frames, rows * cols, d, 12, 5);
const npyIn = join(dir, 'video.npy');
writeFileSync(npyIn, encodeNpy([frames, rows * cols, d], data));
const stIn = join(dir, 'video.safetensors');

test('reduceFramesFileTo: the streamed output file is saveTokens of the in-memory run, for .npy and video .safetensors inputs', async () => {
  await saveTokens(stIn, videoSet(data, frames, rows, cols, d));
  const cases = [
    [evsReducer, { ratio: 0.2 }],
    [fastvidReducer, { ratio: 0.4, segments: 3, anchorStride: 2 }],
    [fastvidReducer, { ratio: 0.4, contextShare: 0 }],
  ] as const;
  for (const input of [npyIn, stIn]) {
    assert.equal(await usesBlockPath('fastvid', input), true);
    const loaded = await loadTokens(input);
    for (const [reducer, options] of cases) {
      const memory = await runReducer(reducer, loaded, { ...options });
      for (const [name, dtype] of [
        ['out.safetensors', 'float32'],
        ['out16.safetensors', 'float16'],
        ['out.npy', 'float32'],
      ] as const) {
        const out = join(dir, name);
        const expected = (() => {
          try {
            return Buffer.from(encodeTokens(memory.reduction.tokens, out, { dtype }));
          } catch (error) {
            return error as Error;
          }
        })();
        const what = `${reducer.name} ${JSON.stringify(options)} ${input} → ${name}`;
        if (expected instanceof Error) {
          // Frames left with unequal counts: .npy is refused as saveTokens refuses it, and nothing is left behind.
          await assert.rejects(reduceFramesFileTo(reducer, input, out, { ...options }, { dtype, block: 4 }), {
            message: expected.message,
          });
          assert.deepEqual(
            readdirSync(dir).filter((f) => f.startsWith('out.npy') || f.startsWith('.out.npy')),
            [],
            what,
          );
          continue;
        }
        const run = await reduceFramesFileTo(reducer, input, out, { ...options }, { dtype, block: 4 });
        assert.deepEqual(readFileSync(out), expected, what);
        rmSync(out);
        assert.deepEqual([run.n_in, run.n_out, run.d, run.budget], [memory.n_in, memory.n_out, d, memory.budget], what);
        assert.deepEqual(run.reduction.stats, memory.reduction.stats, what);
        assert.deepEqual(Array.from(run.reduction.keep ?? []), Array.from(memory.reduction.keep ?? []), what);
        assert.deepEqual(Array.from(run.reduction.assign ?? []), Array.from(memory.reduction.assign ?? []), what);
      }
      // The library's TokenSet result equals the in-memory one too (sources with times, scores, positions).
      const library = await reduceFramesFile(reducer, input, { ...options }, 5);
      assert.deepEqual(
        encodeTokens(library.reduction.tokens, 'x.safetensors'),
        encodeTokens(memory.reduction.tokens, 'x.safetensors'),
      );
    }
  }
  // The .safetensors scores are fastvid's salience (as in memory), not the frame-mean cosine a .npy gets.
  const fromFile = await reduceFramesFile(fastvidReducer, stIn, { ratio: 0.4 });
  assert.equal(fromFile.reduction.stats.score_source, 'score');
});

test('vtc reduce on a video .safetensors: block path, streamed output equal to the in-memory file and JSON', async () => {
  await saveTokens(stIn, videoSet(data, frames, rows, cols, d));
  const out = join(dir, 'cli-fv.safetensors');
  const result = await runCli([
    'reduce',
    '--in',
    stIn,
    '--method',
    'fastvid',
    '--ratio',
    '0.4',
    '--segments',
    '3',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const memory = await runReducer(fastvidReducer, await loadTokens(stIn), { ratio: 0.4, segments: 3 });
  const json = JSON.parse(result.stdout);
  assert.deepEqual(json.keep, Array.from(memory.reduction.keep!));
  assert.deepEqual(json.assign, Array.from(memory.reduction.assign!));
  assert.deepEqual([json.n_out, json.d, json.score_source], [memory.n_out, d, 'score']);
  assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(memory.reduction.tokens, out)));
  // An .npy output the frames cannot fill (unequal counts): exit 2, one line, no file.
  const npyOut = join(dir, 'cli-evs.npy');
  const refused = await runCli(['reduce', '--in', stIn, '--method', 'evs', '--ratio', '0.2', '--out', npyOut]);
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /^vtc: error: evs: .*cli-evs\.npy: these 38 tokens come from 15 frames with unequal token counts \(1–9\)/,
  );
  assert.ok(!readdirSync(dir).some((f) => f.includes('cli-evs.npy')));
});
