import { UsageError, describe } from '../core/errors.js';
import { anyresTokenCount, qwenResize } from '../encoders/anyres.js';

/**
 * Vision-token accounting: how many tokens a VLM spends on one image of
 * width × height pixels. Each profile documents where its rule comes from;
 * counts are the image's own tokens (no <vision_start>/<image> wrappers or
 * chat-template text), which is what Glyph's compression ratio divides by.
 */
export interface VisionProfile {
  /** Name used by `--profile`. */
  name: string;
  /** One line: the rule and its source. */
  description: string;
  /** Tokens for one image of the given pixel size (integers ≥ 1). */
  tokens(width: number, height: number): number;
}

/** Limits of a Qwen2-VL style `smart_resize` (patch 14 merged 2×2 → 28 px per token). */
export interface PatchGridLimits {
  factor: number;
  minPixels: number;
  maxPixels: number;
}

/**
 * Qwen2-VL `smart_resize` (transformers `image_processing_qwen2_vl.py`, Qwen2.5-VL reuses it):
 * round each side to the nearest multiple of `factor`; if the area exceeds
 * maxPixels scale both sides down by β = √(h·w / max) and floor to the factor;
 * if it is below minPixels scale up by β = √(min / (h·w)) and ceil.
 *
 * @example
 * smartResize(595, 842, { factor: 28, minPixels: 3136, maxPixels: 12845056 }) // → [588, 840]
 */
export function smartResize(width: number, height: number, limits: PatchGridLimits): [number, number] {
  const resized = qwenResize(width, height, limits);
  return [resized.width, resized.height];
}

function patchGridProfile(name: string, description: string, limits: PatchGridLimits): VisionProfile {
  return {
    name,
    description,
    tokens(width, height) {
      const [w, h] = smartResize(width, height, limits);
      return (w / limits.factor) * (h / limits.factor);
    },
  };
}

/**
 * OpenAI GPT-4o, detail "high" (OpenAI vision pricing guide): fit inside
 * 2048×2048, then scale down so the shortest side is at most 768, count
 * 512×512 tiles; tokens = 85 + 170 · tiles.
 *
 * @example
 * gpt4oTokens(1024, 1024) // 768×768 → 4 tiles → 765
 */
export function gpt4oTokens(width: number, height: number): number {
  let w = width;
  let h = height;
  const fit = Math.min(1, 2048 / Math.max(w, h));
  w *= fit;
  h *= fit;
  const shortScale = Math.min(1, 768 / Math.min(w, h));
  w *= shortScale;
  h *= shortScale;
  const tiles = Math.ceil(w / 512) * Math.ceil(h / 512);
  return 85 + 170 * tiles;
}

/**
 * Anthropic Claude (vision docs, "Calculate image costs"): tokens ≈ w·h / 750,
 * after scaling down (keeping aspect) so the long edge is ≤ 1568 px and the
 * image is ≤ ~1.15 MP (1600 tokens). Rounded up.
 *
 * @example
 * claudeTokens(1000, 1000) // under both caps → ceil(1e6 / 750) = 1334
 */
export function claudeTokens(width: number, height: number): number {
  const maxArea = 1600 * 750;
  const scale = Math.min(1, 1568 / Math.max(width, height), Math.sqrt(maxArea / (width * height)));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  return Math.min(1600, Math.ceil((w * h) / 750));
}

/**
 * Google Gemini 2.x (Gemini API "Token counting" docs): an image with both
 * sides ≤ 384 px costs 258 tokens; a larger one is cut into 768×768 tiles of
 * 258 tokens each.
 *
 * @example
 * geminiTokens(595, 842) // 1 × 2 tiles → 516
 */
export function geminiTokens(width: number, height: number): number {
  if (width <= 384 && height <= 384) return 258;
  return Math.ceil(width / 768) * Math.ceil(height / 768) * 258;
}

const profiles: Record<string, VisionProfile> = {
  'qwen2-vl': patchGridProfile(
    'qwen2-vl',
    'Qwen2-VL: 1 token per 28×28 px after smart_resize, min 56×56 / max 12845056 px (preprocessor_config.json; transformers Qwen2VLImageProcessor)',
    { factor: 28, minPixels: 56 * 56, maxPixels: 12845056 },
  ),
  'qwen2.5-vl': patchGridProfile(
    'qwen2.5-vl',
    'Qwen2.5-VL: same rule as Qwen2-VL (patch 14, 2×2 merge), min 3136 / max 12845056 px (Qwen2.5-VL preprocessor_config.json)',
    { factor: 28, minPixels: 56 * 56, maxPixels: 12845056 },
  ),
  'glm-4.1v': patchGridProfile(
    'glm-4.1v',
    'GLM-4.1V-Thinking: 1 token per 28×28 px after smart_resize, min 112×112 / max 28·28·12288 px (preprocessor_config.json size.shortest_edge / longest_edge)',
    { factor: 28, minPixels: 112 * 112, maxPixels: 28 * 28 * 12288 },
  ),
  'llava-1.5': {
    name: 'llava-1.5',
    description: 'LLaVA-1.5: every image is resized to 336×336 for CLIP ViT-L/14-336 → 24×24 = 576 tokens',
    tokens: () => 576,
  },
  'llava-next': {
    name: 'llava-next',
    description: 'LLaVA-NeXT AnyRes: 576 thumbnail tokens + unpadded crop grid with one newline token per row (encoders/anyres.ts, LLaVA-NeXT get_anyres_image_grid_shape / unpad_image)',
    tokens: (width, height) => anyresTokenCount(width, height),
  },
  'gpt-4o': {
    name: 'gpt-4o',
    description: 'GPT-4o detail=high: fit 2048², shortest side ≤ 768, 85 + 170 per 512×512 tile (OpenAI vision pricing guide)',
    tokens: gpt4oTokens,
  },
  claude: {
    name: 'claude',
    description: 'Claude: ceil(w·h/750) after downscaling to long edge ≤ 1568 px and ≤ 1.15 MP (Anthropic vision docs)',
    tokens: claudeTokens,
  },
  gemini: {
    name: 'gemini',
    description: 'Gemini 2.x: 258 tokens if both sides ≤ 384 px, else 258 per 768×768 tile (Gemini API token counting docs)',
    tokens: geminiTokens,
  },
};

/** Every profile name, for `--profile` help and validation. */
export function profileNames(): string[] {
  return Object.keys(profiles);
}

/**
 * Looks up a profile by name; unknown names are a UsageError listing the valid ones.
 *
 * @example
 * getProfile('qwen2.5-vl').tokens(588, 840) // 630
 */
export function getProfile(name: string): VisionProfile {
  const profile = Object.prototype.hasOwnProperty.call(profiles, name) ? profiles[name] : undefined;
  if (!profile) throw new UsageError(`unknown vision profile ${describe(name)} (expected one of: ${profileNames().join(', ')})`, 'E_PROFILE');
  return profile;
}

/**
 * Vision tokens one image costs under a profile (by name or object).
 *
 * @example
 * visionTokens('qwen2.5-vl', 595, 842) // smart_resize → 588×840 → 21·30 = 630
 * visionTokens('llava-1.5', 4000, 3000) // 576
 */
export function visionTokens(profile: string | VisionProfile, width: number, height: number): number {
  const p = typeof profile === 'string' ? getProfile(profile) : profile;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new UsageError(`visionTokens: image size must be positive integer pixels, got ${describe(width)}×${describe(height)}`);
  }
  return p.tokens(width, height);
}
