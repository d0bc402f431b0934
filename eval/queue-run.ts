import { appendFile, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { UsageError, VtcError } from '../core/errors.js';
import { integer, number, oneOf, parseOptions } from '../core/schema.js';
import { loadDataset, type EvalDataset } from './datasets.js';
import { formatK, type TaskAnalysis } from './groups.js';
import type { EmbedsFormat } from './models.js';
import {
  claimQueue,
  connectRedis,
  DEFAULT_QUEUE_NAME,
  DEFAULT_REDIS_WAIT_MS,
  jobIdForKey,
  jobOptions,
  keyForJobId,
  lostRedis,
  normalizeRunConfig,
  openQueue,
  parseQueueUrl,
  readRunConfig,
  redisErrorMessage,
  runFingerprint,
  sampleToJob,
  withTimeout,
  type QueueJobData,
  type QueueUrl,
} from './queue.js';
import { ResultsStore, type ResultKey, type ResultRow } from './results.js';
import { EMBEDS_FORMATS } from './run-options.js';
import { conditions, jobKey, planJobs, reportRun, selectSamples, type Shard } from './runner.js';
import type { Metric } from './scoring.js';

/**
 * Queue mode of `vtc eval run` (submit, then collect) and `vtc eval collect`.
 *
 * The submitter skips keys already in its results file, adds one BullMQ job
 * per remaining key (an id already in the queue is left alone; a job that
 * failed for good is retried), then collects: it reads finished jobs from
 * Redis and appends their rows to the same fsync'd results file as a local
 * run, first row per key wins. Final failures go to `failed-<results name>`
 * next to the results file with their reason.
 */

export interface QueueSubmitOptions {
  /** Redis URL, redis://HOST:PORT/DB. */
  queue: string;
  queueName?: string;
  dataset: string | EvalDataset;
  /** Model name (as the workers' endpoints serve it), or 'ocr'. */
  model: string;
  methods: string[];
  ratios: number[];
  results: string;
  out?: string;
  limit?: number;
  shard?: Shard;
  metric?: Metric;
  /** Encoder spec for token-level methods; workers load it (by path, shared storage). */
  encoder?: string;
  embedsFormat?: EmbedsFormat;
  maxTokens?: number;
  videoFrames?: number;
  seed?: number;
  /** Send image bytes inside the jobs instead of paths. */
  inlineInputs?: boolean;
  /** Tries per job for transient errors (default 3). */
  attempts?: number;
  /** First retry delay in ms, doubled per retry (default 2000). */
  backoffMs?: number;
  /** Enqueue and return without collecting. */
  detach?: boolean;
  redisWaitMs?: number;
  /** How often finished jobs are read (default 250 ms). */
  pollMs?: number;
  onProgress?: (done: number, total: number, label: string) => void;
  /** Called once when no worker is connected for a while. */
  onIdle?: (message: string) => void;
  /** Stops collecting (the jobs stay queued; attach again with collect). */
  signal?: AbortSignal;
}

export interface QueueFailure {
  sample: string;
  method: string;
  ratio: number;
  error: string;
}

export interface QueueRunSummary {
  dataset: string;
  model: string;
  queue: string;
  samples: number;
  /** Jobs in this run's scope, those already in the results file, those collected now, and final failures. */
  jobs: number;
  cached: number;
  done: number;
  failed: QueueFailure[];
  unsupported: number;
  /** Jobs added to the queue now, failed jobs sent back to it, and jobs that were already queued or finished there. */
  enqueued: number;
  retried: number;
  alreadyQueued: number;
  detached: boolean;
  interrupted: boolean;
  repairedBytes: number;
  analysis: TaskAnalysis | null;
  warnings: string[];
  reportFiles: string[];
  ms: number;
}

/** Where final failures of a results file are logged (a name `vtc eval analyze` does not read as results). */
export function failuresPath(results: string): string {
  return join(dirname(results), `failed-${basename(results)}`);
}

const submitSchema = z.object({
  attempts: integer(1),
  backoffMs: number({ min: 0 }),
  limit: integer(1).optional(),
  embedsFormat: oneOf(EMBEDS_FORMATS),
  maxTokens: integer(1),
  videoFrames: integer(1),
  seed: integer(0),
  redisWaitMs: number({ gt: 0 }),
  pollMs: number({ gt: 0 }),
});

/**
 * Submits a run to the queue and (unless detached) collects its results.
 *
 * @example
 * const summary = await submitQueueRun({ queue: 'redis://127.0.0.1:6379/0', dataset: 'bench.jsonl', model: 'qwen',
 *   methods: [], ratios: [2, 4], results: 'out/results.jsonl', out: 'out' });
 * summary.enqueued; // jobs added to the queue now
 */
export async function submitQueueRun(options: QueueSubmitOptions): Promise<QueueRunSummary> {
  const started = performance.now();
  const queueUrl = parseQueueUrl(options.queue);
  const name = options.queueName ?? DEFAULT_QUEUE_NAME;
  const settings = parseOptions(
    submitSchema,
    {
      attempts: options.attempts ?? 3,
      backoffMs: options.backoffMs ?? 2000,
      limit: options.limit,
      embedsFormat: options.embedsFormat ?? 'npy',
      maxTokens: options.maxTokens ?? 64,
      videoFrames: options.videoFrames ?? 16,
      seed: options.seed ?? 0,
      redisWaitMs: options.redisWaitMs ?? DEFAULT_REDIS_WAIT_MS,
      pollMs: options.pollMs ?? 250,
    },
    'eval run',
  );
  const plan = conditions(options.methods, options.ratios);
  const tokenLevel = plan.filter((c) => c.method.level === 'token').map((c) => c.method.name);
  if (tokenLevel.length && !options.encoder)
    throw new UsageError(
      `token-level methods (${[...new Set(tokenLevel)].join(', ')}) need an encoder spec the workers can load`,
    );
  const dataset = typeof options.dataset === 'string' ? await loadDataset(options.dataset) : options.dataset;
  const samples = selectSamples(dataset.samples, options.limit, options.shard);
  const config = normalizeRunConfig({
    dataset: dataset.name,
    source: dataset.path,
    model: options.model,
    methods: options.methods,
    ratios: options.ratios,
    metric: options.metric ?? 'auto',
    encoder: tokenLevel.length ? options.encoder! : null,
    embedsFormat: settings.embedsFormat,
    maxTokens: settings.maxTokens,
    videoFrames: settings.videoFrames,
    seed: settings.seed,
  });
  const fingerprint = runFingerprint(config);

  const redis = await connectRedis(queueUrl);
  let store: ResultsStore | undefined;
  const queue = openQueue(redis, name);
  try {
    await claimQueue(redis, queueUrl, name, config);
    store = await ResultsStore.open(options.results);
    const warnings: string[] = [];
    if (store.repairedBytes > 0)
      warnings.push(
        `${options.results}: cut off a torn last line (${store.repairedBytes} bytes) left by an interrupted run; that job runs again`,
      );
    if (store.duplicates > 0) warnings.push(`${options.results}: ${store.duplicates} duplicate lines ignored`);
    const planned = planJobs(samples, plan, (sample, condition) =>
      store!.has(jobKey(dataset.name, options.model, sample, condition)),
    );
    for (const reason of planned.unsupportedReasons) warnings.push(`skipped samples a method cannot handle: ${reason}`);
    if (options.inlineInputs && planned.jobs.some((j) => j.sample.video !== undefined))
      warnings.push('--inline-inputs carries images only: videos are read by path on the workers');

    // Which of this run's ids the queue already has, and which of those failed for good.
    const ids = planned.jobs.map((j) => jobIdForKey(jobKey(dataset.name, options.model, j.sample, j.condition)));
    const exists: boolean[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const pipeline = redis.pipeline();
      for (const id of ids.slice(i, i + 1000)) pipeline.exists(queue.toKey(id));
      for (const [error, count] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        exists.push(count === 1);
      }
    }
    const failedIds = new Set(await redis.zrange(queue.keys.failed!, '0', '-1'));
    let enqueued = 0;
    let retried = 0;
    const batch: { name: string; data: QueueJobData; opts: ReturnType<typeof jobOptions> }[] = [];
    const inlineCache = new Map<string, string>();
    const flush = async () => {
      if (batch.length) await queue.addBulk(batch.splice(0));
    };
    for (let i = 0; i < planned.jobs.length; i++) {
      const { sample, condition } = planned.jobs[i]!;
      const id = ids[i]!;
      if (failedIds.has(id)) {
        const job = await queue.getJob(id);
        await job?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        retried++;
        continue;
      }
      if (exists[i]) continue;
      const key = jobKey(dataset.name, options.model, sample, condition);
      batch.push({
        name: `${condition.method.name} K=${formatK(condition.k)}`,
        data: {
          v: 1,
          config,
          fingerprint,
          sample: await sampleToJob(sample, options.inlineInputs ?? false, inlineCache),
          method: condition.method.name,
          k: condition.k,
        },
        opts: jobOptions(key, settings.attempts, settings.backoffMs),
      });
      enqueued++;
      if (batch.length >= 500) await flush();
    }
    await flush();

    const summary: QueueRunSummary = {
      dataset: dataset.name,
      model: options.model,
      queue: name,
      samples: samples.length,
      jobs: planned.jobs.length + planned.cached,
      cached: planned.cached,
      done: 0,
      failed: [],
      unsupported: planned.unsupported,
      enqueued,
      retried,
      alreadyQueued: planned.jobs.length - enqueued - retried,
      detached: options.detach ?? false,
      interrupted: false,
      repairedBytes: store.repairedBytes,
      analysis: null,
      warnings,
      reportFiles: [],
      ms: 0,
    };
    if (!options.detach) {
      const collected = await collectLoop({
        redis,
        queue,
        queueUrl,
        store,
        scope: new Set(ids),
        cached: planned.cached,
        options,
      });
      summary.done = collected.done;
      summary.failed = collected.failed;
      summary.interrupted = collected.interrupted;
      warnings.push(...collected.warnings);
      await store.close();
      const closed = store;
      store = undefined;
      const report = await reportRun(closed, {
        dataset: dataset.name,
        source: dataset.path,
        model: options.model,
        methods: options.methods,
        ratios: options.ratios,
        out: options.out,
        warnings,
      });
      summary.analysis = report.analysis;
      summary.reportFiles = report.reportFiles;
    }
    summary.ms = performance.now() - started;
    return summary;
  } finally {
    await store?.close();
    await closeQuietly(queue);
    redis.disconnect();
  }
}

export interface QueueCollectOptions {
  queue: string;
  queueName?: string;
  results: string;
  out?: string;
  /** After everything is collected, delete the queue and its run configuration from Redis. */
  drop?: boolean;
  redisWaitMs?: number;
  pollMs?: number;
  onProgress?: (done: number, total: number, label: string) => void;
  onIdle?: (message: string) => void;
  signal?: AbortSignal;
}

export interface QueueCollectSummary {
  queue: string;
  dataset: string | null;
  model: string | null;
  /** Jobs the queue holds, rows already in the results file, rows added now, final failures. */
  jobs: number;
  cached: number;
  done: number;
  failed: QueueFailure[];
  interrupted: boolean;
  dropped: boolean;
  repairedBytes: number;
  analysis: TaskAnalysis | null;
  warnings: string[];
  reportFiles: string[];
  ms: number;
}

/**
 * Attaches to a queue and collects every finished job into the results file
 * until nothing is waiting, running or delayed; then writes the report.
 *
 * @example
 * const summary = await collectQueue({ queue: 'redis://127.0.0.1:6379/0', results: 'out/results.jsonl', out: 'out' });
 */
export async function collectQueue(options: QueueCollectOptions): Promise<QueueCollectSummary> {
  const started = performance.now();
  const queueUrl = parseQueueUrl(options.queue);
  const name = options.queueName ?? DEFAULT_QUEUE_NAME;
  const redis = await connectRedis(queueUrl);
  let store: ResultsStore | undefined;
  const queue = openQueue(redis, name);
  try {
    const config = await readRunConfig(redis, name);
    if (!config)
      throw new VtcError(
        `queue ${JSON.stringify(name)} at ${queueUrl.display} holds no vtc run (submit one with vtc eval run --queue …)`,
        'E_QUEUE_EMPTY',
      );
    store = await ResultsStore.open(options.results);
    const warnings: string[] = [];
    if (store.repairedBytes > 0)
      warnings.push(
        `${options.results}: cut off a torn last line (${store.repairedBytes} bytes) left by an interrupted run`,
      );
    const cached = store.rows.length;
    const collected = await collectLoop({ redis, queue, queueUrl, store, cached: 0, options });
    warnings.push(...collected.warnings);
    let dropped = false;
    if (options.drop && !collected.interrupted) {
      await queue.obliterate({ force: true });
      await redis.del(`vtc:eval:${name}:config`);
      dropped = true;
    }
    await store.close();
    const closed = store;
    store = undefined;
    const report = await reportRun(closed, {
      dataset: config.dataset,
      source: config.source,
      model: config.model,
      methods: config.methods,
      ratios: config.ratios,
      out: options.out,
      warnings,
    });
    return {
      queue: name,
      dataset: config.dataset,
      model: config.model,
      jobs: collected.total,
      cached,
      done: collected.done,
      failed: collected.failed,
      interrupted: collected.interrupted,
      dropped,
      repairedBytes: closed.repairedBytes,
      analysis: report.analysis,
      warnings,
      reportFiles: report.reportFiles,
      ms: performance.now() - started,
    };
  } finally {
    await store?.close();
    await closeQuietly(queue);
    redis.disconnect();
  }
}

async function closeQuietly(queue: Queue): Promise<void> {
  // The connection is shared (ours), so this does not wait on Redis; the caller disconnects it.
  await withTimeout(queue.close(), 1000, 'close timed out').catch(() => {});
}

interface CollectContext {
  redis: Redis;
  queue: Queue;
  queueUrl: QueueUrl;
  store: ResultsStore;
  /** The job ids to wait for; every job of the queue when absent. */
  scope?: Set<string>;
  /** Rows of the run already in the results file (progress only). */
  cached: number;
  options: {
    redisWaitMs?: number;
    pollMs?: number;
    onProgress?: (done: number, total: number, label: string) => void;
    onIdle?: (message: string) => void;
    signal?: AbortSignal;
    results?: string;
  };
}

const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;
/** Workers' clocks may differ: finished jobs are re-read this far back from the newest one seen. */
const CLOCK_SLACK_MS = 60_000;

/**
 * Reads finished jobs until the scope (or the whole queue) is done. Rows go
 * to the store (first per key wins), final failures to the failures log.
 */
async function collectLoop(
  context: CollectContext,
): Promise<{ done: number; total: number; failed: QueueFailure[]; interrupted: boolean; warnings: string[] }> {
  const { redis, queue, store, scope, options } = context;
  const waitMs = options.redisWaitMs ?? DEFAULT_REDIS_WAIT_MS;
  const pollMs = options.pollMs ?? 250;
  const stored = new Set(store.rows.map(jobIdForKey));
  const failuresFile = failuresPath(store.path);
  const logged = new Set(
    (await readFile(failuresFile, 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          const f = JSON.parse(l) as ResultKey & { finished?: number };
          return `${jobIdForKey(f)}@${f.finished}`;
        } catch {
          return '';
        }
      }),
  );
  const warnings: string[] = [];
  let since = 0;
  let failedNow = new Map<string, QueueFailure>();
  let downSince: number | undefined;
  let idleSince = Date.now();
  let idleWarned = false;
  let done = 0;
  let total = 0;
  let addedNow = 0;
  for (;;) {
    if (options.signal?.aborted)
      return { done: addedNow, total, failed: [...failedNow.values()], interrupted: true, warnings };
    const attemptStarted = Date.now();
    try {
      // Counts first: a job finishing during the scan below is then seen on the next round, never missed.
      const counts = await withTimeout(
        queue.getJobCounts(...PENDING_STATES, 'completed', 'failed'),
        waitMs,
        'no answer',
      );
      const pending = PENDING_STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
      const completed = await redis.zrangebyscore(
        queue.keys.completed!,
        String(Math.max(0, since - CLOCK_SLACK_MS)),
        '+inf',
        'WITHSCORES',
      );
      const fresh: string[] = [];
      for (let i = 0; i < completed.length; i += 2) {
        const id = completed[i]!;
        since = Math.max(since, Number(completed[i + 1]));
        if (!stored.has(id)) fresh.push(id);
      }
      for (let i = 0; i < fresh.length; i += 500) {
        const pipeline = redis.pipeline();
        const chunk = fresh.slice(i, i + 500);
        for (const id of chunk) pipeline.hget(queue.toKey(id), 'returnvalue');
        const replies = (await pipeline.exec()) ?? [];
        for (let j = 0; j < chunk.length; j++) {
          const [error, value] = replies[j]!;
          if (error) throw error;
          const row = parseRow(chunk[j]!, value as string | null);
          if (!row) {
            warnings.push(`job ${chunk[j]} finished without a results row; ignored`);
            stored.add(chunk[j]!);
            continue;
          }
          await store.append(row);
          stored.add(chunk[j]!);
          addedNow++;
        }
      }
      failedNow = await readFailures(redis, queue, failuresFile, logged);
      downSince = undefined;

      if (scope) {
        total = scope.size + context.cached;
        done = context.cached;
        let missing = 0;
        for (const id of scope) {
          if (stored.has(id) || failedNow.has(id)) done++;
          else missing++;
        }
        options.onProgress?.(done, total, pending ? `${pending} queued or running` : 'collecting');
        if (missing === 0)
          return {
            done: addedNow,
            total,
            failed: [...failedNow.entries()].filter(([id]) => scope.has(id)).map(([, f]) => f),
            interrupted: false,
            warnings,
          };
        if (pending === 0) {
          // Re-check after the counts were taken: only jobs still unseen are really gone.
          const gone = [...scope].filter((id) => !stored.has(id) && !failedNow.has(id));
          const states = await Promise.all(gone.slice(0, 50).map((id) => queue.getJobState(id)));
          if (states.every((s) => s === 'unknown')) {
            throw new VtcError(
              `${gone.length} jobs of this run are no longer in the queue (was Redis restarted without persistence, or the queue dropped?); run the same command again to enqueue them`,
              'E_QUEUE_LOST',
            );
          }
        }
      } else {
        done = (counts.completed ?? 0) + (counts.failed ?? 0);
        total = done + pending;
        options.onProgress?.(done, total, pending ? `${pending} queued or running` : 'collecting');
        if (pending === 0)
          return { done: addedNow, total, failed: [...failedNow.values()], interrupted: false, warnings };
      }
      if (pending > 0 && (counts.active ?? 0) === 0 && !idleWarned && Date.now() - idleSince > 5000) {
        if ((await queue.getWorkersCount()) === 0) {
          idleWarned = true;
          options.onIdle?.(
            `no worker is connected to queue ${JSON.stringify(queue.name)}; start some with: vtc eval worker --queue ${context.queueUrl.display} --queue-name ${queue.name} --endpoint …`,
          );
        }
      }
      if ((counts.active ?? 0) > 0) idleSince = Date.now();
    } catch (error) {
      if (error instanceof VtcError) throw error;
      downSince ??= attemptStarted;
      if (Date.now() - downSince >= waitMs) throw lostRedis(context.queueUrl, waitMs, redisErrorMessage(error, redis));
    }
    await sleep(pollMs, options.signal);
  }
}

