import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tensorsToTokenSet, tokenSetToTensors, bundleToTokenSet, tokenSetToBundle } from '../../core/bundle.js';
import { ShapeError } from '../../core/errors.js';
import { decodeSafetensors, encodeSafetensors } from '../../core/safetensors.js';
import {
  concatTokenSets,
  createTokenSet,
  gridPositions,
  mergeTokens,
  selectTokens,
  splitBySource,
} from '../../core/tokenset.js';

/** 4 tokens, d = 1, positions (t, h, w) = (i, 10 + i, 20 + i), one extra tensor of width 2. */
function withPositions() {
  return createTokenSet({
    data: Float32Array.of(0, 2, 4, 6),
    n: 4,
    d: 1,
    size: Float64Array.of(1, 3, 1, 1),
    positions: Int32Array.of(0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23),
    extra: { deepstack_0: Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7) },
  });
}

test('positions and extra are validated, errors name the field with expected vs got', () => {
  const base = { data: new Float32Array(4), n: 4, d: 1 };
  assert.throws(
    () => createTokenSet({ ...base, positions: new Int32Array(9) }),
    (e: unknown) => e instanceof ShapeError && /positions has 9 values, expected 3·n = 12/.test(e.message),
  );
  assert.throws(
    () => createTokenSet({ ...base, positions: Int32Array.of(0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0) }),
    /positions of token 1 has h = -1, expected ≥ 0/,
  );
  assert.throws(
    () => createTokenSet({ ...base, extra: { deepstack_0: new Float32Array(10) } }),
    (e: unknown) =>
      e instanceof ShapeError && /extra\.deepstack_0 has 10 values, expected n·d_k for n = 4/.test(e.message),
  );
  assert.throws(
    () => createTokenSet({ ...base, extra: { deepstack_1: Float32Array.of(0, 1, NaN, 3) } }),
    /tokens\.extra\.deepstack_1: non-finite value NaN at token 2/,
  );
});

test('selectTokens keeps exact positions and extra rows', () => {
  const s = selectTokens(withPositions(), [3, 1]);
  assert.deepEqual(Array.from(s.positions!), [3, 13, 23, 1, 11, 21]);
  assert.deepEqual(Array.from(s.extra!.deepstack_0!), [6, 7, 2, 3]);
});

test('mergeTokens: positions from the representative, extra by size-weighted mean or the combine rule', () => {
  const t = withPositions();
  const byDefault = mergeTokens(t, Int32Array.of(0, 0, 1, 1), 2);
  // default representative = smallest origin: tokens 0 and 2
  assert.deepEqual(Array.from(byDefault.positions!), [0, 10, 20, 2, 12, 22]);
  // (1·[0,1] + 3·[2,3]) / 4 = [1.5, 2.5]; ([4,5] + [6,7]) / 2 = [5, 6]
  assert.deepEqual(Array.from(byDefault.extra!.deepstack_0!), [1.5, 2.5, 5, 6]);
  const named = mergeTokens(t, Int32Array.of(0, 0, 1, 1), 2, {
    representative: Int32Array.of(1, 3),
    combine: (values, width) => values.slice(0, 2 * width),
  });
  assert.deepEqual(Array.from(named.positions!), [1, 11, 21, 3, 13, 23]);
  assert.deepEqual(Array.from(named.extra!.deepstack_0!), [0, 1, 2, 3]);
  assert.throws(
    () => mergeTokens(t, Int32Array.of(0, 0, 1, 1), 2, { representative: Int32Array.of(2, 3) }),
    /representative\[0\] = 2 is not a member of output 0/,
  );
  assert.throws(
    () => mergeTokens(t, Int32Array.of(0, 0, 1, 1), 2, { combine: (values) => values }),
    /combined extra\.deepstack_0 has 8 values, expected 2·2/,
  );
});

test('concatTokenSets joins positions and extra; a mix of parts with and without is an error naming the field', () => {
  const a = withPositions();
  const c = concatTokenSets([a, a]);
  assert.deepEqual(Array.from(c.positions!.subarray(12, 15)), [0, 10, 20]);
  assert.equal(c.extra!.deepstack_0!.length, 16);
  assert.deepEqual(
    splitBySource(c).map((p) => Array.from(p.tokens.positions!.subarray(0, 3))),
    [
      [0, 10, 20],
      [0, 10, 20],
    ],
  );
  const bare = createTokenSet({ data: new Float32Array(4), n: 4, d: 1 });
  assert.throws(() => concatTokenSets([a, bare]), /part 1 has no positions but other parts do/);
  const other = createTokenSet({ data: new Float32Array(4), n: 4, d: 1, positions: new Int32Array(12) });
  assert.throws(() => concatTokenSets([a, other]), /part 1 has extra tensors \[\], expected \[deepstack_0\]/);
});

