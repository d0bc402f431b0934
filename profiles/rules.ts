import { UsageError } from '../core/errors.js';
import { planAnyRes, qwenResize, roundHalfEven } from '../encoders/anyres.js';

/**
 * Provider vision-token rules as pure arithmetic: for an image of w×h pixels,
 * the size the provider actually processes and the tokens it bills. Each rule
 * names its source; docs/profiles.md lists the URLs, the published worked
 * examples (pinned in test/profiles/) and every guess where a provider does
 * not say (rounding of intermediate sizes).
 */

/** What a provider does with one image: the size it processes and what it bills. */
export interface ProcessedImage {
  width: number;
  height: number;
  tokens: number;
}

/** Limits of a Qwen2-VL style `smart_resize` (patch 14 merged 2×2 → 28 px per token). */
export interface PatchGridLimits {
  factor: number;
  minPixels: number;
  maxPixels: number;
}

/**
 * Qwen2-VL `smart_resize` (transformers `image_processing_qwen2_vl.py`, Qwen2.5-VL and
 * Qwen3-VL reuse it with their own factor): round each side to the nearest multiple of
 * `factor`; above maxPixels scale down by β = √(h·w / max) and floor to the factor;
 * below minPixels scale up by β = √(min / (h·w)) and ceil.
 *
 * @example
 * smartResize(595, 842, { factor: 28, minPixels: 3136, maxPixels: 12845056 }) // → [588, 840]
 */
export function smartResize(width: number, height: number, limits: PatchGridLimits): [number, number] {
  const resized = qwenResize(width, height, limits);
  return [resized.width, resized.height];
}

/** Qwen-style grid: one token per factor×factor pixels after smart_resize. */
export function patchGridImage(width: number, height: number, limits: PatchGridLimits): ProcessedImage {
  const [w, h] = smartResize(width, height, limits);
  return { width: w, height: h, tokens: (w / limits.factor) * (h / limits.factor) };
}

/**
 * GLM-4.1V's own `smart_resize` (transformers `image_processing_glm4v.py`): an image is
 * treated as num_frames = temporal_patch_size = 2 frames, so the pixel bounds apply to
 * 2·h·w; sides below the factor are first scaled up (int truncation); then the Qwen rule.
 * One LLM token per 28×28 px (14-px patches merged 2×2).
 *
 * @example
 * glmResize(20, 20); // { width: 84, height: 84, tokens: 9 }
 */
export function glmResize(
  width: number,
  height: number,
  limits: PatchGridLimits = { factor: 28, minPixels: 112 * 112, maxPixels: 9633792 },
): ProcessedImage {
  const { factor, minPixels, maxPixels } = limits;
  const frames = 2;
  let h = height;
  let w = width;
  if (h < factor || w < factor) {
    const scale = Math.max(factor / h, factor / w);
    h = Math.trunc(h * scale);
    w = Math.trunc(w * scale);
  }
  if (Math.max(h, w) / Math.min(h, w) > 200)
    throw new UsageError(`glm-4.1v: aspect ratio must be below 200, got ${width}x${height}`, 'E_SIZE');
  let hBar = roundHalfEven(h / factor) * factor;
  let wBar = roundHalfEven(w / factor) * factor;
  if (frames * hBar * wBar > maxPixels) {
    const beta = Math.sqrt((frames * h * w) / maxPixels);
    hBar = Math.max(factor, Math.floor(h / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(w / beta / factor) * factor);
  } else if (frames * hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (frames * h * w));
    hBar = Math.ceil((h * beta) / factor) * factor;
    wBar = Math.ceil((w * beta) / factor) * factor;
  }
  return { width: wBar, height: hBar, tokens: (wBar / factor) * (hBar / factor) };
}

/** OpenAI tile models: base tokens (also the whole `detail: low` cost) and tokens per 512-px tile. */
export interface TileCost {
  base: number;
  tile: number;
}

/**
 * OpenAI tile models, detail "high" (OpenAI "Images and vision" guide, Calculating costs):
 * fit inside 2048×2048, then scale down so the shortest side is at most 768, count
 * 512×512 tiles; tokens = base + tile · tiles (85 + 170 for GPT-4o / GPT-4.1). Tiles are
 * counted on the real-valued scaled size (the guide's examples are exact either way); the
 * reported size is rounded.
 *
 * @example
 * openaiTileImage(2048, 4096); // { width: 768, height: 1536, tokens: 1105 }
 */
