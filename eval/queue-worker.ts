import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { z } from 'zod';
import { UsageError, type VtcError } from '../core/errors.js';
import { checkNumber } from '../core/validate.js';
import { integer, number, parseOptions } from '../core/schema.js';
import { openTokenEncoder, type TokenEncoder } from './encoder.js';
import { getMethod } from './methods.js';
import { createEndpointModel, createOcrModel, type EvalModel } from './models.js';
import { EndpointError } from '../client/openai.js';
import {
  bullConnection,
  checkQueueName,
  connectRedis,
  DEFAULT_QUEUE_NAME,
  DEFAULT_REDIS_WAIT_MS,
  parseQueueUrl,
  readRunConfig,
  sampleFromJob,
  watchRedis,
  withTimeout,
  type QueueJobData,
  type QueueRunConfig,
} from './queue.js';
import type { ResultRow } from './results.js';
import { runJob } from './runner.js';

/**
 * `vtc eval worker`: a BullMQ worker on any machine. It takes jobs, prepares
 * the compressed input (pixel methods, or token-level ones with a local
 * encoder), asks the model and returns the results row, which the collector
 * writes. Inputs are read by path (the dataset must sit on storage every
 * worker sees under the same path) unless the job carries them inline.
 *
 * Faults: a transient endpoint error (timeout, 429, 5xx, dropped or refused
 * connection) fails the attempt and BullMQ retries the job with exponential
 * backoff; anything else (a missing input file, a 4xx answer, a bad sample)
 * fails the job for good with its reason. A worker killed mid-job holds a
 * lock that expires, and BullMQ's stalled-job check (run by the workers
 * still alive) puts the job back.
 */

export interface QueueWorkerOptions {
  /** Redis URL, redis://HOST:PORT/DB. */
  queue: string;
  queueName?: string;
  /** OpenAI-compatible base URLs serving the run's model; jobs go to the least loaded one. */
  endpoints?: string[];
  apiKey?: string;
  timeoutMs?: number;
  /** Retries inside one attempt (default 0: BullMQ's attempts and backoff retry the job). */
  retries?: number;
  /** Jobs run at once in this process (default 1). */
  concurrency?: number;
  /** Requests per second per endpoint, enforced by BullMQ's queue-wide limiter (see docs/eval.md). */
  rate?: number;
  /** Encoder spec for token-level jobs, replacing the run's (when the path differs on this machine). */
  encoder?: string;
  /** Job lock time; a job of a worker silent for this long counts as stalled (default 30000). */
  lockMs?: number;
  /** How often this worker looks for stalled jobs (default 30000). */
  stalledMs?: number;
  redisWaitMs?: number;
  /** Worker name stored on the jobs it takes (default host-pid). */
  name?: string;
  onEvent?: (event: QueueWorkerEvent) => void;
}

export interface QueueWorkerEvent {
  type: 'completed' | 'retry' | 'failed';
  job: string;
  detail?: string;
}

export interface QueueWorkerSummary {
  name: string;
  completed: number;
  /** Attempts that failed and were sent back for a retry. */
  retried: number;
  /** Jobs that failed for good. */
  failed: number;
  ms: number;
}

export interface QueueWorkerHandle {
  name: string;
  /** Resolves when the worker is closed; rejects when it stopped on a fatal error (Redis gone, no endpoint). */
  closed: Promise<QueueWorkerSummary>;
  /** Stops taking jobs, lets the running ones finish, and closes. */
  close(): Promise<QueueWorkerSummary>;
}

const workerSchema = z.object({
  concurrency: integer(1),
  lockMs: integer(100),
  stalledMs: integer(100),
  retries: integer(0),
  timeoutMs: integer(1),
  redisWaitMs: number({ gt: 0 }),
  rate: number({ gt: 0 }).optional(),
});

/** BullMQ limiter settings giving `perSecond` jobs per second without bursts. */
export function limiterFor(perSecond: number): { max: number; duration: number } {
  checkNumber(perSecond, 'rate (jobs per second)', { gt: 0 });
  if (Number.isInteger(perSecond)) return { max: perSecond, duration: 1000 };
  return { max: 1, duration: Math.max(1, Math.round(1000 / perSecond)) };
}

/** Errors a later attempt may not repeat: BullMQ retries them with backoff. */
function isTransient(error: unknown): boolean {
  if (!(error instanceof EndpointError)) return false;
  return error.retryable || error.code === 'E_ENDPOINT_REFUSED';
}

interface PooledEndpoint {
  url: string;
  model: EvalModel;
  inFlight: number;
  lastUsed: number;
  /** A refused or dropped endpoint is passed over until then (ms since epoch). */
  downUntil: number;
}

