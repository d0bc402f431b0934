import { cpus } from 'node:os';
import { Command } from 'commander';
import { BENCHMARK_NAMES } from '../../bench/names.js';
import { UsageError } from '../../core/errors.js';
import { checkInteger } from '../../core/validate.js';
import { configureCommand, parseInteger, printJson } from '../run.js';

export function benchCommand(): Command {
  return configureCommand(new Command('bench'))
    .description(`run a performance benchmark and print medians over repeated runs (${BENCHMARK_NAMES.join(', ')})`)
    .argument('[name]', 'benchmark name; all when omitted')
    .option('--runs <n>', 'timed runs per case (median reported)', parseInteger('--runs'), 7)
    .option(
      '--threads <n>',
      "onnxruntime intra-op threads for the native kernels (default: all cores); 1 makes the reducers' cpu_ms comparable with a single-core wall time",
      parseInteger('--threads'),
    )
    .option('--methods <list>', 'only these methods, comma-separated (reducers, scale: e.g. cdpruner,evs)')
    .option('--json', 'print one JSON object {machine, results: {name: [{name, median_ms, min_ms, runs, ...extra}]}}')
    .addHelpText(
      'after',
      `
Examples:
  vtc bench reducers --runs 9
  vtc bench reducers --methods cdpruner,vispruner,dart,evs,fastvid --json
  vtc bench reducers --methods cdpruner,evs --threads 1        # cpu_ms ≈ single-core time, even on a busy machine
  vtc bench scale --methods divprune,tome --json              # up to 100k tokens; VTC_SCALE_SIZES=2880,9216 for fewer sizes`,
    )
    .action(
      async (name: string | undefined, opts: { runs: number; json?: boolean; methods?: string; threads?: number }) => {
        const names = name ? [name] : [...BENCHMARK_NAMES];
        for (const n of names)
          if (!BENCHMARK_NAMES.includes(n))
            throw new UsageError(
              `bench: unknown benchmark ${JSON.stringify(n)} (available: ${BENCHMARK_NAMES.join(', ')})`,
            );
        // The benchmarks import every area (sharp, canvas, OCR, BullMQ): loaded to run them, not for --help.
        const { benchmarks, formatTable } = await import('../../bench/index.js');
        checkInteger(opts.runs, '--runs', { min: 1, where: 'bench' });
        const { setLinalgThreads } = await import('../../core/linalg.js'); // onnxruntime: when run
        if (opts.threads !== undefined)
          setLinalgThreads(checkInteger(opts.threads, '--threads', { min: 1, where: 'bench' }));
        const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`;
        const all: Record<string, unknown[]> = {};
        const log = opts.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
        if (!opts.json) process.stdout.write(`machine: ${machine}\n`);
        for (const n of names) {
          const methods = opts.methods
            ?.split(',')
            .map((m) => m.trim())
            .filter(Boolean);
          const results = await benchmarks[n]!.run({ runs: opts.runs, log, ...(methods ? { methods } : {}) });
          all[n] = results.map((r) => ({
            name: r.name,
            median_ms: r.medianMs,
            min_ms: r.minMs,
            runs: r.runs,
            ...(r.extra ?? {}),
          }));
          if (!opts.json) process.stdout.write(`\n## ${n}: ${benchmarks[n]!.description}\n\n${formatTable(results)}\n`);
        }
        if (opts.json) printJson({ machine, results: all });
      },
    );
}
