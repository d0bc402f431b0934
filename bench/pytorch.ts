import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy } from '../core/npy.js';
import { createTokenSet } from '../core/tokenset.js';
import { matmulABt, matrix, nativeTime, normalizeRows } from '../core/linalg.js';
import { reducers } from '../reducers/index.js';
import { measure, median, runProcess, syntheticFeatures, type Benchmark, type BenchResult } from './harness.js';

/**
 * `vtc bench pytorch`: divprune, tome and cluster on the LLaVA-NeXT concat
 * shape (thumbnail + 2×2 crops = 2880 × 1024) at 25%, in one run:
 *
 * - warm: the library's median per call in this process, after WARMUP_CALLS
 *   calls (the first calls still pay V8's tier-up and first-touch page faults:
 *   those belong to cold);
 * - cold: the `ms` that `vtc reduce … --json` reports in a fresh process
 *   (the method alone, median of COLD_PROCESSES processes); with its `native_setup_ms`
 *   (onnxruntime set-up run just before the method, not overlapped) as
 *   cold_with_setup_ms; and that process's wall time;
 * - PyTorch: bench/torch_reference.py, the same rules written in PyTorch with
 *   2 threads, warm median after the same WARMUP_CALLS — only when a python3 with torch is found
 *   ($VTC_TORCH_PYTHON, /usr/bin/python3 or python3 on PATH); skipped otherwise.
 *
 * cluster runs its full 10 Lloyd iterations (tolerance 0) on both sides.
 * Two more rows time tome's GEMMs alone (R×d unit rows times their
 * transpose, R = 1440 and 720, its two rounds at 25%) in onnxruntime and in
 * PyTorch, so the share of the gap that is the BLAS itself is measured.
 */
const N = 2880;
const D = 1024;
const RATIO = 0.25;
const METHODS = ['divprune', 'tome', 'cluster'] as const;
const OPTIONS: Record<string, Record<string, unknown>> = { cluster: { iterations: 10, tolerance: 0 } };
const CLI_FLAGS: Record<string, string[]> = { cluster: ['--iterations', '10', '--tolerance', '0'] };
/** Calls before warm timing starts, on both sides. */
const WARMUP_CALLS = 3;
/** Fresh `vtc reduce` processes per method for the cold median. */
const COLD_PROCESSES = 5;

