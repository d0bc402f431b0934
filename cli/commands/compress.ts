import { writeFileAtomic } from '../../io/write.js';
import { extname } from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { compressImage } from '../../encoders/compress.js';
import { getReducer, reducers } from '../../reducers/index.js';
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
}

export function compressCommand(): Command {
  const command = addEncoderOptions(
    configureCommand(new Command('compress'))
      .description('encode an image, reduce its tokens with a method, and draw which patches were kept or merged')
      .argument('<image>', 'image file (JPEG, PNG, WebP, AVIF, TIFF, GIF, …)'),
  )
    .requiredOption('--method <name>', `reduction method: ${Object.keys(reducers).join(', ')}`)
    .option('--ratio <r>', 'fraction of tokens to keep, in (0, 1]', parseNumber('--ratio'))
    .option('--budget <n>', 'number of tokens to keep (instead of --ratio)', parseInteger('--budget'))
    .option('--seed <s>', 'random seed', parseInteger('--seed'), 0)
    .requiredOption(
      '--out <overlay.png>',
      'overlay PNG: kept patches as they are, dropped ones dimmed; merged groups coloured per output token',
    )
    .option('--tokens-out <file>', 'also write the reduced tokens (.safetensors or .npy)')
    .option(
      '--json',
      'print one JSON object {method, ratio, budget, n_in, n_padding, n_out, d, mode, per_source, overlay, warnings, ms}',
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

Method-specific flags (listed above) apply to the methods named in brackets.`,
  );
  command.action(async (input: string, opts: CompressFlags & Record<string, unknown>) => {
    if (isVideoPath(input))
      throw new UsageError(
        `compress: ${input} looks like a video; compress takes one image (use vtc video-qa or vtc encode + vtc reduce for videos)`,
      );
    if ((opts.ratio === undefined) === (opts.budget === undefined))
      throw new UsageError('compress: give exactly one of --ratio or --budget');
    if (extname(opts.out).toLowerCase() !== '.png')
      throw new UsageError(`compress: --out must be a .png file, got ${JSON.stringify(opts.out)}`);
    const reducer = getReducer(opts.method);
    const methodOptions = await withTextQuery(reducer, opts, await loadMethodOptions(reducer, opts));
    const encoder = await openEncoder(opts);
    let result;
    try {
      result = await compressImage(input, {
        encoder,
        method: reducer.name,
        ...(opts.ratio !== undefined ? { ratio: opts.ratio } : {}),
        ...(opts.budget !== undefined ? { budget: opts.budget } : {}),
        seed: opts.seed,
        methodOptions,
        anyres: Boolean(opts.anyres),
        ...(opts.pinpoints ? { pinpoints: opts.pinpoints } : {}),
        ...(opts.resize ? { resize: opts.resize } : {}),
        ...(opts.maxPixels !== undefined ? { maxPixels: opts.maxPixels } : {}),
        ...(opts.tokensOut ? { tokensOut: opts.tokensOut } : {}),
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
