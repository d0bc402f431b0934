import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';
import { InputError, ShapeError, UsageError, describe } from '../core/errors.js';
import { checkInteger, checkNumber } from '../core/validate.js';
import { encodeImage } from '../encoders/encode.js';
import { readImage, DEFAULT_MAX_PIXELS } from '../encoders/image.js';
import { createPatchEncoder } from '../encoders/patch.js';
import type { RgbImage, VisionEncoder } from '../encoders/types.js';
import { getProfile, type VisionProfile } from '../profiles/index.js';
import { encodePage, parseConfig, renderText } from '../render/index.js';
import { defaultTokenizerFor, loadTextTokenizer } from '../tokenizer/index.js';
import type { DualEncoder } from '../video/dual-encoder.js';
import { planVideo } from '../video/pipeline.js';
import { belowMinimum, cheapestSize, largestFit } from './fit.js';
import { allocateRegions, focusLayout } from './focus-budget.js';
import { boxScore, mergeOverlapping, topBoxes, windowGrid, type Box } from './regions.js';
import { PLAN_METHODS, type PlanMethod } from './methods.js';

/**
 * `planImage`: what to send a VLM for one input under a token budget and a
 * provider profile (profiles/). The budget is in the profile's billed
 * tokens and `tokens_sent ≤ budget` always holds.
 *
 * - `downsample` (images): one image, the largest aspect-preserving size whose
 *   billed tokens fit (exact search, ask/fit.ts) — the VTC-Bench baseline.
 * - `focus` (images): GlobalCom²'s idea at pixel level — a global thumbnail
 *   plus the highest-scoring regions sent at higher resolution; docs/ask.md
 *   has the budget split.
 * - `glyph` (text): the Glyph renderer at the highest dpi whose pages fit.
 * - `keyframes` (video): video/pipeline's planner with the budget as its token budget.
 */

// The list lives in ask/methods.ts (no imports, for the CLI's help); exported from here as before.
export { PLAN_METHODS, type PlanMethod };

/** An image file path, image bytes, decoded RGB, a text, or a video file. */
export type PlanInput = string | Uint8Array | RgbImage | { text: string } | { video: string };

export interface PlanImageOptions {
  /** Vision profile (default 'qwen2.5-vl'). */
  profile?: string;
  /** Token budget under the profile (give this or `ratio`). */
  budget?: number;
  /** Budget as a fraction of tokens_full, in (0, 1]. */
  ratio?: number;
  /** Default: downsample for images, glyph for text, keyframes for video. */
  method?: PlanMethod;
  /** The question: region choice (focus, with a dual encoder) and clip retrieval (keyframes). */
  question?: string;
  /** Encoder whose thumbnail scores rank regions (default: the built-in patch encoder, query-free saliency). */
  encoder?: VisionEncoder;
  /** CLIP-style dual encoder: question-aware region scores (focus) and clip retrieval (keyframes). */
  dualEncoder?: DualEncoder;
  /** focus: share of the budget for the global thumbnail (default 0.25). */
  thumbnailShare?: number;
  /** focus: regions picked before merging (default 3). */
  regions?: number;
  /** focus: regions are sent at up to this × the linear scale downsampling would give (default 2; never above native). */
  zoom?: number;
  /** Encoding of planned images (default png; the original bytes are sent when an image goes as is). */
  format?: 'png' | 'jpeg';
  jpegQuality?: number;
  /** Refuse images above this many pixels (default 100 MP). */
  maxPixels?: number;
}

export interface PlannedImage {
  bytes: Uint8Array;
  mime: string;
  /** Pixel size as sent. */
  width: number;
  height: number;
  /** [x, y, w, h] in source pixels (page or frame pixels for glyph / keyframes). */
  box: Box;
  /** Billed tokens of this image under the profile. */
  tokens: number;
  role: 'image' | 'thumbnail' | 'region' | 'page' | 'frame';
  /** Index of the input this image comes from (planImages with several inputs). */
  source: number;
  /** Frame time in seconds (keyframes). */
  time?: number;
}

export interface ImagePlan {
  method: PlanMethod;
  profile: string;
  budget: number;
  images: PlannedImage[];
  tokens_sent: number;
  /** The inputs sent as they are: original images, uniform 1 fps frames, or the text as text tokens. */
  tokens_full: number;
  /** Pixel size of each input (0×0 for text). */
  sources: { width: number; height: number }[];
  /** What the planner decided that a caller should know (fallbacks, which scores ranked regions). */
  notes: string[];
}

