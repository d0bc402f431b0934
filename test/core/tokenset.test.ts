import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, ShapeError, UsageError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import {
  concatTokenSets,
  createTokenSet,
  groupByAssignment,
  identityOrigins,
  mergeTokens,
  resolveBudget,
  selectTokens,
  splitBySource,
} from '../../core/tokenset.js';

function grid(n: number, d: number) {
  return createTokenSet({ data: Float32Array.from({ length: n * d }, (_, i) => i), n, d });
}

test('createTokenSet fills a square grid, raster positions, size 1 and origin [i]', () => {
  const t = grid(9, 2);
  assert.deepEqual(t.sources, [{ kind: 'image', index: 0, rows: 3, cols: 3 }]);
  assert.deepEqual(Array.from(t.row), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.deepEqual(Array.from(t.col), [0, 1, 2, 0, 1, 2, 0, 1, 2]);
  assert.deepEqual(Array.from(t.size), new Array(9).fill(1));
  assert.deepEqual(
    t.origin.map((o) => Array.from(o)),
    [[0], [1], [2], [3], [4], [5], [6], [7], [8]],
  );
  const line = grid(6, 1);
  assert.deepEqual(line.sources[0], { kind: 'image', index: 0, rows: 1, cols: 6 });
});

test('validation names the field, the expected and the actual value', () => {
  assert.throws(
    () => createTokenSet({ data: new Float32Array(5), n: 2, d: 3 }),
    (e: unknown) => e instanceof ShapeError && /data has 5 values, expected n\*d = 2\*3 = 6/.test(e.message),
  );
  assert.throws(
    () => createTokenSet({ data: Float32Array.from([0, NaN, 1, 2]), n: 2, d: 2 }),
    (e: unknown) => e instanceof InputError && /non-finite value NaN at token 0, dimension 1/.test(e.message),
  );
  assert.throws(
    () => createTokenSet({ data: Float32Array.from([0, 1, Infinity, 2]), n: 2, d: 2 }),
    /non-finite value Infinity at token 1, dimension 0/,
  );
  assert.throws(
    () => createTokenSet({ data: new Float32Array(4), n: 2, d: 2, size: new Float64Array(3) }),
    /size has length 3, expected n = 2/,
  );
  assert.throws(
    () => createTokenSet({ data: new Float32Array(4), n: 2, d: 2, source: Int32Array.from([0, 4]) }),
    /token 1 refers to source 4, but only 1 sources exist/,
  );
  assert.throws(
    () => createTokenSet({ data: new Float32Array(4), n: 2, d: 2, score: Float32Array.from([1, NaN]) }),
    /tokens\.score: non-finite value NaN at token 1/,
  );
});

test('selectTokens carries rows and every metadata field in the given order', () => {
  const t = createTokenSet({
    data: Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]),
    n: 4,
    d: 2,
    score: Float32Array.from([9, 8, 7, 6]),
  });
  const s = selectTokens(t, [3, 1]);
  assert.deepEqual(Array.from(s.data), [6, 7, 2, 3]);
  assert.deepEqual(Array.from(s.score!), [6, 8]);
  assert.deepEqual(Array.from(s.row), [1, 0]);
  assert.deepEqual(Array.from(s.col), [1, 1]);
  assert.deepEqual(
    s.origin.map((o) => Array.from(o)),
    [[3], [1]],
  );
  assert.throws(() => selectTokens(t, [4]), /index 4 at position 0 is outside \[0, 4\)/);
});

test('mergeTokens gives size-weighted means, summed sizes and unioned origins', () => {
  const t = createTokenSet({
    data: Float32Array.from([0, 2, 4, 6]),
    n: 4,
    d: 1,
    size: Float64Array.from([1, 3, 1, 1]),
  });
  const m = mergeTokens(t, Int32Array.from([0, 0, 1, 1]), 2);
  // (0·1 + 2·3) / 4 = 1.5 ; (4 + 6) / 2 = 5
  assert.deepEqual(Array.from(m.data), [1.5, 5]);
  assert.deepEqual(Array.from(m.size), [4, 2]);
  assert.deepEqual(
    m.origin.map((o) => Array.from(o)),
    [
      [0, 1],
      [2, 3],
    ],
  );
  assert.throws(() => mergeTokens(t, Int32Array.from([0, 0, 2, 2]), 3), /output token 1 has no members/);
});

