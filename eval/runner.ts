import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UsageError, VtcError } from '../core/errors.js';
import { checkNumber } from '../core/validate.js';
import { loadDataset, type EvalDataset, type EvalSample } from './datasets.js';
import { analyzeTask, BASELINE_METHOD, formatK, type RunCorrectness, type TaskAnalysis } from './groups.js';
import { getMethod, type EvalMethod, type MethodContext } from './methods.js';
import type { EvalModel } from './models.js';
import { EndpointError } from '../client/openai.js';
import { writeReport } from './report.js';
import { readResults, resultKey, ResultsStore, type ResultKey, type ResultRow } from './results.js';
import { scoreAnswer, type Metric } from './scoring.js';
import { checkRunOptions } from './run-options.js';

/**
 * `vtc eval run`: every sample × (uncompressed, downsample ×K, each method
 * ×K), answered by a model, scored, appended to the results cache, then
 * grouped VTC-Bench style and reported. Re-running resumes: cached keys are
 * skipped, so finished work is never repeated or duplicated.
 */

export interface Shard {
  /** 1-based shard number. */
  index: number;
  count: number;
}

/**
 * Parses `--shard i/n` (1 ≤ i ≤ n).
 *
 * @example
 * parseShard('2/4'); // { index: 2, count: 4 }
 */
export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || count < 1 || index < 1 || index > count)
    throw new UsageError(`--shard expects i/n with 1 ≤ i ≤ n (e.g. 1/4), got ${JSON.stringify(text)}`);
  return { index, count };
}

export interface EvalRunOptions {
  dataset: string | EvalDataset;
  model: EvalModel;
  /** Methods besides the downsample baseline (which always runs). */
  methods: string[];
  /** Downsample factors K > 1 (budget 1/K²); K = 1 (uncompressed) always runs. */
  ratios: number[];
  /** Results cache (JSONL). */
  results: string;
  /** Report folder; no report when absent. */
  out?: string;
  concurrency?: number;
  /** Only the first N samples (before sharding). */
  limit?: number;
  shard?: Shard;
  /** Metric for every sample without its own (default auto). */
  metric?: Metric;
  context?: MethodContext;
  /** Stop after this many failures in a row (default 5): the model is probably down. */
  maxConsecutiveFailures?: number;
  onProgress?: (done: number, total: number, label: string) => void;
  /** Stops taking new jobs (in-flight ones finish and are saved). */
  signal?: AbortSignal;
}

export interface EvalRunSummary {
  dataset: string;
  model: string;
  samples: number;
  /** Jobs in this run's scope, those found in the cache, those done now, failed and not applicable. */
  jobs: number;
  cached: number;
  done: number;
  failed: { sample: string; method: string; ratio: number; error: string }[];
  unsupported: number;
  /** Torn bytes cut off the results file on open. */
  repairedBytes: number;
  interrupted: boolean;
  analysis: TaskAnalysis | null;
  warnings: string[];
  reportFiles: string[];
  ms: number;
}

/** One (method, K) of a run. */
export interface Condition {
  method: EvalMethod;
  k: number;
}

/** The run's conditions: uncompressed, then per K the downsample baseline and each method (validated). */
export function conditions(methods: string[], ratios: number[]): Condition[] {
  for (const k of ratios) checkNumber(k, 'ratios (downsample factors K, budget 1/K²)', { gt: 1 });
  const ks = [...new Set(ratios)].sort((a, b) => a - b);
  const names = [...new Set(methods.filter((m) => m !== BASELINE_METHOD))];
  const resolved = names.map(getMethod);
  const baseline = getMethod(BASELINE_METHOD);
  const out: Condition[] = [{ method: baseline, k: 1 }];
  for (const k of ks) {
    out.push({ method: baseline, k });
    for (const method of resolved) out.push({ method, k });
  }
  return out;
}

/** The samples this run covers: the first `limit`, then every n-th from shard i. */
export function selectSamples(samples: EvalSample[], limit?: number, shard?: Shard): EvalSample[] {
  const limited = limit === undefined ? samples : samples.slice(0, limit);
  return shard ? limited.filter((_, i) => i % shard.count === shard.index - 1) : limited;
}

/** The result key of one job. */
export function jobKey(dataset: string, model: string, sample: EvalSample, condition: Condition): ResultKey {
  return { dataset, sample: sample.id, model, method: condition.method.name, ratio: condition.k };
}

export interface PlannedJobs {
  /** Jobs still to run, sample-major in condition order. */
  jobs: { sample: EvalSample; condition: Condition }[];
  /** Jobs skipped because `isDone` said so. */
  cached: number;
  /** (sample, condition) pairs a method cannot handle, and why. */
  unsupported: number;
  unsupportedReasons: Set<string>;
}

