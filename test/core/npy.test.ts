import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { InputError } from '../../core/errors.js';
import { decodeNpy, encodeNpy } from '../../core/npy.js';
import { fixture } from '../helpers.js';

const expected = Array.from({ length: 12 }, (_, i) => i / 4 - 1);

test('decodeNpy reads NumPy-written float32 files with v1, v2 and v3 headers', () => {
  for (const name of ['f32_v1.npy', 'f32_v2.npy', 'f32_v3.npy']) {
    const t = decodeNpy(readFileSync(fixture(name)), name);
    assert.deepEqual(t.shape, [3, 4], name);
    assert.equal(t.dtype, 'float32');
    assert.deepEqual(Array.from(t.data), expected, name);
  }
});

test('decodeNpy converts float16 to float32 exactly for representable values', () => {
  const t = decodeNpy(readFileSync(fixture('f16_v1.npy')));
  assert.equal(t.dtype, 'float16');
  assert.deepEqual(Array.from(t.data), expected);
});

test('encodeNpy writes the exact bytes np.save writes (float32, v1 header, 64-byte aligned)', () => {
  const numpyBytes = readFileSync(fixture('f32_v1.npy'));
  const ours = encodeNpy([3, 4], Float32Array.from(expected));
  assert.deepEqual(Buffer.from(ours), numpyBytes);
  const half = encodeNpy([3, 4], Float32Array.from(expected), 'float16');
  assert.deepEqual(Buffer.from(half), readFileSync(fixture('f16_v1.npy')));
});

test('npy round trip keeps shape and values; 1-D shapes use the (n,) tuple form', () => {
  const data = Float32Array.from([1.5, -2.25, 3]);
  const bytes = encodeNpy([3], data);
  assert.match(Buffer.from(bytes.subarray(10, 80)).toString('latin1'), /'shape': \(3,\)/);
  const back = decodeNpy(bytes);
  assert.deepEqual(back.shape, [3]);
  assert.deepEqual(Array.from(back.data), [1.5, -2.25, 3]);
  assert.equal((bytes.length - data.byteLength) % 64, 0);
});

test('decodeNpy rejects Fortran order, other dtypes, truncation and non-npy bytes with clear errors', () => {
  const cases: Array<[string, RegExp]> = [
    ['fortran.npy', /Fortran-order arrays are not supported \(expected C order/],
    ['int32.npy', /unsupported dtype '<i4' \(expected little-endian float32 '<f4' or float16 '<f2'\)/],
    ['f64.npy', /unsupported dtype '<f8'/],
    ['bigendian.npy', /unsupported dtype '>f4'/],
  ];
  for (const [name, message] of cases) {
    assert.throws(
      () => decodeNpy(readFileSync(fixture(name)), name),
      (e: unknown) => e instanceof InputError && message.test(e.message) && e.message.startsWith(name),
    );
  }
  const full = readFileSync(fixture('f32_v1.npy'));
  assert.throws(
    () => decodeNpy(full.subarray(0, full.length - 4), 'cut.npy'),
    /cut\.npy: truncated data: shape \(3, 4\) needs 48 bytes, file has 44/,
  );
  assert.throws(() => decodeNpy(full.subarray(0, 40), 'cut.npy'), /truncated \.npy header/);
  assert.throws(() => decodeNpy(new Uint8Array(0), 'empty.npy'), /empty\.npy: not a \.npy file/);
  assert.throws(() => decodeNpy(Buffer.from('hello world, not numpy'), 'x.npy'), /not a \.npy file/);
});