const VIDEO_EXTENSIONS = new Set([
  '.mp4',
  '.mkv',
  '.webm',
  '.mov',
  '.avi',
  '.m4v',
  '.mpg',
  '.mpeg',
  '.ts',
  '.flv',
  '.wmv',
  '.3gp',
]);
const TEXT_EXTENSIONS = new Set(['.txt', '.md', '.text']);
const WEB_FORMATS: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
};

type Source =
  | { kind: 'image'; image: RgbImage; original?: { bytes: Uint8Array; mime: string } }
  | { kind: 'text'; text: string }
  | { kind: 'video'; path: string };

async function loadSource(input: PlanInput, maxPixels: number): Promise<Source> {
  if (typeof input === 'string') {
    const ext = extname(input).toLowerCase();
    if (VIDEO_EXTENSIONS.has(ext)) return { kind: 'video', path: input };
    if (TEXT_EXTENSIONS.has(ext)) {
      try {
        return { kind: 'text', text: await readFile(input, 'utf8') };
      } catch (error) {
        throw new InputError(
          `${input}: cannot read text (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
          'E_READ',
        );
      }
    }
    const decoded = await readImage(input, { maxPixels });
    const mime = WEB_FORMATS[decoded.format];
    return {
      kind: 'image',
      image: decoded,
      ...(mime ? { original: { bytes: new Uint8Array(await readFile(input)), mime } } : {}),
    };
  }
  if (input instanceof Uint8Array) {
    const decoded = await readImage(input, { maxPixels });
    const mime = WEB_FORMATS[decoded.format];
    return { kind: 'image', image: decoded, ...(mime ? { original: { bytes: input, mime } } : {}) };
  }
  if ('text' in input) return { kind: 'text', text: input.text };
  if ('video' in input) return { kind: 'video', path: input.video };
  if (input.data.length !== input.width * input.height * 3)
    throw new ShapeError(
      `planImage: RGB image ${input.width}x${input.height} needs ${input.width * input.height * 3} bytes, got ${input.data.length}`,
    );
  if (input.width * input.height > maxPixels)
    throw new InputError(
      `image is ${input.width}x${input.height} = ${input.width * input.height} pixels, above the limit of ${maxPixels}`,
      'E_PIXEL_LIMIT',
    );
  return { kind: 'image', image: input };
}

function defaultMethod(kind: Source['kind']): PlanMethod {
  return kind === 'image' ? 'downsample' : kind === 'text' ? 'glyph' : 'keyframes';
}

function checkMethod(method: PlanMethod, kind: Source['kind']): void {
  if (!PLAN_METHODS.includes(method))
    throw new UsageError(
      `unknown plan method ${describe(method)} (expected one of: ${PLAN_METHODS.join(', ')})`,
      'E_METHOD',
    );
  const ok =
    kind === 'image'
      ? method === 'downsample' || method === 'focus'
      : kind === 'text'
        ? method === 'glyph'
        : method === 'keyframes';
  if (!ok)
    throw new UsageError(
      `method ${method} does not apply to a ${kind} input (use ${kind === 'image' ? 'downsample or focus' : defaultMethod(kind)})`,
      'E_METHOD',
    );
}

/** Budget from `budget` or `ratio` × tokens_full. */
export function resolveBudget(options: Pick<PlanImageOptions, 'budget' | 'ratio'>, tokensFull: number): number {
  if (options.budget !== undefined && options.ratio !== undefined)
    throw new UsageError('give either a token budget or a ratio, not both', 'E_BUDGET');
  if (options.budget !== undefined) {
    return checkInteger(options.budget, 'token budget', { min: 1, code: 'E_BUDGET' });
  }
  if (options.ratio !== undefined) {
    checkNumber(options.ratio, 'ratio', { gt: 0, max: 1, code: 'E_BUDGET' });
    return Math.max(1, Math.floor(options.ratio * tokensFull));
  }
  throw new UsageError('give a token budget or a ratio', 'E_BUDGET');
}

async function encodeRegion(
  image: RgbImage,
  box: Box,
  width: number,
  height: number,
  options: PlanImageOptions,
): Promise<{ bytes: Uint8Array; mime: string }> {
  let pipeline = sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  });
  const [x, y, w, h] = box;
  if (x !== 0 || y !== 0 || w !== image.width || h !== image.height)
    pipeline = pipeline.extract({ left: x, top: y, width: w, height: h });
  if (w !== width || h !== height) pipeline = pipeline.resize(width, height, { fit: 'fill', kernel: 'lanczos3' });
  const jpeg = options.format === 'jpeg';
  const buffer = await (jpeg
    ? pipeline.jpeg({ quality: options.jpegQuality ?? 90 })
    : pipeline.png({ compressionLevel: 6 })
  ).toBuffer();
  return {
    bytes: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length),
    mime: jpeg ? 'image/jpeg' : 'image/png',
  };
}

/** Whole image at a size (original bytes when it goes as is and they are web-safe). */
async function wholeImage(
  source: Extract<Source, { kind: 'image' }>,
  width: number,
  height: number,
  tokens: number,
  index: number,
  options: PlanImageOptions,
): Promise<PlannedImage> {
  const { image } = source;
  const box: Box = [0, 0, image.width, image.height];
  const asIs = width === image.width && height === image.height && source.original;
  const encoded = asIs ? source.original! : await encodeRegion(image, box, width, height, options);
  return { ...encoded, width, height, box, tokens, role: 'image', source: index };
}

async function planDownsample(
  source: Extract<Source, { kind: 'image' }>,
  profile: VisionProfile,
  budget: number,
  index: number,
  options: PlanImageOptions,
): Promise<PlannedImage[]> {
  const { width, height } = source.image;
  const fit = largestFit(width, height, profile, budget);
  if (!fit) throw belowMinimum(width, height, profile, budget);
  return [await wholeImage(source, fit.width, fit.height, fit.tokens, index, options)];
}

/** Per-patch scores over the picture and how they were obtained. */
async function regionScores(
  image: RgbImage,
  windows: Box[],
  options: PlanImageOptions,
  notes: string[],
): Promise<number[]> {
  if (options.dualEncoder && options.question) {
    const crops = await Promise.all(windows.map(async ([x, y, w, h]) => cropRgb(image, x, y, w, h)));
    const embeddings = await options.dualEncoder.embedImages(crops);
    const text = await options.dualEncoder.embedText(options.question);
    if (text.length !== embeddings[0]!.length)
      throw new ShapeError(
        `dual encoder ${options.dualEncoder.name}: text embeddings have ${text.length} dimensions but image embeddings ${embeddings[0]!.length}`,
      );
    notes.push(`focus: regions ranked by the question through dual encoder ${options.dualEncoder.name}`);
    return embeddings.map((e) => e.reduce((s, v, i) => s + v * text[i]!, 0));
  }
  if (options.question)
    notes.push(
      'focus: the question is not used to choose regions (no dual encoder configured); using query-free saliency',
    );
  let encoder = options.encoder ?? createPatchEncoder();
  let tokens = await encodeImage(image, { encoder });
  if (!usableScores(tokens.score)) {
    notes.push(
      `focus: encoder ${encoder.name} gives no usable token scores; using the built-in patch encoder's saliency instead`,
    );
    encoder = createPatchEncoder();
    tokens = await encodeImage(image, { encoder });
  } else if (!options.question) {
    notes.push(`focus: regions ranked by ${encoder.name} encoder thumbnail scores (query-free saliency)`);
  }
  const grid = { rows: tokens.sources[0]!.rows, cols: tokens.sources[0]!.cols, scores: tokens.score! };
  return windows.map((box) => boxScore(grid, box, image.width, image.height));
}

function usableScores(scores: Float32Array | undefined): scores is Float32Array {
  if (!scores || scores.length === 0) return false;
  let min = Infinity;
  let max = -Infinity;
  for (const s of scores) {
    if (!Number.isFinite(s)) return false;
    min = Math.min(min, s);
    max = Math.max(max, s);
  }
  return max > min;
}

function cropRgb(image: RgbImage, x: number, y: number, w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++)
    data.set(image.data.subarray(((y + r) * image.width + x) * 3, ((y + r) * image.width + x + w) * 3), r * w * 3);
  return { data, width: w, height: h };
}

/**
 * focus (pixels): the budget arithmetic is ask/focus-budget.ts (pure, property-tested);
 * this ranks the candidate windows with the encoder and encodes the crops.
 */
async function planFocus(
  source: Extract<Source, { kind: 'image' }>,
  profile: VisionProfile,
  budget: number,
  index: number,
  options: PlanImageOptions,
  notes: string[],
): Promise<PlannedImage[]> {
  const { image } = source;
  const { width: W, height: H } = image;
  const layout = focusLayout(W, H, profile, budget, options);
  if (layout.kind === 'whole') {
    notes.push('focus: the whole image fits the budget; sent as is');
    return [await wholeImage(source, W, H, layout.fit.tokens, index, options)];
  }
  if (layout.kind === 'fallback') {
    notes.push(`focus: ${layout.reason}; sent one downsampled image instead`);
    return [await wholeImage(source, layout.fit.width, layout.fit.height, layout.fit.tokens, index, options)];
  }
  const windows = windowGrid(W, H, layout.window.width, layout.window.height);
  const scores = await regionScores(image, windows, options, notes);
  const allocation = allocateRegions(
    W,
    H,
    profile,
    budget,
    layout,
    mergeOverlapping(topBoxes(windows, scores, layout.regions)),
  );
  if (allocation.regions.length === 0) {
    notes.push('focus: no region fits the budget left after the thumbnail; sent one downsampled image instead');
    return [await wholeImage(source, layout.whole.width, layout.whole.height, layout.whole.tokens, index, options)];
  }
  const { thumbnail } = allocation;
  const images: PlannedImage[] = [];
  images.push({
    ...(await encodeRegion(image, [0, 0, W, H], thumbnail.width, thumbnail.height, options)),
    width: thumbnail.width,
    height: thumbnail.height,
    box: [0, 0, W, H],
    tokens: thumbnail.tokens,
    role: 'thumbnail',
    source: index,
  });
  for (const { box, fit } of allocation.regions) {
    images.push({
      ...(await encodeRegion(image, box, fit.width, fit.height, options)),
      width: fit.width,
      height: fit.height,
      box,
      tokens: fit.tokens,
      role: 'region',
      source: index,
    });
  }
  return images;
}

/** glyph: the highest dpi (10–300) whose rendered pages fit the budget. */
async function planGlyph(
  text: string,
  profile: VisionProfile,
  budget: number,
  index: number,
  options: PlanImageOptions,
  notes: string[],
): Promise<PlannedImage[]> {
  const pagesAt = (dpi: number) => renderText(text, parseConfig({ dpi })).pages;
  const cost = (pages: { width: number; height: number }[]) =>
    pages.reduce((s, p) => s + profile.tokens(p.width, p.height), 0);
  let lo = 10;
  let hi = 300;
  let best: { dpi: number; pages: ReturnType<typeof pagesAt> } | undefined;
  const low = pagesAt(lo);
  if (cost(low) > budget)
    throw new UsageError(
      `token budget ${budget} is below what ${profile.name} bills for this text at the smallest dpi (10): ${cost(low)} tokens over ${low.length} pages`,
      'E_BUDGET',
    );
  best = { dpi: lo, pages: low };
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const pages = pagesAt(mid);
    if (cost(pages) <= budget) {
      lo = mid;
      best = { dpi: mid, pages };
    } else hi = mid;
  }
  notes.push(`glyph: rendered at ${best.dpi} dpi (${best.pages.length} pages)`);
  const jpeg = options.format === 'jpeg';
  return Promise.all(
    best.pages.map(async (page) => {
      const buffer = await encodePage(page, jpeg ? 'jpeg' : 'png', options.jpegQuality ?? 90);
      return {
        bytes: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length),
        mime: jpeg ? 'image/jpeg' : 'image/png',
        width: page.width,
        height: page.height,
        box: [0, 0, page.width, page.height] as Box,
        tokens: profile.tokens(page.width, page.height),
        role: 'page' as const,
        source: index,
      };
    }),
  );
}