test('mergeTokens means are float64 sums one member at a time in input order, bit for bit, for groups of 1–9', () => {
  const n = 270;
  const d = 37;
  const rng = new Rng(4);
  // Some huge values of both signs: their cancellation makes the float64 sum depend on the order of additions.
  const data = Float32Array.from({ length: n * d }, () =>
    rng.int(3) === 0 ? (rng.int(2) ? 1 : -1) * 2 ** 60 : (rng.float() - 0.5) * 10 ** rng.int(4),
  );
  const size = Float64Array.from({ length: n }, () => 1 + rng.int(3));
  // Outputs of every size 1..9, members interleaved across the input.
  const assign = new Int32Array(n);
  const groups: number[] = [];
  for (let g = 0; groups.length < n; g++) for (let k = 0; k <= g % 9 && groups.length < n; k++) groups.push(g);
  const outputCount = groups.at(-1)! + 1;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ((a * 7919) % n) - ((b * 7919) % n));
  order.forEach((input, k) => {
    assign[input] = groups[k]!;
  });
  const merged = mergeTokens(createTokenSet({ data, n, d, size }), assign, outputCount);
  const expected = new Float32Array(outputCount * d);
  for (let o = 0; o < outputCount; o++) {
    const members = Array.from({ length: n }, (_, i) => i).filter((i) => assign[i] === o);
    let total = 0;
    for (const i of members) total += size[i]!;
    for (let c = 0; c < d; c++) {
      let sum = 0;
      for (const i of members) sum += size[i]! * data[i * d + c]!;
      expected[o * d + c] = sum / total;
    }
  }
  assert.deepEqual(new Uint32Array(merged.data.buffer), new Uint32Array(expected.buffer));
});

test('identityOrigins: element i is [i], made when read; array methods work; writes are refused', () => {
  const origin = identityOrigins(4);
  assert.equal(origin.length, 4);
  assert.deepEqual(Array.from(origin[3]!), [3]);
  assert.equal(origin[4], undefined);
  assert.equal(origin['-1' as unknown as number], undefined);
  assert.ok(Array.isArray(origin));
  assert.ok(2 in origin);
  assert.ok(!(4 in origin));
  assert.deepEqual(
    origin.map((o) => o[0]),
    [0, 1, 2, 3],
  );
  assert.deepEqual(
    [...origin].map((o) => Array.from(o)),
    [[0], [1], [2], [3]],
  );
  assert.deepEqual(
    origin.slice(1, 3).map((o) => Array.from(o)),
    [[1], [2]],
  );
  assert.throws(() => {
    origin[0] = Int32Array.of(9);
  }, /^TypeError: identityOrigins: the origins are read-only$/);
  // A token set built on them selects and merges like one with plain arrays.
  const data = Float32Array.from([0, 2, 4, 6]);
  const lazy = createTokenSet({ data, n: 4, d: 1, origin: identityOrigins(4) });
  const plain = createTokenSet({ data, n: 4, d: 1 });
  for (const tokens of [lazy, plain]) {
    assert.deepEqual(
      selectTokens(tokens, [3, 1]).origin.map((o) => Array.from(o)),
      [[3], [1]],
    );
  }
  const merged = mergeTokens(lazy, Int32Array.from([1, 0, 1, 0]), 2);
  assert.deepEqual(merged, mergeTokens(plain, Int32Array.from([1, 0, 1, 0]), 2));
});

test('concatTokenSets re-indexes sources and origins; splitBySource inverts it', () => {
  const a = grid(4, 1);
  const b = grid(9, 1);
  const c = concatTokenSets([a, b]);
  assert.equal(c.n, 13);
  assert.equal(c.sources.length, 2);
  assert.deepEqual(Array.from(c.source.subarray(3, 6)), [0, 1, 1]);
  assert.deepEqual(Array.from(c.origin[4]!), [4]);
  const parts = splitBySource(c);
  assert.deepEqual(
    parts.map((p) => p.tokens.n),
    [4, 9],
  );
  assert.deepEqual(Array.from(parts[1]!.indices.subarray(0, 2)), [4, 5]);
  assert.throws(() => concatTokenSets([a, grid(4, 2)]), /part 1 has d = 2, expected 1/);
});

