import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Rng } from '../../core/rng.js';
import { createTokenSet, mergeTokens, type TokenSet } from '../../core/tokenset.js';
import { encodeTokens } from '../../encoders/tokenfile.js';
import { createTokenStream, type TokenChunks } from '../../encoders/tokenstream.js';
import type { EncodedTile } from '../../encoders/types.js';
import { frameShellRuns, tilesToFrameTokens } from '../../encoders/video.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('vtc-tokenstream-chunks-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** `frames` encoded tiles of rows×cols tokens, dim features, scores; seeded. */
function tiles(frames: number, rows: number, cols: number, dim: number, seed: number): EncodedTile[] {
  const rng = new Rng(seed);
  return Array.from({ length: frames }, () => ({
    features: Float32Array.from({ length: rows * cols * dim }, () => rng.float() * 2 - 1),
    rows,
    cols,
    dim,
    scores: Float32Array.from({ length: rows * cols }, () => rng.float() - 0.5),
  }));
}

/** Tokens [a, b) of `tokens` as a run for TokenChunks: the whole's sources and source indices, no origins. */
function run(tokens: TokenSet, a: number, b: number): TokenSet {
  const part: TokenSet = {
    n: b - a,
    d: 1,
    data: new Float32Array(b - a),
    source: tokens.source.subarray(a, b),
    row: tokens.row.subarray(a, b),
    col: tokens.col.subarray(a, b),
    size: tokens.size.subarray(a, b),
    origin: [],
    sources: tokens.sources,
    meta: tokens.meta,
  };
  if (tokens.score) part.score = tokens.score.subarray(a, b);
  if (tokens.positions) part.positions = tokens.positions.subarray(3 * a, 3 * b);
  return part;
}

/** The whole as runs cut at `cuts` (token indices). */
function runsOf(tokens: TokenSet, cuts: number[]): TokenChunks {
  const bounds = [0, ...cuts, tokens.n];
  return {
    n: tokens.n,
    chunks: function* () {
      for (let k = 0; k + 1 < bounds.length; k++) yield run(tokens, bounds[k]!, bounds[k + 1]!);
    },
  };
}

async function streamed(path: string, data: Float32Array, d: number, whole: TokenChunks, dtype: 'float32' | 'float16') {
  const out = await createTokenStream(path, { d, dtype });
  await out.append(data);
  await out.close(whole);
  return readFileSync(path);
}

test('streaming .safetensors writer closed with runs of metadata gives saveTokens bytes for any cut', async () => {
  const frames = tilesToFrameTokens(tiles(5, 2, 3, 4, 1), [0, 0.5, 1, 1.5, 2], { video: 'v.mp4', encoder: 'patch' });
  for (const dtype of ['float32', 'float16'] as const) {
    // One run; a run per token; runs that cut frames in two; runs of unequal length.
    for (const cuts of [[], Array.from({ length: 29 }, (_, i) => i + 1), [4, 13, 14], [6, 12, 18, 24]]) {
      const path = join(dir, `runs-${dtype}-${cuts.length}.safetensors`);
      const bytes = await streamed(path, frames.data, 4, runsOf(frames, cuts), dtype);
      assert.deepEqual(bytes, Buffer.from(encodeTokens(frames, path, { dtype })), `${dtype}, cuts ${cuts}`);
    }
  }
});

test('frameShellRuns: the metadata tilesToFrameTokens gives, run by run, for any run length', async () => {
  // Frames of two grid shapes (a .safetensors video may mix them), times not evenly spaced.
  const encoded = [...tiles(3, 2, 2, 3, 2), ...tiles(4, 1, 3, 3, 3)];
  const times = [0, 0.4, 1, 2.5, 3, 3.25, 7];
  const meta = { video: 'x.mp4', encoder: 'tiny', scene_changes: '2.5' };
  const tokens = tilesToFrameTokens(encoded, times, meta);
  const shells = encoded.map((t) => ({ rows: t.rows, cols: t.cols, scores: t.scores }));
  for (const runFrames of [1, 2, 3, 7, 64]) {
    const whole = frameShellRuns(shells, times, meta, runFrames);
    assert.equal(whole.n, 4 * 3 + 3 * 4);
    assert.equal([...whole.chunks()].length, Math.ceil(7 / runFrames));
    const path = join(dir, `shells-${runFrames}.safetensors`);
    const bytes = await streamed(path, tokens.data, 3, whole, 'float32');
    assert.deepEqual(bytes, Buffer.from(encodeTokens(tokens, path)), `runs of ${runFrames} frames`);
  }
});

test('runs of metadata: wrong totals, origins, other metadata are errors naming the file; no file is left', async () => {
  const frames = tilesToFrameTokens(tiles(3, 2, 2, 2, 4), [0, 1, 2]);
  const cases: [string, TokenChunks, RegExp][] = [
    [
      'described',
      { ...runsOf(frames, [4]), n: 11 },
      /described\.safetensors: the metadata describes 11 tokens, 12 rows/,
    ],
    [
      'short',
      { n: 12, chunks: () => [run(frames, 0, 4), run(frames, 4, 8)] },
      /short\.safetensors: the runs hold 8 tokens, 12 were described/,
    ],
    ['none', { n: 12, chunks: () => [] }, /none\.safetensors: the runs hold 0 tokens, 12 were described/],
    [
      'long',
      { n: 12, chunks: () => [run(frames, 0, 8), run(frames, 4, 12)] },
      /long\.safetensors: the runs hold more than the 12 tokens described/,
    ],
    [
      'origins',
      {
        n: 12,
        chunks: () => [
          mergeTokens(
            frames,
            Int32Array.from({ length: 12 }, (_, i) => i >> 1),
            6,
          ),
        ],
      },
      /origins\.safetensors: runs of tokens carry no origins/,
    ],
    [
      'meta',
      { n: 12, chunks: () => [run(frames, 0, 4), { ...run(frames, 4, 12), meta: { video: 'other.mp4' } }] },
      /meta\.safetensors: tokens 4–11 give other tensors or metadata than the first run/,
    ],
    [
      'scores',
      { n: 12, chunks: () => [run(frames, 0, 4), { ...run(frames, 4, 12), score: undefined }] },
      /scores\.safetensors: tokens 4–11 give other tensors or metadata than the first run \(grid_pos, positions, sizes, source\)/,
    ],
  ];
  for (const [name, whole, message] of cases) {
    const out = await createTokenStream(join(dir, `${name}.safetensors`), { d: 2 });
    await out.append(frames.data);
    await assert.rejects(out.close(whole), message, name);
  }
  assert.deepEqual(
    readdirSync(dir).filter((f) => /^\.?(described|short|none|long|origins|meta|scores)/.test(f)),
    [],
  );
  // A hand-checked two-token case: sizes 1, source 0, grid (0,0) (0,1), positions (0,0,0) (0,0,1).
  const two = createTokenSet({ data: Float32Array.of(1, 2), n: 2, d: 1 });
  const path = join(dir, 'two.safetensors');
  const bytes = await streamed(path, two.data, 1, runsOf(two, [1]), 'float32');
  assert.deepEqual(bytes, Buffer.from(encodeTokens(two, path)));
});
