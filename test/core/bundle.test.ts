import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bundleToTokenSet, tensorsToTokenSet, tokenSetToBundle, tokenSetToTensors } from '../../core/bundle.js';
import { InputError, ShapeError } from '../../core/errors.js';
import { mergeTokens } from '../../core/tokenset.js';
import { decodeSafetensors, encodeSafetensors } from '../../core/safetensors.js';

/** A 2×2-grid bundle with 4 tokens per tile (2×2 patches) and d = 2. */
function makeBundle(overrides: { cropD?: number; withCls?: boolean } = {}) {
  const T = 4;
  const d = 2;
  const thumbnail = Float32Array.from({ length: T * d }, (_, i) => i);
  const cropD = overrides.cropD ?? d;
  const crops = Float32Array.from({ length: 4 * T * cropD }, (_, i) => 100 + i);
  const tensors: Parameters<typeof encodeSafetensors>[0] = {
    thumbnail: { shape: [T, d], data: thumbnail },
    crops: { shape: [4, T, cropD], data: crops },
  };
  if (overrides.withCls !== false) {
    tensors.thumbnail_cls = { shape: [T], data: Float32Array.from([1, 2, 3, 4]) };
    tensors.crops_cls = { shape: [4, T], data: Float32Array.from({ length: 16 }, (_, i) => -i) };
  }
  return encodeSafetensors(tensors, { grid: '2,2', image_size: '640,480', patch_grid: '2,2' });
}

test('bundleToTokenSet: thumbnail first, then crops in order, scores and AnyRes info', () => {
  const t = bundleToTokenSet(decodeSafetensors(makeBundle()));
  assert.equal(t.n, 20);
  assert.equal(t.d, 2);
  assert.deepEqual(t.anyres, {
    gridRows: 2,
    gridCols: 2,
    imageWidth: 640,
    imageHeight: 480,
    patchRows: 2,
    patchCols: 2,
  });
  assert.deepEqual(
    t.sources.map((s) => `${s.kind}${s.index}`),
    ['thumbnail0', 'crop0', 'crop1', 'crop2', 'crop3'],
  );
  assert.deepEqual(Array.from(t.source), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]);
  assert.deepEqual(Array.from(t.data.subarray(8, 10)), [100, 101]);
  assert.deepEqual(Array.from(t.score!.subarray(0, 6)), [1, 2, 3, 4, -0, -1]);
  assert.deepEqual([t.row[5], t.col[5], t.row[7], t.col[7]], [0, 1, 1, 1]);
});

test('AnyRes bundle round trip through tokenSetToBundle is lossless', () => {
  const t = bundleToTokenSet(decodeSafetensors(makeBundle()));
  const { tensors, metadata } = tokenSetToBundle(t);
  const again = bundleToTokenSet(decodeSafetensors(encodeSafetensors(tensors, metadata)));
  assert.deepEqual(Array.from(again.data), Array.from(t.data));
  assert.deepEqual(Array.from(again.score!), Array.from(t.score!));
  assert.deepEqual(again.anyres, t.anyres);
});

test('bundle errors: d mismatch between crops and thumbnail, bad grid metadata, half the CLS scores', () => {
  assert.throws(
    () => bundleToTokenSet(decodeSafetensors(makeBundle({ cropD: 3 })), 'b.safetensors'),
    (e: unknown) =>
      e instanceof ShapeError && /b\.safetensors: crops have d = 3 but thumbnail has d = 2/.test(e.message),
  );
  const noGrid = encodeSafetensors(
    { thumbnail: { shape: [4, 2], data: new Float32Array(8) }, crops: { shape: [1, 4, 2], data: new Float32Array(8) } },
    { image_size: '1,1' },
  );
  assert.throws(() => bundleToTokenSet(decodeSafetensors(noGrid), 'g'), /g: bundle metadata lacks 'grid'/);
  const half = encodeSafetensors(
    {
      thumbnail: { shape: [4, 2], data: new Float32Array(8) },
      crops: { shape: [1, 4, 2], data: new Float32Array(8) },
      thumbnail_cls: { shape: [4], data: new Float32Array(4) },
    },
    { grid: '1,1', image_size: '336,336' },
  );
  assert.throws(() => bundleToTokenSet(decodeSafetensors(half), 'h'), /only one of 'thumbnail_cls' and 'crops_cls'/);
});

