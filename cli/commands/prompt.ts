import { writeFileAtomic } from '../../io/write.js';
import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { planConversationFile, promptPlanJson } from '../../prompt/conversation.js';
import { QWEN_PROMPT_FAMILIES, type QwenPromptFamily } from '../../prompt/qwen.js';
import { configureCommand, parseNumber, printJson } from '../run.js';

export function promptCommand(): Command {
  const command = configureCommand(new Command('prompt'))
    .description(
      'plan a Qwen2.5-VL / Qwen3-VL prompt: token layout, 3-D M-RoPE position ids and rope delta for text + (reduced) image/video token files',
    )
    .argument(
      '<conversation>',
      'conversation JSON: [{"text": …} | {"ids": [...]} | {"image": "kept.safetensors"} | {"video": "clip.safetensors", "fps": 2}, …] (docs/qwen.md)',
    )
    .option('--family <name>', `model family: ${QWEN_PROMPT_FAMILIES.join(' or ')} (or "family" in the file)`)
    .option(
      '--fps <n>',
      'default sampling rate of videos in frames per second (seconds per grid = 2 / fps)',
      parseNumber('--fps'),
      2,
    )
    .option(
      '--tokens-per-second <n>',
      'Qwen2.5-VL vision_config.tokens_per_second',
      parseNumber('--tokens-per-second'),
      2,
    )
    .option(
      '--tokenizer <spec>',
      'tokenizer for text segments and Qwen3-VL timestamps: qwen (built in, the Qwen2/2.5/3 vocabulary) or a tokenizer.json path',
      'qwen',
    )
    .option(
      '--keep-empty-frames',
      'Qwen3-VL: keep the timestamp and markers of frames with no kept token (default: drop the whole frame block)',
    )
    .option('--out <file>', 'also write the plan JSON to this file')
    .option(
      '--json',
      'print one JSON object {family, length, visual_tokens, rope_delta, input_ids, position_ids: [t[], h[], w[]], blocks: [{segment, kind, frame?, timestamp?, start, end, base, tokens, rows, grid}]}',
    );
  command.addHelpText(
    'after',
    `
Examples:
  vtc prompt conv.json --family qwen2.5-vl --json
  vtc prompt conv.json --family qwen3-vl --out plan.json
  echo '[{"text":"<|im_start|>user\\n"},{"image":"kept.safetensors"},{"text":"Describe it.<|im_end|>\\n"}]' > conv.json
  vtc prompt conv.json --family qwen2.5-vl --tokenizer models/qwen/tokenizer.json

Image/video files are token files (vtc encode / vtc reduce output) whose
positions (t, h, w) and image_grid_thw / video_grid_thw metadata the plan uses;
one pad token goes in per kept token, in raster order (blocks[].rows gives the
token-file row of each pad, the order to feed embeddings in). Text after a
visual block restarts at the block's largest position + 1.`,
  );
  command.action(
    async (
      conversation: string,
      opts: {
        family?: string;
        tokenizer: string;
        fps: number;
        tokensPerSecond: number;
        keepEmptyFrames?: boolean;
        out?: string;
        json?: boolean;
      },
    ) => {
      if (opts.family !== undefined && !QWEN_PROMPT_FAMILIES.includes(opts.family as QwenPromptFamily)) {
        throw new UsageError(
          `prompt: --family must be one of ${QWEN_PROMPT_FAMILIES.join(', ')}, got ${JSON.stringify(opts.family)}`,
        );
      }
      const { loadTextTokenizer } = await import('../../tokenizer/index.js'); // the tokenizer packages, only when run
      const tokenizer = await loadTextTokenizer(opts.tokenizer);
      const plan = await planConversationFile(conversation, {
        ...(opts.family ? { family: opts.family as QwenPromptFamily } : {}),
        fps: opts.fps,
        tokensPerSecond: opts.tokensPerSecond,
        keepEmptyFrames: opts.keepEmptyFrames ?? false,
        tokenizer,
      });
      const json = promptPlanJson(plan);
      if (opts.out) await writeJsonAtomically(opts.out, json);
      if (opts.json) printJson(json);
      else {
        process.stdout.write(
          `${plan.family}: ${plan.ids.length} tokens, ${json.visual_tokens as number} visual in ${plan.blocks.length} block(s), rope delta ${plan.ropeDelta}${opts.out ? ` → ${opts.out}` : ''}\n`,
        );
        for (const b of plan.blocks) {
          const label = b.frame !== undefined ? `video frame ${b.frame} ${b.timestamp}` : b.kind;
          process.stdout.write(
            `  segment ${b.segment} ${label}: tokens ${b.start}..${b.end} (${b.rows.length} pads), base position ${b.base}, grid ${b.grid.join('×')}\n`,
          );
        }
      }
    },
  );
  return command;
}

async function writeJsonAtomically(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value)}\n`); // io/write: no temp file left, the error names the path
}