/**
 * Several endpoints serving one model as one: each request goes to the
 * endpoint with the fewest requests in flight (ties: the least recently
 * used), skipping for a few seconds an endpoint that refused or dropped a
 * connection.
 */
export function endpointPool(
  name: string,
  urls: string[],
  make: (url: string) => EvalModel,
): EvalModel & { inFlight(): Record<string, number> } {
  if (urls.length === 0) throw new UsageError('an endpoint pool needs at least one endpoint');
  const pool: PooledEndpoint[] = urls.map((url) => ({ url, model: make(url), inFlight: 0, lastUsed: 0, downUntil: 0 }));
  let tick = 0;
  const pick = (): PooledEndpoint => {
    const now = Date.now();
    const up = pool.filter((e) => e.downUntil <= now);
    const candidates = up.length ? up : pool;
    return candidates.reduce((best, e) =>
      e.inFlight < best.inFlight || (e.inFlight === best.inFlight && e.lastUsed < best.lastUsed) ? e : best,
    );
  };
  return {
    name,
    async answer(sample, input, signal) {
      const endpoint = pick();
      endpoint.inFlight++;
      endpoint.lastUsed = ++tick;
      try {
        return await endpoint.model.answer(sample, input, signal);
      } catch (error) {
        if (
          error instanceof EndpointError &&
          (error.code === 'E_ENDPOINT_REFUSED' || error.code === 'E_ENDPOINT_NETWORK')
        )
          endpoint.downUntil = Date.now() + 5000;
        throw error;
      } finally {
        endpoint.inFlight--;
      }
    },
    async close() {
      await Promise.all(pool.map((e) => e.model.close()));
    },
    inFlight: () => Object.fromEntries(pool.map((e) => [e.url, e.inFlight])),
  };
}

/**
 * Starts a worker on the queue (fails fast when Redis does not answer).
 *
 * @example
 * const worker = await startQueueWorker({ queue: 'redis://127.0.0.1:6379/0', endpoints: ['http://gpu1:8000/v1'], concurrency: 4 });
 * process.once('SIGTERM', () => void worker.close());
 * const summary = await worker.closed; // { completed, retried, failed, … }
 */
