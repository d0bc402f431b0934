import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { z } from 'zod';
import { InputError, ShapeError, UsageError } from '../core/errors.js';
import { floatToHalf } from '../core/float16.js';
import { createTokenSet, type TokenSet, type TokenSource } from '../core/tokenset.js';
import { effectiveFps, readFrames, sceneChanges } from './ffmpeg.js';
import { readImage, resolveNormalization, type Normalization } from './image.js';
import {
  asFloat32,
  declaredType,
  ENCODER_CONFIG_FILE,
  normalizationSchema,
  openOnnxSession,
  parseConfig,
} from './onnx.js';
import { negativeCosineToMean } from './patch.js';
import {
  checkGrid,
  preprocessQwenImage,
  preprocessQwenVideo,
  qwenFamilySpec,
  qwenWindowIndex,
  QWEN_FAMILIES,
  type GridThw,
  type QwenFamily,
  type QwenFamilySpec,
  type QwenPatches,
  type QwenPreprocessed,
} from './qwen-preprocess.js';
import type { RgbImage } from './types.js';
import { checkInteger } from '../core/validate.js';

/**
 * Qwen2.5-VL / Qwen3-VL vision towers exported to ONNX, run with
 * onnxruntime-node. The tower takes the processor's flattened patches and
 * grid — `pixel_values` [N, 3·2·P·P] float and `image_grid_thw` [1, 3] int64 —
 * and returns one merged token per 2×2 patch group, `image_features`
 * [N/4, D]: the I/O of the transformers.js-style exports (vision_encoder.onnx;
 * Qwen2-VL's names the grid `grid_thw`) and of ONNX Runtime GenAI's Olive
 * recipe (vision.onnx). Both export the Hugging Face forward, which restores
 * raster order after Qwen2.5-VL's window reorder; `outputOrder: "window"` is
 * for exports that stop before that step (vtc then applies the inverse).
 *
 * Configuration: `vtc-encoder.json` in the model directory (or any .json
 * file) with `"family"`, or just a family name and an .onnx path:
 *
 *   {
 *     "family": "qwen3-vl",                // qwen2.5-vl | qwen3-vl
 *     "model": "vision_encoder.onnx",
 *     "features": "image_features",        // [N/4, D] (or [1, N/4, D])
 *     "deepstack": ["deepstack_0", …],     // Qwen3-VL: DeepStack outputs [N/4, D] each, or …
 *     "deepstackConcat": 3,                // … features carry [main | ds0 | ds1 | ds2] columns (vLLM layout)
 *     "attention": "attn_probs_23",        // optional: [H, N, N] of a full-attention block
 *     "attentionKind": "probs",            // or "logits" (softmax taken within each temporal patch)
 *     "attentionLayer": 23,                // checked against the family's full-attention blocks
 *     "minPixels": 3136, "maxPixels": 12845056
 *   }
 *
 * Scores: with `attention`, the attention each merged token receives — the
 * column sums of the head-averaged probabilities over its 4 patches (no CLS
 * exists to take a row from); without, s = −cos(x, mean of the temporal
 * patch's merged features), the feature-only rule of the patch encoder.
 * A run covers `temporalChunk` temporal patches at a time: both towers
 * attend only within a temporal patch (cu_seqlens per frame pair), so
 * chunking changes nothing in the output.
 */

const qwenConfigSchema = z
  .object({
    family: z.enum(QWEN_FAMILIES as unknown as [QwenFamily, ...QwenFamily[]]),
    name: z.string().min(1).optional(),
    model: z.string().min(1).default('vision_encoder.onnx'),
    pixelInput: z.string().min(1).default('pixel_values'),
    gridInput: z.string().min(1).optional(),
    features: z.string().min(1).default('image_features'),
    deepstack: z.array(z.string().min(1)).min(1).optional(),
    deepstackConcat: z.number().int().min(1).max(16).optional(),
    outputOrder: z.enum(['raster', 'window']).default('raster'),
    attention: z.string().min(1).optional(),
    attentionKind: z.enum(['logits', 'probs']).default('probs'),
    attentionOrder: z.enum(['window', 'processor']).optional(),
    attentionLayer: z.number().int().min(0).optional(),
    fullAttentionBlocks: z.array(z.number().int().min(0)).optional(),
    windowSize: z.number().int().positive().optional(),
    minPixels: z.number().int().positive().optional(),
    maxPixels: z.number().int().positive().optional(),
    videoMinPixels: z.number().int().positive().optional(),
    videoMaxPixels: z.number().int().positive().optional(),
    normalization: normalizationSchema.optional(),
    temporalChunk: z.number().int().positive().default(4),
  })
  .strict();

export type QwenEncoderConfigInput = z.input<typeof qwenConfigSchema>;

