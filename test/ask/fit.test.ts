import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../core/errors.js';
import { allocateRegions, focusLayout } from '../../ask/focus-budget.js';
import { aspectSize, belowMinimum, cheapestSize, largestFit } from '../../ask/fit.js';
import { mergeOverlapping, topBoxes, windowGrid, boxScore } from '../../ask/regions.js';
import { getProfile, profileNames } from '../../profiles/index.js';

test('aspectSize keeps the aspect ratio with the short side rounded (at least 1)', () => {
  assert.deepEqual(aspectSize(1000, 500, 300), { width: 300, height: 150 });
  assert.deepEqual(aspectSize(500, 1000, 300), { width: 150, height: 300 });
  assert.deepEqual(aspectSize(8000, 1, 10), { width: 10, height: 1 });
  assert.deepEqual(aspectSize(3, 2, 2), { width: 2, height: 1 }); // 1.33 → 1
});

test('largestFit reproduces the provider examples at their own budgets', () => {
  const gpt = getProfile('gpt-4o');
  assert.deepEqual(largestFit(1024, 1024, gpt, 765), { width: 1024, height: 1024, tokens: 765 });
  assert.deepEqual(largestFit(1024, 1024, gpt, 764), { width: 512, height: 512, tokens: 255 }); // 513² already costs 4 tiles
  assert.deepEqual(largestFit(2048, 4096, gpt, 1105), { width: 2048, height: 4096, tokens: 1105 });
  const qwen = getProfile('qwen2.5-vl');
  // 595×842: full cost 630; 629 tokens → the largest size whose smart_resize grid is smaller.
  const fit = largestFit(595, 842, qwen, 629)!;
  assert.ok(fit.tokens <= 629 && fit.height < 842);
  assert.ok(qwen.tokens(fit.width, fit.height + 1) > 629 || fit.height + 1 > 842);
});

test('largestFit scans every size: it finds the largest fitting size where cost is not monotone in size', () => {
  // LLaVA-NeXT AnyRes: a 1008×336 picture costs less than some smaller ones of the same shape,
  // so a bisection on the long side would stop early. Brute force over every long side agrees.
  const profile = getProfile('llava-next');
  let nonMonotone = 0;
  let previous = 0;
  for (let long = 1; long <= 1008; long++) {
    const s = aspectSize(1008, 336, long);
    const t = profile.tokens(s.width, s.height);
    if (t < previous) nonMonotone++;
    previous = t;
  }
  assert.ok(nonMonotone > 0, 'the AnyRes cost dips somewhere along the size axis');
  for (const budget of [1500, 2000, 2200, 2500]) {
    let expected: number | undefined;
    for (let long = 1008; long >= 1 && expected === undefined; long--) {
      const s = aspectSize(1008, 336, long);
      if (profile.tokens(s.width, s.height) <= budget) expected = long;
    }
    assert.equal(largestFit(1008, 336, profile, budget)?.width, expected, `budget ${budget}`);
  }
});

test('a budget below the cheapest size names the minimum', () => {
  const qwen = getProfile('qwen2.5-vl');
  assert.equal(largestFit(4000, 3000, qwen, 3), undefined);
  assert.deepEqual(cheapestSize(4000, 3000, qwen).tokens, 4); // min_pixels 56×56 → 2×2
  const error = belowMinimum(4000, 3000, qwen, 3);
  assert.ok(error instanceof UsageError);
  assert.match(
    error.message,
    /^token budget 3 is below the smallest image qwen2\.5-vl accepts for this 4000x3000 picture: 4 tokens \(at \d+x\d+\)$/,
  );
  assert.equal(cheapestSize(800, 600, getProfile('llava-1.5')).tokens, 576);
});

