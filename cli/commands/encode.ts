import { extname } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { TokenSet } from '../../core/tokenset.js';
import type { Resolution } from '../../encoders/anyres.js';
import { saveTokens } from '../../encoders/tokenfile.js';
import { RESIZE_MODES, type ResizeMode, type VisionEncoder } from '../../encoders/types.js';
import type { StreamedVideo } from '../../encoders/video.js';
import { createProgress } from '../progress.js';
import type { QwenEncodeFlags } from './encode-qwen.js';
import { configureCommand, parseInteger, parseNumber, printJson } from '../run.js';

/** Extensions `vtc encode` hands to ffmpeg instead of sharp. */
export const VIDEO_EXTENSIONS = new Set([
  '.mp4',
  '.m4v',
  '.mov',
  '.mkv',
  '.webm',
  '.avi',
  '.mpg',
  '.mpeg',
  '.ts',
  '.flv',
  '.wmv',
  '.3gp',
  '.ogv',
]);

export function isVideoPath(path: string): boolean {
  return VIDEO_EXTENSIONS.has(extname(path).toLowerCase());
}

/** "336x672,672x336" → [[336, 672], [672, 336]] (width x height). */
export function parsePinpoints(value: string): Resolution[] {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const out = parts.map((p) => {
    const m = /^(\d+)x(\d+)$/i.exec(p);
    if (!m)
      throw new InvalidArgumentError(
        `--pinpoints expects WIDTHxHEIGHT pairs separated by commas (e.g. 336x672,672x672), got ${JSON.stringify(value)}`,
      );
    return [Number(m[1]), Number(m[2])] as Resolution;
  });
  if (out.length === 0) throw new InvalidArgumentError('--pinpoints needs at least one WIDTHxHEIGHT pair');
  return out;
}

export function parseResizeMode(value: string): ResizeMode {
  if (!RESIZE_MODES.includes(value as ResizeMode))
    throw new InvalidArgumentError(`--resize must be one of ${RESIZE_MODES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as ResizeMode;
}

/** Encoder flags shared by `vtc encode` and `vtc compress`. */
export function addEncoderOptions(command: Command): Command {
  return command
    .option(
      '--encoder <name|dir>',
      'encoder: "patch" (built-in, weight-free) or an ONNX model directory with vtc-encoder.json',
      'patch',
    )
    .option('--anyres', 'LLaVA-NeXT AnyRes: thumbnail + crops of the resized-and-padded image')
    .option(
      '--pinpoints <list>',
      'AnyRes canvases as WIDTHxHEIGHT,… (default: LLaVA-NeXT pinpoints scaled to the encoder input)',
      parsePinpoints,
    )
    .option(
      '--resize <mode>',
      `fit for a single tile: ${RESIZE_MODES.join(', ')} (default: the encoder's preference, else squash)`,
      parseResizeMode,
    )
    .option(
      '--max-pixels <n>',
      'refuse images with more pixels than this (decompression-bomb guard)',
      parseInteger('--max-pixels'),
    )
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = all cores)', parseInteger('--threads'))
    .option('--batch-size <n>', 'tiles per ONNX run (default from the model config)', parseInteger('--batch-size'));
}

export interface EncoderFlags {
  encoder: string;
  anyres?: boolean;
  pinpoints?: Resolution[];
  resize?: ResizeMode;
  maxPixels?: number;
  threads?: number;
  batchSize?: number;
}

export async function openEncoder(flags: EncoderFlags): Promise<VisionEncoder> {
  if (flags.maxPixels !== undefined && flags.maxPixels < 1)
    throw new UsageError(`--max-pixels must be ≥ 1, got ${flags.maxPixels}`, 'E_RANGE');
  if (flags.threads !== undefined && flags.threads < 0)
    throw new UsageError(`--threads must be ≥ 0, got ${flags.threads}`, 'E_RANGE');
  if (flags.batchSize !== undefined && flags.batchSize < 1)
    throw new UsageError(`--batch-size must be ≥ 1, got ${flags.batchSize}`, 'E_RANGE');
  const { loadEncoder } = await import('../../encoders/encode.js'); // sharp, onnxruntime: when run, not for --help
  return loadEncoder(flags.encoder, {
    ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
    ...(flags.batchSize !== undefined ? { batchSize: flags.batchSize } : {}),
  });
}

interface EncodeFlags extends EncoderFlags {
  model?: string;
  out: string;
  dtype: string;
  json?: boolean;
  fps?: number;
  maxFrames?: number;
  scenes?: number;
  partial?: boolean;
}