/** Every (sample, condition) of a run that a method can handle and that is not done yet. */
export function planJobs(
  samples: EvalSample[],
  plan: Condition[],
  isDone: (sample: EvalSample, condition: Condition) => boolean,
): PlannedJobs {
  const jobs: PlannedJobs['jobs'] = [];
  let unsupported = 0;
  let cached = 0;
  const unsupportedReasons = new Set<string>();
  for (const sample of samples) {
    for (const condition of plan) {
      const reason = condition.method.unsupported(sample);
      if (reason) {
        unsupported++;
        unsupportedReasons.add(reason);
        continue;
      }
      if (isDone(sample, condition)) cached++;
      else jobs.push({ sample, condition });
    }
  }
  return { jobs, cached, unsupported, unsupportedReasons };
}

/**
 * Runs one job: prepares the compressed input, asks the model, scores the
 * answer and returns the results row. The local runner and queue workers
 * both use it, so their rows are the same.
 */
export async function runJob(
  dataset: string,
  sample: EvalSample,
  condition: Condition,
  model: EvalModel,
  options: { metric?: Metric; context?: MethodContext; signal?: AbortSignal } = {},
): Promise<ResultRow> {
  const jobStarted = performance.now();
  const input = await condition.method.prepare(sample, condition.k, options.context ?? {});
  const reply = await model.answer(sample, input, options.signal);
  const score = scoreAnswer(reply.text, sample.answer, {
    metric: sample.metric ?? options.metric ?? 'auto',
    ...(sample.options ? { options: sample.options } : {}),
  });
  return {
    ...jobKey(dataset, model.name, sample, condition),
    question: sample.question,
    answer: sample.answer,
    prediction: reply.text,
    metric: score.metric,
    score: score.score,
    correct: score.correct,
    pixels: input.pixels,
    tokens: input.tokens,
    ms: Math.round(performance.now() - jobStarted),
    ...(reply.usage ? { usage: reply.usage as Record<string, number> } : {}),
    at: new Date().toISOString(),
  };
}

/** Errors every further job would repeat: stop the run at once instead of failing job by job. */
function isFatal(error: unknown): boolean {
  if (error instanceof UsageError) return true;
  if (!(error instanceof EndpointError)) return false;
  // A network error without a system code is fetch refusing the URL itself (a blocked port such as 1 or 6000).
  const unusableUrl = error.code === 'E_ENDPOINT_NETWORK' && !error.retryable;
  return (
    unusableUrl ||
    error.code === 'E_ENDPOINT_REFUSED' ||
    error.code === 'E_ENDPOINT_DNS' ||
    error.status === 401 ||
    error.status === 403 ||
    error.status === 404
  );
}

/** Rows of this results file plus sibling shard files (`results*.jsonl` in the same folder), de-duplicated. */
async function allRows(store: ResultsStore): Promise<ResultRow[]> {
  const dir = dirname(store.path);
  const own = basename(store.path);
  const rows = new Map<string, ResultRow>();
  for (const row of store.rows) rows.set(resultKey(row), row);
  const stem = own.replace(/(\.shard-\d+-of-\d+)?\.jsonl$/, '');
  const sibling = (name: string) =>
    name === `${stem}.jsonl` || (name.startsWith(`${stem}.shard-`) && /\.shard-\d+-of-\d+\.jsonl$/.test(name));
  for (const name of (await readdir(dir)).sort()) {
    if (name === own || !sibling(name)) continue;
    for (const row of (await readResults(join(dir, name))).rows)
      if (!rows.has(resultKey(row))) rows.set(resultKey(row), row);
  }
  return [...rows.values()];
}

/**
 * Groups result rows of one dataset and model into runs and analyses them.
 *
 * @example
 * const analysis = analyzeResults(rows, 'bench', 'ocr');
 * analysis.ratios['2'].group_a;
 */
export function analyzeResults(rows: ResultRow[], dataset: string, model: string): TaskAnalysis {
  const runs = new Map<string, RunCorrectness>();
  for (const row of rows) {
    if (row.dataset !== dataset || row.model !== model) continue;
    const key = `${row.method}@${row.ratio}`;
    let run = runs.get(key);
    if (!run)
      runs.set(
        key,
        (run = {
          method: row.method,
          k: row.ratio,
          correct: new Map(),
          label: `${row.method} K=${formatK(row.ratio)}`,
        }),
      );
    run.correct.set(row.sample, row.correct);
  }
  return analyzeTask(dataset, [...runs.values()]);
}

export interface RunReportOptions {
  dataset: string;
  /** Where the dataset came from (the report's source line). */
  source: string;
  model: string;
  methods: string[];
  ratios: number[];
  /** Report folder; no report when absent. */
  out?: string;
  /** The run's warnings so far; the analysis' own warnings are appended. */
  warnings: string[];
}

/**
 * Analyses the rows of a results file (and its sibling shard files) for one
 * dataset and model, and writes the report when the uncompressed runs exist.
 */
