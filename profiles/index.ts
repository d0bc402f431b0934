import { UsageError, describe } from '../core/errors.js';
import {
  claudeImage,
  geminiTokens,
  glmResize,
  llavaNextImage,
  openaiPatchImage,
  openaiTileImage,
  patchGridImage,
  type PatchGridLimits,
  type ProcessedImage,
  type TileCost,
} from './rules.js';

export {
  claudeImage,
  claudeTokens,
  geminiTokens,
  glmResize,
  gpt4oTokens,
  llavaNextImage,
  openaiPatchImage,
  openaiTileImage,
  patchGridImage,
  smartResize,
} from './rules.js';
export type { PatchGridLimits, ProcessedImage, TileCost } from './rules.js';

/**
 * Vision-token profiles: the one place that knows how many tokens a VLM spends
 * on an image of width × height pixels, and what size it actually processes.
 * Used by the Glyph report (render/), video planning (video/), image planning
 * (ask/), eval and `vtc tokens`. Counts are the image's own tokens (no
 * <vision_start>/<image> wrappers or chat-template text). Sources and the
 * published worked examples: docs/profiles.md.
 */
export interface VisionProfile {
  /** Name used by `--profile`. */
  name: string;
  /** One line: the rule and its source. */
  description: string;
  /** Where the rule is published (docs page or reference code). */
  source: string;
  /** The processed size and billed tokens of one image (integers ≥ 1). */
  process(width: number, height: number): ProcessedImage;
  /** Tokens for one image of the given pixel size (= process().tokens). */
  tokens(width: number, height: number): number;
  /** True when every image costs the same whatever its size (LLaVA-1.5, Gemini 3 levels). */
  fixedCost: boolean;
  /** OpenAI `image_url.detail` the request must carry for this profile's rule to apply. */
  detail?: 'low' | 'high';
}

function profile(
  name: string,
  description: string,
  source: string,
  process: (w: number, h: number) => ProcessedImage,
  extra: { fixedCost?: boolean; detail?: 'low' | 'high' } = {},
): VisionProfile {
  return {
    name,
    description,
    source,
    process,
    tokens: (w, h) => process(w, h).tokens,
    fixedCost: extra.fixedCost ?? false,
    ...(extra.detail ? { detail: extra.detail } : {}),
  };
}

const OPENAI_GUIDE = 'https://platform.openai.com/docs/guides/images-vision#calculating-costs';
const QWEN2_PROCESSOR =
  'https://github.com/huggingface/transformers/blob/main/src/transformers/models/qwen2_vl/image_processing_qwen2_vl.py';

function qwen(name: string, description: string, source: string, limits: PatchGridLimits): VisionProfile {
  return profile(name, description, source, (w, h) => patchGridImage(w, h, limits));
}

function openaiTile(name: string, cost: TileCost, label: string): VisionProfile[] {
  return [
    profile(
      name,
      `${label} detail=high: fit 2048², shortest side ≤ 768, ${cost.base} + ${cost.tile} per 512×512 tile (OpenAI images guide)`,
      OPENAI_GUIDE,
      (w, h) => openaiTileImage(w, h, cost),
      { detail: 'high' },
    ),
    profile(
      `${name}-low`,
      `${label} detail=low: ${cost.base} tokens for any image (the model sees it at 512×512) (OpenAI images guide)`,
      OPENAI_GUIDE,
      (w, h) => fitWithin(w, h, 512, cost.base),
      { fixedCost: true, detail: 'low' },
    ),
  ];
}

/** Aspect-preserving fit inside side×side (never upscaled), at a fixed cost. */
function fitWithin(w: number, h: number, side: number, tokens: number): ProcessedImage {
  const scale = Math.min(1, side / Math.max(w, h));
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)), tokens };
}

function openaiPatch(name: string, multiplier: number): VisionProfile {
  return profile(
    name,
    `${name}: 32×32 patches capped at 1536 (scale-down rule), tokens = ⌈patches × ${multiplier}⌉ (OpenAI images guide)`,
    OPENAI_GUIDE,
    (w, h) => openaiPatchImage(w, h, multiplier),
  );
}

function gemini3(level: 'low' | 'medium' | 'high', tokens: number): VisionProfile {
  return profile(
    `gemini-3-${level}`,
    `Gemini 3 media_resolution ${level}: ${tokens} tokens per image whatever its size (Gemini API media resolution guide)`,
    'https://ai.google.dev/gemini-api/docs/media-resolution',
    (w, h) => ({ width: w, height: h, tokens }),
    { fixedCost: true },
  );
}

