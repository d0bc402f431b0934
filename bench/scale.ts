import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../core/errors.js';
import { matmulABt, matrix } from '../core/linalg.js';
import { createTokenSet, type TokenSet, type TokenSource } from '../core/tokenset.js';
import { reducers } from '../reducers/index.js';
import { runReducer } from '../reducers/run.js';
import { measure, syntheticFeatures, type Benchmark, type BenchResult } from './harness.js';

/**
 * `vtc bench scale`: every registered reducer on long-video sizes, budget 10%:
 * n = 2,880, 9,216, 36,864 (d = 1024) and 100,000 (d = 256). Each
 * measurement runs in its own child process (`node bench/scale.js --child
 * METHOD N D`), so the peak RSS it reports (the child's maxRSS: input
 * features, the method's working memory, onnxruntime) belongs to that one
 * method and size. Reported per method and size: median ms, peak RSS, the
 * growth exponent of time in n over the d = 1024 sizes, and the arithmetic
 * bound — the multiply-adds the rule needs divided by the GEMM rate measured
 * at the start of the same run.
 *
 * Partial runs: `--methods divprune,tome` (or VTC_SCALE_METHODS) and
 * VTC_SCALE_SIZES=2880,9216 restrict the table.
 */
export const SCALE_SIZES: { n: number; d: number }[] = [
  { n: 2880, d: 1024 },
  { n: 9216, d: 1024 },
  { n: 36864, d: 1024 },
  { n: 100000, d: 256 },
];

export const SCALE_RATIO = 0.1;

/** cluster runs its full 10 Lloyd iterations (tolerance 0), as the targets are stated for 10 iterations. */
const METHOD_OPTIONS: Record<string, Record<string, unknown>> = { cluster: { iterations: 10, tolerance: 0 } };

/** Peak RSS target for every method at every size, and the bound factor for divprune, cluster and tome at 36,864 × 1024. */
const RSS_TARGET_MB = 2048;
const BOUND_TARGET = 2;

/**
 * The scale inputs: video-like frames of 24×24 tokens (10×16 at 100k), each
 * frame a source with its timestamp, plus CLS-like scores; methods with the
 * AnyRes scope get the same n as a bundle (thumbnail + crop grid).
 */
export function scaleTokens(n: number, d: number, anyres: boolean): TokenSet {
  const [rows, cols] = n % 576 === 0 ? [24, 24] : n % 400 === 0 ? [20, 20] : [10, 16];
  const perTile = rows * cols;
  const tiles = n / perTile;
  if (!Number.isInteger(tiles)) throw new Error(`scale: n = ${n} is not a whole number of ${rows}x${cols} tiles`);
  const data = syntheticFeatures(n * d, 41 + n);
  const score = syntheticFeatures(n, 43 + n).map((v) => v * 8);
  const source = new Int32Array(n);
  for (let t = 0; t < tiles; t++) source.fill(t, t * perTile, (t + 1) * perTile);
  if (!anyres) {
    const sources: TokenSource[] = Array.from({ length: tiles }, (_, f) => ({
      kind: 'frame',
      index: f,
      rows,
      cols,
      time: f / 2,
    }));
    return createTokenSet({ data, n, d, sources, source, score });
  }
  // Thumbnail + (tiles − 1) crops laid out on the most square grid, image exactly the crop canvas (no padding).
  const crops = tiles - 1;
  let gridRows = Math.floor(Math.sqrt(crops));
  while (crops % gridRows !== 0) gridRows--;
  const gridCols = crops / gridRows;
  const sources: TokenSource[] = [{ kind: 'thumbnail', index: 0, rows, cols }];
  for (let c = 0; c < crops; c++) sources.push({ kind: 'crop', index: c, rows, cols });
  const anyresInfo = {
    gridRows,
    gridCols,
    imageWidth: gridCols * cols * 14,
    imageHeight: gridRows * rows * 14,
    patchRows: rows,
    patchCols: cols,
  };
  return createTokenSet({ data, n, d, sources, source, score, anyres: anyresInfo });
}

/**
 * Multiply-adds the method's rule needs (undefined when it has no GEMM-shaped
 * core): DivPrune n²·d/2 for the nearest neighbours (symmetric) + (k−1)·n·d
 * for the picked rows; k-means (k−1)·n·d of k-means++ rows + (iterations+1)·n·k·d
 * of assignments; ToMe Σ_rounds ⌈m/2⌉·⌊m/2⌋·d.
 */
export function arithmeticBound(
  method: string,
  n: number,
  d: number,
  k: number,
  stats: Record<string, unknown>,
): number | undefined {
  if (method === 'divprune') return (n * n * d) / 2 + (k - 1) * n * d;
  if (method === 'cluster') return (k - 1) * n * d + ((Number(stats.iterations) || 0) + 1) * n * k * d;
  if (method === 'tome') {
    let m = n;
    let total = 0;
    while (m > k) {
      total += Math.ceil(m / 2) * Math.floor(m / 2) * d;
      m -= Math.min(m - k, Math.floor(m / 2));
    }
    return total;
  }
  return undefined;
}

/** Multiply-adds per second of the native GEMM on a reducer-shaped product (4096×1024 · (8192×1024)ᵀ). */
async function gemmRate(runs: number): Promise<number> {
  const a = matrix(4096, 1024, syntheticFeatures(4096 * 1024, 1));
  const b = matrix(8192, 1024, syntheticFeatures(8192 * 1024, 2));
  const result = await measure('gemm', Math.max(3, runs), () => matmulABt(a, b, 'native'));
  return (4096 * 8192 * 1024) / (result.medianMs / 1000);
}

interface ChildResult {
  ms: number[];
  rss_mb: number;
  n_out: number;
  stats: Record<string, unknown>;
}