/** A validated Qwen tower configuration. */
export interface QwenEncoderConfig {
  family: QwenFamily;
  name: string;
  /** Absolute or config-relative path of the .onnx file. */
  model: string;
  pixelInput: string;
  gridInput?: string;
  features: string;
  deepstack?: string[];
  deepstackConcat?: number;
  outputOrder: 'raster' | 'window';
  attention?: string;
  attentionKind: 'logits' | 'probs';
  /** Sequence order of the attention matrix: the window order inside Qwen2.5-VL blocks, the processor order in Qwen3-VL. */
  attentionOrder: 'window' | 'processor';
  attentionLayer?: number;
  windowSize: number;
  image: { minPixels?: number; maxPixels?: number };
  video: { minPixels?: number; maxPixels?: number };
  normalization: Normalization;
  temporalChunk: number;
  /** Processor files read beside the tower (preprocessor_config.json, video_preprocessor_config.json). */
  processorConfigs: string[];
}

/**
 * Validates a raw Qwen tower config (as parsed from JSON).
 *
 * @example
 * resolveQwenConfig({ family: 'qwen2.5-vl' }).features; // 'image_features'
 */
export function resolveQwenConfig(raw: unknown, where = ENCODER_CONFIG_FILE): QwenEncoderConfig {
  const c = parseConfig(qwenConfigSchema, raw, where);
  const spec = qwenFamilySpec(c.family);
  if (c.deepstack && c.deepstackConcat)
    throw new InputError(
      `${where}: give either "deepstack" (output names) or "deepstackConcat" (columns in the features), not both`,
      'E_CONFIG',
    );
  if ((c.deepstack || c.deepstackConcat) && c.family !== 'qwen3-vl')
    throw new InputError(`${where}: DeepStack outputs exist only in qwen3-vl towers, not ${c.family}`, 'E_CONFIG');
  if (c.outputOrder === 'window' && c.family !== 'qwen2.5-vl')
    throw new InputError(
      `${where}: outputOrder "window" applies to qwen2.5-vl (window attention); ${c.family} has no window reorder`,
      'E_CONFIG',
    );
  const attentionOrder = c.attentionOrder ?? (c.family === 'qwen2.5-vl' ? 'window' : 'processor');
  if (attentionOrder === 'window' && c.family !== 'qwen2.5-vl')
    throw new InputError(`${where}: attentionOrder "window" applies to qwen2.5-vl only`, 'E_CONFIG');
  const fullBlocks = c.fullAttentionBlocks ?? spec.fullAttentionBlocks;
  if (c.attentionLayer !== undefined && fullBlocks && !fullBlocks.includes(c.attentionLayer)) {
    throw new InputError(
      `${where}: attentionLayer ${c.attentionLayer} is a window-attention block of ${c.family}; scores need a full-attention block (${fullBlocks.join(', ')})`,
      'E_CONFIG',
    );
  }
  if (c.attentionLayer !== undefined && !c.attention)
    throw new InputError(`${where}: attentionLayer is set but no "attention" output is named`, 'E_CONFIG');
  for (const [lo, hi, label] of [
    [c.minPixels, c.maxPixels, 'minPixels/maxPixels'],
    [c.videoMinPixels, c.videoMaxPixels, 'videoMinPixels/videoMaxPixels'],
  ] as const) {
    if (lo !== undefined && hi !== undefined && lo > hi)
      throw new InputError(`${where}: ${label}: ${lo} > ${hi}`, 'E_CONFIG');
  }
  const config: QwenEncoderConfig = {
    family: c.family,
    name: c.name ?? c.family,
    model: c.model,
    pixelInput: c.pixelInput,
    features: c.features,
    outputOrder: c.outputOrder,
    attentionKind: c.attentionKind,
    attentionOrder,
    windowSize: c.windowSize ?? spec.windowSize ?? 112,
    image: {
      ...(c.minPixels !== undefined ? { minPixels: c.minPixels } : {}),
      ...(c.maxPixels !== undefined ? { maxPixels: c.maxPixels } : {}),
    },
    video: {
      ...(c.videoMinPixels !== undefined ? { minPixels: c.videoMinPixels } : {}),
      ...(c.videoMaxPixels !== undefined ? { maxPixels: c.videoMaxPixels } : {}),
    },
    normalization: c.normalization ? resolveNormalization(c.normalization) : spec.normalization,
    temporalChunk: c.temporalChunk,
    processorConfigs: [],
  };
  if (c.gridInput) config.gridInput = c.gridInput;
  if (c.deepstack) config.deepstack = c.deepstack;
  if (c.deepstackConcat) config.deepstackConcat = c.deepstackConcat;
  if (c.attention) config.attention = c.attention;
  if (c.attentionLayer !== undefined) config.attentionLayer = c.attentionLayer;
  return config;
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      `${path}: ${code === 'ENOENT' ? 'file not found' : `cannot read (${(error as Error).message})`}`,
      code === 'ENOENT' ? 'E_NOENT' : 'E_READ',
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(`${path}: invalid JSON (${(error as Error).message})`, 'E_CONFIG');
  }
}

