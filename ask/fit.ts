import { UsageError } from '../core/errors.js';
import type { VisionProfile } from '../profiles/index.js';

/**
 * Budget arithmetic (pure, no pixels): which aspect-preserving size of a
 * W×H picture a profile bills within a token budget. Provider rules round
 * to tiles, patches or grids, so the cost is not monotone in the size (a
 * GPT-4o image just above 768 px on its short side is scaled back down and
 * can cost less than a smaller one): the search tries every long side
 * exactly instead of bisecting.
 */

export interface FitSize {
  width: number;
  height: number;
  tokens: number;
}

/**
 * The aspect-preserving size with long side `long` (short side rounded, at least 1).
 *
 * @example
 * aspectSize(1000, 500, 300); // { width: 300, height: 150 }
 */
export function aspectSize(width: number, height: number, long: number): { width: number; height: number } {
  if (width >= height)
    return { width: long, height: Math.max(1, Math.min(height, Math.round((long * height) / width))) };
  return { width: Math.max(1, Math.min(width, Math.round((long * width) / height))), height: long };
}

/**
 * Every aspect-preserving size of a width × height picture (long side 1 … maxLong,
 * never above the picture) with its billed tokens, largest first.
 */
function* candidates(width: number, height: number, profile: VisionProfile, maxLong: number): Generator<FitSize> {
  for (let long = maxLong; long >= 1; long--) {
    const size = aspectSize(width, height, long);
    let tokens: number;
    try {
      tokens = profile.tokens(size.width, size.height);
    } catch (error) {
      // A size the model refuses (Qwen's aspect ratio ≥ 200 once the short side rounds to 1 px) is not a candidate.
      if (error instanceof UsageError && error.code === 'E_SIZE') continue;
      throw error;
    }
    yield { ...size, tokens };
  }
}

function longSide(width: number, height: number): number {
  return Math.max(width, height);
}

/**
 * The largest aspect-preserving size (not above `scale` × the picture) whose billed
 * tokens fit the budget, or undefined when even the smallest does not.
 *
 * @example
 * largestFit(1024, 1024, getProfile('gpt-4o'), 255); // { width: 512, height: 512, tokens: 255 }
 */
export function largestFit(
  width: number,
  height: number,
  profile: VisionProfile,
  budget: number,
  scale = 1,
): FitSize | undefined {
  const maxLong = Math.max(1, Math.floor(longSide(width, height) * Math.min(1, scale) + 1e-9));
  for (const size of candidates(width, height, profile, maxLong)) if (size.tokens <= budget) return size;
  return undefined;
}

/**
 * The cheapest aspect-preserving size of the picture under the profile (what a budget must at least allow).
 *
 * @example
 * cheapestSize(4000, 3000, getProfile('qwen2.5-vl')); // { width: …, height: …, tokens: 4 }
 */
export function cheapestSize(width: number, height: number, profile: VisionProfile): FitSize {
  let cache = cheapestCache.get(profile);
  if (!cache) cheapestCache.set(profile, (cache = new Map()));
  const key = `${width}x${height}`;
  const cached = cache.get(key);
  if (cached) return cached;
  let best: FitSize | undefined;
  for (const size of candidates(width, height, profile, longSide(width, height)))
    if (!best || size.tokens < best.tokens) best = size;
  // No size is accepted at all: the rule's own error says why.
  if (!best) profile.tokens(width, height);
  if (cache.size > 4096) cache.clear();
  cache.set(key, best!);
  return best!;
}

/** The scan is a few thousand rule evaluations; planners ask for the same pictures repeatedly. */
const cheapestCache = new WeakMap<VisionProfile, Map<string, FitSize>>();

/** A budget below the cheapest size: a usage error naming the minimum. */
export function belowMinimum(
  width: number,
  height: number,
  profile: VisionProfile,
  budget: number,
  what = 'image',
): UsageError {
  const min = cheapestSize(width, height, profile);
  return new UsageError(
    `token budget ${budget} is below the smallest ${what} ${profile.name} accepts for this ${width}x${height} picture: ${min.tokens} tokens (at ${min.width}x${min.height})`,
    'E_BUDGET',
  );
}
