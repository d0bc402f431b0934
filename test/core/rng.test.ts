import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../core/rng.js';

test('Rng gives a fixed stream for a seed (same on every platform)', () => {
  const rng = new Rng(42);
  const first = [rng.uint32(), rng.uint32(), rng.uint32()];
  const again = new Rng(42);
  assert.deepEqual([again.uint32(), again.uint32(), again.uint32()], first);
  assert.notDeepEqual([new Rng(43).uint32()], [first[0]]);
});