export interface QwenEncoderSource {
  /** The family; required with a bare .onnx path, checked against the config's otherwise. */
  family?: QwenFamily | string;
  /** An .onnx file, a model directory with vtc-encoder.json, or a .json config file. */
  model: string;
}

/**
 * Resolves where a Qwen tower comes from: an .onnx file (+ family), a
 * directory holding vtc-encoder.json, or a .json file; the config's `model`
 * is relative to the config's folder.
 *
 * @example
 * const config = await readQwenConfig({ family: 'qwen2.5-vl', model: 'models/qwen25/vision_encoder.onnx' });
 */
export async function readQwenConfig(source: QwenEncoderSource): Promise<QwenEncoderConfig> {
  const { model } = source;
  if (source.family !== undefined) qwenFamilySpec(source.family);
  let info;
  try {
    info = await stat(model);
  } catch {
    throw new InputError(
      `${model}: not found (expected an .onnx file, a model directory with ${ENCODER_CONFIG_FILE}, or a .json config)`,
      'E_NOENT',
    );
  }
  let config: QwenEncoderConfig;
  let explicit: Record<string, unknown> = {};
  if (info.isFile() && extname(model).toLowerCase() === '.onnx') {
    if (source.family === undefined)
      throw new UsageError(`${model}: a bare .onnx tower needs its family (qwen2.5-vl or qwen3-vl)`, 'E_FAMILY');
    config = resolveQwenConfig({ family: source.family, model: basename(model) }, model);
    config.model = model;
  } else {
    const configPath = info.isDirectory() ? join(model, ENCODER_CONFIG_FILE) : model;
    if (!info.isDirectory() && extname(model).toLowerCase() !== '.json')
      throw new UsageError(`${model}: expected an .onnx file, a model directory or a .json config`, 'E_FORMAT');
    const raw = await readJson(configPath);
    if (typeof raw === 'object' && raw !== null) explicit = raw as Record<string, unknown>;
    if (source.family !== undefined && !('family' in explicit)) explicit.family = source.family;
    config = resolveQwenConfig(raw, configPath);
    if (source.family !== undefined && config.family !== source.family)
      throw new UsageError(
        `${configPath}: the config is for ${config.family}, but ${source.family} was asked for`,
        'E_FAMILY',
      );
    config.model = resolve(dirname(configPath), config.model);
  }
  await applyProcessorConfigs(config, explicit);
  return config;
}

/** The processor files a Hugging Face repo ships; `vtc models pull` fetches them with the .onnx files. */
export const PROCESSOR_CONFIG_FILES = {
  image: 'preprocessor_config.json',
  video: 'video_preprocessor_config.json',
} as const;

/**
 * Takes smart_resize bounds and mean/std from the checkpoint's own processor
 * files when they sit beside the tower (its folder or the folder above, as in
 * a repo with onnx/…): `min_pixels`/`max_pixels` (else `size.shortest_edge` /
 * `size.longest_edge`), `image_mean`/`image_std`. Fields set in the vtc config
 * win. Patch, merge and temporal sizes must agree with the family.
 */
