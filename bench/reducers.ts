import { loadavg } from 'node:os';
import { UsageError } from '../core/errors.js';
import { createTokenSet, type TokenSet, type TokenSource } from '../core/tokenset.js';
import { reducers } from '../reducers/index.js';
import { measure, syntheticFeatures, type Benchmark, type BenchResult } from './harness.js';

/** One benchmark input: a token set and the reduction spec to apply to it. */
interface ReducerCase {
  label: string;
  tokens: TokenSet;
  spec: { ratio?: number; budget?: number };
}

function scores(n: number, seed: number): Float32Array {
  return syntheticFeatures(n, seed).map((v) => v * 8);
}

/** (a) LLaVA-1.5: one 24×24 CLIP-L/336 tile, 1024-d, kept to 64 tokens. */
function llava15Case(): ReducerCase {
  const n = 576;
  const d = 1024;
  return {
    label: 'a 576x1024→64',
    tokens: createTokenSet({ data: syntheticFeatures(n * d, 11), n, d, score: scores(n, 12) }),
    spec: { budget: 64 },
  };
}

/** (b) LLaVA-NeXT AnyRes bundle: thumbnail + 2×2 crops of 24×24, 1024-d, a 672×672 image, R = 0.25. */
function anyresCase(): ReducerCase {
  const T = 576;
  const d = 1024;
  const tiles = 5;
  const n = T * tiles;
  const sources: TokenSource[] = [{ kind: 'thumbnail', index: 0, rows: 24, cols: 24 }];
  for (let c = 0; c < 4; c++) sources.push({ kind: 'crop', index: c, rows: 24, cols: 24 });
  const source = new Int32Array(n);
  for (let t = 0; t < tiles; t++) source.fill(t, t * T, (t + 1) * T);
  const tokens = createTokenSet({
    data: syntheticFeatures(n * d, 21),
    n,
    d,
    sources,
    source,
    score: scores(n, 22),
    anyres: { gridRows: 2, gridCols: 2, imageWidth: 672, imageHeight: 672, patchRows: 24, patchCols: 24 },
  });
  return { label: 'b 5x576x1024 R=0.25', tokens, spec: { ratio: 0.25 } };
}

/** (c) Video: 32 frames of 14×14 SigLIP tokens, 1152-d, R = 0.1 (frame sources: the video methods run here). */
function videoCase(): ReducerCase {
  const frames = 32;
  const T = 196;
  const d = 1152;
  const n = frames * T;
  const sources: TokenSource[] = Array.from({ length: frames }, (_, f) => ({
    kind: 'frame',
    index: f,
    rows: 14,
    cols: 14,
  }));
  const source = new Int32Array(n);
  for (let f = 0; f < frames; f++) source.fill(f, f * T, (f + 1) * T);
  return {
    label: 'c 32x196x1152 R=0.1',
    tokens: createTokenSet({ data: syntheticFeatures(n * d, 31), n, d, sources, source, score: scores(n, 32) }),
    spec: { ratio: 0.1 },
  };
}

/** Targets for case (b) on the 2-core reference machine (issue 3; cdpruner, vispruner, dart: issue 12). */
const TARGETS_B: Record<string, number> = {
  globalcom2: 5,
  pool: 2,
  random: 2,
  tome: 150,
  divprune: 300,
  cluster: 500,
  cdpruner: 1000,
  vispruner: 150,
  dart: 50,
};
/** Targets for case (c), the video methods (issue 12). */
const TARGETS_C: Record<string, number> = { evs: 30, fastvid: 300 };

/** G (10⁹) with two decimals. */
function giga(count: number): string {
  return `${(count / 1e9).toFixed(2)} G`;
}

/**
 * The dominant operation count of the issue-12 methods on this input, as
 * multiply-adds (MAC) next to the time: what the kernel has to do, so a time
 * can be read as a rate. Derived from the shapes and the reduction's stats.
 */
