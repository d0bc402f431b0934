import { join, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { answerQuestion, userMessage, type ChatMessage } from '../client/openai.js';
import { getProfile } from '../profiles/index.js';
import type { VideoQaOptions } from '../video/qa.js';
import { planImage, type ImagePlan, type PlanInput, type PlanImageOptions, type PlannedImage } from './plan.js';
import { ensureDirSync, writeFileAtomicSync } from '../io/write.js';

/**
 * Image question answering against any OpenAI-compatible chat-completions
 * endpoint: plan what to send under the budget (ask/plan.ts), send the
 * images (crops with their boxes named in the prompt) and the question, and
 * report the answer with exactly what was sent. The image counterpart of
 * video/qa.ts, with the same conventions.
 */

/** planImage's options plus the request options `vtc video-qa` takes, with the same defaults. */
export interface AskImageOptions
  extends Omit<PlanImageOptions, 'question'>,
    Pick<
      VideoQaOptions,
      'question' | 'endpoint' | 'model' | 'apiKey' | 'timeoutMs' | 'retries' | 'maxTokens' | 'dryRun'
    > {
  /** Folder for dry-run files (default ./vtc-ask). */
  outDir?: string;
}

/** The `--json` result: exactly the documented fields. */
export interface AskResult {
  /** The model's answer; null in a dry run. */
  answer: string | null;
  /** Exactly the images sent, in order: pixel size as sent and box [x, y, w, h] in source pixels. */
  images: { width: number; height: number; box: [number, number, number, number] }[];
  tokens_sent: number;
  tokens_full: number;
}

export interface AskRun {
  result: AskResult;
  plan: ImagePlan;
  /** The chat-completions request body. */
  request: { model: string; messages: ChatMessage[]; max_tokens: number; temperature: number };
  /** Dry run: the image files (in send order) and the request. */
  files?: { images: string[]; request: string };
}

/**
 * The prompt: what each image is (so crops can be mapped back), then the question.
 *
 * @example
 * askPrompt('What is the total?', [{ role: 'thumbnail', box: [0, 0, 800, 600] }, { role: 'region', box: [400, 300, 200, 150] }] as PlannedImage[]);
 * // 'Image 1 is the whole picture (800x600 px, downscaled); image 2 is a detail crop of the region x=400..600, y=300..450 of that picture.\nWhat is the total?'
 */
export function askPrompt(question: string, images: Pick<PlannedImage, 'role' | 'box' | 'source' | 'time'>[]): string {
  const regions = images.some((i) => i.role === 'region');
  if (!regions) return question;
  const parts = images.map((image, i) => {
    const [x, y, w, h] = image.box;
    if (image.role === 'region')
      return `image ${i + 1} is a detail crop of the region x=${x}..${x + w}, y=${y}..${y + h} of that picture`;
    return `image ${i + 1} is the whole picture (${w}x${h} px, downscaled)`;
  });
  const sentence = parts.join('; ');
  return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.\n${question}`;
}

/**
 * The `--json` result from a plan and an answer.
 *
 * @example
 * askResult(plan, 'blue'); // { answer: 'blue', images: [{ width: 512, height: 384, box: [0, 0, 1024, 768] }], tokens_sent: 255, tokens_full: 765 }
 */
export function askResult(plan: ImagePlan, answer: string | null): AskResult {
  return {
    answer,
    images: plan.images.map((i) => ({
      width: i.width,
      height: i.height,
      box: [...i.box] as [number, number, number, number],
    })),
    tokens_sent: plan.tokens_sent,
    tokens_full: plan.tokens_full,
  };
}

const EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
};

/**
 * Answers a question about one or more images (or a text / video input), or
 * (dryRun) writes what it would send.
 *
 * @example
 * const { result } = await askImage('receipt.png', {
 *   question: 'What is the total?', endpoint: 'http://127.0.0.1:8000/v1', model: 'Qwen/Qwen2.5-VL-3B-Instruct',
 *   profile: 'qwen2.5-vl', budget: 300, method: 'focus',
 * });
 * result.answer; result.images; result.tokens_sent <= 300; // true
 */
export async function askImage(input: PlanInput | PlanInput[], options: AskImageOptions): Promise<AskRun> {
  if (!options.question || options.question.trim() === '')
    throw new UsageError('ask: the question (-q) must not be empty');
  if (!options.dryRun && !options.endpoint) throw new UsageError('ask: --endpoint is required (or use --dry-run)');
  if (!options.dryRun && !options.model) throw new UsageError('ask: --model is required (or use --dry-run)');
  const profile = getProfile(options.profile ?? 'qwen2.5-vl');
  const plan = await planImage(input, options);
  const messages = [
    userMessage(
      askPrompt(options.question, plan.images),
      plan.images.map((i) => ({ bytes: i.bytes, mime: i.mime })),
      profile.detail,
    ),
  ];
  const maxTokens = options.maxTokens ?? 512;
  const request = { model: options.model ?? '(dry run)', messages, max_tokens: maxTokens, temperature: 0 };
  if (options.dryRun) {
    const outDir = resolve(options.outDir ?? 'vtc-ask');
    ensureDirSync(outDir);
    const images = plan.images.map((image, i) => {
      const file = join(
        outDir,
        `image_${String(i + 1).padStart(2, '0')}_${image.role}.${EXTENSIONS[image.mime] ?? 'bin'}`,
      );
      writeFileAtomicSync(file, image.bytes);
      return file;
    });
    const requestFile = join(outDir, 'request.json');
    writeFileAtomicSync(requestFile, `${JSON.stringify(request, null, 1)}\n`);
    return { result: askResult(plan, null), plan, request, files: { images, request: requestFile } };
  }
  const answer = await answerQuestion({
    endpoint: options.endpoint!,
    model: options.model!,
    messages,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    maxTokens,
  });
  return { result: askResult(plan, answer), plan, request };
}
