import { writeFileAtomic } from '../../io/write.js';
import { extname } from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { checkInteger, checkNumber, optionLabel } from '../../core/validate.js';
import { getReducer, reducers } from '../../reducers/index.js';
import { checkPerFrameMethod } from '../../reducers/per-frame.js';
import { addEncoderOptions, isVideoPath, openEncoder, type EncoderFlags } from './encode.js';
import { addMethodOptions, addQueryTextOptions, loadMethodOptions, withTextQuery } from '../method-options.js';
import { configureCommand, parseInteger, parseNumber, printJson } from '../run.js';

interface CompressFlags extends EncoderFlags {
  method: string;
  ratio?: number;
  budget?: number;
  seed: number;
  out: string;
  tokensOut?: string;
  json?: boolean;
  fps?: number;
  maxFrames?: number;
  perFrame?: boolean;
}

export function compressCommand(): Command {
  const command = addEncoderOptions(
    configureCommand(new Command('compress'))
      .description(
        'encode an image (or the sampled frames of a video), reduce its tokens with a method, and draw which patches were kept or merged',
      )
      .argument(
        '<input>',
        'image (JPEG, PNG, WebP, AVIF, TIFF, GIF, …) or video (mp4, mov, mkv, webm, avi, …: frames sampled as vtc encode samples them)',
      ),
  )
    .requiredOption('--method <name>', `reduction method: ${Object.keys(reducers).join(', ')}`)
    .option('--ratio <r>', 'fraction of tokens to keep, in (0, 1]', parseNumber('--ratio'))
    .option('--budget <n>', 'number of tokens to keep (instead of --ratio)', parseInteger('--budget'))
    .option('--seed <s>', 'random seed', parseInteger('--seed'), 0)
    .requiredOption(
      '--out <overlay.png>',
      'overlay PNG: kept patches as they are, dropped ones dimmed; merged groups coloured per output token (a video: its frames as a contact sheet, ⌈√frames⌉ per row)',
    )
    .option('--fps <r>', 'video: frames per second to sample (default 1)', parseNumber('--fps'))
    .option(
      '--max-frames <n>',
      'video: at most this many frames (default 64; the rate drops to span the whole video)',
      parseInteger('--max-frames'),
    )
    .option(
      '--per-frame',
      'video: reduce each frame on its own: the budget is split over frames (ratio: max(1, round(n_f·R)) each; --budget: even split, remainder to the first frames), no output mixes frames, every frame keeps a token',
    )
    .option('--tokens-out <file>', 'also write the reduced tokens (.safetensors or .npy)')
    .option(
      '--json',
      'print one JSON object {method, ratio, budget, n_in, n_padding, n_out, d, mode, per_source, frames? (video), per_frame, overlay, warnings, ms}',
    );
  addMethodOptions(command);
  addQueryTextOptions(command);
  command.addHelpText(
    'after',
    `
Examples:
  vtc compress photo.jpg --method divprune --ratio 0.25 --out kept.png
  vtc compress photo.jpg --anyres --method globalcom2 --ratio 0.25 --out overlay.png --json
  vtc compress photo.jpg --method cluster --budget 64 --out clusters.png --tokens-out merged.safetensors
  vtc compress clip.mp4 --max-frames 8 --method tome --ratio 0.25 --per-frame --out sheet.png --json
  vtc compress clip.mp4 --fps 2 --method evs --ratio 0.1 --out kept.png    # video methods see every frame at once

Method-specific flags (listed above) apply to the methods named in brackets.`,
  );
  command.action(async (input: string, opts: CompressFlags & Record<string, unknown>) => {
    const video = isVideoPath(input);
    // Flags that only one kind of input reads would otherwise be ignored silently.
    const imageOnly = { '--anyres': opts.anyres, '--pinpoints': opts.pinpoints, '--resize': opts.resize };
    const videoOnly = { '--fps': opts.fps, '--max-frames': opts.maxFrames, '--per-frame': opts.perFrame };
    const misplaced = Object.entries(video ? { ...imageOnly, '--max-pixels': opts.maxPixels } : videoOnly).find(
      ([, given]) => given !== undefined,
    );
    if (misplaced)
      throw new UsageError(
        video
          ? `compress: ${misplaced[0]} applies to images, not videos (frames are fitted as vtc encode fits them)`
          : `compress: ${misplaced[0]} applies to videos, not images (${input} is an image: one tile or an AnyRes bundle, no frames)`,
      );
    if (opts.fps !== undefined) checkNumber(opts.fps, 'fps', { gt: 0, where: 'compress' });
    if (opts.maxFrames !== undefined)
      checkInteger(opts.maxFrames, optionLabel('maxFrames'), { min: 1, where: 'compress' });
    if ((opts.ratio === undefined) === (opts.budget === undefined))
      throw new UsageError('compress: give exactly one of --ratio or --budget');
    if (extname(opts.out).toLowerCase() !== '.png')
      throw new UsageError(`compress: --out must be a .png file, got ${JSON.stringify(opts.out)}`);
    const reducer = getReducer(opts.method);
    // Refused before the (possibly long) encode: the method's rule does not fit the input's layout.
    if (opts.perFrame) checkPerFrameMethod(reducer);
    if (video && reducer.scope === 'anyres')
      throw new UsageError(
        `compress: ${reducer.name} works on a LLaVA-NeXT AnyRes bundle of one image, not on video frames`,
      );
    const methodOptions = await withTextQuery(reducer, opts, await loadMethodOptions(reducer, opts));
    // Imported when run (sharp, canvas for the overlay), so that --help loads neither.
    const { compressImage, compressVideo } = await import('../../encoders/compress.js');
    const encoder = await openEncoder(opts);
    const common = {
      encoder,
      method: reducer.name,
      ...(opts.ratio !== undefined ? { ratio: opts.ratio } : {}),
      ...(opts.budget !== undefined ? { budget: opts.budget } : {}),
      seed: opts.seed,
      methodOptions,
      ...(opts.tokensOut ? { tokensOut: opts.tokensOut } : {}),
    };
    let result;
    try {
      result = video
        ? await compressVideo(input, {
            ...common,
            perFrame: opts.perFrame === true,
            ...(opts.fps !== undefined ? { fps: opts.fps } : {}),
            ...(opts.maxFrames !== undefined ? { maxFrames: opts.maxFrames } : {}),
            ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
          })
        : await compressImage(input, {
            ...common,
            anyres: Boolean(opts.anyres),
            ...(opts.pinpoints ? { pinpoints: opts.pinpoints } : {}),
            ...(opts.resize ? { resize: opts.resize } : {}),
            ...(opts.maxPixels !== undefined ? { maxPixels: opts.maxPixels } : {}),
          });
    } finally {
      await encoder.dispose();
    }
    for (const warning of result.warnings) process.stderr.write(`vtc: warning: ${warning}\n`);
    await writeFileAtomic(opts.out, result.png);
    if (opts.json) {
      printJson({
        method: reducer.name,
        encoder: encoder.name,
        ratio: result.ratio,
        budget: result.budget,
        n_in: result.nIn,
        n_padding: result.nPadding,
        n_out: result.reduction.tokens.n,
        d: result.input.d,
        mode: result.stats.mode,
        per_source: result.stats.perSource,
        ...(video ? { frames: result.input.sources.length } : {}),
        per_frame: opts.perFrame === true,
        overlay: opts.out,
        warnings: result.warnings,
        ...(opts.tokensOut ? { tokens_out: opts.tokensOut } : {}),
        ms: result.ms,
      });
    } else {
      const parts = result.stats.perSource
        .map((s) => `${s.kind}${s.kind === 'image' ? '' : ` ${s.index}`}: ${s.covered}/${s.tokens}`)
        .join(', ');
      process.stdout.write(
        `${reducer.name}: ${result.nIn} → ${result.reduction.tokens.n} tokens (${result.stats.mode}; ${parts}) → ${opts.out}\n`,
      );
    }
  });
  return command;
}
