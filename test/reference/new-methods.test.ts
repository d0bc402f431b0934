import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTokenSet, type TokenSet, type TokenSource } from '../../core/tokenset.js';
import { cdprunerReducer } from '../../reducers/cdpruner.js';
import { dartReducer } from '../../reducers/dart.js';
import { evsReducer } from '../../reducers/evs.js';
import { fastvidReducer } from '../../reducers/fastvid.js';
import { visprunerReducer } from '../../reducers/vispruner.js';
import { repoRoot } from '../helpers.js';
import { assertClose } from '../reducers/fixtures.js';

/**
 * cdpruner, vispruner, dart, evs and fastvid against new_methods.py, NumPy
 * ports of their reference code written independently of the reducers, on
 * inputs both sides generate from one formula. Runs when python3 has NumPy
 * (.ci/run installs it).
 */

const probe = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
const skip = probe.error
  ? 'python3 is not installed'
  : probe.status !== 0
    ? 'python3 has no NumPy (apt-get install python3-numpy)'
    : false;

function python(method: string, args: Record<string, unknown>): unknown {
  const run = spawnSync(
    'python3',
    [join(repoRoot, 'test', 'reference', 'new_methods.py'), method, JSON.stringify(args)],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

/** float32(sin(0.37·k + 0.0011·k² + seed)·(1 + (k mod 7)/7)), as new_methods.py's `values`. */
function values(count: number, seed: number): Float32Array {
  return Float32Array.from({ length: count }, (_, k) => Math.sin(0.37 * k + 0.0011 * k * k + seed) * (1 + (k % 7) / 7));
}

function video(frames: number, perFrame: number, d: number, seed: number, withScores: boolean): TokenSet {
  const side = Math.round(Math.sqrt(perFrame));
  const sources: TokenSource[] = Array.from({ length: frames }, (_, f) => ({
    kind: 'frame',
    index: f,
    rows: side,
    cols: perFrame / side,
  }));
  const source = Int32Array.from({ length: frames * perFrame }, (_, i) => Math.floor(i / perFrame));
  return createTokenSet({
    data: values(frames * perFrame * d, seed),
    n: frames * perFrame,
    d,
    sources,
    source,
    ...(withScores ? { score: values(frames * perFrame, seed + 1) } : {}),
  });
}

test('cdpruner equals the NumPy port: plain DPP, raw relevance and θ = 0.5 with a 2-row query', { skip }, async () => {
  const [n, d, seed] = [40, 24, 1];
  const tokens = createTokenSet({ data: values(n * d, seed), n, d });
  const query = { rows: 2, cols: d, data: values(2 * d, seed + 5) };
  for (const budget of [10, 20]) {
    assert.deepEqual(
      Array.from((await cdprunerReducer.run(tokens, { budget })).keep!),
      python('cdpruner', { n, d, seed, budget }),
      `plain, budget ${budget}`,
    );
    assert.deepEqual(
      Array.from((await cdprunerReducer.run(tokens, { budget, query })).keep!),
      python('cdpruner', { n, d, seed, budget, query: 2 }),
      `raw relevance, budget ${budget}`,
    );
    assert.deepEqual(
      Array.from((await cdprunerReducer.run(tokens, { budget, query, theta: 0.5 })).keep!),
      python('cdpruner', { n, d, seed, budget, query: 2, theta: 0.5 }),
      `θ = 0.5, budget ${budget}`,
    );
  }
});

test('vispruner and dart equal the NumPy ports (several duplicate-removal rounds; pivot quotas)', {
  skip,
}, async () => {
  const [n, d] = [64, 16];
  for (const budget of [16, 40]) {
    const tokens = createTokenSet({ data: values(n * d, 2), n, d, score: values(n, 3) });
    assert.deepEqual(
      Array.from((await visprunerReducer.run(tokens, { budget })).keep!),
      python('vispruner', { n, d, seed: 2, budget }),
      `vispruner budget ${budget}`,
    );
  }
  for (const budget of [3, 20, 47]) {
    const tokens = createTokenSet({ data: values(n * d, 3), n, d });
    assert.deepEqual(
      Array.from((await dartReducer.run(tokens, { budget })).keep!),
      python('dart', { n, d, seed: 3, budget }),
      `dart budget ${budget}`,
    );
  }
});

test("evs equals the NumPy port of vLLM's compute_retention_mask", { skip }, async () => {
  const tokens = video(5, 9, 8, 4, false);
  for (const ratio of [0.1, 0.3, 0.5, 0.8]) {
    assert.deepEqual(
      Array.from((await evsReducer.run(tokens, { ratio })).keep!),
      python('evs', { t: 5, n: 9, d: 8, seed: 4, ratio }),
      `R = ${ratio}`,
    );
  }
});

test('fastvid equals the NumPy port: segments, kept tokens and merged features', { skip }, async () => {
  // τ = −1 turns the threshold cuts off, so c alone decides: one 6-frame segment (anchors 1 and 5), two segments, all cut.
  for (const [budget, c, tau] of [
    [48, 1, -1],
    [48, 2, -1],
    [96, 3, -1],
    [48, 8, 0.9],
  ] as const) {
    const tokens = video(6, 16, 8, 5, true);
    const expected = python('fastvid', { t: 6, n: 16, d: 8, seed: 5, budget, c, tau }) as {
      keep: number[];
      features: number[];
      segments: number[];
    };
    const result = await fastvidReducer.run(tokens, { budget, segments: c, cutThreshold: tau });
    assert.deepEqual(result.stats.segments, expected.segments, `segments, budget ${budget}, c ${c}`);
    assert.deepEqual(Array.from(result.keep!), expected.keep, `keep, budget ${budget}, c ${c}`);
    assertClose(result.tokens.data, expected.features, 1e-4, `features, budget ${budget}, c ${c}`);
  }
});
