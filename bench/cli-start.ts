import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy } from '../core/npy.js';
import { median, runProcess, syntheticFeatures, type Benchmark, type BenchResult } from './harness.js';

/**
 * `vtc bench cli-start`: what a one-shot CLI user waits for. Each case is a
 * fresh process, timed from spawn to exit (wall), `runs` times, the cases
 * taking turns so a change in machine load touches them alike (one untimed
 * round first, so every file is in the page cache):
 *
 * - `node -e 0`: the floor, a Node process that loads nothing;
 * - `vtc --version` and `vtc reduce --help`: start-up alone;
 * - `vtc reduce --method tome --ratio 0.25 --json` on a generated
 *   2880 × 1024 .npy (the LLaVA-NeXT concat shape), with the `ms` (the method)
 *   and `native_setup_ms` (onnxruntime set-up) it reports: the rest of its
 *   wall time is process start, imports, reading the input and writing the output.
 */
const N = 2880;
const D = 1024;

function loadText(): string {
  return loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
}

/** The CLI entry next to this file (dist/cli/main.js), or the source through tsx. */
function cliCommand(): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(fromSource ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  return fromSource ? ['--import', 'tsx', main] : [main];
}

interface Reported {
  ms: number;
  native_setup_ms: number;
  native_ms: number;
}

export const cliStartBenchmark: Benchmark = {
  description: `wall time of fresh processes: node -e 0, vtc --version, vtc reduce --help, and vtc reduce --method tome --ratio 0.25 on ${N}x${D} with the ms and native_setup_ms it reports`,
  async run({ runs, log }) {
    const loadAtStart = loadText();
    log(`load average at start: ${loadAtStart}`);
    const dir = mkdtempSync(join(tmpdir(), 'vtc-bench-cli-start-'));
    try {
      const input = join(dir, 'concat.npy');
      writeFileSync(input, encodeNpy([N, D], syntheticFeatures(N * D, 51)));
      const cli = cliCommand();
      const reduceArgs = ['reduce', '--in', input, '--method', 'tome', '--ratio', '0.25'];
      const cases: { name: string; args: string[] }[] = [
        { name: 'node -e 0', args: ['-e', '0'] },
        { name: 'vtc --version', args: [...cli, '--version'] },
        { name: 'vtc reduce --help', args: [...cli, 'reduce', '--help'] },
        {
          name: `vtc reduce --method tome --ratio 0.25 (${N}x${D} .npy)`,
          args: [...cli, ...reduceArgs, '--out', join(dir, 'out.safetensors'), '--json'],
        },
      ];
      const wall = cases.map((): number[] => []);
      const reported: Reported[] = [];
      for (let round = -1; round < runs; round++) {
        for (const [i, { name, args }] of cases.entries()) {
          const result = await runProcess(process.execPath, args);
          if (result.code !== 0) throw new Error(`bench cli-start: ${name} failed: ${result.stderr.trim()}`);
          if (round < 0) continue;
          wall[i]!.push(result.ms);
          if (i === cases.length - 1) reported.push(JSON.parse(result.stdout) as Reported);
        }
      }
      const loadAtEnd = loadText();
      log(`load average at end: ${loadAtEnd}`);
      const results: BenchResult[] = cases.map(({ name }, i) => ({
        name,
        medianMs: median(wall[i]!),
        minMs: Math.min(...wall[i]!),
        runs,
        extra: { load_start: loadAtStart, load_end: loadAtEnd },
      }));
      const reduce = results[results.length - 1]!;
      const methodMs = median(reported.map((r) => r.ms));
      const setupMs = median(reported.map((r) => r.native_setup_ms));
      reduce.extra = {
        ...reduce.extra,
        method_ms: +methodMs.toFixed(1),
        native_ms: +median(reported.map((r) => r.native_ms)).toFixed(1),
        native_setup_ms: +setupMs.toFixed(1),
        // Process start, imports, reading the input and writing the output: the wall time the method does not explain.
        rest_ms: Math.round(
          median(wall[wall.length - 1]!.map((ms, r) => ms - reported[r]!.ms - reported[r]!.native_setup_ms)),
        ),
      };
      for (const r of results) log(`${r.name}: median ${r.medianMs.toFixed(0)} ms (min ${r.minMs.toFixed(0)})`);
      return results;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
