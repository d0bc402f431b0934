import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import ort from '../core/ort.js';
import { z } from 'zod';
import { InputError, ShapeError, UsageError } from '../core/errors.js';
import { floatToHalf, halfToFloat } from '../core/float16.js';
import { resolveNormalization, toNchw, RESIZE_MODES, type Normalization, type ResizeMode } from './image.js';
import { negativeCosineToMean } from './patch.js';
import type { EncodedTile, RgbImage, VisionEncoder } from './types.js';
import { checkInteger } from '../core/validate.js';
import { parseFile } from '../core/schema.js';

/**
 * ViT-style vision towers exported to ONNX, run with onnxruntime-node.
 *
 * A model directory holds the .onnx file and `vtc-encoder.json`:
 *
 *   {
 *     "preset": "clip-vit-l-14-336",     // optional: fills the fields below
 *     "model": "model.onnx",
 *     "inputSize": 336, "patchSize": 14,
 *     "normalization": "clip",           // or "siglip", "imagenet", {"mean": [..], "std": [..]}
 *     "resize": "shortest",              // squash | shortest | letterbox (plain encodeImage)
 *     "features": "features",            // output [B, T, D]: e.g. hidden_states[-2]
 *     "hasCls": true,                    // row 0 of the features is the CLS token
 *     "attention": "attention_logits",   // output [B, H, T, T] of the last layer, or …
 *     "attentionKind": "logits",         // … "probs" (softmax output; log is taken)
 *     "query": "q", "key": "k",          // … or q/k outputs [B, T, H·dh] / [B, H, T, dh]
 *     "heads": 16, "scale": 0.125,       // heads (needed for [B, T, H·dh]), scale (default 1/√dh)
 *     "batchSize": 4
 *   }
 *
 * Scores: the CLS row of the last attention *before softmax*, averaged over
 * heads (GlobalCom²). From q/k: s_j = mean_h scale·q_h,CLS·k_h,j. From
 * softmax probabilities: mean_h log p_h,CLS→j, which equals the pre-softmax
 * average minus a per-tile constant (the log-partition), so rankings agree.
 * Without CLS (SigLIP): s_i = −cos(x_i, mean).
 */

export const ENCODER_CONFIG_FILE = 'vtc-encoder.json';

/** Facts about well-known towers (output names still come from the export). */
export const ONNX_ENCODER_PRESETS = Object.freeze({
  'clip-vit-l-14-336': {
    inputSize: 336,
    patchSize: 14,
    normalization: 'clip',
    resize: 'shortest',
    hasCls: true,
    heads: 16,
  },
  'clip-vit-b-32': {
    inputSize: 224,
    patchSize: 32,
    normalization: 'clip',
    resize: 'shortest',
    hasCls: true,
    heads: 12,
  },
  'siglip-so400m-384': {
    inputSize: 384,
    patchSize: 14,
    normalization: 'siglip',
    resize: 'squash',
    hasCls: false,
    heads: 16,
  },
} as const);

export type OnnxEncoderPreset = keyof typeof ONNX_ENCODER_PRESETS;

const triple = z.tuple([z.number(), z.number(), z.number()]);
/** A normalisation preset name or explicit per-channel constants, as config files give them. */
export const normalizationSchema = z.union([
  z.enum(['clip', 'siglip', 'imagenet']),
  z.object({ mean: triple, std: triple }),
]);
const configSchema = z
  .object({
    name: z.string().min(1).optional(),
    preset: z.enum(Object.keys(ONNX_ENCODER_PRESETS) as [OnnxEncoderPreset, ...OnnxEncoderPreset[]]).optional(),
    model: z.string().min(1).default('model.onnx'),
    inputName: z.string().min(1).optional(),
    inputSize: z.number().int().positive().optional(),
    patchSize: z.number().int().positive().optional(),
    normalization: normalizationSchema.optional(),
    resize: z.enum(RESIZE_MODES as unknown as [ResizeMode, ...ResizeMode[]]).optional(),
    features: z.string().min(1).default('features'),
    hasCls: z.boolean().optional(),
    attention: z.string().min(1).optional(),
    attentionKind: z.enum(['logits', 'probs']).default('logits'),
    query: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    heads: z.number().int().positive().optional(),
    scale: z.number().positive().optional(),
    batchSize: z.number().int().positive().default(4),
  })
  .strict();