const list: VisionProfile[] = [
  qwen(
    'qwen2-vl',
    'Qwen2-VL: 1 token per 28×28 px after smart_resize, min 3136 / max 12845056 px (preprocessor_config.json; transformers Qwen2VLImageProcessor)',
    QWEN2_PROCESSOR,
    { factor: 28, minPixels: 56 * 56, maxPixels: 12845056 },
  ),
  qwen(
    'qwen2.5-vl',
    'Qwen2.5-VL: same rule as Qwen2-VL (patch 14, 2×2 merge), min 3136 / max 12845056 px (Qwen2.5-VL preprocessor_config.json)',
    QWEN2_PROCESSOR,
    { factor: 28, minPixels: 56 * 56, maxPixels: 12845056 },
  ),
  qwen(
    'qwen3-vl',
    'Qwen3-VL: 1 token per 32×32 px (patch 16, 2×2 merge) after smart_resize, min 65536 / max 16777216 px (Qwen3-VL preprocessor_config.json size.shortest_edge / longest_edge)',
    QWEN2_PROCESSOR,
    { factor: 32, minPixels: 65536, maxPixels: 16777216 },
  ),
  profile(
    'glm-4.1v',
    "GLM-4.1V-Thinking: 1 token per 28×28 px after GLM's smart_resize (2 temporal frames count against min 12544 / max 9633792 px) (transformers Glm4vImageProcessor; preprocessor_config.json)",
    'https://github.com/huggingface/transformers/blob/main/src/transformers/models/glm4v/image_processing_glm4v.py',
    (w, h) => glmResize(w, h),
  ),
  profile(
    'llava-1.5',
    'LLaVA-1.5: every image is resized to 336×336 for CLIP ViT-L/14-336 → 24×24 = 576 tokens',
    'https://github.com/haotian-liu/LLaVA',
    () => ({ width: 336, height: 336, tokens: 576 }),
    { fixedCost: true },
  ),
  profile(
    'llava-next',
    'LLaVA-NeXT AnyRes: 576 thumbnail tokens + unpadded crop grid with one newline token per row (encoders/anyres.ts, LLaVA-NeXT get_anyres_image_grid_shape / unpad_image)',
    'https://github.com/LLaVA-VL/LLaVA-NeXT/blob/main/llava/model/llava_arch.py',
    llavaNextImage,
  ),
  ...openaiTile('gpt-4o', { base: 85, tile: 170 }, 'GPT-4o'),
  ...openaiTile('gpt-4.1', { base: 85, tile: 170 }, 'GPT-4.1'),
  ...openaiTile('gpt-4o-mini', { base: 2833, tile: 5667 }, 'GPT-4o mini'),
  ...openaiTile('o3', { base: 75, tile: 150 }, 'o1 / o3'),
  openaiPatch('gpt-4.1-mini', 1.62),
  openaiPatch('gpt-4.1-nano', 2.46),
  openaiPatch('o4-mini', 1.72),
  profile(
    'claude',
    'Claude: ceil(w·h/750) after downscaling to long edge ≤ 1568 px and ≤ 1.2 MP (~1600 tokens) (Anthropic vision guide)',
    'https://docs.anthropic.com/en/docs/build-with-claude/vision',
    claudeImage,
  ),
  profile(
    'gemini',
    'Gemini 2.x: 258 tokens if both sides ≤ 384 px, else 258 per 768×768 tile (Gemini API token counting docs)',
    'https://ai.google.dev/gemini-api/docs/tokens',
    (w, h) => ({ width: w, height: h, tokens: geminiTokens(w, h) }),
  ),
  gemini3('low', 280),
  gemini3('medium', 560),
  gemini3('high', 1120),
];
const profiles: Record<string, VisionProfile> = Object.fromEntries(list.map((p) => [p.name, p]));

/** Every profile name, for `--profile` help and validation. */
export function profileNames(): string[] {
  return list.map((p) => p.name);
}

/**
 * Looks up a profile by name; unknown names are a UsageError listing the valid ones.
 *
 * @example
 * getProfile('qwen2.5-vl').tokens(588, 840) // 630
 */
export function getProfile(name: string): VisionProfile {
  const found = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
  if (!found)
    throw new UsageError(
      `unknown vision profile ${describe(name)} (expected one of: ${profileNames().join(', ')})`,
      'E_PROFILE',
    );
  return found;
}

function checkSize(width: number, height: number, where: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new UsageError(
      `${where}: image size must be positive integer pixels, got ${describe(width)}×${describe(height)}`,
    );
  }
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
  checkSize(width, height, 'visionTokens');
  return p.tokens(width, height);
}

/**
 * The size a profile's provider processes and the tokens it bills for one image.
 *
 * @example
 * processedImage('gpt-4o', 2048, 4096); // { width: 768, height: 1536, tokens: 1105 }
 */
export function processedImage(profile: string | VisionProfile, width: number, height: number): ProcessedImage {
  const p = typeof profile === 'string' ? getProfile(profile) : profile;
  checkSize(width, height, 'processedImage');
  return p.process(width, height);
}
