import { UsageError } from '../../core/errors.js';
import type { TokenSet } from '../../core/tokenset.js';
import { encodeQwenImage, encodeQwenVideo, isQwenModel, loadQwenEncoder } from '../../encoders/qwen.js';
import { QWEN_FAMILIES, type QwenFamily } from '../../encoders/qwen-preprocess.js';
import { saveTokens } from '../../encoders/tokenfile.js';
import { createProgress } from '../progress.js';
import { printJson } from '../run.js';
import { checkInteger, optionLabel } from '../../core/validate.js';

/** Flags of `vtc encode` that the Qwen path reads. */
export interface QwenEncodeFlags {
  encoder: string;
  model?: string;
  out: string;
  dtype: 'float32' | 'float16';
  json?: boolean;
  anyres?: boolean;
  pinpoints?: unknown;
  resize?: string;
  maxPixels?: number;
  threads?: number;
  batchSize?: number;
  fps?: number;
  maxFrames?: number;
  scenes?: number;
}

export function isQwenFamily(name: string): name is QwenFamily {
  return (QWEN_FAMILIES as readonly string[]).includes(name);
}

/** True when `vtc encode` should take the Qwen path: a family name, --model, or a model dir/.json whose config names a family. */
export async function wantsQwen(flags: Pick<QwenEncodeFlags, 'encoder' | 'model'>): Promise<boolean> {
  return isQwenFamily(flags.encoder) || flags.model !== undefined || (await isQwenModel(flags.encoder));
}

/**
 * `vtc encode` with a Qwen2.5-VL / Qwen3-VL tower: the whole image at dynamic
 * resolution (or a video as frame pairs), tokens with positions and DeepStack.
 * `fpsGiven` tells whether --fps came from the user (else the Qwen default 2).
 */
export async function encodeWithQwen(
  input: string,
  flags: QwenEncodeFlags,
  video: boolean,
  fpsGiven: boolean,
): Promise<void> {
  const family = isQwenFamily(flags.encoder) ? flags.encoder : undefined;
  if (flags.model !== undefined && !family)
    throw new UsageError(
      `encode: --model goes with --encoder ${QWEN_FAMILIES.join('|')}, got --encoder ${JSON.stringify(flags.encoder)}`,
    );
  if (family && flags.model === undefined)
    throw new UsageError(
      `encode: --encoder ${family} needs --model PATH (the tower's .onnx file, a model directory with vtc-encoder.json, or a .json config)`,
    );
  for (const [set, flag] of [
    [flags.anyres, '--anyres'],
    [flags.pinpoints, '--pinpoints'],
    [flags.resize, '--resize'],
    [flags.batchSize, '--batch-size'],
  ] as const) {
    if (set !== undefined && set !== false)
      throw new UsageError(
        `encode: ${flag} does not apply to Qwen towers (they take the whole image at dynamic resolution, resized by smart_resize)`,
      );
  }
  if (flags.threads !== undefined) checkInteger(flags.threads, 'threads', { min: 0, where: 'encode', code: 'E_RANGE' });
  if (flags.maxPixels !== undefined)
    checkInteger(flags.maxPixels, optionLabel('maxPixels'), { min: 1, where: 'encode', code: 'E_RANGE' });
  const encoder = await loadQwenEncoder(
    { ...(family ? { family } : {}), model: flags.model ?? flags.encoder },
    flags.threads !== undefined ? { threads: flags.threads } : {},
  );
  const progress = createProgress();
  let started = false;
  const began = performance.now();
  let tokens: TokenSet;
  try {
    tokens = video
      ? await encodeQwenVideo(input, {
          encoder,
          fps: fpsGiven ? flags.fps! : 2,
          maxFrames: flags.maxFrames ?? 64,
          ...(flags.scenes !== undefined ? { sceneThreshold: flags.scenes } : {}),
          onChunk: (done, total) => {
            if (!started) progress.start(total, 'temporal patches');
            started = true;
            progress.update(done);
          },
        })
      : await encodeQwenImage(input, {
          encoder,
          ...(flags.maxPixels !== undefined ? { maxPixels: flags.maxPixels } : {}),
        });
  } finally {
    progress.stop();
    await encoder.dispose();
  }
  await saveTokens(flags.out, tokens, { dtype: flags.dtype });
  const ms = performance.now() - began;
  const gridKey = video ? 'video_grid_thw' : 'image_grid_thw';
  const grid = tokens.meta[gridKey]!.split(',').map(Number);
  const summary: Record<string, unknown> = {
    input,
    kind: video ? 'video' : 'image',
    encoder: encoder.name,
    family: encoder.family,
    n: tokens.n,
    d: tokens.d,
    tiles: tokens.sources.length,
    [gridKey]: grid,
    resized_size: tokens.meta.resized_size!.split(',').map(Number),
    original_size: tokens.meta.original_size!.split(',').map(Number),
    extra: Object.keys(tokens.extra ?? {}),
    score_rule: tokens.meta.score_rule,
  };
  if (video) {
    summary.frames = Number(tokens.meta.frames);
    summary.fps = Number(tokens.meta.fps);
    summary.times = tokens.sources.map((s) => s.time);
    if (tokens.meta.scene_changes !== undefined)
      summary.scene_changes = tokens.meta.scene_changes === '' ? [] : tokens.meta.scene_changes.split(',').map(Number);
  }
  Object.assign(summary, { out: flags.out, ms });
  if (flags.json) printJson(summary);
  else {
    const extra = summary.extra as string[];
    process.stdout.write(
      `${encoder.name}: ${input} → ${tokens.n} tokens × ${tokens.d} (${gridKey} ${grid.join('×')}, resized to ${tokens.meta.resized_size!.replace(',', 'x')}${extra.length ? `, + ${extra.join(', ')}` : ''}) in ${ms.toFixed(0)} ms → ${flags.out}\n`,
    );
  }
}