async function applyProcessorConfigs(config: QwenEncoderConfig, explicit: Record<string, unknown>): Promise<void> {
  const spec = qwenFamilySpec(config.family);
  const folders = [dirname(config.model), dirname(dirname(config.model))];
  for (const kind of ['image', 'video'] as const) {
    let path: string | undefined;
    for (const folder of folders) {
      const candidate = join(folder, PROCESSOR_CONFIG_FILES[kind]);
      if (
        await stat(candidate).then(
          (s) => s.isFile(),
          () => false,
        )
      ) {
        path = candidate;
        break;
      }
    }
    if (!path) continue;
    const raw = await readJson(path);
    if (typeof raw !== 'object' || raw === null) throw new InputError(`${path}: expected a JSON object`, 'E_CONFIG');
    const facts = raw as Record<string, unknown>;
    for (const [key, expected] of [
      ['patch_size', spec.patchSize],
      ['merge_size', spec.mergeSize],
      ['temporal_patch_size', spec.temporalPatchSize],
    ] as const) {
      if (facts[key] !== undefined && facts[key] !== expected)
        throw new InputError(
          `${path}: ${key} is ${JSON.stringify(facts[key])}, but ${config.family} uses ${expected}; is this the right checkpoint?`,
          'E_CONFIG',
        );
    }
    const size = (typeof facts.size === 'object' && facts.size !== null ? facts.size : {}) as Record<string, unknown>;
    const bound = (value: unknown, field: string): number | undefined => {
      if (value === undefined || value === null) return undefined;
      if (!(typeof value === 'number' && Number.isInteger(value) && value > 0))
        throw new InputError(`${path}: ${field} must be a positive integer, got ${JSON.stringify(value)}`, 'E_CONFIG');
      return value;
    };
    const minPixels = bound(
      facts.min_pixels ?? size.shortest_edge,
      facts.min_pixels !== undefined ? 'min_pixels' : 'size.shortest_edge',
    );
    const maxPixels = bound(
      facts.max_pixels ?? size.longest_edge,
      facts.max_pixels !== undefined ? 'max_pixels' : 'size.longest_edge',
    );
    const [minKey, maxKey] = kind === 'image' ? ['minPixels', 'maxPixels'] : ['videoMinPixels', 'videoMaxPixels'];
    if (minPixels !== undefined && explicit[minKey] === undefined) config[kind].minPixels = minPixels;
    if (maxPixels !== undefined && explicit[maxKey] === undefined) config[kind].maxPixels = maxPixels;
    if (
      kind === 'image' &&
      explicit.normalization === undefined &&
      Array.isArray(facts.image_mean) &&
      Array.isArray(facts.image_std)
    ) {
      try {
        config.normalization = resolveNormalization({
          mean: facts.image_mean as Normalization['mean'],
          std: facts.image_std as Normalization['std'],
        });
      } catch (error) {
        throw new InputError(`${path}: image_mean/image_std: ${(error as Error).message}`, 'E_CONFIG');
      }
    }
    config.processorConfigs.push(path);
  }
}

/**
 * True when `path` is a model directory or .json file whose config names a Qwen family.
 *
 * @example
 * await isQwenModel('models/qwen3-vl-2b'); // true when its vtc-encoder.json has "family"
 */
export async function isQwenModel(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    const configPath = info.isDirectory()
      ? join(path, ENCODER_CONFIG_FILE)
      : extname(path).toLowerCase() === '.json'
        ? path
        : undefined;
    if (!configPath) return false;
    const raw = JSON.parse(await readFile(configPath, 'utf8')) as unknown;
    return typeof raw === 'object' && raw !== null && typeof (raw as Record<string, unknown>).family === 'string';
  } catch {
    return false;
  }
}

/** The tower's output for one image or clip, in raster order of the merged grid. */
export interface QwenTowerOutput {
  grid: GridThw;
  /** t·(h/2)·(w/2) tokens. */
  n: number;
  dim: number;
  /** [n, dim] merged features, raster order (temporal patch, row, col). */
  features: Float32Array;
  /** Qwen3-VL DeepStack features, each [n, dim], same order. */
  deepstack: Float32Array[];
  /** Per-token scores (attention received, or −cos to the temporal patch's mean). */
  scores: Float32Array;
  scoreRule: 'attention-received' | 'negative-cosine-to-mean';
}

export interface QwenEncoder {
  readonly name: string;
  readonly family: QwenFamily;
  readonly spec: QwenFamilySpec;
  readonly config: QwenEncoderConfig;
  /** Runs the tower on preprocessed patches (any grid the processor can produce). */
  encodePatches(patches: QwenPatches, onChunk?: (done: number, total: number) => void): Promise<QwenTowerOutput>;
  /** Image → TokenSet (one source, positions (0, row, col), DeepStack in `extra`). */
  encodeImage(image: RgbImage, meta?: Record<string, string>): Promise<TokenSet>;
  /** Video frames (same size, in order) with their times in seconds → TokenSet (one source per frame pair). */
  encodeFrames(
    frames: RgbImage[],
    times: number[],
    meta?: Record<string, string>,
    onChunk?: (done: number, total: number) => void,
  ): Promise<TokenSet>;
  dispose(): Promise<void>;
}

export interface QwenEncoderOptions {
  /** onnxruntime intra-op threads (default: onnxruntime's choice). */
  threads?: number;
  /** Temporal patches per run (overrides the config's temporalChunk). */
  temporalChunk?: number;
}

/**
 * Opens a Qwen2.5-VL / Qwen3-VL ONNX tower.
 *
 * @example
 * const encoder = await loadQwenEncoder({ family: 'qwen2.5-vl', model: 'models/qwen25-3b/vision_encoder.onnx' });
 * const tokens = await encoder.encodeImage(rgb); // n = (h/28)·(w/28), positions (0, row, col)
 * await encoder.dispose();
 */