/** A row from a job's return value, checked to be the row of that job's key. */
function parseRow(id: string, value: string | null): ResultRow | null {
  if (!value) return null;
  let row: ResultRow;
  try {
    row = JSON.parse(value) as ResultRow;
  } catch {
    return null;
  }
  if (
    !row ||
    typeof row !== 'object' ||
    typeof row.prediction !== 'string' ||
    typeof row.correct !== 'boolean' ||
    jobIdForKey(row) !== id
  )
    return null;
  return row;
}

/** Jobs failed for good, by id; new ones are appended to the failures log. */
async function readFailures(
  redis: Redis,
  queue: Queue,
  file: string,
  logged: Set<string>,
): Promise<Map<string, QueueFailure>> {
  const ids = await redis.zrange(queue.keys.failed!, '0', '-1');
  const failures = new Map<string, QueueFailure>();
  if (ids.length === 0) return failures;
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hmget(queue.toKey(id), 'failedReason', 'finishedOn', 'ats');
  const replies = (await pipeline.exec()) ?? [];
  const lines: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const [error, value] = replies[i]!;
    if (error) throw error;
    const [reason, finished, attemptsStarted] = value as (string | null)[];
    let key: ResultKey;
    try {
      key = keyForJobId(ids[i]!);
    } catch {
      continue;
    }
    const failure = { sample: key.sample, method: key.method, ratio: key.ratio, error: reason ?? 'unknown error' };
    failures.set(ids[i]!, failure);
    const mark = `${ids[i]}@${Number(finished)}`;
    if (!logged.has(mark)) {
      logged.add(mark);
      lines.push(
        JSON.stringify({
          ...key,
          error: failure.error,
          attempts: Number(attemptsStarted ?? 0),
          finished: Number(finished),
          at: new Date().toISOString(),
        }),
      );
    }
  }
  if (lines.length) await appendFile(file, `${lines.join('\n')}\n`);
  return failures;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** One line per failure for warnings (the first five, then a count). */
export function failureWarnings(
  failed: QueueFailure[],
  what = 'failed for good (run the same command again to retry)',
): string[] {
  const lines = failed
    .slice(0, 5)
    .map((f) => `${what}: sample ${f.sample} ${f.method} K=${formatK(f.ratio)}: ${f.error}`);
  if (failed.length > 5) lines.push(`… and ${failed.length - 5} more failures`);
  return lines;
}
