import { extname } from 'node:path';
import { Command } from 'commander';
import { UsageError, VtcError } from '../../core/errors.js';
import { reduceFramesFileTo, usesBlockPath } from '../../encoders/frame-reduce.js';
import { loadTokens, saveTokens } from '../../encoders/tokenfile.js';
import { getReducer, reducers } from '../../reducers/index.js';
import { type ReductionRun, runReducer } from '../../reducers/run.js';
import type { Reduction } from '../../core/tokenset.js';
import { checkInteger, checkNumber } from '../../core/validate.js';
import { warmUpKernels } from '../../core/linalg-kernels.js';
import { nativeTime } from '../../core/linalg.js';
import {
  addMethodOptions,
  addQueryTextOptions,
  loadMethodOptions,
  rejectForeignMethodOptions,
  withTextQuery,
} from '../method-options.js';
import { configureCommand, parseInteger, parseNumber, printJson } from '../run.js';
import { createProgress } from '../progress.js';
import type { ReduceProgress } from '../../reducers/types.js';

export function reduceCommand(): Command {
  const command = configureCommand(new Command('reduce'))
    .description('reduce a token file with a registered method and write the result')
    .requiredOption(
      '--in <file>',
      'input tokens: .npy [n, d] (square n = s×s grid), [frames, t, d], or .safetensors (AnyRes bundle or tokens file)',
    )
    .requiredOption('--method <name>', `reduction method: ${Object.keys(reducers).join(', ')}`)
    .option('--ratio <r>', 'fraction of tokens to keep, in (0, 1]', parseNumber('--ratio'))
    .option('--budget <n>', 'number of tokens to keep (instead of --ratio)', parseInteger('--budget'))
    .option('--seed <s>', 'random seed, an integer in [0, 4294967295] (random, cluster)', parseInteger('--seed'), 0)
    .requiredOption(
      '--out <file>',
      'output: .npy ([n_out, d] for one source, [frames, t, d] for video frames with equal counts; other multi-source results are refused) or .safetensors (tokens, sizes, source, grid_pos, positions, extra.*, origin_offsets/origin_index + the input metadata)',
    )
    .option('--dtype <t>', 'output float type: float32 or float16', 'float32')
    .option(
      '--per-frame',
      'reduce each frame of a video token set on its own: the budget is split over frames (ratio: max(1, round(n_f·R)) each; --budget: even split, remainder to the first frames), no output mixes frames, every frame keeps a token (needed for merges on Qwen3-VL videos)',
    )
    .option(
      '--json',
      'print one JSON object {method, ratio, budget, n_in, n_padding, n_out, d, <method stats>, warnings, native_setup_ms (onnxruntime set-up after the input is read: environment, sessions, one tiny run per kernel; not overlapped), keep?, assign?, representative?, ms (the method alone, after the set-up; a cold call costs native_setup_ms + ms; on the block path of evs/fastvid it includes reading the input and writing the output, streamed), native_ms (the part of ms spent inside onnxruntime runs; the rest is JS)}',
    );
  addMethodOptions(command);
  addQueryTextOptions(command);
  command.addHelpText(
    'after',
    `
Examples:
  vtc reduce --in tokens.npy --method pool --ratio 0.25 --out pooled.npy --json
  vtc reduce --in bundle.safetensors --method random --budget 288 --seed 1 --out kept.safetensors
  vtc reduce --in bundle.safetensors --method globalcom2 --ratio 0.25 --out gc.safetensors --json   # adds crop_ratios
  vtc reduce --in bundle.safetensors --method visionzip --budget 320 --out vz.safetensors           # 64 per tile: 54 + 10
  vtc reduce --in tokens.npy --method tome --ratio 0.25 --protect 0 --out merged.safetensors
  vtc reduce --in tokens.npy --method cdpruner --budget 64 --query question.npy --theta 0.5 --out kept.npy --json
  vtc reduce --in video.npy --method evs --ratio 0.1 --out kept.safetensors --json             # video.npy: [frames, tokens, d]
  vtc reduce --in hour.npy --method fastvid --ratio 0.1 --out fv.safetensors --json          # 3-D .npy: read a block of frames at a time
  vtc reduce --in hour.npy --method temporal-merge --ratio 0.1 --out tm.safetensors --json   # ⌊budget / tokens per frame⌋ merged frames
  vtc reduce --in hour.npy --method temporal-merge --ratio 0.1 --segment-quotas q.json --out tm.safetensors  # q.json: {"segment": [0,0,…,1,…], "quota": [3, 5, …]}
  vtc reduce --in hour.safetensors --method evs --ratio 0.1 --out kept.safetensors        # video .safetensors: blocks in, rows streamed out
  vtc reduce --in qwen3-video.safetensors --method tome --ratio 0.25 --per-frame --out merged.safetensors

keep indexes input tokens (for a bundle: thumbnail first, then crop 0, crop 1, …);
assign[i] is the output token that input token i went into (−1: AnyRes padding);
representative[o] is the input token whose position (t, h, w), source and grid
cell output o took (merges).
evs, fastvid and temporal-merge read a 3-D .npy [frames, tokens, d] a block
of frames at a time (64 MiB of features; fastvid also one segment of ≤ 64
frames; temporal-merge re-reads merged groups the --cache-mb cache dropped),
never the whole file: the same result as in memory, for videos of any length.
evs and fastvid also read a video .safetensors (as vtc encode writes it) that
way, and write the kept / merged rows to --out as they are produced: the same
file as in memory, without holding the output.

On a bundle every method works on the thumbnail + the unpadded crop tokens, as
LLaVA-NeXT does before its LLM: n_in counts those, n_padding the tokens left
out, and the ratio applies to n_in. An output larger than the budget (only
pool with an explicit --kernel) is a warning on stderr and in "warnings".`,
  );
  command.action(async (opts: Record<string, unknown>) => {
    if ((opts.ratio === undefined) === (opts.budget === undefined))
      throw new UsageError('reduce: give exactly one of --ratio or --budget');
    if (opts.dtype !== 'float32' && opts.dtype !== 'float16')
      throw new UsageError(`reduce: --dtype must be float32 or float16, got ${JSON.stringify(opts.dtype)}`);
    const reducer = getReducer(String(opts.method));
    rejectForeignMethodOptions(reducer, opts);
    // resolveBudget's checks, before the input is read.
    const range = { where: reducer.name, code: 'E_RANGE' };
    if (opts.ratio !== undefined) checkNumber(opts.ratio, 'ratio', { gt: 0, max: 1, ...range });
    if (opts.budget !== undefined) checkInteger(opts.budget, 'budget', { min: 1, ...range });
    const outPath = String(opts.out);
    // Checked before the (possibly long) reduction rather than after it.
    const outExt = extname(outPath).toLowerCase();
    if (outExt !== '.npy' && outExt !== '.safetensors')
      throw new UsageError(
        `${reducer.name}: --out ${outPath}: unsupported output extension ${JSON.stringify(outExt)} (expected .npy or .safetensors)`,
      );
    const inPath = String(opts.in);
    // Temporal methods read a 3-D .npy or a video .safetensors a block of frames at a time and write their output
    // as it is produced (bounded memory, same result and bytes as in memory).
    const blocked =
      opts.perFrame !== true && (await withMethod(reducer.name, () => usesBlockPath(reducer.name, inPath)));
    const tokens = blocked ? undefined : await withMethod(reducer.name, () => loadTokens(inPath));
    // onnxruntime's set-up (environment, sessions, one tiny run per kernel the method declares) runs here, after the
    // input is read and before the clock of `ms` starts. It is not overlapped with the read (onnxruntime-node creates
    // and runs sessions on the main thread), so a cold call costs native_setup_ms + ms; both are reported.
    const setupMs = await warmUpKernels(reducer.native ?? []);
    const spec = { ratio: opts.ratio as number | undefined, budget: opts.budget as number | undefined };
    const methodValues = await withTextQuery(reducer, opts, await loadMethodOptions(reducer, opts));
    const options: Record<string, unknown> = {
      ...spec,
      seed: opts.seed,
      ...methodValues,
      perFrame: opts.perFrame === true,
    };
    // Long reductions (divprune, cluster, tome, cdpruner on 10⁴–10⁵ tokens) draw a bar per stage on a terminal.
    const progress = createProgress();
    let stage: string | undefined;
    options.onProgress = (at: ReduceProgress) => {
      if (at.stage !== stage) {
        progress.stop();
        progress.start(at.total, `${reducer.name}: ${at.stage}`);
        stage = at.stage;
      }
      progress.update(at.done);
    };
    const nativeBefore = nativeTime().ms;
    const started = performance.now();
    const dtype = opts.dtype as 'float32' | 'float16';
    let run: Omit<ReductionRun, 'reduction'> & { reduction: Omit<Reduction, 'tokens'> };
    let d: number;
    try {
      if (tokens) {
        const inMemory = await runReducer(reducer, tokens, options);
        run = inMemory;
        d = inMemory.reduction.tokens.d;
      } else {
        // The output file is written during the run (rows as they are produced), so `ms` includes writing it.
        const streamed = await withMethod(reducer.name, () =>
          reduceFramesFileTo(reducer, inPath, outPath, options, { dtype }),
        );
        run = streamed;
        d = streamed.d;
      }
    } finally {
      progress.stop();
    }
    const ms = performance.now() - started;
    const nativeMs = nativeTime().ms - nativeBefore;
    const { reduction } = run;
    for (const warning of run.warnings) process.stderr.write(`vtc: warning: ${warning}\n`);
    // io/write: atomic, failures name the path.
    if (tokens) await saveTokens(outPath, (run.reduction as Reduction).tokens, { dtype });
    if (opts.json) {
      const { ratio: _r, budget: _b, ...extra } = reduction.stats;
      printJson({
        method: reducer.name,
        ratio: run.ratio,
        budget: run.budget,
        n_in: run.n_in,
        n_padding: run.n_padding,
        n_out: run.n_out,
        d,
        ...extra,
        warnings: run.warnings,
        native_setup_ms: setupMs,
        ...(reduction.keep ? { keep: reduction.keep } : {}),
        ...(reduction.assign ? { assign: reduction.assign } : {}),
        ...(reduction.representative ? { representative: reduction.representative } : {}),
        ms,
        native_ms: nativeMs,
      });
    } else {
      process.stdout.write(
        `${reducer.name}: ${run.n_in} → ${run.n_out} tokens (d = ${d}${run.n_padding ? `; ${run.n_padding} AnyRes padding tokens left out` : ''}) in ${ms.toFixed(1)} ms → ${outPath}\n`,
      );
    }
  });
  return command;
}

/**
 * Runs `load` and puts the method name in front of any VtcError it throws
 * (the loaders name the file and field; the issue asks for the method too).
 */
async function withMethod<T>(method: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (error instanceof VtcError) error.message = `${method}: ${error.message}`;
    throw error;
  }
}