export async function loadQwenEncoder(
  source: QwenEncoderSource,
  options: QwenEncoderOptions = {},
): Promise<QwenEncoder> {
  const config = await readQwenConfig(source);
  if (options.temporalChunk !== undefined) {
    config.temporalChunk = checkInteger(options.temporalChunk, 'temporalChunk', { min: 1, code: 'E_RANGE' });
  }
  if (options.threads !== undefined) checkInteger(options.threads, 'threads', { min: 0, code: 'E_RANGE' });
  const modelPath = config.model;
  try {
    await stat(modelPath);
  } catch {
    throw new InputError(`${modelPath}: model file not found`, 'E_NOENT');
  }
  return createQwenEncoderFromSession(await openOnnxSession(modelPath, options.threads), config, modelPath);
}

function createQwenEncoderFromSession(
  session: ort.InferenceSession,
  config: QwenEncoderConfig,
  modelPath: string,
): QwenEncoder {
  const spec = qwenFamilySpec(config.family);
  const inputs = session.inputNames;
  if (!inputs.includes(config.pixelInput))
    throw new InputError(
      `${modelPath}: no input named ${JSON.stringify(config.pixelInput)} (inputs: ${inputs.join(', ')})`,
      'E_MODEL',
    );
  const gridInput = config.gridInput ?? ['image_grid_thw', 'grid_thw'].find((name) => inputs.includes(name));
  if (!gridInput || !inputs.includes(gridInput)) {
    throw new InputError(
      `${modelPath}: no grid input ${config.gridInput ? JSON.stringify(config.gridInput) : '(image_grid_thw or grid_thw)'} (inputs: ${inputs.join(', ')}); set "gridInput"`,
      'E_MODEL',
    );
  }
  const pixelType = declaredType(session, config.pixelInput);
  if (pixelType !== 'float32' && pixelType !== 'float16')
    throw new InputError(
      `${modelPath}: input ${config.pixelInput} is ${pixelType}; expected float32 or float16 patches`,
      'E_MODEL',
    );
  const wanted = [config.features, ...(config.deepstack ?? []), ...(config.attention ? [config.attention] : [])];
  for (const name of wanted) {
    if (!session.outputNames.includes(name))
      throw new InputError(
        `${modelPath}: no output named ${JSON.stringify(name)} (outputs: ${session.outputNames.join(', ')})`,
        'E_MODEL',
      );
  }
  const unit = spec.mergeSize * spec.mergeSize;

  /** One run over `rows` patches of grid [t, h, w]; returns raster-ordered outputs. */
  async function runChunk(
    pixels: Float32Array,
    grid: GridThw,
  ): Promise<{ features: Float32Array; deepstack: Float32Array[]; dim: number; attentionScores?: Float32Array }> {
    const [t, h, w] = grid;
    const patches = t * h * w;
    const tokens = patches / unit;
    const patchDim = pixels.length / patches;
    const dims = [patches, patchDim];
    const pixelTensor =
      pixelType === 'float16'
        ? new ort.Tensor('float16', Uint16Array.from(pixels, floatToHalf), dims)
        : new ort.Tensor('float32', pixels as Float32Array<ArrayBuffer>, dims);
    const gridTensor = new ort.Tensor(
      'int64',
      BigInt64Array.from(grid, (v) => BigInt(v)),
      [1, 3],
    );
    let raw: ort.InferenceSession.OnnxValueMapType;
    try {
      raw = await session.run({ [config.pixelInput]: pixelTensor, [gridInput!]: gridTensor }, wanted);
    } catch (error) {
      throw new InputError(
        `${modelPath}: inference failed for grid [${grid.join(', ')}] (${String((error as Error).message).split('\n')[0]})`,
        'E_MODEL',
      );
    }
    const rowsOf = (name: string): { data: Float32Array; width: number } => {
      const tensor = asFloat32(raw[name]!, name, modelPath);
      const shape = tensor.dims as number[];
      const lead = shape.length === 3 && shape[0] === 1 ? shape.slice(1) : shape;
      if (lead.length !== 2 || lead[0] !== tokens) {
        throw new ShapeError(
          `${modelPath}: output ${name} has shape [${shape.join(', ')}], expected [${tokens}, D] (grid [${grid.join(', ')}]: t·h·w/${unit} = ${tokens} merged tokens)`,
        );
      }
      return { data: tensor.data as Float32Array, width: lead[1]! };
    };
    const main = rowsOf(config.features);
    let dim = main.width;
    let features = main.data;
    let deepstack: Float32Array[] = [];
    if (config.deepstackConcat) {
      const parts = config.deepstackConcat + 1;
      if (main.width % parts !== 0)
        throw new ShapeError(
          `${modelPath}: output ${config.features} has ${main.width} columns, not divisible into main + ${config.deepstackConcat} DeepStack parts (deepstackConcat)`,
        );
      dim = main.width / parts;
      const split = Array.from({ length: parts }, () => new Float32Array(tokens * dim));
      for (let i = 0; i < tokens; i++)
        for (let p = 0; p < parts; p++)
          split[p]!.set(main.data.subarray(i * main.width + p * dim, i * main.width + (p + 1) * dim), i * dim);
      features = split[0]!;
      deepstack = split.slice(1);
    } else if (config.deepstack) {
      deepstack = config.deepstack.map((name) => {
        const part = rowsOf(name);
        if (part.width !== dim)
          throw new ShapeError(
            `${modelPath}: DeepStack output ${name} has ${part.width} columns, expected ${dim} like ${config.features}`,
          );
        return Float32Array.from(part.data);
      });
    }
    features = Float32Array.from(features);
    let windowIndex: Int32Array | undefined;
    const needWindow =
      config.outputOrder === 'window' || (config.attention !== undefined && config.attentionOrder === 'window');
    if (needWindow)
      windowIndex = qwenWindowIndex([grid], {
        windowSize: config.windowSize,
        patchSize: spec.patchSize,
        mergeSize: spec.mergeSize,
      }).windowIndex;
    if (config.outputOrder === 'window') {
      features = unpermuteRows(features, windowIndex!, dim);
      deepstack = deepstack.map((part) => unpermuteRows(part, windowIndex!, dim));
    }
    const out: { features: Float32Array; deepstack: Float32Array[]; dim: number; attentionScores?: Float32Array } = {
      features,
      deepstack,
      dim,
    };
    if (config.attention) {
      const attention = asFloat32(raw[config.attention]!, config.attention, modelPath);
      out.attentionScores = attentionReceived(
        attention,
        grid,
        config.attentionKind,
        config.attentionOrder === 'window' ? windowIndex! : undefined,
        unit,
        `${modelPath}: output ${config.attention}`,
      );
    }
    return out;
  }

  async function encodePatches(
    patches: QwenPatches,
    onChunk?: (done: number, total: number) => void,
  ): Promise<QwenTowerOutput> {
    const rows = patches.pixelValues.length / patches.patchDim;
    if (!Number.isInteger(rows) || patches.patchDim !== 3 * spec.temporalPatchSize * spec.patchSize * spec.patchSize) {
      throw new ShapeError(
        `pixel_values: rows of ${patches.patchDim} values, expected 3·${spec.temporalPatchSize}·${spec.patchSize}·${spec.patchSize} = ${3 * spec.temporalPatchSize * spec.patchSize * spec.patchSize} for ${config.family}`,
      );
    }
    const [t, h, w] = checkGrid(patches.grid, rows, spec, gridInput);
    const perFrame = h * w;
    const tokensPerFrame = perFrame / unit;
    const n = t * tokensPerFrame;
    let features: Float32Array | undefined;
    let deepstack: Float32Array[] = [];
    const scores = new Float32Array(n);
    let dim = 0;
    for (let t0 = 0; t0 < t; t0 += config.temporalChunk) {
      const count = Math.min(config.temporalChunk, t - t0);
      const pixels = patches.pixelValues.subarray(
        t0 * perFrame * patches.patchDim,
        (t0 + count) * perFrame * patches.patchDim,
      );
      const chunk = await runChunk(pixels, [count, h, w]);
      if (!features) {
        dim = chunk.dim;
        features = new Float32Array(n * dim);
        deepstack = chunk.deepstack.map(() => new Float32Array(n * dim));
      } else if (chunk.dim !== dim) {
        throw new ShapeError(`${modelPath}: output width changed from ${dim} to ${chunk.dim} between runs`);
      }
      const at = t0 * tokensPerFrame;
      features.set(chunk.features, at * dim);
      chunk.deepstack.forEach((part, k) => deepstack[k]!.set(part, at * dim));
      for (let f = 0; f < count; f++) {
        const from = at + f * tokensPerFrame;
        const frameScores = chunk.attentionScores
          ? chunk.attentionScores.subarray(f * tokensPerFrame, (f + 1) * tokensPerFrame)
          : negativeCosineToMean(
              chunk.features.subarray(f * tokensPerFrame * dim, (f + 1) * tokensPerFrame * dim),
              tokensPerFrame,
              dim,
            );
        scores.set(frameScores, from);
      }
      onChunk?.(t0 + count, t);
    }
    return {
      grid: [t, h, w],
      n,
      dim,
      features: features!,
      deepstack,
      scores,
      scoreRule: config.attention ? 'attention-received' : 'negative-cosine-to-mean',
    };
  }

  const preprocessOptions = (kind: 'image' | 'video') => ({ ...config[kind], normalization: config.normalization });

  return {
    name: config.name,
    family: config.family,
    spec,
    config,
    encodePatches,
    async encodeImage(image: RgbImage, meta: Record<string, string> = {}): Promise<TokenSet> {
      const pre = await preprocessQwenImage(image, config.family, preprocessOptions('image'));
      const out = await encodePatches(pre);
      return qwenTokenSet(out, pre, {
        kind: 'image',
        encoder: config.name,
        family: config.family,
        temporalPatchSize: spec.temporalPatchSize,
        originalWidth: image.width,
        originalHeight: image.height,
        meta,
      });
    },
    async encodeFrames(
      frames: RgbImage[],
      times: number[],
      meta: Record<string, string> = {},
      onChunk?: (done: number, total: number) => void,
    ): Promise<TokenSet> {
      if (times.length !== frames.length)
        throw new ShapeError(`${config.family} video: ${frames.length} frames but ${times.length} timestamps`);
      const pre = await preprocessQwenVideo(frames, config.family, preprocessOptions('video'));
      const out = await encodePatches(pre, onChunk);
      return qwenTokenSet(out, pre, {
        kind: 'video',
        encoder: config.name,
        family: config.family,
        temporalPatchSize: spec.temporalPatchSize,
        originalWidth: frames[0]!.width,
        originalHeight: frames[0]!.height,
        times,
        meta,
      });
    },
    async dispose() {
      await session.release();
    },
  };
}

