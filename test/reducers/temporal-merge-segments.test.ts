import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeNpy } from '../../core/npy.js';
import { Rng } from '../../core/rng.js';
import { createTokenSet, type TokenSet } from '../../core/tokenset.js';
import { reduceFramesFile } from '../../encoders/frame-reduce.js';
import { encodeTokens, loadTokens } from '../../encoders/tokenfile.js';
import { getReducer, reduce } from '../../reducers/index.js';
import { runReducer } from '../../reducers/run.js';
import { runCli, tempDir } from '../helpers.js';

const dir = tempDir('vtc-tm-segments-');

/**
 * Four frames of P = 2 patches × d = 2: f0 = (1,0 | 1,0), f1 = (1,1 | 1,0), f2 = (0,1 | 0,1), f3 = (0,1 | 1,1).
 * s01 = s23 = (1/√2 + 1)/2 > s12. With segments [0, 0, 0, 1] and quotas [1, 1], f2–f3 crosses a segment and
 * may not merge: H01 = (1,½ | 1,0) first, then s(H01, f2) = (½/√1.25 + 0)/2 = 1/(2√5) and
 * H = (H01 + f2)/2 = (½,¾ | ½,½); f3 stays alone.
 */
function handVideo(): TokenSet {
  const data = Float32Array.of(1, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1);
  const sources = [0, 1, 2, 3].map((index) => ({ kind: 'frame' as const, index, rows: 1, cols: 2, time: index }));
  return createTokenSet({ data, n: 8, d: 2, sources, source: Int32Array.of(0, 0, 1, 1, 2, 2, 3, 3) });
}

const handQuotas = { segment: [0, 0, 0, 1], quota: [1, 1] };

function randomVideo(frames: number, perFrame: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: frames * perFrame * d }, () => rng.float() * 2 - 1);
}

test('temporal-merge segment quotas by hand: merges stay inside a segment, each segment ends at its quota', async () => {
  for (const spec of [{ budget: 4 }, { ratio: 1 }]) {
    const { tokens, assign, representative, stats } = await reduce(handVideo(), 'temporal-merge', {
      ...spec,
      segmentQuotas: handQuotas,
    });
    assert.deepEqual(Array.from(tokens.data), [0.5, 0.75, 0.5, 0.5, 0, 1, 1, 1], JSON.stringify(spec));
    assert.deepEqual(stats.groups, [[0, 1, 2], [3]]);
    assert.deepEqual(stats.merged_similarities, [(Math.SQRT1_2 + 1) / 2, 1 / (2 * Math.sqrt(5))]);
    assert.deepEqual(Array.from(assign!), [0, 1, 0, 1, 0, 1, 2, 3]);
    assert.deepEqual(Array.from(representative!), [0, 1, 6, 7]);
    assert.deepEqual(Array.from(tokens.size), [3, 3, 1, 1]);
  }
  // Without quotas the same budget merges f2–f3 instead.
  assert.deepEqual((await reduce(handVideo(), 'temporal-merge', { budget: 4 })).stats.groups, [
    [0, 1],
    [2, 3],
  ]);
});

