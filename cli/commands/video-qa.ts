import { Command } from 'commander';
import { saveTokens } from '../../encoders/tokenfile.js';
import type { VisionEncoder } from '../../encoders/types.js';
import { apiKeyFromEnv } from '../../client/openai.js';
import { profileNames } from '../../profiles/index.js';
import type { DualEncoder } from '../../video/dual-encoder.js';
import type { VideoQaRun } from '../../video/qa.js';
import { formatTime } from '../../video/time.js';
import { createProgress } from '../progress.js';
import { configureCommand, parseInteger, parseNumber, printJson } from '../run.js';
import { checkNumber } from '../../core/validate.js';

interface VideoQaFlags {
  question: string;
  endpoint?: string;
  model?: string;
  apiKeyEnv?: string;
  frames?: number;
  tokenBudget?: number;
  clips: number;
  profile: string;
  fps: number;
  maxFrames: number;
  maxSide: number;
  dualEncoder?: string;
  encoder: string;
  threshold?: number;
  segments?: number;
  timeout: number;
  maxTokens: number;
  tokensOut?: string;
  out: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Human-readable report of a run (stdout). */
export function formatVideoQa(run: VideoQaRun): string {
  const { plan, result } = run;
  const lines: string[] = [];
  if (result.answer !== null) lines.push(`answer: ${result.answer}`, '');
  const kept = plan.clips.filter((c) => c.selected).length;
  lines.push(`clips: ${kept} of ${plan.clips.length} kept (${plan.retrieval} retrieval)`);
  for (const clip of plan.clips) {
    lines.push(
      `  ${clip.selected ? '*' : ' '} ${formatTime(clip.startTime)}–${formatTime(clip.endTime)}  score ${clip.score.toFixed(3)}  (${clip.end - clip.start} sampled frames)`,
    );
  }
  lines.push(
    `frames sent (${plan.keyframes.length}, ${plan.frameWidth}x${plan.frameHeight}): ${plan.keyframes.map((k) => `${k.time.toFixed(1)}s`).join(' ')}`,
  );
  const saving = plan.tokensUniform > 0 ? (1 - plan.tokensSent / plan.tokensUniform) * 100 : 0;
  lines.push(
    `vision tokens (${plan.profile}): ${plan.tokensSent} sent vs ${plan.tokensUniform} for uniform 1 fps sampling → ${saving >= 0 ? `${saving.toFixed(1)}% fewer` : `${(-saving).toFixed(1)}% more`}`,
  );
  if (run.files)
    lines.push(`dry run: contact sheet ${run.files.contactSheet}`, `         request     ${run.files.request}`);
  return `${lines.join('\n')}\n`;
}

export function videoQaCommand(): Command {
  const command = configureCommand(new Command('video-qa'))
    .description('answer a question about a video with any OpenAI-compatible VLM, sending only the frames that matter')
    .argument('<video>', 'video file (anything ffmpeg reads)')
    .requiredOption('-q, --question <text>', 'the question to ask')
    .option(
      '--endpoint <url>',
      'OpenAI-compatible base URL ending in /v1 (vLLM, llama.cpp server, Ollama http://127.0.0.1:11434/v1)',
    )
    .option('--model <name>', 'model name the endpoint serves')
    .option('--api-key-env <var>', 'environment variable holding the API key (sent as a Bearer token)')
    .option('--frames <n>', 'frames to send (default 8)', parseInteger('--frames'))
    .option(
      '--token-budget <n>',
      'vision-token budget under --profile instead of --frames',
      parseInteger('--token-budget'),
    )
    .option('--clips <k>', 'event clips to keep', parseInteger('--clips'), 3)
    .option('--profile <name>', `token accounting profile: ${profileNames().join(', ')}`, 'qwen2.5-vl')
    .option('--fps <r>', 'sampling rate before selection, frames per second', parseNumber('--fps'), 2)
    .option(
      '--max-frames <n>',
      'cap on sampled frames (the rate drops to span the whole video)',
      parseInteger('--max-frames'),
      64,
    )
    .option('--max-side <px>', 'long side of the frames sent, pixels (never upscaled)', parseInteger('--max-side'), 448)
    .option(
      '--encoder <spec>',
      'token encoder for segmentation and merging: patch (built-in, 224 px) or an ONNX model directory',
      'patch',
    )
    .option(
      '--dual-encoder <dir>',
      'CLIP-style dual encoder (dual.json, vision.onnx, text.onnx, tokenizer.json) for question-driven clip retrieval',
    )
    .option(
      '--threshold <tau>',
      'cut clips wherever adjacent-frame similarity drops below this',
      parseNumber('--threshold'),
    )
    .option(
      '--segments <n>',
      'target number of event clips from the least-similar-transition rule',
      parseInteger('--segments'),
    )
    .option(
      '--timeout <s>',
      'deadline in seconds for one request to the endpoint, whole reply included (one retry after a timeout, reset or 5xx: at most 2 × this plus a short backoff)',
      parseNumber('--timeout'),
      120,
    )
    .option('--max-tokens <n>', 'longest answer the model may write, in tokens', parseInteger('--max-tokens'), 512)
    .option('--out <dir>', 'where --dry-run writes contact-sheet.png and request.json', 'vtc-video-qa')
    .option(
      '--tokens-out <file>',
      'also save the token-level result (kept frames after temporal merging) as .safetensors or .npy',
    )
    .option('--dry-run', 'write the contact sheet and the request instead of calling the endpoint')
    .option(
      '--json',
      'print one JSON object {answer, clips:[{start,end,score}], frames:[{t}], tokens_sent, tokens_uniform}',
    );
  command.addHelpText(
    'after',
    `
Examples:
  vtc video-qa movie.mp4 -q "What colour is the boat?" --endpoint http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-VL-3B-Instruct
  vtc video-qa movie.mp4 -q "..." --endpoint http://127.0.0.1:11434/v1 --model qwen2.5vl:3b --token-budget 1200 --json
  vtc video-qa samples/video/scenes.mp4 -q "What happens?" --dry-run --frames 4 --out /tmp/vqa

Pipeline: sample at --fps (≤ --max-frames), encode with --encoder (built-in patch encoder), cut event clips
by feature change, score clips (cosine with the question under --dual-encoder, else novelty + coverage),
keep the top --clips, merge the most similar adjacent frames down to the budget, send one frame per
merged group. tokens_uniform is what 1 fps sampling (≤ 64 frames, same resolution) would cost.`,
  );
  command.action(async (video: string, flags: VideoQaFlags) => {
    checkNumber(flags.timeout, 'timeout (seconds)', { gt: 0, where: 'video-qa' });
    // The pipeline (sharp, ffmpeg, canvas, encoders, tokenizers) is imported when run, not for --help.
    const [{ checkVideoQaOptions, videoQa }, { loadEncoder }, { loadDualEncoder }] = await Promise.all([
      import('../../video/qa.js'),
      import('../../encoders/encode.js'),
      import('../../video/dual-encoder.js'),
    ]);
    // videoQa's own checks, before the encoder loads.
    checkVideoQaOptions({ ...flags, timeoutMs: flags.timeout * 1000 });
    const apiKey = apiKeyFromEnv(flags.apiKeyEnv);
    const encoder: VisionEncoder = await loadEncoder(
      flags.encoder,
      flags.encoder === 'patch' ? { inputSize: 224, patchSize: 14 } : {},
    );
    let dualEncoder: DualEncoder | undefined;
    const progress = createProgress();
    let started = false;
    try {
      if (flags.dualEncoder) dualEncoder = await loadDualEncoder(flags.dualEncoder);
      const run = await videoQa(video, {
        question: flags.question,
        endpoint: flags.endpoint,
        model: flags.model,
        apiKey,
        frames: flags.frames,
        tokenBudget: flags.tokenBudget,
        clips: flags.clips,
        profile: flags.profile,
        fps: flags.fps,
        maxFrames: flags.maxFrames,
        maxSide: flags.maxSide,
        encoder,
        dualEncoder,
        threshold: flags.threshold,
        segments: flags.segments,
        timeoutMs: flags.timeout * 1000,
        maxTokens: flags.maxTokens,
        dryRun: flags.dryRun,
        outDir: flags.out,
        onProgress: (stage, done, total) => {
          if (stage !== 'encode') return;
          if (!started) progress.start(total, 'encoding frames');
          started = true;
          progress.update(done);
        },
      });
      progress.stop();
      if (flags.tokensOut) await saveTokens(flags.tokensOut, run.plan.tokens);
      if (flags.json) printJson(run.result);
      else process.stdout.write(formatVideoQa(run));
    } finally {
      progress.stop();
      await dualEncoder?.dispose();
      await encoder.dispose();
    }
  });
  return command;
}