export type OnnxEncoderConfigInput = z.input<typeof configSchema>;

/** A validated configuration with every field resolved. */
export interface OnnxEncoderConfig {
  name: string;
  model: string;
  inputName?: string;
  inputSize: number;
  patchSize: number;
  normalization: Normalization;
  resize: ResizeMode;
  features: string;
  hasCls: boolean;
  attention?: string;
  attentionKind: 'logits' | 'probs';
  query?: string;
  key?: string;
  heads?: number;
  scale?: number;
  batchSize: number;
}

/**
 * Validates a raw config (as parsed from vtc-encoder.json), applying the preset.
 *
 * @example
 * resolveOnnxConfig({ preset: 'siglip-so400m-384', features: 'last_hidden_state' }).hasCls; // false
 */
export function resolveOnnxConfig(raw: unknown, where = ENCODER_CONFIG_FILE): OnnxEncoderConfig {
  const c = parseConfig(configSchema, raw, where);
  const preset = c.preset ? ONNX_ENCODER_PRESETS[c.preset] : undefined;
  const inputSize = c.inputSize ?? preset?.inputSize;
  const patchSize = c.patchSize ?? preset?.patchSize;
  if (inputSize === undefined || patchSize === undefined)
    throw new InputError(
      `${where}: give inputSize and patchSize (or a preset: ${Object.keys(ONNX_ENCODER_PRESETS).join(', ')})`,
      'E_CONFIG',
    );
  if (inputSize < patchSize)
    throw new InputError(`${where}: inputSize ${inputSize} is smaller than patchSize ${patchSize}`, 'E_CONFIG');
  const hasCls = c.hasCls ?? preset?.hasCls ?? true;
  if (c.attention && (c.query || c.key))
    throw new InputError(`${where}: give either "attention" or "query"+"key", not both`, 'E_CONFIG');
  if ((c.query === undefined) !== (c.key === undefined))
    throw new InputError(`${where}: "query" and "key" go together (got only ${c.query ? 'query' : 'key'})`, 'E_CONFIG');
  if (!hasCls && (c.attention || c.query))
    throw new InputError(`${where}: attention/query/key outputs need a CLS token, but hasCls is false`, 'E_CONFIG');
  const config: OnnxEncoderConfig = {
    name: c.name ?? c.preset ?? 'onnx',
    model: c.model,
    inputSize,
    patchSize,
    normalization: resolveNormalization(c.normalization ?? preset?.normalization ?? 'clip'),
    resize: c.resize ?? preset?.resize ?? 'squash',
    features: c.features,
    hasCls,
    attentionKind: c.attentionKind,
    batchSize: c.batchSize,
  };
  if (c.inputName) config.inputName = c.inputName;
  if (c.attention) config.attention = c.attention;
  if (c.query) config.query = c.query;
  if (c.key) config.key = c.key;
  const heads = c.heads ?? preset?.heads;
  if (heads !== undefined) config.heads = heads;
  if (c.scale !== undefined) config.scale = c.scale;
  return config;
}

/** Parses a raw config with a zod schema; the first issue becomes one InputError naming the field (core/validate's parseFile). */
export function parseConfig<T extends z.ZodType>(schema: T, raw: unknown, where: string): z.output<T> {
  return parseFile(schema, raw, where);
}

/**
 * Opens an onnxruntime session (all graph optimisations, `threads` intra-op
 * threads when > 0); a model onnxruntime cannot load is an InputError naming the file.
 */
export async function openOnnxSession(modelPath: string, threads?: number): Promise<ort.InferenceSession> {
  const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all' };
  if (threads) sessionOptions.intraOpNumThreads = threads;
  try {
    return await ort.InferenceSession.create(modelPath, sessionOptions);
  } catch (error) {
    throw new InputError(
      `${modelPath}: onnxruntime cannot load the model (${String((error as Error).message).split('\n')[0]})`,
      'E_MODEL',
    );
  }
}

/**
 * Reads and validates `<dir>/vtc-encoder.json`.
 *
 * @example
 * const config = await readOnnxConfig('models/clip-l-336'); // config.inputSize === 336
 */