async function planKeyframes(
  path: string,
  profile: VisionProfile,
  budget: number,
  index: number,
  options: PlanImageOptions,
  notes: string[],
): Promise<{ images: PlannedImage[]; full: number }> {
  const plan = await planVideo(path, {
    question: options.question,
    tokenBudget: budget,
    profile: profile.name,
    ...(options.encoder ? { encoder: options.encoder } : {}),
    ...(options.dualEncoder ? { dualEncoder: options.dualEncoder } : {}),
  });
  notes.push(
    `keyframes: ${plan.keyframes.length} frames of ${plan.frameWidth}x${plan.frameHeight} (${plan.retrieval} retrieval)`,
  );
  const images = await Promise.all(
    plan.keyframes.map(async (k) => ({
      ...(await encodeRegion(k.image, [0, 0, k.image.width, k.image.height], k.image.width, k.image.height, options)),
      width: k.image.width,
      height: k.image.height,
      box: [0, 0, plan.info.width, plan.info.height] as Box,
      tokens: plan.tokensPerFrame,
      role: 'frame' as const,
      source: index,
      time: k.time,
    })),
  );
  return { images, full: plan.tokensUniform };
}

interface LoadedInput {
  source: Source;
  full: number;
  size: { width: number; height: number };
}

/** A text input sent as text: counted with the profile's tokenizer (Qwen's for Qwen profiles, else o200k). */
async function textTokens(text: string, profile: VisionProfile): Promise<number> {
  return (await loadTextTokenizer(defaultTokenizerFor(profile.name))).count(text);
}

