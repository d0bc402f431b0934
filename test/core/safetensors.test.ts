import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeSafetensors, encodeSafetensors } from '../../core/safetensors.js';
import { fixture } from '../helpers.js';

test('decodeSafetensors reads a file laid out as the Python safetensors library writes it', () => {
  const file = decodeSafetensors(readFileSync(fixture('mixed.safetensors')));
  assert.deepEqual(file.metadata, { format: 'pt', note: 'fixture' });
  assert.deepEqual(Object.keys(file.tensors).sort(), ['a_f16', 'b_i32', 'tokens']);
  assert.deepEqual(file.tensors.tokens!.shape, [2, 3]);
  assert.deepEqual(Array.from(file.tensors.tokens!.data), [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]);
  assert.deepEqual(Array.from(file.tensors.a_f16!.data), [0.5, -1, 2, 65504]);
  assert.ok(file.tensors.b_i32!.data instanceof Int32Array);
  assert.deepEqual(Array.from(file.tensors.b_i32!.data), [1, -2, 3]);
});

test('encodeSafetensors reproduces the Python library byte layout exactly', () => {
  const bytes = encodeSafetensors(
    {
      tokens: { shape: [2, 3], data: Float32Array.from([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]) },
      a_f16: { shape: [2, 2], data: Float32Array.from([0.5, -1, 2, 65504]), dtype: 'F16' },
      b_i32: { shape: [3], data: Int32Array.from([1, -2, 3]) },
    },
    { format: 'pt', note: 'fixture' },
  );
  assert.deepEqual(Buffer.from(bytes), readFileSync(fixture('mixed.safetensors')));
});

test('decodeSafetensors rejects truncated files, bad JSON, unknown dtypes and out-of-range offsets', () => {
  const good = readFileSync(fixture('mixed.safetensors'));
  assert.throws(
    () => decodeSafetensors(good.subarray(0, 5), 'a.safetensors'),
    /a\.safetensors: truncated safetensors file \(5 bytes/,
  );
  assert.throws(() => decodeSafetensors(good.subarray(0, 100), 'b.safetensors'), /header length \d+ exceeds the file/);
  assert.throws(
    () => decodeSafetensors(good.subarray(0, good.length - 2), 'c.safetensors'),
    /tensor 'a_f16' data \[36, 44\) lies beyond the file's 42 data bytes/,
  );
  const badJson = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a"')]);
  assert.throws(() => decodeSafetensors(badJson, 'd.safetensors'), /d\.safetensors: header is not valid JSON/);
  const header = Buffer.from('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}');
  const lenBytes = Buffer.alloc(8);
  lenBytes.writeBigUInt64LE(BigInt(header.length));
  assert.throws(
    () => decodeSafetensors(Buffer.concat([lenBytes, header, Buffer.from([1])]), 'e.safetensors'),
    /tensor 'x' has unsupported dtype "U8"/,
  );
});

test('decodeSafetensors rejects tensors whose data ranges overlap, naming both', () => {
  const good = encodeSafetensors({
    a: { shape: [2], data: Float32Array.of(1, 2) },
    b: { shape: [2], data: Float32Array.of(3, 4) },
  });
  const view = new DataView(good.buffer, good.byteOffset, good.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + headerLength)));
  assert.deepEqual(header.b.data_offsets, [8, 16]);
  // b now reads a's last value and its own first one: [4, 12) overlaps a's [0, 8).
  header.b.data_offsets = [4, 12];
  const json = JSON.stringify(header).padEnd(headerLength, ' ');
  const bad = new Uint8Array(good);
  bad.set(new TextEncoder().encode(json), 8);
  assert.throws(
    () => decodeSafetensors(bad, 'crafted.safetensors'),
    /crafted\.safetensors: tensors 'a' \[0, 8\) and 'b' \[4, 12\) overlap in the data section/,
  );
});