test('regions: grid with half-window stride, area-weighted box scores, top picks, overlap merging', () => {
  assert.deepEqual(windowGrid(100, 50, 50, 50), [
    [0, 0, 50, 50],
    [25, 0, 50, 50],
    [50, 0, 50, 50],
  ]);
  assert.ok(windowGrid(8000, 8000, 10, 10).length <= 64);
  const grid = { rows: 2, cols: 2, scores: Float32Array.of(0, 1, 2, 3) };
  assert.equal(boxScore(grid, [50, 50, 50, 50], 100, 100), 3);
  assert.equal(boxScore(grid, [25, 0, 50, 50], 100, 100), 0.5);
  assert.equal(boxScore(grid, [0, 0, 100, 100], 100, 100), 1.5);
  assert.deepEqual(
    topBoxes(
      [
        [0, 0, 1, 1],
        [1, 0, 1, 1],
        [2, 0, 1, 1],
      ],
      [0.2, 0.9, 0.9],
      2,
    ),
    [
      [1, 0, 1, 1],
      [2, 0, 1, 1],
    ],
  );
  assert.deepEqual(
    mergeOverlapping([
      [0, 0, 10, 10],
      [5, 5, 10, 10],
      [40, 40, 5, 5],
    ]),
    [
      [0, 0, 15, 15],
      [40, 40, 5, 5],
    ],
  );
  // A merged box reaching a third one merges again; touching edges do not overlap.
  assert.deepEqual(
    mergeOverlapping([
      [0, 0, 10, 10],
      [20, 0, 10, 10],
      [8, 0, 14, 5],
    ]),
    [[0, 0, 30, 10]],
  );
  assert.deepEqual(
    mergeOverlapping([
      [0, 0, 10, 10],
      [10, 0, 10, 10],
    ]),
    [
      [0, 0, 10, 10],
      [10, 0, 10, 10],
    ],
  );
});

const SIZES: [number, number][] = [
  [1, 1],
  [2, 3],
  [1, 8000],
  [8000, 1],
  [8000, 8000],
  [37, 4211],
  [4211, 37],
  [640, 480],
  [1023, 769],
  [3000, 4000],
  [7999, 13],
  [50, 50],
  [336, 1008],
];

test('property: tokens_sent ≤ budget for every profile and method over sizes 1×1 … 8000×8000 (arithmetic only)', () => {
  let checked = 0;
  for (const name of profileNames()) {
    const profile = getProfile(name);
    for (const [w, h] of SIZES) {
      // Qwen-style rules refuse aspect ratios ≥ 200 (the processor raises): skip those sizes for them.
      let full: number;
      try {
        full = profile.tokens(w, h);
      } catch (error) {
        assert.ok(
          error instanceof UsageError && /aspect ratio/.test(error.message),
          `${name} ${w}x${h}: ${String(error)}`,
        );
        continue;
      }
      const min = cheapestSize(w, h, profile).tokens;
      assert.ok(min <= full, `${name} ${w}x${h}: cheapest ${min} > full ${full}`);
      for (const budget of new Set([
        min,
        min + 1,
        Math.max(min, Math.floor(full / 4)),
        Math.max(min, full - 1),
        full,
        3 * full + 7,
      ])) {
        // downsample
        const fit = largestFit(w, h, profile, budget);
        assert.ok(
          fit && fit.tokens <= budget && fit.width <= w && fit.height <= h,
          `${name} ${w}x${h} budget ${budget}: downsample ${JSON.stringify(fit)}`,
        );
        assert.equal(profile.tokens(fit.width, fit.height), fit.tokens);
        // focus, with the regions an adversary would pick: the first windows of the grid, and the last ones
        const layout = focusLayout(w, h, profile, budget);
        if (layout.kind !== 'regions') {
          assert.ok(
            layout.fit.tokens <= budget,
            `${name} ${w}x${h} budget ${budget}: ${layout.kind} ${layout.fit.tokens}`,
          );
          checked++;
          continue;
        }
        const windows = windowGrid(w, h, layout.window.width, layout.window.height);
        for (const scores of [
          windows.map((_, i) => -i),
          windows.map((_, i) => i),
          windows.map((b) => (b[0] * 7 + b[1] * 13) % 5),
        ]) {
          const allocation = allocateRegions(
            w,
            h,
            profile,
            budget,
            layout,
            mergeOverlapping(topBoxes(windows, scores, layout.regions)),
          );
          const sent = allocation.thumbnail.tokens + allocation.regions.reduce((s, r) => s + r.fit.tokens, 0);
          assert.ok(sent <= budget, `${name} ${w}x${h} budget ${budget}: focus sends ${sent}`);
          for (const r of allocation.regions) {
            assert.ok(r.fit.width <= r.box[2] && r.fit.height <= r.box[3], 'regions are never upscaled');
            assert.ok(
              r.box[0] >= 0 && r.box[1] >= 0 && r.box[0] + r.box[2] <= w && r.box[1] + r.box[3] <= h,
              'boxes lie inside the picture',
            );
          }
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 500, `${checked} plans checked`);
});
