import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../core/rng.js';

test('Rng stream is pinned: these values must never change across platforms or versions', () => {
  const rng = new Rng(42);
  const values = [rng.uint32(), rng.uint32(), rng.uint32(), rng.uint32()];
  assert.deepEqual(values, PINNED_42);
  assert.notDeepEqual(new Rng(43).uint32(), values[0]);
});

test('float is in [0, 1), int is unbiased in range, sample draws distinct indices', () => {
  const rng = new Rng(7);
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 5000; i++) {
    const f = rng.float();
    assert.ok(f >= 0 && f < 1);
    counts[rng.int(5)]++;
  }
  for (const c of counts) assert.ok(c > 850 && c < 1150, `bucket count ${c}`);
  const s = new Rng(1).sample(100, 30);
  assert.equal(new Set(s).size, 30);
  assert.deepEqual(Array.from(new Rng(1).sample(100, 30)), Array.from(s));
  assert.throws(() => rng.sample(3, 4), /cannot draw 4 distinct indices from 3/);
  assert.throws(() => rng.int(0), /n must be an integer/);
});

test('weighted never picks a zero-weight index', () => {
  const rng = new Rng(3);
  for (let i = 0; i < 1000; i++) assert.notEqual(rng.weighted([1, 0, 2]), 1);
});

// Printed by test/reference/rng_stream.py (SplitMix32 + xoshiro128** in Python); test/reference/reference.test.ts reruns it.
const PINNED_42 = [2837322924, 544945897, 479756282, 3500138142];