export async function readOnnxConfig(dir: string): Promise<OnnxEncoderConfig> {
  const path = join(dir, ENCODER_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      let isDir = false;
      try {
        isDir = (await stat(dir)).isDirectory();
      } catch {
        throw new InputError(
          `${dir}: encoder not found (expected "patch" or a model directory containing ${ENCODER_CONFIG_FILE})`,
          'E_NOENT',
        );
      }
      throw new InputError(
        `${dir}: ${isDir ? `model directory has no ${ENCODER_CONFIG_FILE}` : `is not a directory; expected a model directory with ${ENCODER_CONFIG_FILE}`}`,
        'E_CONFIG',
      );
    }
    throw new InputError(`${path}: cannot read (${(error as Error).message})`, 'E_READ');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${path}: invalid JSON (${(error as Error).message})`, 'E_CONFIG');
  }
  return resolveOnnxConfig(raw, path);
}

export interface OnnxEncoderOptions {
  /** onnxruntime intra-op threads (default: onnxruntime's choice = all cores). */
  threads?: number;
  /** Override the config's batch size. */
  batchSize?: number;
}

/**
 * Loads an ONNX vision tower from a model directory.
 *
 * @example
 * const encoder = await createOnnxEncoder('models/clip-vit-l-14-336', { threads: 2 });
 * const tiles = await encoder.encode([tile336]); // tiles[0].scores = pre-softmax CLS row
 * await encoder.dispose();
 */
export async function createOnnxEncoder(
  dir: string,
  options: OnnxEncoderOptions = {},
): Promise<VisionEncoder & { config: OnnxEncoderConfig }> {
  const config = await readOnnxConfig(dir);
  if (options.batchSize !== undefined) {
    checkInteger(options.batchSize, 'batchSize (--batch-size)', { min: 1, code: 'E_RANGE' });
    config.batchSize = options.batchSize;
  }
  if (options.threads !== undefined) checkInteger(options.threads, 'threads', { min: 0, code: 'E_RANGE' });
  const modelPath = join(dir, config.model);
  try {
    await stat(modelPath);
  } catch {
    throw new InputError(
      `${modelPath}: model file not found (named by "model" in ${join(dir, ENCODER_CONFIG_FILE)})`,
      'E_NOENT',
    );
  }
  const session = await openOnnxSession(modelPath, options.threads);
  const inputName = config.inputName ?? session.inputNames[0]!;
  if (!session.inputNames.includes(inputName))
    throw new InputError(
      `${modelPath}: no input named ${JSON.stringify(inputName)} (inputs: ${session.inputNames.join(', ')})`,
      'E_MODEL',
    );
  const inputType = declaredType(session, inputName);
  if (inputType !== 'float32' && inputType !== 'float16')
    throw new InputError(
      `${modelPath}: input ${inputName} is ${inputType}; expected float32 or float16 pixels`,
      'E_MODEL',
    );
  const fixedBatch = declaredBatch(session, inputName);
  if (fixedBatch !== undefined && config.batchSize !== fixedBatch) {
    if (options.batchSize !== undefined)
      throw new UsageError(
        `${modelPath}: the model's input ${inputName} has a fixed batch of ${fixedBatch}; batch size ${options.batchSize} is impossible`,
        'E_RANGE',
      );
    config.batchSize = fixedBatch; // exported with a static batch dimension: run tile by tile (or in its batch)
  }
  const wanted = [config.features, config.attention, config.query, config.key].filter(
    (n): n is string => n !== undefined,
  );
  for (const name of wanted) {
    if (!session.outputNames.includes(name))
      throw new InputError(
        `${modelPath}: no output named ${JSON.stringify(name)} (outputs: ${session.outputNames.join(', ')})`,
        'E_MODEL',
      );
  }
  // A strided patch embedding drops the remainder: SigLIP so400m/14 at 384 px sees 27×27 patches.
  const rows = Math.floor(config.inputSize / config.patchSize);
  const clsScores = config.hasCls && (config.attention !== undefined || config.query !== undefined);
  // The feature width when the export declares it; else it is known after the first batch.
  let dim = declaredWidth(session, config.features);

  async function runBatch(images: RgbImage[]): Promise<EncodedTile[]> {
    // A static batch dimension gets a short last batch padded with copies (their outputs are dropped).
    const batch =
      fixedBatch !== undefined && images.length < fixedBatch
        ? [...images, ...new Array<RgbImage>(fixedBatch - images.length).fill(images[0]!)]
        : images;
    const pixels = toNchw(batch, config.normalization);
    const dims = [batch.length, 3, config.inputSize, config.inputSize];
    const tensor =
      inputType === 'float16'
        ? new ort.Tensor('float16', Uint16Array.from(pixels, floatToHalf), dims)
        : new ort.Tensor('float32', pixels as Float32Array<ArrayBuffer>, dims);
    const feeds = { [inputName]: tensor };
    let raw: ort.InferenceSession.OnnxValueMapType;
    try {
      raw = await session.run(feeds, wanted);
    } catch (error) {
      throw new InputError(
        `${modelPath}: inference failed (${String((error as Error).message).split('\n')[0]})`,
        'E_MODEL',
      );
    }
    const out: Record<string, ort.Tensor> = Object.fromEntries(
      wanted.map((name) => [name, asFloat32(raw[name]!, name, modelPath)]),
    );
    const features = out[config.features]!;
    const tokensPerTile = rows * rows + (config.hasCls ? 1 : 0);
    const [b, t, d] = features.dims as number[];
    if (features.dims.length !== 3 || b !== batch.length || t !== tokensPerTile) {
      throw new ShapeError(
        `${modelPath}: output ${config.features} has shape [${features.dims.join(', ')}], expected [${batch.length}, ${tokensPerTile}, D] (${rows}x${rows} patches${config.hasCls ? ' + CLS' : ''})`,
      );
    }
    dim = d!;
    const data = features.data as Float32Array;
    return images.map((_, i) => {
      const tile = data.subarray(i * t! * d!, (i + 1) * t! * d!);
      const patchFeatures = Float32Array.from(config.hasCls ? tile.subarray(d!) : tile);
      const encoded: EncodedTile = { features: patchFeatures, rows, cols: rows, dim: d!, scores: new Float32Array(0) };
      if (config.hasCls) encoded.clsToken = Float32Array.from(tile.subarray(0, d!));
      encoded.scores = clsScores
        ? clsRowScores(out, config, i, t!, modelPath)
        : negativeCosineToMean(patchFeatures, rows * rows, d!);
      return encoded;
    });
  }

  return {
    name: config.name,
    inputSize: config.inputSize,
    patchSize: config.patchSize,
    get dim() {
      return dim;
    },
    hasCls: clsScores,
    get batchSize() {
      return config.batchSize;
    },
    preferredResize: config.resize,
    config,
    async encode(images: RgbImage[]): Promise<EncodedTile[]> {
      for (const [i, image] of images.entries()) {
        if (image.width !== config.inputSize || image.height !== config.inputSize) {
          throw new ShapeError(
            `${config.name}: image ${i} must be ${config.inputSize}x${config.inputSize}, got ${image.width}x${image.height}`,
          );
        }
      }
      const tiles: EncodedTile[] = [];
      for (let start = 0; start < images.length; start += config.batchSize)
        tiles.push(...(await runBatch(images.slice(start, start + config.batchSize))));
      return tiles;
    },
    async dispose() {
      await session.release();
    },
  };
}