/** One method at one size in a fresh process; rejects with the child's last stderr line when it fails. */
function runChild(method: string, n: number, d: number, repeats: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', method, String(n), String(d), String(repeats)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out) as ChildResult);
      else reject(new Error(err.trim().split('\n').pop() || `exit ${code}`));
    });
  });
}

/** Child side: build the input, run the method `repeats` times (after one warm-up when repeats > 1), print times and maxRSS. */
async function childMain(method: string, n: number, d: number, repeats: number): Promise<void> {
  const reducer = reducers[method];
  if (!reducer) throw new Error(`unknown method ${method}`);
  const tokens = scaleTokens(n, d, reducer.scope === 'anyres');
  const options = { ratio: SCALE_RATIO, seed: 1, ...(METHOD_OPTIONS[method] ?? {}) };
  if (repeats > 1) await runReducer(reducer, tokens, options);
  const ms: number[] = [];
  let last: Awaited<ReturnType<typeof runReducer>> | undefined;
  for (let r = 0; r < repeats; r++) {
    const started = performance.now();
    last = await runReducer(reducer, tokens, options);
    ms.push(performance.now() - started);
  }
  const { stats } = last!.reduction;
  const small = Object.fromEntries(
    Object.entries(stats).filter(([, v]) => typeof v === 'number' || typeof v === 'string'),
  );
  process.stdout.write(
    JSON.stringify({ ms, rss_mb: process.resourceUsage().maxRSS / 1024, n_out: last!.n_out, stats: small }),
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Least-squares slope of log(ms) against log(n). */
function growthExponent(points: { n: number; ms: number }[]): number | undefined {
  if (points.length < 2) return undefined;
  const xs = points.map((p) => Math.log(p.n));
  const ys = points.map((p) => Math.log(p.ms));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * (ys[i]! - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

export const scaleBenchmark: Benchmark = {
  description:
    'every reducer at n = 2,880 / 9,216 / 36,864 (d 1024) and 100,000 (d 256), budget 10%: median ms, peak RSS (child process), growth exponent, arithmetic bound',
  async run({ runs, log, methods: methodsFlag }) {
    log(
      `load average at start: ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
    );
    const rate = await gemmRate(runs);
    log(`GEMM rate: ${(rate / 1e9).toFixed(1)} G multiply-adds/s`);
    // --methods (or VTC_SCALE_METHODS) restricts the methods; VTC_SCALE_SIZES the sizes.
    const onlyMethods = methodsFlag ?? process.env.VTC_SCALE_METHODS?.split(',').filter(Boolean);
    for (const m of onlyMethods ?? [])
      if (!reducers[m])
        throw new UsageError(
          `bench scale: unknown method ${JSON.stringify(m)} (available: ${Object.keys(reducers).join(', ')})`,
        );
    const onlySizes = process.env.VTC_SCALE_SIZES?.split(',').filter(Boolean).map(Number);
    const methods = Object.keys(reducers).filter((m) => !onlyMethods || onlyMethods.includes(m));
    const sizes = SCALE_SIZES.filter((s) => !onlySizes || onlySizes.includes(s.n));
    const results: BenchResult[] = [];
    for (const method of methods) {
      const growth: { n: number; ms: number }[] = [];
      const rows: BenchResult[] = [];
      for (const { n, d } of sizes) {
        const k = Math.max(1, Math.round(n * SCALE_RATIO));
        // Second-long cases once (one cold run, which includes onnxruntime set-up); small ones as a median after a warm-up.
        const repeats = n <= 9216 ? Math.min(runs, 3) : 1;
        const name = `${method} ${n}x${d}`;
        let child: ChildResult;
        try {
          child = await runChild(method, n, d, repeats);
        } catch (error) {
          log(`${name}: FAILED ${(error as Error).message}`);
          rows.push({
            name,
            medianMs: Number.NaN,
            minMs: Number.NaN,
            runs: 0,
            extra: { method, n, d, error: (error as Error).message },
          });
          continue;
        }
        const medianMs = median(child.ms);
        if (d === 1024) growth.push({ n, ms: medianMs });
        const bound = arithmeticBound(method, n, d, k, child.stats);
        const extra: Record<string, number | string> = {
          method,
          n,
          d,
          n_out: child.n_out,
          peak_rss_mb: Math.round(child.rss_mb),
          rss_ok: child.rss_mb < RSS_TARGET_MB ? 'yes' : 'NO',
        };
        if (typeof child.stats.iterations === 'number') extra.iterations = child.stats.iterations;
        if (bound !== undefined) {
          const boundMs = (bound / rate) * 1000;
          extra.bound_ms = Math.round(boundMs);
          extra.x_bound = +(medianMs / boundMs).toFixed(2);
          if (n === 36864 && ['divprune', 'cluster', 'tome'].includes(method))
            extra.bound_ok = medianMs <= BOUND_TARGET * boundMs ? 'yes' : 'NO';
        }
        log(
          `${name}: ${medianMs.toFixed(0)} ms, peak RSS ${Math.round(child.rss_mb)} MB${bound !== undefined ? `, ${extra.x_bound}× bound` : ''}`,
        );
        rows.push({ name, medianMs, minMs: Math.min(...child.ms), runs: child.ms.length, extra });
      }
      const exponent = growthExponent(growth);
      if (exponent !== undefined) for (const row of rows) row.extra!.growth = +exponent.toFixed(2);
      results.push(...rows);
    }
    log(
      `load average at end: ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
    );
    for (const r of results) r.extra!.gemm_gmacs = +(rate / 1e9).toFixed(1);
    return results;
  },
};

if (process.argv[2] === '--child' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const [method, n, d, repeats] = process.argv.slice(3);
  childMain(method!, Number(n), Number(d), Number(repeats)).catch((error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}