/**
 * Plans one or several inputs under one budget. With several, the budget is split in
 * proportion to each input's full cost (each at least its cheapest image).
 *
 * @example
 * const plan = await planImage('chart.png', { profile: 'gpt-4o', budget: 500, method: 'focus' });
 * plan.images.map((i) => [i.width, i.height, i.box]); plan.tokens_sent <= 500; // true
 */
export async function planImage(input: PlanInput | PlanInput[], options: PlanImageOptions): Promise<ImagePlan> {
  const profile = getProfile(options.profile ?? 'qwen2.5-vl');
  const inputs = Array.isArray(input) ? input : [input];
  if (inputs.length === 0) throw new UsageError('planImage: give at least one input');
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const loaded: LoadedInput[] = [];
  for (const one of inputs) {
    const source = await loadSource(one, maxPixels);
    const method = options.method ?? defaultMethod(source.kind);
    checkMethod(method, source.kind);
    if (source.kind === 'image')
      loaded.push({
        source,
        full: profile.tokens(source.image.width, source.image.height),
        size: { width: source.image.width, height: source.image.height },
      });
    else if (source.kind === 'text')
      loaded.push({ source, full: await textTokens(source.text, profile), size: { width: 0, height: 0 } });
    else loaded.push({ source, full: 0, size: { width: 0, height: 0 } });
  }
  if (loaded.some((l) => l.source.kind === 'video') && options.ratio !== undefined)
    throw new UsageError('a video input needs a token budget (--budget), not a ratio', 'E_BUDGET');
  const totalFull = loaded.reduce((s, l) => s + l.full, 0);
  const budget = resolveBudget(options, totalFull);
  const shares = splitBudget(loaded, profile, budget);
  const notes: string[] = [];
  const images: PlannedImage[] = [];
  let tokensFull = 0;
  for (let i = 0; i < loaded.length; i++) {
    const { source, full } = loaded[i]!;
    const method = options.method ?? defaultMethod(source.kind);
    const share = shares[i]!;
    if (source.kind === 'image') {
      images.push(
        ...(method === 'focus'
          ? await planFocus(source, profile, share, i, options, notes)
          : await planDownsample(source, profile, share, i, options)),
      );
      tokensFull += full;
    } else if (source.kind === 'text') {
      images.push(...(await planGlyph(source.text, profile, share, i, options, notes)));
      tokensFull += full;
    } else {
      const planned = await planKeyframes(source.path, profile, share, i, options, notes);
      images.push(...planned.images);
      tokensFull += planned.full;
      loaded[i]!.size = { width: planned.images[0]?.box[2] ?? 0, height: planned.images[0]?.box[3] ?? 0 };
    }
  }
  const tokensSent = images.reduce((s, im) => s + im.tokens, 0);
  // The invariant every method keeps; a failure here is a planner bug, never a user error.
  if (tokensSent > budget) throw new Error(`planImage: planned ${tokensSent} tokens over the budget ${budget}`);
  return {
    method: options.method ?? defaultMethod(loaded[0]!.source.kind),
    profile: profile.name,
    budget,
    images,
    tokens_sent: tokensSent,
    tokens_full: tokensFull,
    sources: loaded.map((l) => l.size),
    notes,
  };
}

/** Budget per input: proportional to full cost, each image input at least its cheapest size. */
function splitBudget(loaded: LoadedInput[], profile: VisionProfile, budget: number): number[] {
  if (loaded.length === 1) return [budget];
  const mins = loaded.map((l) =>
    l.source.kind === 'image' ? cheapestSize(l.size.width, l.size.height, profile).tokens : 1,
  );
  const minTotal = mins.reduce((a, b) => a + b, 0);
  if (minTotal > budget)
    throw new UsageError(
      `token budget ${budget} is below the smallest images ${profile.name} accepts for these ${loaded.length} inputs: ${minTotal} tokens`,
      'E_BUDGET',
    );
  const weights = loaded.map((l) => Math.max(1, l.full));
  const weightTotal = weights.reduce((a, b) => a + b, 0);
  const spare = budget - minTotal;
  return mins.map((m, i) => m + Math.floor((spare * weights[i]!) / weightTotal));
}
