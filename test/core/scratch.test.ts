import assert from 'node:assert/strict';
import { test } from 'node:test';
import { borrowFloat32, MAX_POOLED_BYTES, pooledScratchBytes, returnFloat32 } from '../../core/scratch.js';

test('scratch: a returned buffer is lent again (the smallest that fits), as a view of the requested length', () => {
  const before = pooledScratchBytes();
  const large = borrowFloat32(1000);
  const small = borrowFloat32(300);
  assert.equal(large.length, 1000);
  returnFloat32(large);
  returnFloat32(small.subarray(0, 10)); // a view of a borrowed buffer returns the whole allocation
  assert.equal(pooledScratchBytes() - before, 4 * 1300);
  const again = borrowFloat32(200);
  assert.equal(again.buffer, small.buffer, 'the 300-value buffer is the smallest that holds 200');
  assert.equal(again.length, 200);
  const other = borrowFloat32(900);
  assert.equal(other.buffer, large.buffer);
  assert.equal(pooledScratchBytes(), before);
  const fresh = borrowFloat32(5000);
  assert.notEqual(fresh.buffer, large.buffer);
  for (const buffer of [again, other, fresh]) returnFloat32(buffer);
});

test('scratch: two borrowers never share a buffer; a buffer returned twice is pooled once', () => {
  const a = borrowFloat32(64);
  returnFloat32(a);
  returnFloat32(a);
  const first = borrowFloat32(64);
  const second = borrowFloat32(64);
  assert.notEqual(first.buffer, second.buffer);
  returnFloat32(first);
  returnFloat32(second);
});

test("scratch: arrays the pool did not lend (a caller's features) are never pooled; the pool is capped", () => {
  const before = pooledScratchBytes();
  const callers = new Float32Array(128);
  returnFloat32(callers);
  assert.equal(pooledScratchBytes(), before);
  const huge = borrowFloat32(MAX_POOLED_BYTES / 4 + 1);
  returnFloat32(huge);
  assert.equal(pooledScratchBytes(), before, 'past the cap a returned buffer is left to the garbage collector');
  assert.notEqual(borrowFloat32(16).buffer, callers.buffer);
});