/** rows[s] is unit windowIndex[s] → raster rows. */
function unpermuteRows(rows: Float32Array, windowIndex: Int32Array, dim: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let s = 0; s < windowIndex.length; s++) out.set(rows.subarray(s * dim, (s + 1) * dim), windowIndex[s]! * dim);
  return out;
}

/**
 * Attention received per merged token: head-averaged probabilities summed
 * over the queries of the same temporal patch (the only ones a block attends
 * to), summed over the token's `unit` patches. Sequence position s maps to
 * processor patch windowIndex[⌊s/unit⌋]·unit + s mod unit in window order.
 */
function attentionReceived(
  attention: ort.Tensor,
  grid: GridThw,
  kind: 'logits' | 'probs',
  windowIndex: Int32Array | undefined,
  unit: number,
  where: string,
): Float32Array {
  const [t, h, w] = grid;
  const patches = t * h * w;
  const shape = attention.dims as number[];
  const core = shape.length === 4 && shape[0] === 1 ? shape.slice(1) : shape.length === 2 ? [1, ...shape] : shape;
  if (core.length !== 3 || core[1] !== patches || core[2] !== patches)
    throw new ShapeError(
      `${where} has shape [${shape.join(', ')}], expected [heads, ${patches}, ${patches}] (or [1, heads, N, N] / [N, N]) for grid [${grid.join(', ')}]`,
    );
  const heads = core[0]!;
  const data = attention.data as Float32Array;
  const perFrame = h * w;
  const received = new Float64Array(patches);
  const row = new Float64Array(perFrame);
  for (let hd = 0; hd < heads; hd++) {
    for (let f = 0; f < t; f++) {
      const start = f * perFrame;
      for (let i = start; i < start + perFrame; i++) {
        const base = (hd * patches + i) * patches + start;
        if (kind === 'probs') {
          for (let j = 0; j < perFrame; j++) received[start + j]! += data[base + j]!;
          continue;
        }
        // Logits: the block's softmax runs only over its temporal patch (cu_seqlens).
        let max = -Infinity;
        for (let j = 0; j < perFrame; j++) if (data[base + j]! > max) max = data[base + j]!;
        let z = 0;
        for (let j = 0; j < perFrame; j++) z += row[j] = Math.exp(data[base + j]! - max);
        for (let j = 0; j < perFrame; j++) received[start + j]! += row[j]! / z;
      }
    }
  }
  const scores = new Float32Array(patches / unit);
  for (let s = 0; s < patches; s++) {
    const processorPatch = windowIndex ? windowIndex[Math.floor(s / unit)]! * unit + (s % unit) : s;
    scores[Math.floor(processorPatch / unit)]! += received[s]! / heads;
  }
  return scores;
}