export function encodeCommand(): Command {
  const command = addEncoderOptions(
    configureCommand(new Command('encode'))
      .description(
        'encode an image (one tile or AnyRes thumbnail + crops) or a video (sampled frames) into visual tokens',
      )
      .argument('<input>', 'image (JPEG, PNG, WebP, AVIF, TIFF, GIF, …) or video (mp4, mov, mkv, webm, avi, …)'),
  )
    .option('--fps <r>', 'video: frames per second to sample', parseNumber('--fps'), 1)
    .option(
      '--max-frames <n>',
      'video: at most this many frames (the rate drops to span the whole video)',
      parseInteger('--max-frames'),
      64,
    )
    .option(
      '--scenes <T>',
      "video: also detect scene changes (ffmpeg scene score > T, in (0, 1); 0.3 suits hard cuts) and store their times in the file's metadata (scene_changes)",
      parseNumber('--scenes'),
    )
    .option(
      '--partial',
      'video: a truncated file keeps the frames decoded before the cut (the JSON says what was cut) instead of failing',
    )
    .requiredOption(
      '--out <file>',
      'output: .safetensors (AnyRes: the bundle of thumbnail, crops and their CLS scores; else tokens, sizes, source, grid_pos, scores) or .npy ([n, d]; a video [frames, tokens, d]); a video is streamed to either format a batch of frames at a time, so memory does not grow with its length',
    )
    .option('--dtype <t>', 'output float type: float32 or float16', 'float32')
    .option(
      '--model <path>',
      'with --encoder qwen2.5-vl|qwen3-vl: the vision tower (.onnx file, model directory with vtc-encoder.json, or a .json config)',
    )
    .option('--json', 'print one JSON object {input, kind, encoder, n, d, tiles, …, out, ms}');
  command.addHelpText(
    'after',
    `
Examples:
  vtc encode photo.jpg --out tokens.safetensors                       # built-in patch encoder, 24×24 tokens
  vtc encode photo.jpg --anyres --out bundle.safetensors --json        # LLaVA-NeXT AnyRes bundle
  vtc encode photo.jpg --encoder models/clip-l-336 --anyres --out b.safetensors
  vtc encode movie.mp4 --fps 2 --max-frames 32 --out frames.safetensors    # streamed too: memory bounded by a batch
  vtc encode movie.mp4 --scenes 0.3 --json --out frames.safetensors   # + scene-change times
  vtc encode long.mp4 --max-frames 3600 --partial --out hour.npy        # streamed; [frames, tokens, d]; a cut file keeps its frames
  vtc reduce --in bundle.safetensors --method globalcom2 --ratio 0.25 --out kept.safetensors
  vtc encode photo.jpg --encoder qwen2.5-vl --model models/qwen25/vision_encoder.onnx --out q.safetensors
  vtc encode clip.mp4 --encoder models/qwen3-vl --json --out q3.safetensors  # dir whose vtc-encoder.json names the family

The patch encoder is a weight-free baseline (colour, gradient and layout
statistics per patch; scores −cos(x, mean)), not a semantic model. An ONNX model
directory holds model.onnx and vtc-encoder.json (see docs/encoders.md). Qwen
towers take the whole image at dynamic resolution (smart_resize) or a video as
frame pairs (default 2 fps) and write positions (t, h, w) and DeepStack tensors.`,
  );
  command.action(async (input: string, opts: EncodeFlags) => {
    if (opts.dtype !== 'float32' && opts.dtype !== 'float16')
      throw new UsageError(`encode: --dtype must be float32 or float16, got ${JSON.stringify(opts.dtype)}`);
    const video = isVideoPath(input);
    if (video && opts.anyres) throw new UsageError('encode: --anyres applies to images, not videos');
    if (!video && opts.scenes !== undefined) throw new UsageError('encode: --scenes applies to videos, not images');
    if (!video && opts.partial) throw new UsageError('encode: --partial applies to videos, not images');
    if (opts.scenes !== undefined && !(opts.scenes > 0 && opts.scenes < 1))
      throw new UsageError(`encode: --scenes must be in (0, 1), got ${opts.scenes}`, 'E_RANGE');
    if (!(opts.fps! > 0)) throw new UsageError(`encode: --fps must be > 0, got ${opts.fps}`, 'E_RANGE');
    if (!(opts.maxFrames! >= 1))
      throw new UsageError(`encode: --max-frames must be ≥ 1, got ${opts.maxFrames}`, 'E_RANGE');
    // The encoders (sharp, onnxruntime, ffmpeg) are imported when a command runs, so that --help loads none of them.
    const { wantsQwen, encodeWithQwen } = await import('./encode-qwen.js');
    if (await wantsQwen(opts))
      return encodeWithQwen(input, opts as QwenEncodeFlags, video, command.getOptionValueSource('fps') === 'cli');
    const encoder = await openEncoder(opts);
    const progress = createProgress();
    let progressStarted = false;
    const report = (label: string) => (done: number, total: number) => {
      if (!progressStarted) progress.start(total, label);
      progressStarted = true;
      progress.update(done);
    };
    const started = performance.now();
    if (video) {
      // Streamed: frames → encoder → .npy / .safetensors rows; memory bounded by the batch, whatever the video's length.
      let streamed: StreamedVideo;
      try {
        const { encodeVideoToFile } = await import('../../encoders/video.js');
        streamed = await encodeVideoToFile(input, opts.out, {
          encoder,
          fps: opts.fps!,
          maxFrames: opts.maxFrames!,
          dtype: opts.dtype,
          ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
          ...(opts.scenes !== undefined ? { sceneThreshold: opts.scenes } : {}),
          ...(opts.partial ? { partial: true } : {}),
          onFrame: report('frames'),
        });
      } finally {
        progress.stop();
        await encoder.dispose();
      }
      const { frames, perFrame, d, times, meta } = streamed;
      const ms = performance.now() - started;
      const summary: Record<string, unknown> = { input, kind: 'video', encoder: encoder.name, n: frames * perFrame, d };
      Object.assign(summary, { tiles: frames, times });
      if (meta.truncated !== undefined) summary.truncated = meta.truncated;
      if (meta.scene_changes !== undefined)
        summary.scene_changes = meta.scene_changes === '' ? [] : meta.scene_changes.split(',').map(Number);
      Object.assign(summary, { out: opts.out, ms });
      if (opts.json) printJson(summary);
      else {
        const scenes = summary.scene_changes
          ? `; scene changes at ${(summary.scene_changes as number[]).map((t) => `${t}s`).join(' ') || 'none'}`
          : '';
        process.stdout.write(
          `${encoder.name}: ${input} → ${frames * perFrame} tokens × ${d} (${frames} frames${scenes}, streamed) in ${ms.toFixed(0)} ms → ${opts.out}\n`,
        );
      }
      return;
    }
    let tokens: TokenSet;
    const { encodeAnyRes, encodeImage } = await import('../../encoders/encode.js');
    try {
      if (opts.anyres) {
        tokens = await encodeAnyRes(input, {
          encoder,
          ...(opts.pinpoints ? { pinpoints: opts.pinpoints } : {}),
          ...(opts.maxPixels !== undefined ? { maxPixels: opts.maxPixels } : {}),
          onTiles: report('tiles'),
        });
      } else {
        tokens = await encodeImage(input, {
          encoder,
          ...(opts.resize ? { resize: opts.resize } : {}),
          ...(opts.maxPixels !== undefined ? { maxPixels: opts.maxPixels } : {}),
        });
      }
    } finally {
      progress.stop();
      await encoder.dispose();
    }
    const bundle = Boolean(opts.anyres) && extname(opts.out).toLowerCase() === '.safetensors';
    await saveTokens(opts.out, tokens, { dtype: opts.dtype, bundle });
    const ms = performance.now() - started;
    const kind = opts.anyres ? 'anyres' : 'image';
    const summary: Record<string, unknown> = {
      input,
      kind,
      encoder: encoder.name,
      n: tokens.n,
      d: tokens.d,
      tiles: tokens.sources.length,
    };
    if (tokens.anyres) {
      summary.grid = [tokens.anyres.gridRows, tokens.anyres.gridCols];
      summary.image_size = [tokens.anyres.imageWidth, tokens.anyres.imageHeight];
      summary.best_resolution = tokens.meta.best_resolution?.split(',').map(Number);
      summary.llava_next_tokens = Number(tokens.meta.anyres_tokens);
    }
    Object.assign(summary, { out: opts.out, ms });
    if (opts.json) printJson(summary);
    else {
      const detail = tokens.anyres ? ` (thumbnail + ${tokens.anyres.gridRows}x${tokens.anyres.gridCols} crops)` : '';
      process.stdout.write(
        `${encoder.name}: ${input} → ${tokens.n} tokens × ${tokens.d}${detail} in ${ms.toFixed(0)} ms → ${opts.out}\n`,
      );
    }
  });
  return command;
}