test('temporal-merge segment quotas: bad shapes and values are errors naming the field, expected vs got', async () => {
  const cases: [unknown, RegExp][] = [
    [
      [1, 2],
      /segmentQuotas \(--segment-quotas\) must be an object \{"segment": \[\.\.\.\], "quota": \[\.\.\.\]\}, got an array of 2/,
    ],
    [null, /must be an object .*, got null/],
    [{ quota: [1, 1] }, /'segment' must be an array of 4 integers \(each frame's segment\), got undefined/],
    [{ segment: [0, 0, 1], quota: [1, 1] }, /'segment' must be an array of 4 integers .*, got an array of 3/],
    [
      { segment: [0, 0.5, 1, 1], quota: [1, 1] },
      /'segment' must be an array of 4 integers .*, got an array of 4 with a non-integer/,
    ],
    [{ segment: [0, 0, 1, 1], quota: [] }, /'quota' must be a non-empty array of integers .*, got an array of 0/],
    [{ segment: [0, 0, 1, 1], quota: '1,1' }, /'quota' must be a non-empty array .*, got "1,1"/],
    [
      { segment: [0, 1, 0, 1], quota: [1, 1] },
      /frame 2 has segment 0; segments must be non-decreasing integers in \[0, 2\)/,
    ],
    [
      { segment: [0, 0, 1, 1], quota: [1, 3] },
      /segment 1 has 2 frames, its quota must be an integer in \[1, 2\], got 3/,
    ],
  ];
  for (const [segmentQuotas, message] of cases)
    await assert.rejects(
      reduce(handVideo(), 'temporal-merge', { budget: 8, segmentQuotas: segmentQuotas as never }),
      message,
      JSON.stringify(segmentQuotas),
    );
  // More frames than the budget allows: the budget still caps the output.
  await assert.rejects(
    reduce(handVideo(), 'temporal-merge', { budget: 2, segmentQuotas: handQuotas }),
    /the quotas keep 2 frames \(Σ quota\), more than the budget's 1/,
  );
});

test('temporal-merge segment quotas on frame blocks = in memory (any block, no cache), and from the CLI', async () => {
  const [frames, perFrame, d] = [19, 4, 5];
  const path = join(dir, 'video.npy');
  writeFileSync(path, encodeNpy([frames, perFrame, d], randomVideo(frames, perFrame, d, 7)));
  const loaded = await loadTokens(path);
  const segmentQuotas = {
    segment: Array.from({ length: frames }, (_, f) => (f < 5 ? 0 : f < 13 ? 1 : 2)),
    quota: [2, 3, 1],
  };
  const reducer = getReducer('temporal-merge');
  for (const options of [
    { ratio: 0.5, segmentQuotas },
    { budget: 24, segmentQuotas, cacheMb: 0 },
  ]) {
    const memory = await runReducer(reducer, loaded, options);
    assert.equal(memory.reduction.stats.frames_out, 6);
    assert.deepEqual(
      (memory.reduction.stats.groups as number[][]).map((g) => segmentQuotas.segment[g[0]!]),
      [0, 0, 1, 1, 1, 2],
    );
    for (const block of [1, 4, 19]) {
      const run = await reduceFramesFile(reducer, path, options, block);
      assert.deepEqual(run.reduction.stats, memory.reduction.stats, `block ${block}`);
      assert.deepEqual(
        encodeTokens(run.reduction.tokens, 'x.safetensors'),
        encodeTokens(memory.reduction.tokens, 'x.safetensors'),
      );
    }
  }
  const quotasFile = join(dir, 'q.json');
  writeFileSync(quotasFile, JSON.stringify(segmentQuotas));
  const out = join(dir, 'out.safetensors');
  const args = ['reduce', '--in', path, '--method', 'temporal-merge', '--out', out];
  const result = await runCli([...args, '--ratio', '0.5', '--segment-quotas', quotasFile, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const memory = await runReducer(reducer, loaded, { ratio: 0.5, segmentQuotas });
  const json = JSON.parse(result.stdout);
  assert.deepEqual([json.frames_out, json.n_out, json.groups], [6, 24, memory.reduction.stats.groups]);
  assert.deepEqual(readFileSync(out), Buffer.from(encodeTokens(memory.reduction.tokens, out)));
  // Errors: a missing or broken file and a bad field exit 1; a quota sum above the budget and a foreign method exit 2.
  const missing = await runCli([...args, '--ratio', '0.5', '--segment-quotas', join(dir, 'none.json')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /--segment-quotas .*none\.json: file not found/);
  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{"segment": [0, 0');
  const notJson = await runCli([...args, '--ratio', '0.5', '--segment-quotas', broken]);
  assert.equal(notJson.code, 1);
  assert.match(notJson.stderr, /--segment-quotas .*broken\.json: not valid JSON/);
  const short = join(dir, 'short.json');
  writeFileSync(short, JSON.stringify({ segment: [0, 0], quota: [1] }));
  const wrongLength = await runCli([...args, '--ratio', '0.5', '--segment-quotas', short]);
  assert.equal(wrongLength.code, 1);
  assert.match(
    wrongLength.stderr,
    /'segment' must be an array of 19 integers \(each frame's segment\), got an array of 2/,
  );
  const over = await runCli([...args, '--budget', '20', '--segment-quotas', quotasFile]);
  assert.equal(over.code, 2);
  assert.match(over.stderr, /the quotas keep 6 frames \(Σ quota\), more than the budget's 5/);
  const foreign = await runCli([
    ...args.slice(0, 4),
    'evs',
    '--out',
    out,
    '--ratio',
    '0.5',
    '--segment-quotas',
    quotasFile,
  ]);
  assert.equal(foreign.code, 2);
  assert.match(foreign.stderr, /evs: --segment-quotas does not apply \(it is an option of temporal-merge\)/);
});
