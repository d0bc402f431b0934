import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Queue, type JobsOptions, type RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { UsageError, VtcError } from '../core/errors.js';
import type { EvalSample, ImageRef } from './datasets.js';
import { DEFAULT_QUEUE_NAME, DEFAULT_REDIS_WAIT_MS, parseQueueUrl, type QueueUrl } from './queue-url.js';
import { BASELINE_METHOD } from './groups.js';
import type { EmbedsFormat } from './models.js';
import type { ResultKey } from './results.js';
import type { Metric } from './scoring.js';

/**
 * The Redis side of VTC-Bench queue mode (BullMQ on a real Redis server):
 * queue URLs and connections that fail fast, job ids, the job payload, and
 * the run configuration a queue belongs to. Submitting and collecting live
 * in queue-run.ts, workers in queue-worker.ts.
 *
 * One BullMQ job per (sample, method, ratio, model); its id is the encoded
 * result key, so adding a job twice is a no-op. Every job carries the run
 * configuration it was made for, and the queue holds that configuration's
 * fingerprint in Redis so a run with other settings is refused instead of
 * mixed into it.
 */

// In eval/queue-url.ts (no BullMQ there, for the CLI's help); exported from here as before.
export { DEFAULT_QUEUE_NAME, DEFAULT_REDIS_WAIT_MS, parseQueueUrl, type QueueUrl };

/** Checks a queue name: BullMQ keys are `bull:<name>:…`, so no ':' (and nothing odd in key names). */
export function checkQueueName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(name))
    throw new UsageError(
      `--queue-name must be 1–100 letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`,
      'E_QUEUE_NAME',
    );
  return name;
}

/**
 * ioredis options for BullMQ's own connections. Reconnects are quick and
 * unbounded here (BullMQ needs that for its blocking connection) until
 * `stopped()` says otherwise; when Redis stays away is decided by
 * {@link watchRedis}.
 */
export function bullConnection(queue: QueueUrl, stopped: () => boolean = () => false): RedisOptions {
  return {
    url: queue.url,
    connectTimeout: 3000,
    retryStrategy: (times: number) => (stopped() ? null : Math.min(100 * times, 1000)),
  };
}

/** The last connection error of each client from {@link connectRedis} (a failed command only says "max retries"). */
const connectionErrors = new WeakMap<Redis, string>();

export function redisErrorMessage(error: unknown, client?: Redis): string {
  const e = error as { code?: string; message?: string; errors?: { message?: string }[] };
  if (Array.isArray(e.errors) && e.errors[0]?.message) return e.errors[0].message;
  const message = e.message || e.code || String(error);
  const cause = client ? connectionErrors.get(client) : undefined;
  return cause && /max retries per request|Connection is closed|no answer/i.test(message) ? cause : message;
}

/**
 * Opens a plain Redis client and checks that the server answers, failing
 * within `timeoutMs` with one line (ioredis alone would retry forever).
 *
 * @example
 * const redis = await connectRedis(parseQueueUrl('redis://127.0.0.1:6379'));
 * await redis.ping(); // 'PONG'
 * redis.disconnect();
 */
export async function connectRedis(queue: QueueUrl, timeoutMs = 3000): Promise<Redis> {
  let lastError: unknown;
  let probing = true;
  const client = new Redis(queue.url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    // No reconnects while probing (fail fast); afterwards quick ones, so a blip in the middle of a run is ridden out.
    retryStrategy: (times: number) => (probing ? null : Math.min(100 * times, 1000)),
  });
  client.on('error', (error) => {
    lastError = error;
    connectionErrors.set(client, redisErrorMessage(error));
  });
  client.on('ready', () => connectionErrors.delete(client));
  try {
    await client.connect();
    await client.ping();
    probing = false;
    return client;
  } catch (error) {
    client.disconnect();
    throw new VtcError(
      `cannot reach Redis at ${queue.display}: ${redisErrorMessage(lastError ?? error)} (start one with: redis-server --port 6379)`,
      'E_REDIS',
    );
  }
}

/**
 * Watches Redis with a ping every second and calls `onLost` once when it has
 * not answered for `waitMs` (a restart shorter than that is ridden out).
 * Returns the function that stops watching.
 */
