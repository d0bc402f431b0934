import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../core/errors.js';
import { decodeNpy } from '../../core/npy.js';
import { createTokenSet, selectTokens, type TokenSource } from '../../core/tokenset.js';
import { decodeTokens, encodeTokens } from '../../encoders/tokenfile.js';

function frames(count: number, perFrame: number, d: number) {
  const sources: TokenSource[] = Array.from({ length: count }, (_, f) => ({
    kind: 'frame',
    index: f,
    rows: 1,
    cols: perFrame,
  }));
  const source = new Int32Array(count * perFrame);
  for (let f = 0; f < count; f++) source.fill(f, f * perFrame, (f + 1) * perFrame);
  return createTokenSet({
    data: Float32Array.from({ length: count * perFrame * d }, (_, i) => i),
    n: count * perFrame,
    d,
    sources,
    source,
  });
}

test('.npy keeps a video [frames, tokens, d] and loads back as the same frames', () => {
  const video = frames(3, 4, 2);
  const bytes = encodeTokens(video, 'v.npy');
  assert.deepEqual(decodeNpy(bytes).shape, [3, 4, 2]);
  const back = decodeTokens(bytes, 'v.npy');
  assert.deepEqual(Array.from(back.source), Array.from(video.source));
  assert.deepEqual(
    back.sources.map((s) => s.kind),
    ['frame', 'frame', 'frame'],
  );
  // a reduction that keeps 2 tokens of every frame is still [3, 2, d]
  const reduced = selectTokens(video, [0, 3, 4, 5, 9, 10]);
  assert.deepEqual(decodeNpy(encodeTokens(reduced, 'r.npy')).shape, [3, 2, 2]);
});

test('.npy refuses what it cannot hold: unequal frames, bundles, frames out of order — pointing to .safetensors', () => {
  const video = frames(3, 4, 2);
  assert.throws(
    () => encodeTokens(selectTokens(video, [0, 1, 4, 8]), 'r.npy'),
    (error: unknown) =>
      error instanceof UsageError &&
      /r\.npy: these 4 tokens come from 3 frames with unequal token counts \(1–2\); .* write \.safetensors instead/.test(
        error.message,
      ),
  );
  assert.throws(
    () => encodeTokens(selectTokens(video, [4, 0]), 'o.npy'),
    /o\.npy: these 2 tokens come from 2 frames out of frame order/,
  );
  const sources: TokenSource[] = [
    { kind: 'thumbnail', index: 0, rows: 2, cols: 2 },
    { kind: 'crop', index: 0, rows: 2, cols: 2 },
  ];
  const bundle = createTokenSet({
    data: new Float32Array(16),
    n: 8,
    d: 2,
    sources,
    source: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1),
  });
  assert.throws(() => encodeTokens(bundle, 'b.npy'), /b\.npy: these 8 tokens come from 2 sources \(thumbnail, crop\)/);
  // one source stays [n, d]; .safetensors takes anything
  assert.deepEqual(decodeNpy(encodeTokens(selectTokens(bundle, [4, 5]), 'one.npy')).shape, [2, 2]);
  assert.equal(decodeTokens(encodeTokens(bundle, 'b.safetensors'), 'b.safetensors').n, 8);
});
