import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeNpy, encodeNpy } from '../../core/npy.js';
import { Rng } from '../../core/rng.js';
import { decodeSafetensors, encodeSafetensors } from '../../core/safetensors.js';
import { runCli, tempDir, type CliResult } from '../helpers.js';
import { writeTinyDualEncoder } from '../video/tiny-dual.js';

const dir = tempDir('vtc-reducers-');
const rng = new Rng(21);
const d = 8;
const npy = join(dir, 'grid.npy');
const npyData = Float32Array.from({ length: 64 * d }, () => rng.float() * 2 - 1);
writeFileSync(npy, encodeNpy([64, d], npyData));

// 640×480 LLaVA-NeXT style bundle, shrunk to 4×4 tiles: thumbnail + 2×2 crops.
const T = 16;
const bundle = join(dir, 'bundle.safetensors');
writeFileSync(
  bundle,
  encodeSafetensors(
    {
      thumbnail: { shape: [T, d], data: Float32Array.from({ length: T * d }, () => rng.float() * 2 - 1) },
      crops: { shape: [4, T, d], data: Float32Array.from({ length: 4 * T * d }, () => rng.float() * 2 - 1) },
      thumbnail_cls: { shape: [T], data: Float32Array.from({ length: T }, () => rng.float()) },
      crops_cls: { shape: [4, T], data: Float32Array.from({ length: 4 * T }, () => rng.float()) },
    },
    { grid: '2,2', image_size: '640,480', patch_grid: '4,4', encoder: 'test-vit' },
  ),
);