test('tokens files keep sizes, sources, grid positions and scores', () => {
  const t = bundleToTokenSet(decodeSafetensors(makeBundle()));
  t.size[3] = 5;
  const { tensors, metadata } = tokenSetToTensors(t);
  const back = tensorsToTokenSet(decodeSafetensors(encodeSafetensors(tensors, metadata)));
  assert.equal(back.n, 20);
  assert.equal(back.size[3], 5);
  assert.deepEqual(Array.from(back.source), Array.from(t.source));
  assert.deepEqual(Array.from(back.col), Array.from(t.col));
  assert.deepEqual(
    back.sources.map((s) => s.kind),
    ['thumbnail', 'crop', 'crop', 'crop', 'crop'],
  );
  assert.deepEqual(back.anyres, t.anyres);
});

test('bundle with NaN/Inf names the file, the tensor and the element index', () => {
  const withValue = (tensor: 'thumbnail' | 'crops' | 'thumbnail_cls' | 'crops_cls', at: number, value: number) => {
    const file = decodeSafetensors(makeBundle());
    file.tensors[tensor]!.data[at] = value;
    return () => bundleToTokenSet(file, 'b.safetensors');
  };
  assert.throws(
    withValue('crops_cls', 7, NaN),
    (e: unknown) =>
      e instanceof InputError &&
      e.message ===
        "b.safetensors: tensor 'crops_cls' has non-finite value NaN at [1, 3] (values must be finite numbers)",
  );
  assert.throws(
    withValue('crops', 2 * 8 + 3 * 2 + 1, Infinity),
    /b\.safetensors: tensor 'crops' has non-finite value Infinity at \[2, 3, 1\]/,
  );
  assert.throws(
    withValue('thumbnail', 5, -Infinity),
    /b\.safetensors: tensor 'thumbnail' has non-finite value -Infinity at \[2, 1\]/,
  );
  assert.throws(
    withValue('thumbnail_cls', 0, NaN),
    /b\.safetensors: tensor 'thumbnail_cls' has non-finite value NaN at \[0\]/,
  );
});

test('tokens files: validation errors carry the file name', () => {
  const t = bundleToTokenSet(decodeSafetensors(makeBundle()));
  const { tensors, metadata } = tokenSetToTensors(t);
  const file = decodeSafetensors(encodeSafetensors(tensors, metadata));
  file.tensors.scores!.data[3] = NaN;
  assert.throws(
    () => tensorsToTokenSet(file, 'r.safetensors'),
    (e: unknown) =>
      e instanceof InputError && /^r\.safetensors: tokens\.score: non-finite value NaN at token 3/.test(e.message),
  );
});

test('tokens files carry origins after a reduction (CSR origin_offsets + origin_index), none for an unreduced set', () => {
  const t = bundleToTokenSet(decodeSafetensors(makeBundle()));
  assert.equal(tokenSetToTensors(t).tensors.origin_offsets, undefined, 'identity origins are implicit');
  // 20 tokens → 3 outputs: {0..3} {4..11} {12..19}
  const merged = mergeTokens(
    t,
    Int32Array.from({ length: 20 }, (_, i) => (i < 4 ? 0 : i < 12 ? 1 : 2)),
    3,
  );
  const { tensors, metadata } = tokenSetToTensors(merged);
  assert.deepEqual(Array.from(tensors.origin_offsets!.data), [0, 4, 12, 20]);
  const back = tensorsToTokenSet(decodeSafetensors(encodeSafetensors(tensors, metadata)));
  assert.deepEqual(
    back.origin.map((o) => Array.from(o)),
    merged.origin.map((o) => Array.from(o)),
  );
  assert.deepEqual(Array.from(back.size), [4, 8, 8]);
  const bad = decodeSafetensors(encodeSafetensors(tensors, metadata));
  bad.tensors.origin_offsets!.data[3] = 19;
  assert.throws(
    () => tensorsToTokenSet(bad, 'm.safetensors'),
    (e: unknown) =>
      e instanceof ShapeError &&
      /m\.safetensors: 'origin_offsets' must be \[4\] from 0 to len\(origin_index\) = 20/.test(e.message),
  );
});