export function declaredType(session: ort.InferenceSession, input: string): string {
  const meta = session.inputMetadata?.[session.inputNames.indexOf(input)];
  return meta && meta.isTensor ? meta.type : 'float32';
}

/** float16 outputs (half-precision exports) become float32; other types are refused. */
export function asFloat32(tensor: ort.Tensor, name: string, where: string): ort.Tensor {
  if (tensor.type === 'float32') return tensor;
  if (tensor.type === 'float16')
    return new ort.Tensor('float32', Float32Array.from(tensor.data as Uint16Array, halfToFloat), tensor.dims);
  throw new ShapeError(`${where}: output ${name} is ${tensor.type}; expected float32 or float16`);
}

function declaredBatch(session: ort.InferenceSession, input: string): number | undefined {
  const meta = session.inputMetadata?.[session.inputNames.indexOf(input)];
  const first = meta && meta.isTensor ? meta.shape[0] : undefined;
  return typeof first === 'number' && first > 0 ? first : undefined;
}

function declaredWidth(session: ort.InferenceSession, output: string): number {
  const meta = session.outputMetadata?.[session.outputNames.indexOf(output)];
  const last = meta && meta.isTensor ? meta.shape[meta.shape.length - 1] : undefined;
  return typeof last === 'number' && last > 0 ? last : 0;
}