/** Runs the CLI for several argument lists, two at a time (the machine has 2 cores). */
async function runAll(argLists: string[][]): Promise<CliResult[]> {
  const results: CliResult[] = new Array(argLists.length);
  let next = 0;
  const worker = async () => {
    while (next < argLists.length) {
      const i = next++;
      results[i] = await runCli(argLists[i]!);
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

const selection = new Set(['random', 'divprune', 'globalcom2', 'visionzip']);
const merging = new Set(['cluster', 'tome', 'pool', 'visionzip']);

/** nIn: tokens the method worked on; nTotal: tokens in the file (a bundle's padding included), which keep/assign index. */
function checkJson(method: string, json: Record<string, unknown>, nIn: number, nTotal = nIn): void {
  assert.equal(json.method, method);
  assert.equal(json.n_in, nIn);
  assert.equal(json.n_padding, nTotal - nIn);
  const nOut = json.n_out as number;
  if (selection.has(method)) {
    const keep = json.keep as number[];
    assert.ok(Array.isArray(keep), `${method}: keep in JSON`);
    assert.equal(new Set(keep).size, keep.length, `${method}: distinct keep`);
    assert.ok(keep.every((k) => k >= 0 && k < nTotal));
    assert.equal(keep.length, nOut);
  }
  if (merging.has(method)) {
    const assign = json.assign as number[];
    assert.equal(assign.length, nTotal, `${method}: assign covers every input`);
    assert.equal(new Set(assign.filter((a) => a >= 0)).size, nOut, `${method}: every output has members`);
    assert.ok(assign.every((a) => a >= -1 && a < nOut));
    assert.equal(assign.filter((a) => a === -1).length, nTotal - nIn, `${method}: exactly the padding is left out`);
  }
}

test('vtc reduce runs every method on an AnyRes bundle .safetensors with keep/assign in --json', async () => {
  const methods = ['cluster', 'globalcom2', 'tome', 'visionzip', 'divprune', 'pool', 'random'];
  const results = await runAll(
    methods.map((m) => [
      'reduce',
      '--in',
      bundle,
      '--method',
      m,
      '--ratio',
      '0.25',
      '--out',
      join(dir, `b-${m}.safetensors`),
      '--json',
    ]),
  );
  results.forEach((result, i) => {
    const method = methods[i]!;
    assert.equal(result.code, 0, `${method}: ${result.stderr}`);
    const json = JSON.parse(result.stdout) as Record<string, unknown>;
    // 16 thumbnail tokens + 4 crops × 12 unpadded (the 640×480 image fills canvas rows 1..6 of 8)
    checkJson(method, json, 64, 80);
    const file = decodeSafetensors(readFileSync(join(dir, `b-${method}.safetensors`)));
    assert.deepEqual(file.tensors.tokens!.shape, [json.n_out, d]);
    const sizes = Array.from(file.tensors.sizes!.data as Float32Array);
    if (merging.has(method) && method !== 'visionzip')
      assert.equal(
        sizes.reduce((a, b) => a + b, 0),
        64,
        `${method}: sizes sum to n_in`,
      );
    assert.equal(file.metadata.grid, '2,2');
    assert.equal(file.metadata.image_size, '640,480');
    assert.equal(file.metadata.encoder, 'test-vit', `${method}: the input's own metadata is carried`);
    // source, grid position and (t, h, w) of every output token: those of its representative (kept token, else the named representative)
    const source = file.tensors.source!.data as Int32Array;
    const gridPos = file.tensors.grid_pos!.data as Int32Array;
    const positions = file.tensors.positions!.data as Int32Array;
    const keep = json.keep as number[] | undefined;
    const assign = json.assign as number[] | undefined;
    const representative = json.representative as number[] | undefined;
    assert.equal(merging.has(method), representative !== undefined, `${method}: representative in JSON for merges`);
    for (let o = 0; o < (json.n_out as number); o++) {
      const rep = representative ? representative[o]! : keep![o]!;
      if (assign) assert.equal(assign[rep], o, `${method}: representative of output ${o} is a member`);
      assert.equal(source[o], Math.floor(rep / T), `${method}: output ${o} source`);
      assert.deepEqual(
        [gridPos[2 * o], gridPos[2 * o + 1]],
        [Math.floor((rep % T) / 4), rep % 4],
        `${method}: output ${o} grid position`,
      );
      assert.deepEqual(
        Array.from(positions.subarray(3 * o, 3 * o + 3)),
        [0, Math.floor((rep % T) / 4), rep % 4],
        `${method}: output ${o} position`,
      );
    }
  });
  const byMethod = Object.fromEntries(
    methods.map((m, i) => [m, JSON.parse(results[i]!.stdout) as Record<string, unknown>]),
  );
  // R = 0.25 of n_in = 64 → 16; per tile: thumbnail 4 + each crop round(12/4) = 3
  assert.equal(byMethod.cluster!.n_out, 16);
  assert.equal(byMethod.tome!.n_out, 16);
  assert.equal(byMethod.pool!.n_out, 16);
  assert.deepEqual(byMethod.pool!.kernels, [
    [2, 2],
    [1, 4],
    [1, 4],
    [1, 4],
    [1, 4],
  ]);
  assert.equal(byMethod.visionzip!.n_out, 16);
  for (const method of methods)
    assert.deepEqual([byMethod[method]!.n_in, byMethod[method]!.n_padding], [64, 16], method);
  // GlobalCom²: 4 thumbnail tokens + ⌊N_valid·r_j⌋ per crop; crops have 4×3 valid tokens
  const ratios = byMethod.globalcom2!.crop_ratios as number[];
  assert.equal(ratios.length, 4);
  assert.deepEqual(byMethod.globalcom2!.crop_valid, [12, 12, 12, 12]);
  const expected = 4 + ratios.reduce((s, r) => s + Math.floor(12 * r), 0);
  assert.equal(byMethod.globalcom2!.n_out, expected);
  // unpadded only: the first crop's valid rows are 1..3 (canvas rows 1..6 of 8)
  const keep = byMethod.globalcom2!.keep as number[];
  for (const k of keep.filter((k) => k >= 16 && k < 32))
    assert.ok(k - 16 >= 4, `crop 0 token ${k - 16} is in the padding`);
});

test('--json budget of a per-tile method is what the tiles keep: visionzip R = 0.3 → round(4.8) + 4 × round(3.6) = 21, not round(19.2)', async () => {
  const [vz] = await runAll([
    [
      'reduce',
      '--in',
      bundle,
      '--method',
      'visionzip',
      '--ratio',
      '0.3',
      '--out',
      join(dir, 'vz10.safetensors'),
      '--json',
    ],
  ]);
  const json = JSON.parse(vz!.stdout);
  assert.deepEqual([json.budget, json.n_out, json.budgets], [21, 21, [5, 4, 4, 4, 4]]);
});

test('vtc reduce on an .npy: merge/select methods run; visionzip and globalcom2 explain what is missing', async () => {
  const methods = ['cluster', 'tome', 'divprune', 'pool', 'random'];
  const results = await runAll(
    methods.map((m) => [
      'reduce',
      '--in',
      npy,
      '--method',
      m,
      '--budget',
      '16',
      '--out',
      join(dir, `n-${m}.npy`),
      '--json',
    ]),
  );
  results.forEach((result, i) => {
    const method = methods[i]!;
    assert.equal(result.code, 0, `${method}: ${result.stderr}`);
    const json = JSON.parse(result.stdout) as Record<string, unknown>;
    checkJson(method, json, 64);
    assert.equal(json.n_out, 16);
    const out = decodeNpy(readFileSync(join(dir, `n-${method}.npy`)));
    assert.deepEqual(out.shape, [16, d]);
    if (method === 'random' || method === 'divprune') {
      const first = (json.keep as number[])[0]!;
      assert.deepEqual(Array.from(out.data.subarray(0, d)), Array.from(npyData.subarray(first * d, first * d + d)));
    }
  });
  const [vz, gc] = await runAll([
    ['reduce', '--in', npy, '--method', 'visionzip', '--ratio', '0.25', '--out', join(dir, 'vz.npy')],
    ['reduce', '--in', npy, '--method', 'globalcom2', '--ratio', '0.25', '--out', join(dir, 'gc.npy')],
  ]);
  assert.equal(vz!.code, 1);
  assert.match(vz!.stderr, /^vtc: error: visionzip: needs CLS scores \(field score/);
  assert.equal(gc!.code, 1);
  assert.match(gc!.stderr, /^vtc: error: globalcom2: input has no AnyRes information \(field anyres/);
});

test('method flags reach the reducers: --protect, --iterations, --dominant-share, --temperature, --kernel', async () => {
  const [tome, cluster, vz, gc, pool, bundleOrder, canvasOrder] = await runAll([
    [
      'reduce',
      '--in',
      npy,
      '--method',
      'tome',
      '--budget',
      '8',
      '--protect',
      '0,1',
      '--out',
      join(dir, 'f1.npy'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      npy,
      '--method',
      'cluster',
      '--budget',
      '8',
      '--iterations',
      '0',
      '--out',
      join(dir, 'f2.npy'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      bundle,
      '--method',
      'visionzip',
      '--budget',
      '20',
      '--dominant-share',
      '0.5',
      '--out',
      join(dir, 'f3.safetensors'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      bundle,
      '--method',
      'globalcom2',
      '--ratio',
      '0.5',
      '--temperature',
      '1e9',
      '--out',
      join(dir, 'f4.safetensors'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      npy,
      '--method',
      'pool',
      '--ratio',
      '0.5',
      '--kernel',
      '4',
      '--out',
      join(dir, 'f5.npy'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      bundle,
      '--method',
      'globalcom2',
      '--ratio',
      '0.5',
      '--out',
      join(dir, 'f6.safetensors'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      bundle,
      '--method',
      'globalcom2',
      '--ratio',
      '0.5',
      '--order',
      'canvas',
      '--out',
      join(dir, 'f7.safetensors'),
      '--json',
    ],
  ]);
  const t = JSON.parse(tome!.stdout);
  assert.equal(t.assign.filter((a: number) => a === t.assign[0]).length, 1, 'token 0 alone');
  assert.equal(t.assign.filter((a: number) => a === t.assign[1]).length, 1, 'token 1 alone');
  assert.equal(JSON.parse(cluster!.stdout).iterations, 0);
  assert.deepEqual(JSON.parse(vz!.stdout).dominant, [2, 2, 2, 2, 2]);
  // an enormous temperature makes σ uniform → every crop keeps R
  for (const r of JSON.parse(gc!.stdout).crop_ratios) assert.ok(Math.abs(r - 0.5) < 1e-8);
  assert.equal(JSON.parse(pool!.stdout).n_out, 4);
  // --order canvas: the same kept set, crop tokens re-ordered across crops
  const byBundle = JSON.parse(bundleOrder!.stdout).keep as number[];
  const byCanvas = JSON.parse(canvasOrder!.stdout).keep as number[];
  assert.deepEqual(
    [...byCanvas].sort((a, b) => a - b),
    [...byBundle].sort((a, b) => a - b),
  );
  assert.deepEqual(byCanvas.slice(0, 8), byBundle.slice(0, 8), 'thumbnail part unchanged');
});

test('bad input: d mismatch in a bundle, ratio out of range, budget > n, unknown method', async () => {
  const mismatch = join(dir, 'mismatch.safetensors');
  writeFileSync(
    mismatch,
    encodeSafetensors(
      {
        thumbnail: { shape: [T, 4], data: new Float32Array(T * 4) },
        crops: { shape: [4, T, 3], data: new Float32Array(4 * T * 3) },
      },
      { grid: '2,2', image_size: '640,480', patch_grid: '4,4' },
    ),
  );
  const out = join(dir, 'bad.npy');
  const cases: Array<[string[], number, RegExp]> = [
    [['--in', mismatch, '--method', 'globalcom2', '--ratio', '0.5'], 1, /crops have d = 3 but thumbnail has d = 4/],
    [['--in', bundle, '--method', 'tome', '--ratio', '0'], 2, /tome: ratio must be in \(0, 1\], got 0/],
    [
      ['--in', bundle, '--method', 'divprune', '--budget', '65'],
      2,
      /divprune: budget 65 is larger than the number of input tokens n = 64/,
    ],
    [
      ['--in', bundle, '--method', 'kmeans', '--ratio', '0.5'],
      2,
      /unknown method "kmeans" \(available: cluster, globalcom2, tome, visionzip, divprune, pool, random, cdpruner, vispruner, dart, evs, fastvid, temporal-merge\)/,
    ],
  ];
  const results = await runAll(cases.map(([args]) => ['reduce', ...args, '--out', out]));
  results.forEach((result, i) => {
    const [args, code, message] = cases[i]!;
    assert.equal(result.code, code, `${args.join(' ')} → ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split('\n').length, 1);
  });
});

// A 3-D .npy video [4 frames, 3×3 tokens, d] for the video methods.
const videoNpy = join(dir, 'video.npy');
writeFileSync(
  videoNpy,
  encodeNpy(
    [4, 9, d],
    Float32Array.from({ length: 4 * 9 * d }, () => rng.float() * 2 - 1),
  ),
);

test('vtc reduce runs cdpruner, vispruner, dart on .npy and bundles, evs and fastvid on a 3-D .npy, with keep/assign', async () => {
  const query = join(dir, 'query.npy');
  writeFileSync(
    query,
    encodeNpy(
      [2, d],
      Float32Array.from({ length: 2 * d }, () => rng.float() * 2 - 1),
    ),
  );
  const runs: Array<[string, string, string[], number]> = [
    ['cdpruner', npy, ['--budget', '16', '--query', query, '--theta', '0.5'], 64],
    // The bundle's crops are 640×480 letterboxed: 64 valid tokens, 16 padding left out before the method.
    ['cdpruner', bundle, ['--ratio', '0.25'], 64],
    ['vispruner', bundle, ['--ratio', '0.25'], 64],
    ['vispruner', npy, ['--budget', '16', '--important-share', '0.25'], 64],
    ['dart', npy, ['--budget', '16'], 64],
    ['dart', bundle, ['--ratio', '0.25', '--pivots', '2'], 64],
    ['evs', videoNpy, ['--ratio', '0.5'], 36],
    ['fastvid', videoNpy, ['--ratio', '0.5', '--segments', '2'], 36],
  ];
  const results = await runAll(
    runs.map(([m, input, extra], i) => [
      'reduce',
      '--in',
      input,
      '--method',
      m,
      ...extra,
      '--out',
      join(dir, `new-${i}.safetensors`),
      '--json',
    ]),
  );
  results.forEach((result, i) => {
    const [method, , , nIn] = runs[i]!;
    assert.equal(result.code, 0, `${method}: ${result.stderr}`);
    const json = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.equal(json.method, method);
    assert.equal(json.n_in, nIn);
    const keep = json.keep as number[];
    assert.ok(
      keep.every((k, j) => j === 0 || keep[j - 1]! < k),
      `${method}: keep ascending`,
    );
    assert.equal(keep.length, json.n_out, `${method}: one kept index per output`);
    if (method === 'fastvid') {
      const assign = json.assign as number[];
      assert.equal(assign.length, nIn);
      assert.deepEqual(json.representative, keep, "fastvid: each output takes its kept token's position");
      assert.equal(new Set(assign).size, json.n_out);
    }
    const file = decodeSafetensors(readFileSync(join(dir, `new-${i}.safetensors`)));
    assert.deepEqual(file.tensors.tokens!.shape, [json.n_out, d]);
  });
  const json = results.map((r) => JSON.parse(r.stdout) as Record<string, unknown>);
  assert.equal(json[0]!.n_out, 16);
  assert.equal(json[0]!.theta, 0.5);
  assert.equal(json[0]!.conditional, true);
  // Per tile: the thumbnail's 16 tokens keep 4 (2 important), each crop's 12 valid ones keep 3 (⌊1.5⌋ = 1 important).
  assert.deepEqual(json[2]!.important, [2, 1, 1, 1, 1]);
  assert.deepEqual(json[5]!.quotas, [7, 7], 'dart: 14 slots over 2 pivots');
  // evs: 4 frames × 9 tokens at 0.5 → 18 kept, frame 0 (tokens 0–8) whole; fastvid keeps whole frames' structure.
  assert.equal(json[6]!.n_out, 18);
  assert.deepEqual((json[6]!.keep as number[]).slice(0, 9), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(json[7]!.per_frame, 4);
});

test('evs and fastvid read a video tokens .safetensors (frame sources kept by the file) like the 3-D .npy', async () => {
  const videoFile = join(dir, 'video.safetensors');
  const [copy] = await runAll([['reduce', '--in', videoNpy, '--method', 'random', '--ratio', '1', '--out', videoFile]]);
  assert.equal(copy!.code, 0, copy!.stderr);
  const runs = await runAll([
    [
      'reduce',
      '--in',
      videoFile,
      '--method',
      'evs',
      '--ratio',
      '0.5',
      '--out',
      join(dir, 'sv-evs.safetensors'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      videoNpy,
      '--method',
      'evs',
      '--ratio',
      '0.5',
      '--out',
      join(dir, 'nv-evs.safetensors'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      videoFile,
      '--method',
      'fastvid',
      '--ratio',
      '0.5',
      '--out',
      join(dir, 'sv-fv.safetensors'),
      '--json',
    ],
  ]);
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const [fromFile, fromNpy, fastvid] = runs.map((r) => JSON.parse(r.stdout) as Record<string, unknown>);
  assert.deepEqual(fromFile!.keep, fromNpy!.keep, 'same keep from .safetensors and .npy');
  assert.equal(fastvid!.frames, 4);
});

test('vtc reduce: --query errors name both dimensions; --theta needs cdpruner; a 2-D input for a video method', async () => {
  const wrong = join(dir, 'wrong-query.npy');
  writeFileSync(wrong, encodeNpy([3, d + 1], new Float32Array(3 * (d + 1)).fill(1)));
  const [dim, foreign, video, missing] = await runAll([
    ['reduce', '--in', npy, '--method', 'cdpruner', '--budget', '4', '--query', wrong, '--out', join(dir, 'e1.npy')],
    ['reduce', '--in', npy, '--method', 'dart', '--budget', '4', '--theta', '0.5', '--out', join(dir, 'e2.npy')],
    ['reduce', '--in', npy, '--method', 'evs', '--ratio', '0.5', '--out', join(dir, 'e3.npy')],
    [
      'reduce',
      '--in',
      npy,
      '--method',
      'cdpruner',
      '--budget',
      '4',
      '--query',
      join(dir, 'nope.npy'),
      '--out',
      join(dir, 'e4.npy'),
    ],
  ]);
  assert.equal(dim!.code, 1);
  assert.match(
    dim!.stderr,
    /^vtc: error: cdpruner: query has dimension 9 \(shape \[3, 9\]\) but the tokens have d = 8/,
  );
  assert.equal(foreign!.code, 2);
  assert.match(foreign!.stderr, /dart: --theta does not apply \(it is an option of cdpruner\)/);
  assert.equal(video!.code, 1);
  assert.match(video!.stderr, /evs: needs a video token set \[frames, tokens, d\]/);
  assert.equal(missing!.code, 1);
  assert.match(missing!.stderr, /--query .*nope\.npy: file not found/);
});

test("cdpruner --query-text through a dual encoder's text tower equals --query with that embedding", async () => {
  // The tiny dual encoder embeds "sea" as (0, 0, 1) in its 3-d space; the tokens live in the same 3-d space.
  const dual = writeTinyDualEncoder(join(dir, 'dual'));
  const tokens3 = join(dir, 'tokens3.npy');
  writeFileSync(
    tokens3,
    encodeNpy(
      [12, 3],
      Float32Array.from({ length: 36 }, () => rng.float() * 2 - 1),
    ),
  );
  const seaQuery = join(dir, 'sea.npy');
  writeFileSync(seaQuery, encodeNpy([3], Float32Array.of(0, 0, 1)));
  const [byText, byFile, mismatch] = await runAll([
    [
      'reduce',
      '--in',
      tokens3,
      '--method',
      'cdpruner',
      '--budget',
      '4',
      '--query-text',
      'sea',
      '--dual-encoder',
      dual,
      '--theta',
      '0.5',
      '--out',
      join(dir, 'qt.npy'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      tokens3,
      '--method',
      'cdpruner',
      '--budget',
      '4',
      '--query',
      seaQuery,
      '--theta',
      '0.5',
      '--out',
      join(dir, 'qf.npy'),
      '--json',
    ],
    [
      'reduce',
      '--in',
      npy,
      '--method',
      'cdpruner',
      '--budget',
      '4',
      '--query-text',
      'sea',
      '--dual-encoder',
      dual,
      '--out',
      join(dir, 'qm.npy'),
    ],
  ]);
  assert.equal(byText!.code, 0, byText!.stderr);
  assert.equal(byFile!.code, 0, byFile!.stderr);
  assert.deepEqual(JSON.parse(byText!.stdout).keep, JSON.parse(byFile!.stdout).keep);
  assert.equal(mismatch!.code, 1);
  assert.match(mismatch!.stderr, /cdpruner: query has dimension 3 \(shape \[3\]\) but the tokens have d = 8/);
});
