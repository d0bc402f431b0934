import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeNpy, encodeNpy } from '../../core/npy.js';
import { decodeSafetensors, encodeSafetensors } from '../../core/safetensors.js';
import { Rng } from '../../core/rng.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';

const dir = tempDir();
const rng = new Rng(5);
const x = Float32Array.from({ length: 576 * 1024 }, () => rng.float() * 2 - 1);
const input = join(dir, 'x.npy');
writeFileSync(input, encodeNpy([576, 1024], x));

/** 2×2 average pooling of a 24×24 grid of d-dim tokens, computed directly. */
function pool2x2(data: Float32Array, d: number): Float32Array {
  const out = new Float32Array(144 * d);
  for (let r = 0; r < 12; r++)
    for (let c = 0; c < 12; c++)
      for (let k = 0; k < d; k++) {
        const at = (rr: number, cc: number) => data[(rr * 24 + cc) * d + k]!;
        out[(r * 12 + c) * d + k] =
          (at(2 * r, 2 * c) + at(2 * r, 2 * c + 1) + at(2 * r + 1, 2 * c) + at(2 * r + 1, 2 * c + 1)) / 4;
      }
  return out;
}

test('vtc reduce --method pool --ratio 0.25 on 576×1024 gives 144 tokens equal to 2×2 pooling', async () => {
  const out = join(dir, 'y.npy');
  const result = await runCli(['reduce', '--in', input, '--method', 'pool', '--ratio', '0.25', '--out', out, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  assert.equal(json.method, 'pool');
  assert.equal(json.n_in, 576);
  assert.equal(json.n_out, 144);
  assert.equal(json.d, 1024);
  assert.equal(json.budget, 144);
  assert.equal(json.assign.length, 576);
  assert.deepEqual(json.assign.slice(0, 4), [0, 0, 1, 1]);
  assert.equal(json.assign[24], 0);
  assert.equal(json.assign[575], 143);
  assert.equal(typeof json.ms, 'number');
  // The pooling itself runs natively: part of ms, never more.
  assert.ok(json.native_ms > 0 && json.native_ms <= json.ms, `native_ms ${json.native_ms} of ms ${json.ms}`);
  const y = decodeNpy(readFileSync(out));
  assert.deepEqual(y.shape, [144, 1024]);
  const expected = pool2x2(x, 1024);
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(expected[i]! - y.data[i]!));
  assert.ok(maxDiff < 1e-6, `max difference ${maxDiff}`);
});

test('NumPy loads the pooled file as (144, 1024) equal to 2×2 pooling', {
  skip: !hasNumpy() && 'python3 with numpy not available',
}, async () => {
  const out = join(dir, 'np.npy');
  const result = await runCli(['reduce', '--in', input, '--method', 'pool', '--ratio', '0.25', '--out', out]);
  assert.equal(result.code, 0, result.stderr);
  const script = `import numpy as np; x=np.load('${input}'); y=np.load('${out}'); ref=x.reshape(12,2,12,2,1024).mean(axis=(1,3)).reshape(144,1024); print(y.shape, float(abs(ref-y).max()) < 1e-6)`;
  const py = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  assert.equal(py.stdout.trim(), '(144, 1024) True', py.stderr);
});

test('vtc reduce --method random keeps exactly budget distinct indices, deterministic per seed', async () => {
  const run = (seed: string) =>
    runCli([
      'reduce',
      '--in',
      input,
      '--method',
      'random',
      '--budget',
      '64',
      '--seed',
      seed,
      '--out',
      join(dir, `r${seed}.safetensors`),
      '--json',
    ]);
  const [a, b, c] = await Promise.all([run('1'), run('1'), run('2')]);
  const ka = JSON.parse(a.stdout).keep as number[];
  assert.equal(ka.length, 64);
  assert.equal(new Set(ka).size, 64);
  assert.deepEqual(
    ka,
    [...ka].sort((p, q) => p - q),
  );
  assert.deepEqual(JSON.parse(b.stdout).keep, ka);
  assert.notDeepEqual(JSON.parse(c.stdout).keep, ka);
  const file = decodeSafetensors(readFileSync(join(dir, 'r1.safetensors')));
  assert.deepEqual(file.tensors.tokens!.shape, [64, 1024]);
  assert.deepEqual(
    Array.from(file.tensors.tokens!.data.subarray(0, 1024)),
    Array.from(x.subarray(ka[0]! * 1024, ka[0]! * 1024 + 1024)),
  );
  assert.deepEqual(Array.from(file.tensors.sizes!.data.subarray(0, 3)), [1, 1, 1]);
});

test('pool on an AnyRes bundle works per tile and keep/assign index thumbnail first, then crops', async () => {
  const T = 16;
  const d = 3;
  const bundle = join(dir, 'b.safetensors');
  writeFileSync(
    bundle,
    encodeSafetensors(
      {
        thumbnail: { shape: [T, d], data: Float32Array.from({ length: T * d }, (_, i) => i) },
        crops: { shape: [2, T, d], data: Float32Array.from({ length: 2 * T * d }, (_, i) => -i) },
      },
      { grid: '1,2', image_size: '672,336', patch_grid: '4,4' },
    ),
  );
  const result = await runCli([
    'reduce',
    '--in',
    bundle,
    '--method',
    'pool',
    '--ratio',
    '0.25',
    '--out',
    join(dir, 'bp.safetensors'),
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  assert.equal(json.n_in, 48);
  assert.equal(json.n_out, 12);
  assert.deepEqual(json.assign.slice(0, 8), [0, 0, 1, 1, 0, 0, 1, 1]);
  assert.equal(json.assign[16], 4);
  assert.equal(json.assign[47], 11);
});

test('a reduced .safetensors keeps origins, so a second reduction still traces back to the original tokens', async () => {
  const first = join(dir, 'pooled.safetensors');
  const second = join(dir, 'pooled-then-random.safetensors');
  assert.equal(
    (await runCli(['reduce', '--in', input, '--method', 'pool', '--ratio', '0.25', '--out', first])).code,
    0,
  );
  const again = await runCli([
    'reduce',
    '--in',
    first,
    '--method',
    'random',
    '--budget',
    '10',
    '--seed',
    '3',
    '--out',
    second,
    '--json',
  ]);
  assert.equal(again.code, 0, again.stderr);
  const keep = JSON.parse(again.stdout).keep as number[];
  const file = decodeSafetensors(readFileSync(second));
  const offsets = Array.from(file.tensors.origin_offsets!.data);
  const index = Array.from(file.tensors.origin_index!.data);
  assert.equal(offsets.length, 11);
  keep.forEach((cell, j) => {
    // pooled token `cell` is the 2×2 block at (2·⌊cell/12⌋, 2·(cell mod 12)) of the original 24×24 grid
    const top = 2 * Math.floor(cell / 12) * 24 + 2 * (cell % 12);
    assert.deepEqual(
      index.slice(offsets[j], offsets[j + 1]),
      [top, top + 1, top + 24, top + 25],
      `output ${j} (pooled token ${cell})`,
    );
  });
  assert.deepEqual(Array.from(file.tensors.sizes!.data), new Array(10).fill(4));
});

test('bad input: each a one-line error with exit code 2 (usage) or 1 (file/data), never a stack trace', async () => {
  const nan = join(dir, 'nan.npy');
  const data = new Float32Array(16 * 4);
  data[37] = NaN;
  writeFileSync(nan, encodeNpy([16, 4], data));
  const truncated = join(dir, 'cut.npy');
  writeFileSync(truncated, readFileSync(input).subarray(0, 1000));
  const f64 = join(dir, 'f64.npy');
  const f64bytes = Buffer.from(encodeNpy([2, 2], new Float32Array(4)));
  f64bytes.write("'<f8'", f64bytes.indexOf("'<f4'"), 'latin1');
  writeFileSync(f64, f64bytes);
  const out = join(dir, 'o.npy');
  const cases: Array<[string[], number, RegExp]> = [
    [['--in', input, '--method', 'pool', '--ratio', '0', '--out', out], 2, /ratio must be in \(0, 1\], got 0/],
    [['--in', input, '--method', 'pool', '--ratio', '1.5', '--out', out], 2, /ratio must be in \(0, 1\], got 1.5/],
    [
      ['--in', input, '--method', 'random', '--budget', '600', '--out', out],
      2,
      /budget 600 is larger than the number of input tokens n = 576/,
    ],
    [
      ['--in', input, '--method', 'nope', '--ratio', '0.5', '--out', out],
      2,
      /unknown method "nope" \(available: .*pool.*\)/,
    ],
    [
      ['--in', join(dir, 'missing.npy'), '--method', 'pool', '--ratio', '0.5', '--out', out],
      1,
      /missing\.npy: file not found/,
    ],
    [
      ['--in', truncated, '--method', 'pool', '--ratio', '0.5', '--out', out],
      1,
      /cut\.npy: truncated data: shape \(576, 1024\)/,
    ],
    [['--in', f64, '--method', 'pool', '--ratio', '0.5', '--out', out], 1, /unsupported dtype '<f8'/],
    [
      ['--in', nan, '--method', 'pool', '--ratio', '0.5', '--out', out],
      1,
      /nan\.npy: .*non-finite value NaN at token 9, dimension 1/,
    ],
    [['--in', input, '--method', 'pool', '--ratio', 'abc', '--out', out], 2, /--ratio expects a number, got "abc"/],
    [['--in', input, '--method', 'pool', '--out', out], 2, /give exactly one of --ratio or --budget/],
    [
      ['--in', input, '--method', 'pool', '--ratio', '0.5', '--out', join(dir, 'o.txt')],
      2,
      /unsupported output extension "\.txt"/,
    ],
    [['--in', input, '--method', 'pool', '--ratio', '0.5'], 2, /required option '--out <file>' not specified/],
    [
      ['--in', input, '--method', 'tome', '--ratio', '0.5', '--kernel', '4', '--out', out],
      2,
      /tome: --kernel does not apply \(it is an option of pool\)/,
    ],
  ];
  for (const [args, code, message] of cases) {
    const result = await runCli(['reduce', ...args]);
    assert.equal(result.code, code, `${args.join(' ')} → ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split('\n').length, 1, `one line expected: ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /at .*\.js:\d+/);
  }
  // the same cases name the method in front of the file/field (issue 3: "naming the method and the field")
  const named = await runCli(['reduce', '--in', nan, '--method', 'tome', '--ratio', '0.5', '--out', out]);
  assert.match(
    named.stderr,
    /^vtc: error: tome: .*nan\.npy: tokens\.data: non-finite value NaN at token 9, dimension 1/,
  );
  const missing = await runCli([
    'reduce',
    '--in',
    join(dir, 'missing.npy'),
    '--method',
    'divprune',
    '--ratio',
    '0.5',
    '--out',
    out,
  ]);
  assert.match(missing.stderr, /^vtc: error: divprune: .*missing\.npy: file not found\n$/);
  // a bad --out is reported before any work, and an unwritable one as one line with exit 1
  const badExt = await runCli([
    'reduce',
    '--in',
    join(dir, 'missing.npy'),
    '--method',
    'pool',
    '--ratio',
    '0.5',
    '--out',
    join(dir, 'o.txt'),
  ]);
  assert.equal(badExt.code, 2);
  assert.match(badExt.stderr, /pool: --out .*o\.txt: unsupported output extension "\.txt"/);
  const noFolder = await runCli([
    'reduce',
    '--in',
    input,
    '--method',
    'random',
    '--ratio',
    '0.5',
    '--out',
    join(dir, 'no', 'such', 'folder', 'o.npy'),
  ]);
  assert.equal(noFolder.code, 1, noFolder.stderr);
  assert.match(
    noFolder.stderr,
    /^vtc: error: cannot write .*o\.npy: the folder .*folder does not exist \(or vanished while writing\)\n$/,
  );
  const verbose = await runCli([
    'reduce',
    '--in',
    join(dir, 'missing.npy'),
    '--method',
    'pool',
    '--ratio',
    '0.5',
    '--out',
    out,
    '--verbose',
  ]);
  assert.match(verbose.stderr, /at .*:\d+/);
});

test('vtc --version, --help, and unknown commands', async () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), pkg.version);
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /reduce \[options\]/);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
});

function hasNumpy(): boolean {
  return spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
}

test('--dtype float16 stores features as F16 but keeps sizes float32 (merged sizes can exceed 2048)', async () => {
  const out = join(dir, 'half.safetensors');
  const result = await runCli([
    'reduce',
    '--in',
    input,
    '--method',
    'pool',
    '--kernel',
    '24',
    '--ratio',
    '0.25',
    '--dtype',
    'float16',
    '--out',
    out,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const file = decodeSafetensors(readFileSync(out));
  assert.equal(file.tensors.tokens!.dtype, 'F16');
  assert.equal(file.tensors.sizes!.dtype, 'F32');
  assert.deepEqual(Array.from(file.tensors.sizes!.data), [576]);
});