test('gridPositions: t = frame index for frames, else 0; h, w = grid cell', () => {
  const frames = createTokenSet({
    data: new Float32Array(8),
    n: 8,
    d: 1,
    sources: [
      { kind: 'frame', index: 0, rows: 2, cols: 2 },
      { kind: 'frame', index: 5, rows: 2, cols: 2 },
    ],
    source: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1),
  });
  assert.deepEqual(
    Array.from(gridPositions(frames)),
    [0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 5, 0, 0, 5, 0, 1, 5, 1, 0, 5, 1, 1],
  );
});

test('token files: positions [n, 3] int32 and extra.<name> [n, d_k] round-trip through safetensors bytes', () => {
  const t = mergeTokens(withPositions(), Int32Array.of(0, 1, 1, 2), 3, { representative: Int32Array.of(0, 2, 3) });
  const { tensors, metadata } = tokenSetToTensors(t);
  const file = decodeSafetensors(encodeSafetensors(tensors, metadata));
  assert.deepEqual(file.tensors.positions!.shape, [3, 3]);
  assert.equal(file.tensors.positions!.dtype, 'I32');
  assert.deepEqual(file.tensors['extra.deepstack_0']!.shape, [3, 2]);
  const back = tensorsToTokenSet(file);
  assert.deepEqual(Array.from(back.positions!), [0, 10, 20, 2, 12, 22, 3, 13, 23]);
  assert.deepEqual(Array.from(back.extra!.deepstack_0!), Array.from(t.extra!.deepstack_0!));
  assert.deepEqual(
    back.origin.map((o) => Array.from(o)),
    [[0], [1, 2], [3]],
  );
});

test('token files: a positions tensor of the wrong shape or dtype is an error naming it', () => {
  const tokens = { shape: [2, 1], data: Float32Array.of(1, 2) };
  const wrongShape = decodeSafetensors(
    encodeSafetensors({ tokens, positions: { shape: [2, 2], data: new Int32Array(4) } }),
  );
  assert.throws(
    () => tensorsToTokenSet(wrongShape, 'x.safetensors'),
    (e: unknown) =>
      e instanceof ShapeError &&
      /x\.safetensors: 'positions' must be an integer \[2, 3\] tensor .* got I32 \[2, 2\]/.test(e.message),
  );
  const wrongType = decodeSafetensors(
    encodeSafetensors({ tokens, positions: { shape: [2, 3], data: new Float32Array(6) } }),
  );
  assert.throws(
    () => tensorsToTokenSet(wrongType, 'x.safetensors'),
    /'positions' must be an integer \[2, 3\] tensor .* got F32/,
  );
  const wrongExtra = decodeSafetensors(
    encodeSafetensors({ tokens, 'extra.deepstack_0': { shape: [3, 1], data: new Float32Array(3) } }),
  );
  assert.throws(() => tensorsToTokenSet(wrongExtra, 'x.safetensors'), /'extra\.deepstack_0' must be \[2, d_k\]/);
});

test('AnyRes bundles load with LLaVA positions (0, row, col) per tile', () => {
  const n = 4 * 3;
  const t = createTokenSet({
    data: new Float32Array(n),
    n,
    d: 1,
    sources: [
      { kind: 'thumbnail', index: 0, rows: 2, cols: 2 },
      { kind: 'crop', index: 0, rows: 2, cols: 2 },
      { kind: 'crop', index: 1, rows: 2, cols: 2 },
    ],
    source: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2),
    anyres: { gridRows: 1, gridCols: 2, imageWidth: 64, imageHeight: 32, patchRows: 2, patchCols: 2 },
  });
  const { tensors, metadata } = tokenSetToBundle(t);
  const back = bundleToTokenSet(decodeSafetensors(encodeSafetensors(tensors, metadata)));
  assert.deepEqual(Array.from(back.positions!.subarray(12, 24)), [0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1]);
});