interface TokenSetFacts {
  kind: 'image' | 'video';
  encoder: string;
  family: QwenFamily;
  temporalPatchSize: number;
  originalWidth: number;
  originalHeight: number;
  times?: number[];
  meta: Record<string, string>;
}

/**
 * Tower output → TokenSet: one source per temporal patch ('image', or
 * 'frame' with the mean time of its frame pair, as Qwen3-VL's processor
 * stamps a pair), rows/cols in the merged grid, raster order, positions
 * (t, h, w) and DeepStack tensors as extra.deepstack_k (n × D each).
 */
function qwenTokenSet(out: QwenTowerOutput, pre: QwenPreprocessed, facts: TokenSetFacts): TokenSet {
  const [t, h, w] = out.grid;
  const rows = h / 2;
  const cols = w / 2;
  const perFrame = rows * cols;
  const temporal = facts.temporalPatchSize;
  const sources: TokenSource[] = [];
  for (let f = 0; f < t; f++) {
    if (facts.kind === 'image') sources.push({ kind: 'image', index: 0, rows, cols });
    else {
      const times = facts.times!;
      const first = times[Math.min(f * temporal, times.length - 1)]!;
      const last = times[Math.min(f * temporal + temporal - 1, times.length - 1)]!;
      sources.push({ kind: 'frame', index: f, rows, cols, time: (first + last) / 2 });
    }
  }
  const source = new Int32Array(out.n);
  const row = new Int32Array(out.n);
  const col = new Int32Array(out.n);
  // (t, h, w) in merged-grid units: t = temporal patch (0 for an image), as get_rope_index counts them.
  const positions = new Int32Array(3 * out.n);
  for (let i = 0; i < out.n; i++) {
    const local = i % perFrame;
    source[i] = Math.floor(i / perFrame);
    row[i] = Math.floor(local / cols);
    col[i] = local % cols;
    positions[3 * i] = source[i]!;
    positions[3 * i + 1] = row[i]!;
    positions[3 * i + 2] = col[i]!;
  }
  const extra: Record<string, Float32Array> = {};
  out.deepstack.forEach((values, k) => (extra[`deepstack_${k}`] = values));
  const gridKey = facts.kind === 'image' ? 'image_grid_thw' : 'video_grid_thw';
  const meta: Record<string, string> = {
    ...facts.meta,
    encoder: facts.encoder,
    family: facts.family,
    [gridKey]: out.grid.join(','),
    resized_size: `${pre.width},${pre.height}`,
    original_size: `${facts.originalWidth},${facts.originalHeight}`,
    score_rule: out.scoreRule,
  };
  if (facts.kind === 'video') meta.frames = String(pre.frames);
  return createTokenSet({
    data: out.features,
    n: out.n,
    d: out.dim,
    sources,
    source,
    row,
    col,
    score: out.scores,
    positions,
    ...(out.deepstack.length > 0 ? { extra } : {}),
    meta,
  });
}