export async function startQueueWorker(options: QueueWorkerOptions): Promise<QueueWorkerHandle> {
  const started = performance.now();
  const queueUrl = parseQueueUrl(options.queue);
  const queueName = checkQueueName(options.queueName ?? DEFAULT_QUEUE_NAME);
  const { concurrency, lockMs, stalledMs } = parseOptions(
    workerSchema,
    {
      concurrency: options.concurrency ?? 1,
      lockMs: options.lockMs ?? 30_000,
      stalledMs: options.stalledMs ?? 30_000,
      retries: options.retries ?? 0,
      timeoutMs: options.timeoutMs ?? 120_000,
      redisWaitMs: options.redisWaitMs ?? DEFAULT_REDIS_WAIT_MS,
      rate: options.rate,
    },
    'eval worker',
  );
  const endpoints = options.endpoints ?? [];
  const limiter = options.rate !== undefined ? limiterFor(options.rate * Math.max(1, endpoints.length)) : undefined;
  const name = options.name ?? `${hostname()}-${process.pid}`;
  const redis = await connectRedis(queueUrl);
  const current = await readRunConfig(redis, queueName).catch(() => null);
  if (current && current.model !== 'ocr' && endpoints.length === 0) {
    redis.disconnect();
    throw new UsageError(
      `eval worker: queue ${JSON.stringify(queueName)} runs model ${JSON.stringify(current.model)}: give its endpoints with --endpoint <url ending in /v1>`,
    );
  }

  const models = new Map<string, Promise<EvalModel>>();
  const encoders = new Map<string, Promise<TokenEncoder>>();
  const summary: QueueWorkerSummary = { name, completed: 0, retried: 0, failed: 0, ms: 0 };
  let fatal: ((error: VtcError) => void) | undefined;

  const modelFor = (config: QueueRunConfig): Promise<EvalModel> => {
    const key = JSON.stringify([config.model, config.maxTokens, config.embedsFormat]);
    let model = models.get(key);
    if (!model) {
      if (config.model === 'ocr') model = createOcrModel({ workers: concurrency });
      else if (endpoints.length === 0)
        return Promise.reject(
          new UsageError(
            `eval worker: jobs ask for model ${JSON.stringify(config.model)}: give its endpoints with --endpoint <url ending in /v1>`,
          ),
        );
      else {
        model = Promise.resolve(
          endpointPool(config.model, endpoints, (endpoint) =>
            createEndpointModel({
              endpoint,
              model: config.model,
              apiKey: options.apiKey,
              timeoutMs: options.timeoutMs ?? 120_000,
              retries: options.retries ?? 0,
              maxTokens: config.maxTokens,
              embedsFormat: config.embedsFormat,
            }),
          ),
        );
      }
      models.set(key, model);
    }
    return model;
  };
  const encoderFor = (spec: string): Promise<TokenEncoder> => {
    let encoder = encoders.get(spec);
    if (!encoder) {
      encoder = openTokenEncoder(spec);
      encoders.set(spec, encoder);
      encoder.catch(() => encoders.delete(spec));
    }
    return encoder;
  };

  const processor = async (job: Job<QueueJobData>): Promise<ResultRow> => {
    const data = job.data;
    if (!data || data.v !== 1)
      throw new UnrecoverableError(`job ${job.id} is not a vtc eval job (payload version ${JSON.stringify(data?.v)})`);
    const { config } = data;
    let model: EvalModel;
    try {
      model = await modelFor(config);
    } catch (error) {
      // This worker cannot serve the run at all: stop it, and leave the job to a worker that can.
      if (error instanceof UsageError) fatal?.(error);
      throw error;
    }
    try {
      const method = getMethod(data.method);
      const spec = options.encoder ?? config.encoder;
      const context = {
        ...(method.level === 'token' && spec ? tokenEncoderContext(await encoderFor(spec)) : {}),
        videoFrames: config.videoFrames,
        seed: config.seed,
      };
      return await runJob(config.dataset, sampleFromJob(data.sample), { method, k: data.k }, model, {
        metric: config.metric,
        context,
      });
    } catch (error) {
      if (isTransient(error)) throw error;
      throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
    }
  };

  let stopped = false;
  const worker = new Worker<QueueJobData, ResultRow>(queueName, processor, {
    connection: bullConnection(queueUrl, () => stopped),
    concurrency,
    lockDuration: lockMs,
    stalledInterval: stalledMs,
    // A job whose worker died twice is probably what kills workers: fail it with that reason.
    maxStalledCount: 2,
    name,
    ...(limiter ? { limiter } : {}),
  });
  worker.on('error', () => {
    // Connection trouble is reported by the watcher below; BullMQ reconnects by itself meanwhile.
  });
  worker.on('completed', (job) => {
    summary.completed++;
    options.onEvent?.({ type: 'completed', job: String(job.id) });
  });
  worker.on('failed', (job, error) => {
    if (!job) return;
    const final =
      error instanceof UnrecoverableError ||
      error.name === 'UnrecoverableError' ||
      job.attemptsMade >= (job.opts.attempts ?? 1);
    if (final) summary.failed++;
    else summary.retried++;
    options.onEvent?.({ type: final ? 'failed' : 'retry', job: String(job.id), detail: error.message });
  });

  let closing: Promise<QueueWorkerSummary> | undefined;
  let resolveClosed!: (summary: QueueWorkerSummary) => void;
  let rejectClosed!: (error: unknown) => void;
  const closed = new Promise<QueueWorkerSummary>((resolve, reject) => {
    resolveClosed = resolve;
    rejectClosed = reject;
  });
  const release = async () => {
    stopWatching();
    for (const model of models.values()) await model.then((m) => m.close()).catch(() => {});
    for (const encoder of encoders.values()) await encoder.then((e) => e.dispose()).catch(() => {});
    redis.disconnect();
    summary.ms = performance.now() - started;
  };
  const close = (): Promise<QueueWorkerSummary> => {
    closing ??= (async () => {
      await worker.close();
      await release();
      resolveClosed(summary);
      return summary;
    })();
    return closing;
  };
  fatal = (error: VtcError) => {
    if (closing) return;
    closing = (async () => {
      // Redis may be gone: stop reconnecting and do not wait on it.
      stopped = true;
      await withTimeout(worker.close(true), 2000, 'close timed out').catch(() => worker.disconnect().catch(() => {}));
      await release();
      rejectClosed(error);
      return summary;
    })();
    closing.catch(() => {});
  };
  const stopWatching = watchRedis(redis, queueUrl, options.redisWaitMs ?? DEFAULT_REDIS_WAIT_MS, (error) =>
    fatal?.(error),
  );
  closed.catch(() => {});
  return { name, closed, close };
}

/** The context fields of an opened token encoder (only those that are set). */
function tokenEncoderContext(opened: TokenEncoder): Pick<TokenEncoder, 'encoder' | 'qwenEncoder'> {
  return {
    ...(opened.encoder ? { encoder: opened.encoder } : {}),
    ...(opened.qwenEncoder ? { qwenEncoder: opened.qwenEncoder } : {}),
  };
}
