import { freemem } from 'node:os';
import sharp from 'sharp';
import { createWorker, type Worker } from 'tesseract.js';
import { VtcError } from '../core/errors.js';
import { englishDataDir } from '../render/ocr.js';
import type { EvalSample } from './datasets.js';
import type { PreparedInput } from './methods.js';
import { embedsPart, encodeEmbeds, type EmbedsFormat } from './embeds.js';
import { answerFromText } from './ocr-reader.js';
import { chatCompletion, imageDataUrl, type ChatUsage, type ContentPart } from '../client/openai.js';
import { optionLetters } from './scoring.js';
import { checkInteger } from '../core/validate.js';
import { checkEndpointModelOptions } from './run-options.js';

/**
 * Models `vtc eval run` can query: any OpenAI-compatible chat-completions
 * endpoint (images as data URLs, reduced embeddings as vLLM `image_embeds`),
 * or the offline `ocr` reader (tesseract.js) for text-centric tasks.
 */

export interface ModelAnswer {
  text: string;
  usage?: ChatUsage;
}

export interface EvalModel {
  /** Name recorded in the results cache key. */
  name: string;
  answer(sample: EvalSample, input: PreparedInput, signal?: AbortSignal): Promise<ModelAnswer>;
  close(): Promise<void>;
  /** Workers running now (models with a worker pool, e.g. ocr). */
  workers?(): number;
}

/**
 * The prompt for a sample, lmms-eval style: question, lettered options, and
 * an instruction for the answer format.
 *
 * @example
 * buildPrompt({ question: 'Colour?', options: ['red', 'blue'] } as EvalSample);
 * // 'Colour?\nA. red\nB. blue\nAnswer with the option\'s letter from the given choices directly.'
 */
export function buildPrompt(sample: Pick<EvalSample, 'question' | 'options'>): string {
  if (sample.options && sample.options.length > 0) {
    const letters = optionLetters(sample.options.length);
    const lines = sample.options.map((o, i) => `${letters[i]}. ${o}`);
    return `${sample.question}\n${lines.join('\n')}\nAnswer with the option's letter from the given choices directly.`;
  }
  return `${sample.question}\nAnswer the question using a single word or phrase.`;
}

export interface EndpointModelOptions {
  endpoint: string;
  model: string;
  apiKey?: string;
  timeoutMs?: number;
  retries?: number;
  maxTokens?: number;
  temperature?: number;
  extraBody?: Record<string, unknown>;
  /**
   * How `image_embeds` are serialised before base64: 'npy' (NumPy .npy, the
   * default) or 'torch' (torch.save bytes — what stock vLLM decodes, with
   * torch.load, for servers started with --enable-mm-embeds).
   */
  embedsFormat?: EmbedsFormat;
}

// EmbedsFormat, encodeEmbeds and embedsPart live in eval/embeds.ts (no OCR there); exported from here as before.
export { embedsPart, encodeEmbeds, type EmbedsFormat };

/**
 * A model behind an OpenAI-compatible endpoint. Pixel inputs go as
 * `image_url` data URLs; token-level inputs as `image_embeds` parts holding a
 * base64 [n, d] float32 array, .npy or torch.save bytes (vLLM started with
 * --enable-mm-embeds decodes the latter).
 *
 * @example
 * const model = createEndpointModel({ endpoint: 'http://127.0.0.1:8000/v1', model: 'Qwen/Qwen2.5-VL-3B-Instruct' });
 */
export function createEndpointModel(options: EndpointModelOptions): EvalModel {
  checkEndpointModelOptions(options);
  return {
    name: options.model,
    async answer(sample, input, signal) {
      const content: ContentPart[] = [];
      for (const image of input.images)
        content.push({ type: 'image_url', image_url: { url: imageDataUrl(image.bytes, image.mime) } });
      for (const embeds of input.embeds)
        content.push({ type: 'image_embeds', image_embeds: embedsPart(embeds, options.embedsFormat) });
      const prompt = buildPrompt(sample);
      content.push({ type: 'text', text: input.text !== undefined ? `${input.text}\n\n${prompt}` : prompt });
      const result = await chatCompletion({
        endpoint: options.endpoint,
        model: options.model,
        messages: [{ role: 'user', content }],
        apiKey: options.apiKey,
        timeoutMs: options.timeoutMs ?? 120_000,
        retries: options.retries ?? 3,
        maxTokens: options.maxTokens ?? 64,
        temperature: options.temperature ?? 0,
        extraBody: options.extraBody,
        signal,
      });
      return { text: result.text, ...(result.usage ? { usage: result.usage } : {}) };
    },
    async close() {},
  };
}