export async function reportRun(
  store: ResultsStore,
  options: RunReportOptions,
): Promise<{ analysis: TaskAnalysis | null; reportFiles: string[] }> {
  const rows = await allRows(store);
  const hasUncompressed = rows.some(
    (r) => r.dataset === options.dataset && r.model === options.model && r.method === BASELINE_METHOD && r.ratio === 1,
  );
  if (!hasUncompressed) return { analysis: null, reportFiles: [] };
  const analysis = analyzeResults(rows, options.dataset, options.model);
  options.warnings.push(...analysis.warnings);
  if (!options.out) return { analysis, reportFiles: [] };
  const reportFiles = await writeReport(options.out, {
    title: `VTC-Bench run: ${options.dataset} × ${options.model}`,
    source: options.source,
    tasks: [analysis],
    warnings: options.warnings,
    meta: {
      model: options.model,
      methods: [BASELINE_METHOD, ...options.methods.filter((m) => m !== BASELINE_METHOD)].join(', '),
      ratios: [...new Set(options.ratios)].sort((a, b) => a - b).join(', '),
      results: store.path,
    },
  });
  return { analysis, reportFiles };
}

/**
 * Runs the evaluation (resumable) and writes the report.
 *
 * @example
 * const model = await createOcrModel({ workers: 2 });
 * const summary = await runEval({ dataset: 'samples/bench/bench.jsonl', model, methods: ['downsample'], ratios: [2, 3, 4],
 *   results: 'out/results.jsonl', out: 'out', concurrency: 2 });
 * await model.close();
 * summary.analysis?.ratios['2'].group_a;
 */
export async function runEval(options: EvalRunOptions): Promise<EvalRunSummary> {
  const started = performance.now();
  const concurrency = options.concurrency ?? 1;
  checkRunOptions({
    methods: options.methods,
    model: options.model.name,
    encoder: options.context?.encoder !== undefined || options.context?.qwenEncoder !== undefined,
    concurrency,
    limit: options.limit,
  });
  const plan = conditions(options.methods, options.ratios);
  const dataset = typeof options.dataset === 'string' ? await loadDataset(options.dataset) : options.dataset;
  const samples = selectSamples(dataset.samples, options.limit, options.shard);
  const store = await ResultsStore.open(options.results);
  const warnings: string[] = [];
  if (store.repairedBytes > 0)
    warnings.push(
      `${options.results}: cut off a torn last line (${store.repairedBytes} bytes) left by an interrupted run; that job runs again`,
    );
  if (store.duplicates > 0) warnings.push(`${options.results}: ${store.duplicates} duplicate lines ignored`);

  const { jobs, cached, unsupported, unsupportedReasons } = planJobs(samples, plan, (sample, condition) =>
    store.has(jobKey(dataset.name, options.model.name, sample, condition)),
  );
  for (const reason of unsupportedReasons) warnings.push(`skipped samples a method cannot handle: ${reason}`);

  const total = jobs.length + cached;
  let done = 0;
  let consecutiveFailures = 0;
  let fatal: unknown;
  let interrupted = false;
  const failed: EvalRunSummary['failed'] = [];
  const maxFailures = options.maxConsecutiveFailures ?? 5;
  options.onProgress?.(cached, total, 'resuming');
  let next = 0;
  const worker = async () => {
    while (next < jobs.length && fatal === undefined) {
      if (options.signal?.aborted) {
        interrupted = true;
        return;
      }
      const { sample, condition } = jobs[next++]!;
      try {
        await store.append(await runJob(dataset.name, sample, condition, options.model, options));
        consecutiveFailures = 0;
        done++;
        options.onProgress?.(cached + done, total, `${condition.method.name} K=${formatK(condition.k)}`);
      } catch (error) {
        if (options.signal?.aborted && error instanceof EndpointError && error.code === 'E_ENDPOINT_CANCELLED') {
          interrupted = true;
          return;
        }
        if (isFatal(error)) {
          fatal ??= error;
          return;
        }
        const message = error instanceof Error ? error.message : String(error);
        failed.push({ sample: sample.id, method: condition.method.name, ratio: condition.k, error: message });
        if (++consecutiveFailures >= maxFailures) {
          fatal ??= new VtcError(
            `stopping after ${consecutiveFailures} failures in a row; last: ${sample.where} (${condition.method.name} K=${formatK(condition.k)}): ${message}`,
            'E_EVAL_FAILURES',
          );
          return;
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, jobs.length)) }, worker));
  } finally {
    await store.close();
  }
  if (fatal !== undefined) throw fatal;
  for (const f of failed.slice(0, 5))
    warnings.push(
      `failed (will run again next time): sample ${f.sample} ${f.method} K=${formatK(f.ratio)}: ${f.error}`,
    );
  if (failed.length > 5) warnings.push(`… and ${failed.length - 5} more failures`);

  const { analysis, reportFiles } = await reportRun(store, {
    dataset: dataset.name,
    source: dataset.path,
    model: options.model.name,
    methods: options.methods,
    ratios: options.ratios,
    out: options.out,
    warnings,
  });
  return {
    dataset: dataset.name,
    model: options.model.name,
    samples: samples.length,
    jobs: total,
    cached,
    done,
    failed,
    unsupported,
    repairedBytes: store.repairedBytes,
    interrupted,
    analysis,
    warnings,
    reportFiles,
    ms: performance.now() - started,
  };
}
