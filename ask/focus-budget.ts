import { checkInteger, checkNumber } from '../core/validate.js';
import type { VisionProfile } from '../profiles/index.js';
import { aspectSize, belowMinimum, cheapestSize, largestFit, type FitSize } from './fit.js';
import type { Box } from './regions.js';

/**
 * The `focus` budget split (pure arithmetic, no pixels):
 *
 * 1. The whole image fits → send it as is.
 * 2. Thumbnail: the largest size within `thumbnailShare` of the budget (at least the
 *    cheapest size the profile bills).
 * 3. Region scale: `zoom` × the linear scale downsampling would reach with the whole
 *    budget, never above native — a region only helps if it is sharper than that.
 * 4. Window: the largest aspect-preserving window (at most half the picture per side)
 *    whose crop at the region scale fits an equal share of the rest among `regions`.
 * 5. After ranking and merging (ask/plan.ts), each merged region gets its cheapest
 *    size (best first, while the rest lasts), then the remaining tokens by area; each
 *    is sent at the largest size within its allowance (never above native).
 * 6. Regions capped at native size may leave tokens: the thumbnail is refitted to
 *    budget − region tokens.
 *
 * Every step fits inside what is left, so thumbnail + regions ≤ budget.
 */

export interface FocusOptions {
  /** Share of the budget for the global thumbnail, in (0, 1) (default 0.25). */
  thumbnailShare?: number;
  /** Regions picked before merging (default 3). */
  regions?: number;
  /** Regions are sent at up to this × the downsample scale (default 2, ≥ 1). */
  zoom?: number;
}

export type FocusLayout =
  | { kind: 'whole'; fit: FitSize }
  | { kind: 'fallback'; fit: FitSize; reason: string }
  | {
      kind: 'regions';
      whole: FitSize;
      thumbnail: FitSize;
      rest: number;
      window: { width: number; height: number };
      regions: number;
    };

/**
 * @example
 * focusLayout(2000, 1000, getProfile('qwen2.5-vl'), 600); // { kind: 'regions', thumbnail: …, window: …, rest: … }
 */
export function focusLayout(
  width: number,
  height: number,
  profile: VisionProfile,
  budget: number,
  options: FocusOptions = {},
): FocusLayout {
  const share = options.thumbnailShare ?? 0.25;
  const regions = options.regions ?? 3;
  const zoom = options.zoom ?? 2;
  checkNumber(share, 'thumbnailShare', { gt: 0, lt: 1, where: 'focus' });
  checkInteger(regions, 'regions', { min: 1, where: 'focus' });
  checkNumber(zoom, 'zoom', { min: 1, where: 'focus' });
  const full = profile.tokens(width, height);
  if (full <= budget) return { kind: 'whole', fit: { width, height, tokens: full } };
  const whole = largestFit(width, height, profile, budget);
  if (!whole) throw belowMinimum(width, height, profile, budget);
  const minimum = cheapestSize(width, height, profile).tokens;
  const thumbnail = largestFit(width, height, profile, Math.max(minimum, Math.floor(budget * share)));
  if (!thumbnail) return { kind: 'fallback', fit: whole, reason: 'the budget has no room for a thumbnail' };
  const rest = budget - thumbnail.tokens;
  const long = Math.max(width, height);
  const regionScale = Math.min(1, (zoom * Math.max(whole.width, whole.height)) / long);
  const perRegion = Math.floor(rest / regions);
  for (let side = Math.floor(long / 2); side >= 1; side--) {
    const window = aspectSize(width, height, side);
    const sent = aspectSize(window.width, window.height, Math.max(1, Math.round(side * regionScale)));
    if (profile.tokens(sent.width, sent.height) <= perRegion)
      return { kind: 'regions', whole, thumbnail, rest, window, regions };
  }
  return { kind: 'fallback', fit: whole, reason: `the ${rest} tokens left after the thumbnail cannot buy a region` };
}

export interface RegionAllocation {
  thumbnail: FitSize;
  regions: { box: Box; fit: FitSize }[];
}

/**
 * Steps 5–6: sizes for the merged regions (in rank order) and the refitted thumbnail.
 *
 * @example
 * allocateRegions(2000, 1000, profile, 600, layout, [[0, 0, 500, 250]]).regions[0].fit; // { width: 500, height: 250, tokens: … }
 */
export function allocateRegions(
  width: number,
  height: number,
  profile: VisionProfile,
  budget: number,
  layout: Extract<FocusLayout, { kind: 'regions' }>,
  merged: readonly Box[],
): RegionAllocation {
  const mins = merged.map(([, , w, h]) => cheapestSize(w, h, profile).tokens);
  const kept: number[] = [];
  let reserved = 0;
  for (let i = 0; i < merged.length; i++) {
    if (reserved + mins[i]! <= layout.rest) {
      kept.push(i);
      reserved += mins[i]!;
    }
  }
  const area = kept.reduce((s, i) => s + merged[i]![2] * merged[i]![3], 0);
  const spare = layout.rest - reserved;
  const regions = kept.map((i) => {
    const box = merged[i]!;
    const allowance = mins[i]! + Math.floor((spare * box[2] * box[3]) / area);
    return { box, fit: largestFit(box[2], box[3], profile, allowance)! };
  });
  const regionTokens = regions.reduce((s, r) => s + r.fit.tokens, 0);
  const thumbnail = largestFit(width, height, profile, budget - regionTokens) ?? layout.thumbnail;
  return { thumbnail, regions };
}