export interface OcrModelOptions {
  /**
   * Most tesseract.js workers (default 1); each uses about one CPU core and
   * ~{@link OCR_WORKER_BYTES} of memory. Workers start on demand, so a run
   * with fewer parallel jobs than this starts only as many as it needs.
   */
  workers?: number;
  /** Images whose longer side is below this are enlarged (up to 4×) before OCR, as a VLM resizes to its input (default 1600). */
  minSide?: number;
}

/** Memory one tesseract.js worker takes (its WASM heap and English model), a planning figure. */
export const OCR_WORKER_BYTES = 100 * 1024 * 1024;

/**
 * How many OCR workers memory allows: half of the free memory at ~100 MB
 * each, at least 1.
 *
 * @example
 * ocrWorkersAllowed(1024 * 1024 * 1024); // 5
 */
export function ocrWorkersAllowed(freeBytes: number = freemem()): number {
  return Math.max(1, Math.floor(freeBytes / 2 / OCR_WORKER_BYTES));
}

/**
 * One offline English worker (traineddata from @tesseract.js-data/eng, no
 * cache, no network). A fixed DPI stops tesseract guessing one from PNGs that
 * carry none (and printing a warning per image).
 */
async function startWorker(): Promise<Worker> {
  try {
    const worker = await createWorker('eng', 1, { langPath: englishDataDir(), cacheMethod: 'none', gzip: true });
    await worker.setParameters({ user_defined_dpi: '150' });
    return worker;
  } catch (error) {
    throw new VtcError(
      `ocr model: cannot start tesseract.js with the offline English data in ${englishDataDir()}: ${(error as Error).message ?? String(error)}`,
      'E_OCR',
    );
  }
}

/**
 * Greyscale, contrast-stretched, and enlarged by an integer factor (cubic)
 * when small, so tesseract sees text at a usable size; `negate` flips light
 * text on dark plates into the dark-on-light text tesseract expects.
 */
async function prepareForOcr(bytes: Uint8Array, minSide: number, negate: boolean): Promise<Buffer> {
  const meta = await sharp(bytes).metadata();
  const longest = Math.max(meta.width ?? 0, meta.height ?? 0);
  const factor = Math.min(4, Math.floor(minSide / Math.max(1, longest)));
  let image = sharp(bytes).greyscale().normalise();
  if (negate) image = image.negate({ alpha: false });
  if (factor > 1) image = image.resize((meta.width ?? 1) * factor, (meta.height ?? 1) * factor, { kernel: 'cubic' });
  return image.png({ compressionLevel: 1 }).toBuffer();
}

/**
 * The offline `ocr` reader: recognises the text of every image (or takes a
 * text input as is) and answers with {@link answerFromText}. Workers are
 * started once and reused.
 *
 * @example
 * const model = await createOcrModel({ workers: 2 });
 * const { text } = await model.answer(sample, await getMethod('downsample').prepare(sample, 2, {}));
 * await model.close();
 */
export async function createOcrModel(options: OcrModelOptions = {}): Promise<EvalModel> {
  const count = options.workers ?? 1;
  checkInteger(count, 'workers', { min: 1, where: 'ocr model' });
  const minSide = options.minSide ?? 1600;
  // One worker at once (a broken install fails here, not mid-run); the others only when jobs wait for one.
  const all: Worker[] = [await startWorker()];
  const idle: Worker[] = [...all];
  let starting = 0;
  const waiting: ((engine: Worker) => void)[] = [];
  const acquire = () =>
    new Promise<Worker>((resolve, reject) => {
      const engine = idle.pop();
      if (engine) return resolve(engine);
      waiting.push(resolve);
      if (all.length + starting < count) {
        starting++;
        startWorker().then(
          (worker) => {
            starting--;
            all.push(worker);
            release(worker);
          },
          (error: unknown) => {
            starting--;
            const index = waiting.indexOf(resolve);
            if (index >= 0) waiting.splice(index, 1);
            reject(error);
          },
        );
      }
    });
  const release = (engine: Worker) => {
    const next = waiting.shift();
    if (next) next(engine);
    else idle.push(engine);
  };
  return {
    name: 'ocr',
    async answer(sample, input) {
      const texts: string[] = [];
      if (input.text !== undefined) texts.push(input.text);
      for (const image of input.images) {
        const engine = await acquire();
        try {
          let text = (await engine.recognize(await prepareForOcr(image.bytes, minSide, false))).data.text;
          // Nothing read: try the negative (light text on a dark plate).
          if (text.trim() === '')
            text = (await engine.recognize(await prepareForOcr(image.bytes, minSide, true))).data.text;
          texts.push(text);
        } finally {
          release(engine);
        }
      }
      return { text: answerFromText(texts.join('\n'), sample.question, sample.options) };
    },
    async close() {
      await Promise.all(all.map((w) => w.terminate()));
    },
    workers: () => all.length,
  };
}
