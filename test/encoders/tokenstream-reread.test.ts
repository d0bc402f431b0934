import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeNpy } from '../../core/npy.js';
import { openNpyFrames } from '../../encoders/tokenstream.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('vtc-tokenstream-reread-');
after(() => rmSync(dir, { recursive: true, force: true }));

test('block reader: each frame is checked for non-finite values at its first read; a failed check stays an error', async () => {
  // 5 frames × 2 tokens × d = 3, values 0, 1, 2, …; token 7 (frame 3, second token) has NaN at feature 1.
  const data = Float32Array.from({ length: 30 }, (_, i) => i);
  data[7 * 3 + 1] = Number.NaN;
  const path = join(dir, 'nan.npy');
  writeFileSync(path, encodeNpy([5, 2, 3], data));
  const file = await openNpyFrames(path);
  try {
    assert.deepEqual(Array.from(await file.readFrames(0, 2)), Array.from(data.subarray(0, 12)));
    assert.deepEqual(Array.from(await file.readFrames(1, 3)), Array.from(data.subarray(6, 18)));
    // Frames 0–2 were checked before: the run of new frames 3–4 is checked, and names the right token.
    const message = /nan\.npy: token 7 \(frame 3\) has a non-finite value NaN at feature 1/;
    await assert.rejects(file.readFrames(0, 5), message);
    await assert.rejects(file.readFrames(3, 4), message);
    await assert.rejects(file.readFrames(2, 5), message);
    assert.deepEqual(Array.from(await file.readFrames(4, 5)), Array.from(data.subarray(24, 30)));
    assert.deepEqual(Array.from(await file.readFrames(0, 3)), Array.from(data.subarray(0, 18)));
  } finally {
    await file.close();
  }
});