/**
 * The CLS row of the last attention, averaged over heads, for tile `b` of a
 * batch (length T − 1: the CLS→CLS entry is dropped).
 */
function clsRowScores(
  out: Record<string, ort.Tensor>,
  config: OnnxEncoderConfig,
  b: number,
  tokens: number,
  where: string,
): Float32Array {
  const patches = tokens - 1;
  const scores = new Float32Array(patches);
  if (config.attention) {
    const attention = out[config.attention]!;
    const dims = attention.dims as number[];
    if (dims.length !== 4 || dims[2] !== tokens || dims[3] !== tokens)
      throw new ShapeError(
        `${where}: output ${config.attention} has shape [${dims.join(', ')}], expected [B, heads, ${tokens}, ${tokens}]`,
      );
    const heads = dims[1]!;
    const data = attention.data as Float32Array;
    for (let h = 0; h < heads; h++) {
      const rowStart = ((b * heads + h) * tokens + 0) * tokens;
      for (let j = 0; j < patches; j++) {
        const v = data[rowStart + 1 + j]!;
        scores[j]! += config.attentionKind === 'probs' ? Math.log(Math.max(v, 1e-30)) : v;
      }
    }
    for (let j = 0; j < patches; j++) scores[j]! /= heads;
    return scores;
  }
  const q = out[config.query!]!;
  const k = out[config.key!]!;
  const { heads, headDim, at } = qkLayout(q.dims as number[], config, tokens, where, config.query!);
  const kLayout = qkLayout(k.dims as number[], config, tokens, where, config.key!);
  if (kLayout.heads !== heads || kLayout.headDim !== headDim)
    throw new ShapeError(`${where}: query and key layouts differ ([${q.dims.join(', ')}] vs [${k.dims.join(', ')}])`);
  const scale = config.scale ?? 1 / Math.sqrt(headDim);
  const qd = q.data as Float32Array;
  const kd = k.data as Float32Array;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < patches; j++) {
      let dot = 0;
      for (let e = 0; e < headDim; e++) dot += qd[at(b, h, 0, e)]! * kd[kLayout.at(b, h, 1 + j, e)]!;
      scores[j]! += dot * scale;
    }
  }
  for (let j = 0; j < patches; j++) scores[j]! /= heads;
  return scores;
}

/** Index arithmetic for q/k given as [B, T, H·dh] (heads from config) or [B, H, T, dh]. */
function qkLayout(dims: number[], config: OnnxEncoderConfig, tokens: number, where: string, name: string) {
  if (dims.length === 4) {
    const [, heads, t, headDim] = dims as [number, number, number, number];
    if (t !== tokens)
      throw new ShapeError(
        `${where}: output ${name} has shape [${dims.join(', ')}], expected [B, heads, ${tokens}, head_dim]`,
      );
    return {
      heads,
      headDim,
      at: (b: number, h: number, i: number, e: number) => ((b * heads + h) * tokens + i) * headDim + e,
    };
  }
  if (dims.length === 3) {
    const [, t, width] = dims as [number, number, number];
    if (t !== tokens)
      throw new ShapeError(
        `${where}: output ${name} has shape [${dims.join(', ')}], expected [B, ${tokens}, heads·head_dim]`,
      );
    const heads = config.heads;
    if (!heads)
      throw new InputError(
        `${where}: ${name} is [B, T, ${width}]; set "heads" in ${ENCODER_CONFIG_FILE} to split it`,
        'E_CONFIG',
      );
    if (width % heads !== 0)
      throw new ShapeError(`${where}: ${name} width ${width} is not divisible by heads = ${heads}`);
    const headDim = width / heads;
    return {
      heads,
      headDim,
      at: (b: number, h: number, i: number, e: number) => (b * tokens + i) * width + h * headDim + e,
    };
  }
  throw new ShapeError(`${where}: output ${name} must be [B, T, H·dh] or [B, H, T, dh], got [${dims.join(', ')}]`);
}