/** A python3 that imports torch, or undefined. */
function torchPython(): string | undefined {
  for (const candidate of [process.env.VTC_TORCH_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ['-c', 'import torch, numpy'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // no torch here
    }
  }
  return undefined;
}

export const pytorchBenchmark: Benchmark = {
  description:
    'divprune, tome, cluster on 2880x1024 at 25%: warm per call, cold CLI call, and a warm PyTorch implementation of the same rule (2 threads)',
  async run({ runs, log }) {
    log(
      `load average at start: ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'vtc-bench-pytorch-'));
    try {
      const data = syntheticFeatures(N * D, 51);
      const input = join(dir, 'concat.npy');
      writeFileSync(input, encodeNpy([N, D], data));
      const tokens = createTokenSet({ data, n: N, d: D });
      const python = torchPython();
      let torch: Record<string, { median_ms: number }> | undefined;
      let torchVersion = 'not installed';
      if (python) {
        const script = fileURLToPath(new URL('../../bench/torch_reference.py', import.meta.url));
        const result = await runProcess(python, [
          existsSync(script) ? script : fileURLToPath(new URL('./torch_reference.py', import.meta.url)),
          input,
          String(RATIO),
          String(runs),
          '2',
          String(WARMUP_CALLS),
        ]);
        if (result.code !== 0)
          throw new Error(`bench pytorch: ${python} failed: ${result.stderr.trim().split('\n').pop()}`);
        const parsed = JSON.parse(result.stdout) as { torch: string; methods: Record<string, { median_ms: number }> };
        torch = parsed.methods;
        torchVersion = parsed.torch;
      } else log('PyTorch not found (python3 -c "import torch" fails): the PyTorch column is skipped');
      const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
      const results: BenchResult[] = [];
      for (const method of METHODS) {
        const reducer = reducers[method]!;
        const options = { ratio: RATIO, seed: 1, ...(OPTIONS[method] ?? {}) };
        // Where time goes: the part of each call spent inside onnxruntime (the rest is JS).
        const nativePerCall: number[] = [];
        const warm = await measure(
          `${method} ${N}x${D} R=${RATIO}`,
          runs,
          async () => {
            const before = nativeTime().ms;
            await reducer.run(tokens, options);
            nativePerCall.push(nativeTime().ms - before);
          },
          WARMUP_CALLS,
        );
        const warmNative = median(nativePerCall.slice(WARMUP_CALLS));
        const cold: number[] = [];
        const coldNative: number[] = [];
        const coldWithSetup: number[] = [];
        const wall: number[] = [];
        for (let p = 0; p < COLD_PROCESSES; p++) {
          const result = await runProcess(process.execPath, [
            cli,
            'reduce',
            '--in',
            input,
            '--method',
            method,
            '--ratio',
            String(RATIO),
            ...(CLI_FLAGS[method] ?? []),
            '--out',
            join(dir, 'out.npy'),
            '--json',
          ]);
          if (result.code !== 0)
            throw new Error(`bench pytorch: vtc reduce --method ${method} failed: ${result.stderr.trim()}`);
          const reported = JSON.parse(result.stdout) as { ms: number; native_ms: number; native_setup_ms: number };
          cold.push(reported.ms);
          coldNative.push(reported.native_ms);
          coldWithSetup.push(reported.ms + reported.native_setup_ms);
          wall.push(result.ms);
        }
        const coldMs = median(cold);
        const extra: Record<string, number | string> = {
          method,
          warm_native_ms: +warmNative.toFixed(1),
          warm_js_ms: +(warm.medianMs - warmNative).toFixed(1),
          cold_ms: +coldMs.toFixed(1),
          cold_native_ms: +median(coldNative).toFixed(1),
          cold_over_warm: +(coldMs / warm.medianMs).toFixed(2),
          cold_with_setup_ms: +median(coldWithSetup).toFixed(1),
          cold_with_setup_over_warm: +(median(coldWithSetup) / warm.medianMs).toFixed(2),
          cold_process_ms: Math.round(median(wall)),
          torch: torchVersion,
        };
        const torchMs = torch?.[method]?.median_ms;
        if (torchMs !== undefined) {
          extra.torch_warm_ms = +torchMs.toFixed(1);
          extra.warm_over_torch = +(warm.medianMs / torchMs).toFixed(2);
        }
        warm.extra = extra;
        log(
          `${method}: warm ${warm.medianMs.toFixed(1)} ms (native ${warmNative.toFixed(1)}), cold ${coldMs.toFixed(1)} ms (native ${extra.cold_native_ms}; ×${extra.cold_over_warm}; with set-up ${extra.cold_with_setup_ms} ms, ×${extra.cold_with_setup_over_warm})${torchMs !== undefined ? `, PyTorch ${torchMs.toFixed(1)} ms (×${extra.warm_over_torch})` : ''}`,
        );
        results.push(warm);
      }
      for (const rows of [N / 2, N / 4])
        results.push(await gemmRow(data, rows, runs, torch?.[`gemm_${rows}`]?.median_ms));
      log(
        `load average at end: ${loadavg()
          .map((v) => v.toFixed(2))
          .join(' ')}`,
      );
      return results;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** tome's round GEMM alone: the even and odd rows of the first 2·rows tokens, unit-normalised, A·Bᵀ natively. */
async function gemmRow(
  data: Float32Array,
  rows: number,
  runs: number,
  torchMs: number | undefined,
): Promise<BenchResult> {
  const split = (offset: number) => {
    const out = new Float32Array(rows * D);
    for (let r = 0; r < rows; r++) out.set(data.subarray((2 * r + offset) * D, (2 * r + offset + 1) * D), r * D);
    return normalizeRows(matrix(rows, D, out));
  };
  const a = split(0);
  const b = split(1);
  // Written into one array, as PyTorch's caching allocator reuses its output: the row times the GEMM, not fresh pages.
  const product = new Float32Array(rows * rows);
  const result = await measure(
    `gemm ${rows}x${D} · (${rows}x${D})ᵀ`,
    runs,
    () => matmulABt(a, b, 'native', product),
    WARMUP_CALLS,
  );
  const gmacs = (rows * rows * D) / (result.medianMs * 1e6);
  result.extra = { method: `gemm_${rows}`, gmac_per_s: +gmacs.toFixed(1) };
  if (torchMs !== undefined) {
    result.extra.torch_warm_ms = +torchMs.toFixed(1);
    result.extra.warm_over_torch = +(result.medianMs / torchMs).toFixed(2);
  }
  return result;
}
