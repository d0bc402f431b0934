import { createTokenSet, type TokenSet } from '../../core/tokenset.js';

/** Full Qwen token set for grid (t, h, w) in patches: raster order, positions (t, row, col), frame sources with times. */
export function qwenTokens(kind: 'image' | 'video', grid: [number, number, number], times: number[] = []): TokenSet {
  const [t, h, w] = grid;
  const rows = h / 2;
  const cols = w / 2;
  const n = t * rows * cols;
  const positions = new Int32Array(3 * n);
  const source = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const f = Math.floor(i / (rows * cols));
    const local = i % (rows * cols);
    positions.set([f, Math.floor(local / cols), local % cols], 3 * i);
    source[i] = kind === 'image' ? 0 : f;
  }
  const sources =
    kind === 'image'
      ? [{ kind: 'image' as const, index: 0, rows, cols }]
      : Array.from({ length: t }, (_, f) => ({ kind: 'frame' as const, index: f, rows, cols, time: times[f] ?? f }));
  return createTokenSet({
    data: Float32Array.from({ length: n * 2 }, (_, k) => k),
    n,
    d: 2,
    sources,
    source,
    positions,
    meta: { [`${kind}_grid_thw`]: grid.join(',') },
  });
}