export interface EncodeQwenImageOptions {
  encoder: QwenEncoder;
  /** Pixel limit for decoding (decompression-bomb guard). */
  maxPixels?: number;
}

/**
 * Decodes and encodes one image with a Qwen tower.
 *
 * @example
 * const tokens = await encodeQwenImage('photo.jpg', { encoder }); // meta.image_grid_thw = '1,34,46'
 */
export async function encodeQwenImage(
  input: string | Uint8Array | RgbImage,
  options: EncodeQwenImageOptions,
): Promise<TokenSet> {
  const image =
    typeof input === 'object' && !(input instanceof Uint8Array)
      ? input
      : await readImage(input, options.maxPixels === undefined ? {} : { maxPixels: options.maxPixels });
  return options.encoder.encodeImage(image, typeof input === 'string' ? { input } : {});
}

export interface EncodeQwenVideoOptions {
  encoder: QwenEncoder;
  /** Sampling rate (default 2, the Qwen video processors' fps). */
  fps?: number;
  /** Frame cap (default 64); the rate drops so the cap still spans the whole video. */
  maxFrames?: number;
  /** Also detect scene changes (ffmpeg scene score above this, in (0, 1)); their times go to meta.scene_changes. */
  sceneThreshold?: number;
  /** Called after each run of temporal patches (done, total). */
  onChunk?: (done: number, total: number) => void;
}

/**
 * Samples a video with ffmpeg at its own size and encodes the frames as one
 * Qwen clip (pairs of frames per temporal patch).
 *
 * @example
 * const tokens = await encodeQwenVideo('clip.mp4', { encoder, fps: 2, maxFrames: 16 }); // meta.video_grid_thw = '8,…'
 */
export async function encodeQwenVideo(path: string, options: EncodeQwenVideoOptions): Promise<TokenSet> {
  const fps = options.fps ?? 2;
  const maxFrames = options.maxFrames ?? 64;
  const { info, frames } = await readFrames(path, { fps, maxFrames });
  if (frames.length === 0) throw new InputError(`${path}: no frames decoded`, 'E_FRAMES');
  // The rate actually sampled (lower than asked when maxFrames caps a long video): seconds per grid = 2 / fps.
  const meta: Record<string, string> = { video: path, fps: String(effectiveFps(info.duration, fps, maxFrames)) };
  if (options.sceneThreshold !== undefined)
    meta.scene_changes = (await sceneChanges(path, options.sceneThreshold)).join(',');
  return options.encoder.encodeFrames(
    frames.map((f) => f.image),
    frames.map((f) => f.time),
    meta,
    options.onChunk,
  );
}