function operationCount(method: string, tokens: TokenSet, stats: Record<string, unknown>): string | undefined {
  const { n, d } = tokens;
  if (method === 'cdpruner') {
    // Kernel rows: the whole cosine Gram n²·d up to 4096 tokens (one native GEMM), beyond that one GEMV n·d per
    // row the greedy asked for (stats.kernel_rows ≤ rank + 1); greedy updates Σ_{t<rows} t·n (vector × matrix per pick).
    const rows = stats.kernel_rows as number;
    const kernel = stats.full_gram
      ? `${giga(n * n * d)} MAC Gram`
      : `${giga(rows * n * d)} MAC for ${rows} kernel rows`;
    return `${kernel} + ${giga((n * rows * (rows - 1)) / 2)} MAC greedy`;
  }
  if (method === 'vispruner') {
    const tiles = (stats.budgets as number[]).length;
    const perTile = n / tiles;
    return `${giga(tiles * perTile * perTile * d)} MAC Gram per tile`;
  }
  if (method === 'dart') {
    const pivots = (stats.pivots as number[]).length;
    return `${giga(2 * n * d + pivots * n * d)} MAC (norms + pivot cosines)`;
  }
  if (method === 'evs') {
    const perFrame = stats.tokens_per_frame as number;
    return `${giga(3 * (n - perFrame) * d)} MAC (cosines) + sort of ${n}`;
  }
  if (method === 'fastvid') {
    const frames = stats.frames as number;
    const filtered = (stats.tokens_per_frame as number) - (stats.salient as number);
    const segments = stats.segments as number[];
    const anchors = stats.anchor_context as number[];
    let merge = 0;
    let offset = 0;
    for (const length of segments) {
      for (let f = offset; f < offset + length; f++) merge += length * filtered * anchors[f]! * d;
      offset += length;
    }
    return `${giga(frames * filtered * filtered * d)} MAC distances + ${giga(merge)} MAC merging`;
  }
  return undefined;
}

/**
 * Every registered reducer on the three shapes; median ms per method.
 * globalcom2 only runs on the AnyRes bundle (b).
 */
export const reducersBenchmark: Benchmark = {
  description:
    'every reducer on (a) 576x1024→64, (b) AnyRes 5x576x1024 R=0.25, (c) video 32x196x1152 R=0.1 (evs, fastvid: (c) only)',
  async run({ runs, log, methods }) {
    for (const m of methods ?? [])
      if (!reducers[m])
        throw new UsageError(
          `bench reducers: unknown method ${JSON.stringify(m)} (available: ${Object.keys(reducers).join(', ')})`,
        );
    // Timings on a shared 2-core machine depend on what else runs: say so next to the numbers.
    log(
      `load average at start: ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
    );
    const results: BenchResult[] = [];
    for (const make of [llava15Case, anyresCase, videoCase]) {
      const input = make();
      for (const reducer of Object.values(reducers)) {
        if (methods && !methods.includes(reducer.name)) continue;
        if (reducer.scope === 'anyres' && !input.tokens.anyres) continue;
        // Video methods need frame sources: case (c) only.
        if (reducer.scope === 'video' && input.tokens.sources[0]!.kind !== 'frame') continue;
        let outputCount = 0;
        let iterations: unknown;
        let stats: Record<string, unknown> = {};
        const cpuTimes: number[] = [];
        // cluster: tolerance 0 disables early stopping, so the timing covers the full 10 Lloyd iterations of the target.
        const methodOptions = reducer.name === 'cluster' ? { iterations: 10, tolerance: 0 } : {};
        // Repeats scale with cost: millisecond methods get 8× the runs so a stray GC pause of the
        // previous (allocation-heavy) case cannot move their median; second-long cases get at most 3.
        const probe = performance.now();
        await reducer.run(input.tokens, { ...input.spec, ...methodOptions, seed: 1 });
        const probeMs = performance.now() - probe;
        const repeats = probeMs < 20 ? runs * 8 : probeMs > 500 ? Math.min(runs, 3) : runs;
        const result = await measure(`${reducer.name} ${input.label}`, repeats, async () => {
          const cpu = process.cpuUsage();
          const reduction = await reducer.run(input.tokens, { ...input.spec, ...methodOptions, seed: 1 });
          const used = process.cpuUsage(cpu);
          cpuTimes.push((used.user + used.system) / 1000);
          outputCount = reduction.tokens.n;
          iterations = reduction.stats.iterations;
          stats = reduction.stats;
        });
        // Process CPU time (all threads): unlike wall time it barely grows when other jobs share the
        // cores; with --threads 1 it approximates the single-core wall time of the call.
        cpuTimes.sort((a, b) => a - b);
        const cpuMs = cpuTimes[Math.floor(cpuTimes.length / 2)]!;
        const extra: Record<string, number | string> = {
          method: reducer.name,
          case: input.label.split(' ')[0]!,
          n_in: input.tokens.n,
          n_out: outputCount,
          cpu_ms: Number(cpuMs.toFixed(2)),
        };
        if (typeof iterations === 'number') extra.iterations = iterations;
        const ops = operationCount(reducer.name, input.tokens, stats);
        if (ops) extra.operations = ops;
        const target = input.label.startsWith('b')
          ? TARGETS_B[reducer.name]
          : input.label.startsWith('c')
            ? TARGETS_C[reducer.name]
            : undefined;
        if (target !== undefined) extra.target_ms = target;
        if (target !== undefined) extra.meets = result.medianMs < target ? 'yes' : 'NO';
        result.extra = extra;
        log(`${result.name}: ${result.medianMs.toFixed(2)} ms (${input.tokens.n} → ${outputCount})`);
        results.push(result);
      }
    }
    log(
      `load average at end: ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
    );
    return results;
  },
};
