import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cdprunerReducer, greedyDppMap, queryRelevance } from '../../reducers/cdpruner.js';
import { checkSelection, randomTokens, tokensFromRows } from './fixtures.js';

/*
 * Six unit-norm tokens in 4-D (cosines are products of the coordinates):
 *   t0 = (1, 0, 0, 0)      t1 = (0.8, 0.6, 0, 0)   t2 = (0, 1, 0, 0)
 *   t3 = (0.6, 0, 0.8, 0)  t4 = (0, 0.6, 0, 0.8)   t5 = (0, 0, 1, 0)
 *
 * Plain DPP (no query, L = S), d² = residual squared norm after projecting
 * out the picked tokens:
 *   step 0: d² = 1 for all → t0 (lowest index). e0 = S[0,:] = (1, .8, 0, .6, 0, 0);
 *           d² = (−, .36, 1, .64, 1, 1).
 *   step 1: tie t2 = t4 = t5 = 1 → t2. e1 = S[2,:] − e0[2]·e0 = (0, .6, 1, 0, .6, 0);
 *           d² = (−, 0, −, .64, .64, 1).
 *   step 2: t5 (1). e2 = S[5,:] = (0, 0, 0, .8, 0, 1); d²: t3 = .64 − .64 = 0, t4 = .64.
 *   step 3: t4 (.64).  → order [0, 2, 5, 4], keep [0, 2, 4, 5].
 *
 * With the query q = (0, 0, 1, 0): −cos = (0, 0, 0, −.8, 0, −1), min −1, max 0,
 * so r = (r + 1 + 1e-6) / 1 = (1+ε, 1+ε, 1+ε, .2+ε, 1+ε, ε) with ε = 1e-6: the
 * tokens most like the query become the least relevant (the released code's sign).
 * Raw relevance (no θ), L = diag(r)·S·diag(r), d²_i = r_i²:
 *   step 0: t0 (r0² ties t1, t2, t4; lowest). e0_k = S_0k·r_k: t1 .8r, t3 .6·.2 = .12;
 *           d²: t1 .36r², t2 r², t3 .04 − .0144 = .0256, t4 r², t5 ε².
 *   step 1: tie t2 = t4 → t2. e1_k = S_2k·r_k: t1 .6r, t4 .6r; d²: t1 0, t4 .64r², t3 .0256.
 *   step 2: t4 (.64r²); its update touches only t4 itself (S_4k·r_k − e1_4·e1_k = 0 for k ≠ 4).
 *   step 3: t3 (.0256 > ε² ≈ 1e-12).  → keep [0, 2, 3, 4].
 * θ = 0.5 (α = 0.5, q = exp(r/2)): q = (1.6487, …, t3 1.1052, …, t5 1.0000005):
 *   steps 0–2 as above (t0, t2, t4); d² then: t3 = .64·1.1052² = .7817, t5 = 1.000001
 *   → step 3: t5.  → keep [0, 2, 4, 5].
 */
const six = [
  [1, 0, 0, 0],
  [0.8, 0.6, 0, 0],
  [0, 1, 0, 0],
  [0.6, 0, 0.8, 0],
  [0, 0.6, 0, 0.8],
  [0, 0, 1, 0],
];

test('cdpruner: 6-token DPP, greedy order derived by hand (no query, raw relevance, θ = 0.5)', async () => {
  const tokens = tokensFromRows(six);
  const plain = await cdprunerReducer.run(tokens, { budget: 4 });
  assert.deepEqual(Array.from(plain.keep!), [0, 2, 4, 5]);
  assert.equal(plain.stats.first_pick, 0);
  assert.equal(plain.stats.conditional, false);
  checkSelection(tokens, plain, 4);
  const query = Float32Array.of(0, 0, 1, 0);
  const raw = await cdprunerReducer.run(tokens, { budget: 4, query });
  assert.deepEqual(Array.from(raw.keep!), [0, 2, 3, 4]);
  const weighted = await cdprunerReducer.run(tokens, { budget: 4, query, theta: 0.5 });
  assert.deepEqual(Array.from(weighted.keep!), [0, 2, 4, 5]);
  assert.equal(weighted.stats.theta, 0.5);
  // The pick order itself, from the exact similarity rows.
  const s = Float32Array.from(six.flatMap((a) => six.map((b) => a.reduce((sum, v, c) => sum + v * b[c]!, 0))));
  const order = await greedyDppMap((j) => s.subarray(j * 6, j * 6 + 6), new Uint8Array(6).fill(1), 6, 4);
  assert.deepEqual(Array.from(order), [0, 2, 5, 4]);
});

