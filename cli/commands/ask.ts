import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { apiKeyFromEnv } from '../../client/openai.js';
import type { VisionEncoder } from '../../encoders/types.js';
import type { AskRun } from '../../ask/ask.js';
import { PLAN_METHODS, type PlanMethod } from '../../ask/methods.js';
import { profileNames } from '../../profiles/index.js';
import type { DualEncoder } from '../../video/dual-encoder.js';
import { configureCommand, parseInteger, parseNumber, printJson } from '../run.js';
import { checkInteger, checkNumber, optionLabel } from '../../core/validate.js';

interface AskFlags {
  question: string;
  endpoint?: string;
  model?: string;
  apiKeyEnv?: string;
  profile: string;
  budget?: number;
  ratio?: number;
  method?: string;
  encoder?: string;
  dualEncoder?: string;
  regions?: number;
  thumbnailShare?: number;
  format: string;
  maxPixels?: number;
  timeout: number;
  maxTokens: number;
  out: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Human-readable report of a run (stdout). */
export function formatAsk(run: AskRun): string {
  const { plan, result } = run;
  const lines: string[] = [];
  if (result.answer !== null) lines.push(`answer: ${result.answer}`, '');
  lines.push(
    `sent ${plan.images.length} image${plan.images.length === 1 ? '' : 's'} (${plan.method}, ${plan.profile}):`,
  );
  for (const image of plan.images) {
    const [x, y, w, h] = image.box;
    lines.push(
      `  ${image.role.padEnd(9)} ${`${image.width}x${image.height}`.padStart(10)}  box ${x},${y} ${w}x${h}  ${image.tokens} tokens`,
    );
  }
  const saving = plan.tokens_full > 0 ? (1 - plan.tokens_sent / plan.tokens_full) * 100 : 0;
  lines.push(
    `vision tokens: ${plan.tokens_sent} sent (budget ${plan.budget}) vs ${plan.tokens_full} for the inputs as they are → ${saving >= 0 ? `${saving.toFixed(1)}% fewer` : `${(-saving).toFixed(1)}% more`}`,
  );
  if (run.files) lines.push(`dry run: images  ${run.files.images.join(', ')}`, `         request ${run.files.request}`);
  return `${lines.join('\n')}\n`;
}

export function askCommand(): Command {
  const command = configureCommand(new Command('ask'))
    .description(
      'ask any OpenAI-compatible VLM about images within a vision-token budget (downsample or focus on regions)',
    )
    .argument('<image...>', 'image files (a .txt/.md text or a video file is planned with glyph / keyframes)')
    .requiredOption('-q, --question <text>', 'the question to ask')
    .option(
      '--endpoint <url>',
      'OpenAI-compatible base URL ending in /v1 (vLLM, llama.cpp server, Ollama http://127.0.0.1:11434/v1, OpenAI)',
    )
    .option('--model <name>', 'model name the endpoint serves')
    .option('--api-key-env <var>', 'environment variable holding the API key (sent as a Bearer token)')
    .option('--profile <name>', `the model's token rule: ${profileNames().join(', ')}`, 'qwen2.5-vl')
    .option(
      '--budget <n>',
      'vision-token budget under --profile (tokens_sent never exceeds it)',
      parseInteger('--budget'),
    )
    .option('--ratio <r>', 'budget as a fraction of tokens_full, in (0, 1]', parseNumber('--ratio'))
    .option('--method <name>', `planner: ${PLAN_METHODS.join(', ')} (default downsample for images)`)
    .option(
      '--encoder <spec>',
      'focus: encoder whose thumbnail scores rank regions: patch (built-in) or an ONNX model directory',
      'patch',
    )
    .option(
      '--dual-encoder <dir>',
      'CLIP-style dual encoder (dual.json, vision.onnx, text.onnx, tokenizer.json): question-aware regions / clips',
    )
    .option('--regions <n>', 'focus: regions picked before merging overlaps (default 3)', parseInteger('--regions'))
    .option(
      '--thumbnail-share <f>',
      'focus: share of the budget for the global thumbnail (default 0.25)',
      parseNumber('--thumbnail-share'),
    )
    .option('--format <fmt>', 'encoding of resized images and crops: png or jpeg', 'png')
    .option(
      '--max-pixels <n>',
      'refuse images above this many pixels (default 100000000)',
      parseInteger('--max-pixels'),
    )
    .option(
      '--timeout <s>',
      'deadline in seconds for one request to the endpoint, whole reply included (one retry after a timeout, reset or 5xx: at most 2 × this plus a short backoff)',
      parseNumber('--timeout'),
      120,
    )
    .option('--max-tokens <n>', 'longest answer the model may write, in tokens', parseInteger('--max-tokens'), 512)
    .option('--out <dir>', 'where --dry-run writes the planned images and request.json', 'vtc-ask')
    .option('--dry-run', 'write the planned images and the request instead of calling the endpoint')
    .option('--json', 'print one JSON object {answer, images:[{width,height,box}], tokens_sent, tokens_full}');
  command.addHelpText(
    'after',
    `
Examples:
  vtc ask receipt.jpg -q "What is the total?" --endpoint http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-VL-3B-Instruct --budget 400
  vtc ask chart.png -q "Value of the Plums bar?" --endpoint https://api.openai.com/v1 --model gpt-4o --profile gpt-4o \\
      --api-key-env OPENAI_API_KEY --budget 600 --method focus --json
  vtc ask page.png -q "Invoice number?" --ratio 0.25 --method focus --dry-run --out /tmp/ask

downsample sends one image, the largest size whose billed tokens fit. focus sends a thumbnail
(--thumbnail-share of the budget) plus the highest-scoring regions at higher resolution; regions are
ranked by the encoder's thumbnail scores, or by the question when --dual-encoder is given.
box is [x, y, w, h] in source pixels. Notes about fallbacks go to stderr.`,
  );
  command.action(async (inputs: string[], flags: AskFlags) => {
    if (flags.budget !== undefined && flags.ratio !== undefined)
      throw new UsageError('ask: give either --budget or --ratio, not both');
    if (flags.budget === undefined && flags.ratio === undefined)
      throw new UsageError('ask: give --budget N (vision tokens) or --ratio R');
    if (!flags.dryRun && !flags.endpoint) throw new UsageError('ask: --endpoint is required (or use --dry-run)');
    if (!flags.dryRun && !flags.model) throw new UsageError('ask: --model is required (or use --dry-run)');
    checkInteger(flags.maxTokens, optionLabel('maxTokens'), { min: 1, where: 'ask' });
    checkNumber(flags.timeout, 'timeout (seconds)', { gt: 0, where: 'ask' });
    if (flags.format !== 'png' && flags.format !== 'jpeg')
      throw new UsageError(`ask: --format must be png or jpeg, got ${JSON.stringify(flags.format)}`);
    if (flags.method !== undefined && !PLAN_METHODS.includes(flags.method as PlanMethod))
      throw new UsageError(
        `ask: unknown --method ${JSON.stringify(flags.method)} (expected one of: ${PLAN_METHODS.join(', ')})`,
      );
    const apiKey = apiKeyFromEnv(flags.apiKeyEnv);
    // The planners and encoders (sharp, canvas, OCR, tokenizers, onnxruntime) are imported when run, not for --help.
    const [{ askImage }, { loadEncoder }, { loadDualEncoder }] = await Promise.all([
      import('../../ask/ask.js'),
      import('../../encoders/encode.js'),
      import('../../video/dual-encoder.js'),
    ]);
    let encoder: VisionEncoder | undefined;
    let dualEncoder: DualEncoder | undefined;
    try {
      if (flags.method === 'focus' || flags.method === 'keyframes')
        encoder = await loadEncoder(flags.encoder ?? 'patch');
      if (flags.dualEncoder) dualEncoder = await loadDualEncoder(flags.dualEncoder);
      const run = await askImage(inputs, {
        question: flags.question,
        endpoint: flags.endpoint,
        model: flags.model,
        apiKey,
        profile: flags.profile,
        budget: flags.budget,
        ratio: flags.ratio,
        method: flags.method as PlanMethod | undefined,
        encoder,
        dualEncoder,
        regions: flags.regions,
        thumbnailShare: flags.thumbnailShare,
        format: flags.format,
        maxPixels: flags.maxPixels,
        timeoutMs: flags.timeout * 1000,
        maxTokens: flags.maxTokens,
        dryRun: flags.dryRun,
        outDir: flags.out,
      });
      for (const note of run.plan.notes) process.stderr.write(`vtc: note: ${note}\n`);
      if (flags.json) printJson(run.result);
      else process.stdout.write(formatAsk(run));
    } finally {
      await dualEncoder?.dispose();
      await encoder?.dispose();
    }
  });
  return command;
}
