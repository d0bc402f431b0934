import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../core/rng.js';
import { globalcom2Reducer } from '../../reducers/globalcom2.js';
import { anyresTokens } from '../reducers/fixtures.js';
import { repoRoot } from '../helpers.js';

/**
 * The values tests pin as "checked independently" are rerun here from the
 * Python scripts in test/reference/ and compared with the TypeScript code,
 * whenever python3 with NumPy is installed (.ci/run installs it).
 */

const scripts = join(repoRoot, 'test', 'reference');
const probe = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
const skip = probe.error
  ? 'python3 is not installed'
  : probe.status !== 0
    ? 'python3 has no NumPy (apt-get install python3-numpy)'
    : false;

function python(script: string, args: string[]): unknown {
  const run = spawnSync('python3', [join(scripts, script), ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test('Rng: the stream equals rng_stream.py (SplitMix32 + xoshiro128** in Python) for several seeds', { skip }, () => {
  for (const seed of [0, 1, 42, 0xffffffff]) {
    const expected = python('rng_stream.py', [String(seed), '64']) as { uint32: number[]; float: number[] };
    const ints = new Rng(seed);
    assert.deepEqual(
      Array.from({ length: 64 }, () => ints.uint32()),
      expected.uint32,
      `seed ${seed}`,
    );
    const floats = new Rng(seed);
    assert.deepEqual(
      Array.from({ length: 64 }, () => floats.float()),
      expected.float,
      `seed ${seed}`,
    );
  }
});

test('GlobalCom²: keep lists equal globalcom2_keep.py (NumPy port of the reference) on square and non-square grids', {
  skip,
}, async () => {
  const layouts: { rows: number; cols: number; side: number; cases: [number, number, number][] }[] = [
    {
      rows: 2,
      cols: 2,
      side: 6,
      cases: [
        [0.5, 640, 480],
        [0.5, 480, 640],
        [0.25, 640, 480],
        [0.25, 480, 640],
        [0.3, 600, 600],
      ],
    },
    {
      rows: 1,
      cols: 2,
      side: 6,
      cases: [
        [0.5, 900, 400],
        [0.25, 700, 480],
      ],
    },
    {
      rows: 2,
      cols: 3,
      side: 4,
      cases: [
        [0.4, 1280, 720],
        [0.6, 960, 700],
      ],
    },
  ];
  for (const { rows, cols, side, cases } of layouts) {
    const expected = python('globalcom2_keep.py', [
      JSON.stringify(cases),
      String(rows),
      String(cols),
      String(side),
    ]) as number[][];
    const n = side * side * (rows * cols + 1);
    const score = Float32Array.from({ length: n }, (_, i) => ((i * 37) % 101) / 101);
    for (const [k, [ratio, imageWidth, imageHeight]] of cases.entries()) {
      const tokens = anyresTokens({
        imageWidth,
        imageHeight,
        gridRows: rows,
        gridCols: cols,
        patch: side,
        d: 2,
        score,
      });
      const result = await globalcom2Reducer.run(tokens, { ratio });
      assert.deepEqual(
        Array.from(result.keep!),
        expected[k],
        `${rows}×${cols} grid, R = ${ratio}, ${imageWidth}×${imageHeight}`,
      );
    }
  }
});
