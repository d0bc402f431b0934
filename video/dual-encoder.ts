import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from '../core/ort.js';
import { z } from 'zod';
import { InputError } from '../core/errors.js';
import { resizeExact } from '../encoders/image.js';
import type { RgbImage } from '../encoders/types.js';
import { loadHfTokenizer, type HfTokenizer } from '../tokenizer/index.js';
import { parseFile } from '../core/schema.js';

/**
 * A CLIP-style text–image dual encoder from a directory:
 *
 *   dual.json        { "vision": "vision.onnx", "text": "text.onnx", "tokenizer": "tokenizer.json",
 *                      "image_size": 224, "mean": [..3], "std": [..3], "context_length": 77, "pad_id": 0,
 *                      "vision_output"?: name, "text_output"?: name }
 *   vision.onnx      pixel_values float32 [N, 3, S, S] → image embeddings [N, D]
 *   text.onnx        input_ids int64 [1, L] (+ attention_mask when the model has it) → text embedding [1, D]
 *   tokenizer.json   Hugging Face tokenizer (tokenizer/: @huggingface/tokenizers; tokenizer_config.json beside it is read too)
 *
 * Embeddings come back L2-normalised, so a dot product is the cosine.
 */

const configSchema = z.object({
  vision: z.string().default('vision.onnx'),
  text: z.string().default('text.onnx'),
  tokenizer: z.string().default('tokenizer.json'),
  image_size: z.number().int().positive(),
  mean: z.array(z.number()).length(3).default([0.48145466, 0.4578275, 0.40821073]),
  std: z.array(z.number().positive()).length(3).default([0.26862954, 0.26130258, 0.27577711]),
  context_length: z.number().int().positive().default(77),
  pad_id: z.number().int().nonnegative().default(0),
  vision_output: z.string().optional(),
  text_output: z.string().optional(),
});

export type DualEncoderConfig = z.input<typeof configSchema>;

export interface DualEncoder {
  readonly name: string;
  readonly imageSize: number;
  /** One L2-normalised embedding per image (any size; squash-resized to image_size). */
  embedImages(images: RgbImage[]): Promise<Float32Array[]>;
  /** L2-normalised embedding of a text. */
  embedText(text: string): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/**
 * Copy of v divided by its L2 norm (zero stays zero).
 *
 * @example
 * l2Normalize(Float32Array.of(3, 4)); // Float32Array [0.6, 0.8]
 */
export function l2Normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  return v.map((x) => x * inv);
}

/** NCHW float32 with per-channel (x/255 − mean)/std. */
function toTensorData(images: RgbImage[], mean: number[], std: number[]): Float32Array {
  const side = images[0]!.width;
  const plane = side * side;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((image, n) => {
    const base = n * 3 * plane;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) out[base + c * plane + p] = (image.data[p * 3 + c]! / 255 - mean[c]!) / std[c]!;
    }
  });
  return out;
}

/**
 * Loads a dual encoder directory (see the file comment for its layout).
 *
 * @example
 * const dual = await loadDualEncoder('models/clip-b32-dual');
 * const [frame] = await dual.embedImages([image]);
 * const text = await dual.embedText('a boat on the sea');
 */
export async function loadDualEncoder(dir: string, options: { threads?: number } = {}): Promise<DualEncoder> {
  const configPath = join(dir, 'dual.json');
  if (!existsSync(configPath))
    throw new InputError(
      `dual encoder ${dir}: missing dual.json (expected vision/text ONNX towers, tokenizer.json and dual.json)`,
      'E_DUAL_CONFIG',
    );
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (error) {
    throw new InputError(`dual encoder ${configPath}: invalid config (${(error as Error).message})`, 'E_DUAL_CONFIG');
  }
  const config = parseFile(configSchema, raw, `dual encoder ${configPath}: invalid config`, 'E_DUAL_CONFIG');
  for (const file of [config.vision, config.text, config.tokenizer]) {
    if (!existsSync(join(dir, file))) throw new InputError(`dual encoder ${dir}: missing ${file}`, 'E_DUAL_CONFIG');
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all' };
  if (options.threads) sessionOptions.intraOpNumThreads = options.threads;
  const create = async (file: string) => {
    try {
      return await ort.InferenceSession.create(join(dir, file), sessionOptions);
    } catch (error) {
      throw new InputError(
        `dual encoder ${join(dir, file)}: cannot load ONNX model (${(error as Error).message.split('\n')[0]})`,
        'E_DUAL_MODEL',
      );
    }
  };
  const [vision, text] = await Promise.all([create(config.vision), create(config.text)]);
  const tokenizer = loadHfTokenizer(join(dir, config.tokenizer));
  return createDualEncoder(dir, config, vision, text, tokenizer);
}

function createDualEncoder(
  name: string,
  config: z.output<typeof configSchema>,
  vision: ort.InferenceSession,
  text: ort.InferenceSession,
  tokenizer: HfTokenizer,
): DualEncoder {
  const side = config.image_size;
  const visionInput = vision.inputNames[0]!;
  const visionOutput = config.vision_output ?? vision.outputNames[0]!;
  const idsInput = text.inputNames.find((n) => /input_ids/.test(n)) ?? text.inputNames[0]!;
  const maskInput = text.inputNames.find((n) => /attention_mask/.test(n));
  const textOutput = config.text_output ?? text.outputNames[0]!;
  // Embeddings must be [count, D]; a tower exported with its hidden states first is a config error, not a silent reshape.
  const rows = (tensor: ort.Tensor | undefined, output: string, tower: string, count: number): Float32Array[] => {
    if (!tensor)
      throw new InputError(
        `dual encoder ${name}: the ${tower} tower has no output ${JSON.stringify(output)}`,
        'E_DUAL_MODEL',
      );
    if (tensor.dims.length !== 2 || tensor.dims[0] !== count || tensor.type !== 'float32') {
      throw new InputError(
        `dual encoder ${name}: ${tower} output ${JSON.stringify(output)} is ${tensor.type} [${tensor.dims.join(', ')}], expected float32 [${count}, D] (set "${tower}_output" in dual.json)`,
        'E_DUAL_MODEL',
      );
    }
    const data = tensor.data as Float32Array;
    const dim = tensor.dims[1]!;
    return Array.from({ length: count }, (_, i) => l2Normalize(data.slice(i * dim, (i + 1) * dim)));
  };
  return {
    name,
    imageSize: side,
    async embedImages(images) {
      if (images.length === 0) return [];
      const resized = await Promise.all(images.map((image) => resizeExact(image, side, side)));
      const input = new ort.Tensor('float32', toTensorData(resized, config.mean, config.std), [
        resized.length,
        3,
        side,
        side,
      ]);
      const out = await vision.run({ [visionInput]: input });
      return rows(out[visionOutput], visionOutput, 'vision', images.length);
    },
    async embedText(query) {
      const ids = tokenizer.encodeWithSpecialTokens(query, config.context_length);
      const padded = new BigInt64Array(config.context_length).fill(BigInt(config.pad_id));
      const mask = new BigInt64Array(config.context_length);
      ids.forEach((id, i) => {
        padded[i] = BigInt(id);
        mask[i] = 1n;
      });
      const feeds: Record<string, ort.Tensor> = {
        [idsInput]: new ort.Tensor('int64', padded, [1, config.context_length]),
      };
      if (maskInput) feeds[maskInput] = new ort.Tensor('int64', mask, [1, config.context_length]);
      const out = await text.run(feeds);
      return rows(out[textOutput], textOutput, 'text', 1)[0]!;
    },
    async dispose() {
      await Promise.all([vision.release(), text.release()]);
    },
  };
}