export function openaiTileImage(
  width: number,
  height: number,
  cost: TileCost = { base: 85, tile: 170 },
): ProcessedImage {
  let w = width;
  let h = height;
  const fit = Math.min(1, 2048 / Math.max(w, h));
  w *= fit;
  h *= fit;
  const shortScale = Math.min(1, 768 / Math.min(w, h));
  w *= shortScale;
  h *= shortScale;
  const tiles = Math.ceil(w / 512 - 1e-9) * Math.ceil(h / 512 - 1e-9);
  return {
    width: Math.max(1, Math.round(w)),
    height: Math.max(1, Math.round(h)),
    tokens: cost.base + cost.tile * tiles,
  };
}

/**
 * @example
 * gpt4oTokens(1024, 1024) // 768×768 → 4 tiles → 765
 */
export function gpt4oTokens(width: number, height: number): number {
  return openaiTileImage(width, height).tokens;
}

/** Sizes within this of an integer count as that integer (the guide's own arithmetic is on reals). */
const EPS = 1e-6;

/**
 * OpenAI patch models (gpt-4.1-mini, gpt-4.1-nano, o4-mini; same guide): cover the image
 * with 32×32 patches; above 1536 patches scale by s = √(32²·1536 / (w·h)), then shrink
 * further so the constrained side is a whole number of patches
 * (s' = s · min(⌊w·s/32⌋ / (w·s/32), ⌊h·s/32⌋ / (h·s/32))). Billed tokens =
 * ⌈patches · multiplier⌉ (the guide multiplies and does not say how it rounds: we round
 * up, which can only overstate the cost).
 *
 * @example
 * openaiPatchImage(1800, 2400, 1); // { width: 1056, height: 1408, tokens: 1452 }
 */
export function openaiPatchImage(width: number, height: number, multiplier: number, cap = 1536): ProcessedImage {
  let w = width;
  let h = height;
  const raw = Math.ceil(w / 32) * Math.ceil(h / 32);
  if (raw > cap) {
    const shrink = Math.sqrt((32 * 32 * cap) / (w * h));
    const pw = (w * shrink) / 32;
    const ph = (h * shrink) / 32;
    const adjust = Math.min(Math.floor(pw + EPS) / pw, Math.floor(ph + EPS) / ph);
    w = Math.max(1, Math.floor(width * shrink * adjust + EPS));
    h = Math.max(1, Math.floor(height * shrink * adjust + EPS));
  }
  const patches = Math.ceil(w / 32) * Math.ceil(h / 32);
  return { width: w, height: h, tokens: Math.ceil(patches * multiplier - EPS) };
}

/**
 * Anthropic Claude (vision guide, "Evaluate image size" / "Calculate image costs"):
 * tokens = ⌈w·h / 750⌉ after scaling down (keeping aspect) so the long edge is ≤ 1568 px
 * and the image is ≤ ~1600 tokens (1.2 MP). Anthropic rounds the published table sizes
 * its own way; see docs/profiles.md for how close this rule gets.
 *
 * @example
 * claudeImage(1000, 1000); // { width: 1000, height: 1000, tokens: 1334 }
 */
export function claudeImage(width: number, height: number): ProcessedImage {
  const maxArea = 1600 * 750;
  const scale = Math.min(1, 1568 / Math.max(width, height), Math.sqrt(maxArea / (width * height)));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  return { width: w, height: h, tokens: Math.min(1600, Math.ceil((w * h) / 750)) };
}

/**
 * @example
 * claudeTokens(1000, 1000) // under both caps → ceil(1e6 / 750) = 1334
 */
export function claudeTokens(width: number, height: number): number {
  return claudeImage(width, height).tokens;
}

/**
 * Google Gemini 2.x (Gemini API "Image understanding" / token counting): an image with
 * both sides ≤ 384 px costs 258 tokens; a larger one is cut into 768×768 tiles of 258
 * tokens each. Google does not publish its crop arithmetic; we count ⌈w/768⌉·⌈h/768⌉
 * tiles on the size sent.
 *
 * @example
 * geminiTokens(595, 842) // 1 × 2 tiles → 516
 */
export function geminiTokens(width: number, height: number): number {
  if (width <= 384 && height <= 384) return 258;
  return Math.ceil(width / 768) * Math.ceil(height / 768) * 258;
}

/** LLaVA-NeXT AnyRes: the selected pinpoint is what the tower sees; tokens from encoders/anyres. */
export function llavaNextImage(width: number, height: number): ProcessedImage {
  const plan = planAnyRes(width, height);
  return { width: plan.best[0], height: plan.best[1], tokens: plan.tokenCount };
}
