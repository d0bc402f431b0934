import { spawn } from 'node:child_process';

/**
 * Benchmark helpers: run a function repeatedly and report the median, so
 * numbers are stable on a busy 2-core machine. Benchmarks are never timed tests.
 */
export interface BenchResult {
  name: string;
  /** Median wall time in milliseconds. */
  medianMs: number;
  minMs: number;
  runs: number;
  /** Extra figures (GFLOP/s, pages/s, …). */
  extra?: Record<string, number | string>;
}

export interface Benchmark {
  description: string;
  /** `methods`: only these (for benchmarks over named methods, e.g. reducers). */
  run(options: { runs: number; log: (line: string) => void; methods?: string[] }): Promise<BenchResult[]>;
}

export async function measure(
  name: string,
  runs: number,
  fn: () => Promise<unknown> | unknown,
  warmup = 1,
): Promise<BenchResult> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const mid = Math.floor(times.length / 2);
  const medianMs = times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
  return { name, medianMs, minMs: times[0]!, runs };
}

/** Deterministic pseudo-random features for benchmarks (no Math.random). */
export function syntheticFeatures(count: number, seed = 1): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state / 4294967296 - 0.5;
  }
  return out;
}

export function formatTable(results: BenchResult[]): string {
  const extraKeys = [...new Set(results.flatMap((r) => Object.keys(r.extra ?? {})))];
  const header = ['benchmark', 'median ms', 'min ms', 'runs', ...extraKeys];
  const rows = results.map((r) => [
    r.name,
    r.medianMs.toFixed(2),
    r.minMs.toFixed(2),
    String(r.runs),
    ...extraKeys.map((k) => String(r.extra?.[k] ?? '')),
  ]);
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** The median of a list of numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface ProcessRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to the child's exit (its streams closed), in milliseconds. */
  ms: number;
}

/** Runs a fresh process to its end, collecting its output and its wall time. */
export function runProcess(command: string, args: readonly string[]): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - started }));
  });
}