test('cdpruner: relevance is the mean negated cosine over query rows, min-max normalised with the 1e-6', async () => {
  const tokens = tokensFromRows(six);
  // rows (0, 0, 1, 0) and (0, 0, 0, 1): mean −cos t3 −.4, t4 −.4, t5 −.5, the others 0; min −.5, max 0
  const r = await queryRelevance(tokens, { rows: 2, cols: 4, data: Float32Array.of(0, 0, 1, 0, 0, 0, 0, 1) });
  const expected = [0, 0, 0, -0.4, -0.4, -0.5].map((v) => (v + 0.5 + 1e-6) / 0.5);
  for (let i = 0; i < 6; i++)
    assert.ok(Math.abs(r[i]! - expected[i]!) < 1e-6, `r[${i}] = ${r[i]}, expected ${expected[i]}`);
});

test('cdpruner: budget respected, distinct, ascending, deterministic; first pick 0 without a query', async () => {
  const tokens = randomTokens(120, 16, 3);
  for (const budget of [1, 7, 16, 40, 120]) {
    const result = await cdprunerReducer.run(tokens, { budget });
    checkSelection(tokens, result, budget);
    assert.ok(
      result.keep!.every((v, i, a) => i === 0 || a[i - 1]! < v),
      'ascending',
    );
    assert.equal(result.stats.first_pick, 0);
  }
  // Past the kernel's rank (16) the picks continue by the remaining d² and stay distinct.
  assert.deepEqual(
    (await cdprunerReducer.run(tokens, { budget: 40 })).keep,
    (await cdprunerReducer.run(tokens, { budget: 40 })).keep,
  );
  // Identical tokens: the lowest index wins every tie.
  const same = tokensFromRows(Array.from({ length: 5 }, () => [1, 2, 3]));
  assert.deepEqual(Array.from((await cdprunerReducer.run(same, { budget: 3 })).keep!), [0, 1, 2]);
});

test('cdpruner: the native update path gives the same picks as a float64 greedy', async () => {
  // n·step ≥ 2¹⁷ from step 219 on, so the last 81 picks go through the native vector × matrix product.
  const n = 600;
  const d = 400;
  const tokens = randomTokens(n, d, 9);
  const result = await cdprunerReducer.run(tokens, { budget: 300 });
  const unit = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += tokens.data[i * d + c]! ** 2;
    for (let c = 0; c < d; c++) unit[i * d + c] = tokens.data[i * d + c]! / Math.sqrt(s);
  }
  const di2 = new Float64Array(n).fill(1);
  const cis: Float64Array[] = [];
  const picks: number[] = [];
  for (let step = 0; step < 300; step++) {
    let j = 0;
    for (let i = 1; i < n; i++) if (di2[i]! > di2[j]!) j = i;
    picks.push(j);
    const e = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += unit[j * d + c]! * unit[k * d + c]!;
      for (const row of cis) dot -= row[j]! * row[k]!;
      e[k] = dot / Math.sqrt(di2[j]!);
    }
    for (let k = 0; k < n; k++) di2[k]! -= e[k]! ** 2;
    di2[j] = -Infinity;
    cis.push(e);
  }
  assert.deepEqual(
    Array.from(result.keep!),
    picks.sort((a, b) => a - b),
  );
});

test('cdpruner: errors name both dimensions; theta range; theta without a query', async () => {
  const tokens = tokensFromRows(six);
  await assert.rejects(
    cdprunerReducer.run(tokens, { budget: 2, query: Float32Array.of(1, 0, 0) }),
    /cdpruner: query has dimension 3 \(shape \[3\]\) but the tokens have d = 4/,
  );
  await assert.rejects(
    cdprunerReducer.run(tokens, { budget: 2, query: { rows: 2, cols: 5, data: new Float32Array(10) } }),
    /query has dimension 5 \(shape \[2, 5\]\) but the tokens have d = 4/,
  );
  await assert.rejects(
    cdprunerReducer.run(tokens, { budget: 2, query: Float32Array.of(0, 0, 0, 0) }),
    /query row 0 is all zeros/,
  );
  await assert.rejects(
    cdprunerReducer.run(tokens, { budget: 2, query: Float32Array.of(1, 0, 0, 0), theta: 1 }),
    /theta must be in \[0, 1\), got 1/,
  );
  await assert.rejects(
    cdprunerReducer.run(tokens, { budget: 2, theta: 0.5 }),
    /theta weights the relevance to a query/,
  );
  await assert.rejects(
    cdprunerReducer.run(tokens, { budget: 7 }),
    /budget 7 is larger than the number of input tokens n = 6/,
  );
});
