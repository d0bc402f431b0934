import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy } from '../core/npy.js';
import { createTokenSet } from '../core/tokenset.js';
import { matmulABt, matrix, nativeTime, normalizeRows } from '../core/linalg.js';
import { reducers } from '../reducers/index.js';
import { median, runProcess, syntheticFeatures, type Benchmark, type BenchResult } from './harness.js';

/**
 * `vtc bench pytorch`: divprune, tome and cluster on the LLaVA-NeXT concat
 * shape (thumbnail + 2×2 crops = 2880 × 1024) at 25%, in one run:
 *
 * - warm: the library's median per call in this process over ROUNDS rounds
 *   of `runs` calls, after WARMUP_CALLS calls (the first calls still pay V8's
 *   tier-up and first-touch page faults: those belong to cold); each round
 *   follows a PyTorch process's own round, so noise on a shared machine lands
 *   on both sides alike;
 * - cold: the `ms` that `vtc reduce … --json` reports in a fresh process
 *   (the method alone, median of COLD_PROCESSES processes); with its `native_setup_ms`
 *   (onnxruntime set-up run just before the method, not overlapped) as
 *   cold_with_setup_ms; and that process's wall time;
 * - PyTorch: bench/torch_reference.py, the same rules written in PyTorch with
 *   2 threads, the median of its ROUNDS processes' calls, each after the same WARMUP_CALLS — only when a python3 with torch is found
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
/** Rounds of warm timings, each after a PyTorch process's own (runs calls per side per round). */
const ROUNDS = 3;
/** tome's two GEMMs at 25 %: its rounds' A·Bᵀ on 1440 and 720 unit rows. */
const GEMM_ROWS = [N / 2, N / 4];

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
      const script = fileURLToPath(new URL('../../bench/torch_reference.py', import.meta.url));
      const torchScript = existsSync(script) ? script : fileURLToPath(new URL('./torch_reference.py', import.meta.url));
      if (!python) log('PyTorch not found (python3 -c "import torch" fails): the PyTorch column is skipped');
      let torchVersion = 'not installed';
      const cases = [...METHODS, ...GEMM_ROWS.map((rows) => `gemm_${rows}`)];
      const torchTimes = new Map<string, number[]>(cases.map((name) => [name, []]));
      const warmTimes = new Map<string, number[]>(cases.map((name) => [name, []]));
      const warmNative = new Map<string, number[]>(cases.map((name) => [name, []]));
      const calls = new Map<string, () => Promise<unknown>>();
      for (const method of METHODS) {
        const options = { ratio: RATIO, seed: 1, ...(OPTIONS[method] ?? {}) };
        calls.set(method, () => reducers[method]!.run(tokens, options));
      }
      for (const rows of GEMM_ROWS) calls.set(`gemm_${rows}`, gemmCall(data, rows));
      // Warm timings alternate with PyTorch's, round by round, so a burst of noise on this shared VM lands on both.
      for (let round = 0; round < ROUNDS; round++) {
        if (python) {
          const result = await runProcess(python, [
            torchScript,
            input,
            String(RATIO),
            String(runs),
            '2',
            String(WARMUP_CALLS),
          ]);
          if (result.code !== 0)
            throw new Error(`bench pytorch: ${python} failed: ${result.stderr.trim().split('\n').pop()}`);
          const parsed = JSON.parse(result.stdout) as { torch: string; methods: Record<string, { times: number[] }> };
          torchVersion = parsed.torch;
          for (const name of cases) torchTimes.get(name)!.push(...(parsed.methods[name]?.times ?? []));
        }
        for (const name of cases) {
          const call = calls.get(name)!;
          if (round === 0) for (let i = 0; i < WARMUP_CALLS; i++) await call();
          for (let i = 0; i < runs; i++) {
            const nativeBefore = nativeTime().ms;
            const started = performance.now();
            await call();
            warmTimes.get(name)!.push(performance.now() - started);
            warmNative.get(name)!.push(nativeTime().ms - nativeBefore);
          }
        }
      }
      const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
      const results: BenchResult[] = [];
      for (const name of cases) {
        const times = warmTimes.get(name)!;
        const warmMs = median(times);
        const isGemm = name.startsWith('gemm_');
        const rows = isGemm ? Number(name.slice(5)) : 0;
        const result: BenchResult = {
          name: isGemm ? `gemm ${rows}x${D} · (${rows}x${D})ᵀ` : `${name} ${N}x${D} R=${RATIO}`,
          medianMs: warmMs,
          minMs: Math.min(...times),
          runs: times.length,
        };
        const extra: Record<string, number | string> = { method: name };
        if (isGemm) extra.gmac_per_s = +((rows * rows * D) / (warmMs * 1e6)).toFixed(1);
        else {
          const warmNativeMs = median(warmNative.get(name)!);
          Object.assign(extra, {
            warm_native_ms: +warmNativeMs.toFixed(1),
            warm_js_ms: +(warmMs - warmNativeMs).toFixed(1),
          });
          Object.assign(extra, await coldCalls(cli, input, join(dir, 'out.npy'), name, warmMs));
        }
        extra.torch = torchVersion;
        const torchMs = torchTimes.get(name)!.length > 0 ? median(torchTimes.get(name)!) : undefined;
        if (torchMs !== undefined) {
          extra.torch_warm_ms = +torchMs.toFixed(1);
          extra.warm_over_torch = +(warmMs / torchMs).toFixed(2);
        }
        result.extra = extra;
        log(
          `${result.name}: warm ${warmMs.toFixed(1)} ms${extra.warm_native_ms !== undefined ? ` (native ${extra.warm_native_ms})` : ''}${extra.cold_ms !== undefined ? `, cold ${extra.cold_ms} ms (native ${extra.cold_native_ms}; ×${extra.cold_over_warm}; with set-up ${extra.cold_with_setup_ms} ms, ×${extra.cold_with_setup_over_warm})` : ''}${torchMs !== undefined ? `, PyTorch ${torchMs.toFixed(1)} ms (×${extra.warm_over_torch})` : ''}`,
        );
        results.push(result);
      }
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
function gemmCall(data: Float32Array, rows: number): () => Promise<unknown> {
  const split = (offset: number) => {
    const out = new Float32Array(rows * D);
    for (let r = 0; r < rows; r++) out.set(data.subarray((2 * r + offset) * D, (2 * r + offset + 1) * D), r * D);
    return normalizeRows(matrix(rows, D, out));
  };
  const a = split(0);
  const b = split(1);
  // Written into one array, as PyTorch's caching allocator reuses its output: the row times the GEMM, not fresh pages.
  const product = new Float32Array(rows * rows);
  return () => matmulABt(a, b, 'native', product);
}

/** COLD_PROCESSES fresh `vtc reduce … --json` calls: medians of their `ms`, native part, set-up and wall time. */
async function coldCalls(
  cli: string,
  input: string,
  out: string,
  method: string,
  warmMs: number,
): Promise<Record<string, number>> {
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
      out,
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
  return {
    cold_ms: +coldMs.toFixed(1),
    cold_native_ms: +median(coldNative).toFixed(1),
    cold_over_warm: +(coldMs / warmMs).toFixed(2),
    cold_with_setup_ms: +median(coldWithSetup).toFixed(1),
    cold_with_setup_over_warm: +(median(coldWithSetup) / warmMs).toFixed(2),
    cold_process_ms: Math.round(median(wall)),
  };
}