test('resolveBudget: max(1, round(n·R)), and usage errors for ratio outside (0, 1] and budget > n', () => {
  assert.deepEqual(resolveBudget(576, { ratio: 0.25 }, 'm'), { budget: 144, ratio: 0.25 });
  assert.equal(resolveBudget(576, { ratio: 0.001 }, 'm').budget, 1);
  assert.equal(resolveBudget(10, { ratio: 0.25 }, 'm').budget, 3); // round(2.5) = 3
  assert.deepEqual(resolveBudget(576, { budget: 64 }, 'm'), { budget: 64, ratio: 64 / 576 });
  for (const ratio of [0, 1.5, -0.1, NaN])
    assert.throws(
      () => resolveBudget(10, { ratio }, 'pool'),
      (e: unknown) => e instanceof UsageError && /pool: ratio must be in \(0, 1\]/.test(e.message),
    );
  assert.throws(
    () => resolveBudget(10, { budget: 11 }, 'pool'),
    /pool: budget 11 is larger than the number of input tokens n = 10/,
  );
  assert.throws(() => resolveBudget(10, { budget: 2.5 }, 'pool'), /budget must be an integer ≥ 1, got 2.5/);
  assert.throws(() => resolveBudget(0, { ratio: 0.5 }, 'pool'), /input has no tokens/);
});

test('groupByAssignment groups members per output in input order; mergeTokens can average scores and take given representatives', () => {
  const { start, members } = groupByAssignment(Int32Array.of(1, 0, 1), 2);
  assert.deepEqual(Array.from(start), [0, 1, 3]);
  assert.deepEqual(Array.from(members), [1, 0, 2]);
  assert.throws(() => groupByAssignment(Int32Array.of(0, 2), 2, 'pool'), /pool: assign\[1\] = 2 is outside \[0, 2\)/);
  const t = createTokenSet({
    data: Float32Array.from([0, 2, 4, 6]),
    n: 4,
    d: 1,
    score: Float32Array.from([1, 3, 5, 9]),
  });
  const byRep = mergeTokens(t, Int32Array.from([0, 0, 1, 1]), 2, { representative: Int32Array.of(1, 3) });
  assert.deepEqual(Array.from(byRep.score!), [3, 9]);
  assert.deepEqual([byRep.col[0], byRep.col[1]], [1, 1]);
  const byMean = mergeTokens(t, Int32Array.from([0, 0, 1, 1]), 2, { meanScore: true, features: Float32Array.of(7, 8) });
  assert.deepEqual(Array.from(byMean.score!), [2, 7]);
  assert.deepEqual(Array.from(byMean.data), [7, 8]);
  assert.deepEqual(Array.from(byMean.size), [2, 2]);
});

test('sizes must be finite counts > 0: zero, negative and NaN sizes are rejected naming the token', () => {
  for (const bad of [0, -1, Number.NaN]) {
    const size = Float64Array.of(1, bad, 1, 1);
    assert.throws(
      () => createTokenSet({ data: new Float32Array(8), n: 4, d: 2, size }),
      (error: unknown) =>
        error instanceof InputError && /size\[1\] = (0|-1|NaN), expected a finite count > 0/.test(error.message),
    );
  }
});

test('mergeTokens: each output is the float64 size-weighted mean of its members added in index order (bitwise, groups of 1 to 7)', () => {
  const n = 28;
  const d = 5;
  const data = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 11)));
  const size = Float64Array.from({ length: n }, (_, i) => 0.3 + ((i * 7) % 5) / 3);
  const tokens = createTokenSet({ data, n, d, size });
  // outputs 0..6 with 1, 2, …, 7 members, interleaved
  const groups = [
    [3],
    [0, 27],
    [1, 2, 4],
    [5, 9, 13, 17],
    [6, 7, 8, 10, 11],
    [12, 14, 15, 16, 18, 19],
    [20, 21, 22, 23, 24, 25, 26],
  ];
  const assign = new Int32Array(n);
  groups.forEach((members, o) => {
    for (const i of members) assign[i] = o;
  });
  const merged = mergeTokens(tokens, assign, groups.length);
  groups.forEach((members, o) => {
    for (let c = 0; c < d; c++) {
      let sum = 0;
      let total = 0;
      for (const i of members) {
        sum += size[i]! * data[i * d + c]!;
        total += size[i]!;
      }
      assert.ok(Object.is(merged.data[o * d + c], Math.fround(sum / total)), `output ${o}, dimension ${c}`);
    }
  });
});