export function watchRedis(
  client: Redis,
  queue: QueueUrl,
  waitMs: number,
  onLost: (error: VtcError) => void,
): () => void {
  let downSince: number | undefined;
  let lastError = 'no answer';
  let stopped = false;
  let busy = false;
  const timer = setInterval(
    async () => {
      if (busy || stopped) return;
      busy = true;
      try {
        await withTimeout(client.ping(), 1000, 'no answer within 1 s');
        downSince = undefined;
      } catch (error) {
        lastError = redisErrorMessage(error, client);
        downSince ??= Date.now();
        if (Date.now() - downSince >= waitMs && !stopped) {
          stopped = true;
          clearInterval(timer);
          onLost(lostRedis(queue, waitMs, lastError));
        }
      } finally {
        busy = false;
      }
    },
    Math.min(1000, Math.max(100, waitMs / 4)),
  );
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

export function lostRedis(queue: QueueUrl, waitMs: number, detail: string): VtcError {
  return new VtcError(
    `lost the connection to Redis at ${queue.display} for ${(waitMs / 1000).toFixed(0)} s (${detail}); run the command again when Redis is back`,
    'E_REDIS',
  );
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A BullMQ queue handle on an open client (from {@link connectRedis}). The
 * client stays ours: BullMQ never waits on it when closing, and
 * `client.disconnect()` ends it at once even while Redis is away.
 */
export function openQueue(client: Redis, name: string): Queue {
  const handle = new Queue(checkQueueName(name), { connection: client });
  handle.on('error', () => {
    // Connection trouble surfaces as failed commands, which the callers handle.
  });
  return handle;
}

// --- job ids ---------------------------------------------------------------

const ESCAPE = /[%|:]/g;
const escapePart = (text: string) =>
  text.replace(ESCAPE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

/**
 * The BullMQ job id of a result key: the key's five fields joined by '|',
 * with '%', '|' and ':' percent-encoded (BullMQ ids must not contain ':').
 * One key ↔ one id, so re-submitting a job is a no-op.
 *
 * @example
 * jobIdForKey({ dataset: 'bench', sample: 'a:1', model: 'qwen', method: 'downsample', ratio: 2 }); // 'bench|a%3A1|qwen|downsample|2'
 */
export function jobIdForKey(key: ResultKey): string {
  return [key.dataset, key.sample, key.model, key.method, JSON.stringify(key.ratio)].map(escapePart).join('|');
}

/** The result key of a job id made by {@link jobIdForKey}. */
export function keyForJobId(id: string): ResultKey {
  const parts = id.split('|').map(decodeURIComponent);
  const ratio = Number(parts[4]);
  if (parts.length !== 5 || !Number.isFinite(ratio))
    throw new VtcError(`job id ${JSON.stringify(id)} is not a vtc result key`, 'E_QUEUE_JOB');
  return { dataset: parts[0]!, sample: parts[1]!, model: parts[2]!, method: parts[3]!, ratio };
}

// --- run configuration ------------------------------------------------------

/**
 * Everything that decides what a job's row holds, besides its key: jobs of
 * one queue must agree on it. Endpoints, rates, timeouts and concurrency are
 * the workers' business and are not part of it.
 */
export interface QueueRunConfig {
  dataset: string;
  /** Where the submitter loaded the dataset from (report source line only; not compared). */
  source: string;
  model: string;
  /** Methods besides the baseline, sorted. */
  methods: string[];
  /** Downsample factors K > 1, sorted, unique. */
  ratios: number[];
  metric: Metric;
  /** Vision encoder spec for token-level methods ('patch' or an ONNX folder path), if any. */
  encoder: string | null;
  embedsFormat: EmbedsFormat;
  maxTokens: number;
  videoFrames: number;
  seed: number;
}

const COMPARED: (keyof QueueRunConfig)[] = [
  'dataset',
  'model',
  'methods',
  'ratios',
  'metric',
  'encoder',
  'embedsFormat',
  'maxTokens',
  'videoFrames',
  'seed',
];

/** The run configuration in its canonical form (sorted method and ratio lists). */
export function normalizeRunConfig(config: QueueRunConfig): QueueRunConfig {
  return {
    ...config,
    methods: [...new Set(config.methods.filter((m) => m !== BASELINE_METHOD))].sort(),
    ratios: [...new Set(config.ratios)].sort((a, b) => a - b),
  };
}

/** sha256 over the compared fields, in a fixed order. */
export function runFingerprint(config: QueueRunConfig): string {
  const normal = normalizeRunConfig(config);
  return createHash('sha256')
    .update(JSON.stringify(COMPARED.map((k) => [k, normal[k]])))
    .digest('hex');
}

/** The fields where two configurations differ, as "name: there → here" phrases. */
export function configDifferences(stored: QueueRunConfig, wanted: QueueRunConfig): string[] {
  const a = normalizeRunConfig(stored);
  const b = normalizeRunConfig(wanted);
  return COMPARED.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map(
    (k) => `${k} ${JSON.stringify(a[k])} in the queue, ${JSON.stringify(b[k])} here`,
  );
}

/** The Redis hash holding a queue's run configuration and its fingerprint (outside BullMQ's own keys). */
export function configKey(name: string): string {
  return `vtc:eval:${name}:config`;
}

/** The run configuration a queue holds, or null when the queue has none. */
export async function readRunConfig(redis: Redis, name: string): Promise<QueueRunConfig | null> {
  const json = await redis.hget(configKey(name), 'config');
  return json ? (JSON.parse(json) as QueueRunConfig) : null;
}

/**
 * Ties the queue to this run configuration: stores it when the queue has
 * none, passes when the fingerprints match, and otherwise refuses with the
 * differing fields named.
 */
export async function claimQueue(redis: Redis, queue: QueueUrl, name: string, config: QueueRunConfig): Promise<void> {
  const normal = normalizeRunConfig(config);
  const fingerprint = runFingerprint(normal);
  const key = configKey(name);
  const created = await redis.hsetnx(key, 'fingerprint', fingerprint);
  if (created) {
    await redis.hset(key, 'config', JSON.stringify(normal), 'created', new Date().toISOString());
    return;
  }
  const storedFingerprint = await redis.hget(key, 'fingerprint');
  if (storedFingerprint === fingerprint) return;
  const stored = await readRunConfig(redis, name);
  const differences = stored ? configDifferences(stored, normal) : ['the stored configuration is unreadable'];
  throw new VtcError(
    `queue ${JSON.stringify(name)} at ${queue.display} belongs to another run (${differences.join('; ')}); use another --queue-name, or collect and drop it first (vtc eval collect --queue … --drop)`,
    'E_QUEUE_CONFIG',
  );
}

// --- job payload --------------------------------------------------------------

/** An image of a job: a path read on the worker (shared storage) or the bytes, base64. */
export type JobImage = { path: string } | { base64: string };

/** A sample as a job carries it (JSON). */
export interface JobSample {
  id: string;
  question: string;
  options?: string[];
  answer: string;
  images: JobImage[];
  video?: string;
  text?: string;
  metric?: Metric;
  category?: string;
  where: string;
}

export interface QueueJobData {
  /** Payload format version. */
  v: 1;
  config: QueueRunConfig;
  fingerprint: string;
  sample: JobSample;
  method: string;
  k: number;
}

/** Largest inlined input of one job: bigger samples belong on shared storage. */
export const MAX_INLINE_BYTES = 16 * 1024 * 1024;

/**
 * A sample as job payload. Images with bytes (TSV datasets) always travel
 * inline; images on disk travel as paths unless `inline` is set, when they
 * are read here and sent (up to {@link MAX_INLINE_BYTES} per sample). Video
 * always travels as a path.
 */
export async function sampleToJob(
  sample: EvalSample,
  inline: boolean,
  cache?: Map<string, string>,
): Promise<JobSample> {
  let inlined = 0;
  const images: JobImage[] = [];
  for (const ref of sample.images) {
    if ('path' in ref && !inline) {
      images.push({ path: ref.path });
      continue;
    }
    let base64 = 'path' in ref ? cache?.get(ref.path) : undefined;
    if (base64 === undefined) {
      const bytes = 'path' in ref ? await readFile(ref.path) : ref.bytes;
      base64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
      if ('path' in ref) cache?.set(ref.path, base64);
    }
    inlined += (base64.length * 3) / 4;
    if (inlined > MAX_INLINE_BYTES)
      throw new UsageError(
        `${sample.where}: inputs of more than ${MAX_INLINE_BYTES / 1024 / 1024} MiB cannot travel inside a job; put the dataset on storage every worker reads and drop --inline-inputs`,
      );
    images.push({ base64 });
  }
  return {
    id: sample.id,
    question: sample.question,
    ...(sample.options ? { options: sample.options } : {}),
    answer: sample.answer,
    images,
    ...(sample.video !== undefined ? { video: sample.video } : {}),
    ...(sample.text !== undefined ? { text: sample.text } : {}),
    ...(sample.metric !== undefined ? { metric: sample.metric } : {}),
    ...(sample.category !== undefined ? { category: sample.category } : {}),
    where: sample.where,
  };
}

/** The sample of a job payload, as the methods take it. */
export function sampleFromJob(job: JobSample): EvalSample {
  const images: ImageRef[] = job.images.map((image) =>
    'path' in image ? { path: image.path } : { bytes: new Uint8Array(Buffer.from(image.base64, 'base64')) },
  );
  return { ...job, images };
}

/**
 * BullMQ options of every job: the id is the result key; transient failures
 * are retried `attempts - 1` times with exponential backoff; finished jobs
 * stay in Redis, where the collector reads them.
 */
export function jobOptions(key: ResultKey, attempts: number, backoffMs: number): JobsOptions {
  return {
    jobId: jobIdForKey(key),
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    removeOnComplete: false,
    removeOnFail: false,
  };
}
