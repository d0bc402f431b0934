import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import { UsageError, VtcError } from '../../core/errors.js';
import { summariseTasks, type TaskAnalysis } from '../../eval/groups.js';
import type { EmbedsFormat } from '../../eval/models.js';
import { apiKeyFromEnv } from '../../client/openai.js';
import { DEFAULT_QUEUE_NAME, DEFAULT_REDIS_WAIT_MS, parseQueueUrl } from '../../eval/queue-url.js';
import type { Shard } from '../../eval/runner.js';
import type { Metric } from '../../eval/scoring.js';
import { createProgress } from '../progress.js';
import { configureCommand, parseInteger, printJson } from '../run.js';
import { checkInteger } from '../../core/validate.js';

/**
 * Queue mode on the command line: `vtc eval run --queue URL` (submit and
 * collect, optionally with local workers), `vtc eval worker` and
 * `vtc eval collect`.
 */

/** Collects a repeatable flag's values. */
export function repeatable(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Parses `--rate`: requests per second as `N`, `N/s` or `N/min`.
 *
 * @example
 * parseRate('120/min'); // 2
 */
export function parseRate(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|m|min))?\s*$/.exec(text);
  const value = match ? Number(match[1]) / (match[2] === 'm' || match[2] === 'min' ? 60 : 1) : NaN;
  if (!(value > 0))
    throw new InvalidArgumentError(
      `--rate expects requests per second as N/s or N/min (N > 0), got ${JSON.stringify(text)}`,
    );
  return value;
}

/** `vtc eval run` flags that queue mode reads (the rest of run's flags are ignored or checked by run). */
export interface QueueRunFlags {
  dataset: string;
  model: string;
  endpoint?: string[];
  apiKeyEnv?: string;
  ratios: number[];
  out: string;
  concurrency: number;
  timeout: number;
  maxTokens: number;
  limit?: number;
  encoder?: string;
  embedsFormat: string;
  videoFrames: number;
  seed: number;
  json?: boolean;
  queue: string;
  queueName: string;
  detach?: boolean;
  workers?: number;
  inlineInputs?: boolean;
  attempts: number;
  backoff: number;
  redisWait: number;
}

/** Options `vtc eval run` gains for queue mode. */
export function addQueueRunOptions(command: Command): Command {
  return command
    .option(
      '--queue <url>',
      'queue mode: send the jobs to BullMQ on this Redis (redis://HOST:PORT/DB) for vtc eval worker processes, and collect their rows',
    )
    .option('--queue-name <name>', 'BullMQ queue name (one run configuration per queue)', DEFAULT_QUEUE_NAME)
    .option('--detach', 'queue mode: enqueue and exit at once (attach later with vtc eval collect)')
    .option(
      '--workers <n>',
      'queue mode: also start n local worker processes using --endpoint and --concurrency',
      parseInteger('--workers'),
    )
    .option(
      '--inline-inputs',
      'queue mode: send image bytes inside the jobs instead of paths (workers without the dataset; ≤ 16 MiB per sample)',
    )
    .option(
      '--attempts <n>',
      'queue mode: tries per job for transient endpoint errors (timeouts, 429, 5xx, refused)',
      parseInteger('--attempts'),
      3,
    )
    .option('--backoff <ms>', 'queue mode: first retry delay, doubled per retry', parseInteger('--backoff'), 2000)
    .option(
      '--redis-wait <ms>',
      'queue mode: stop with an error when Redis stays unreachable this long',
      parseInteger('--redis-wait'),
      DEFAULT_REDIS_WAIT_MS,
    );
}

export const QUEUE_RUN_HELP = `
Queue mode (BullMQ on Redis; see docs/eval.md):
  vtc eval run --dataset /shared/bench.jsonl --model qwen --queue redis://10.0.0.5:6379/0 --out run1
  vtc eval run --dataset bench.jsonl --model qwen --queue redis://127.0.0.1:6379/0 --detach
  vtc eval run --dataset bench.jsonl --model qwen --queue redis://127.0.0.1:6379/0 --workers 2 --endpoint http://127.0.0.1:8000/v1
Workers read image and video files by path (put the dataset where every worker sees
it under the same path), or get image bytes inside the jobs with --inline-inputs.`;

function formatSummaryLine(
  s: {
    dataset: string | null;
    model: string | null;
    jobs: number;
    cached: number;
    done: number;
    failed: unknown[];
    ms: number;
  },
  extra: string,
): string {
  return `${s.dataset ?? '?'} × ${s.model ?? '?'}: ${s.jobs} jobs (${s.cached} cached${extra}, ${s.done} collected now, ${s.failed.length} failed) in ${(s.ms / 1000).toFixed(1)} s\n`;
}

function progressHandler(progress: ReturnType<typeof createProgress>) {
  let started = false;
  return (done: number, total: number, label: string) => {
    if (!started) {
      progress.start(total, label);
      started = true;
      if (done === 0) return;
    }
    progress.update(done, label);
  };
}

/** Progress bar and Ctrl-C wiring shared by submit-and-collect and collect. */
function collectCallbacks(progress: ReturnType<typeof createProgress>, signal: AbortSignal) {
  return {
    signal,
    onProgress: progressHandler(progress),
    onIdle: (message: string) => {
      progress.stop();
      process.stderr.write(`vtc: warning: ${message}\n`);
    },
  };
}

/** The tail both commands print: JSON fields for the report, or the table and file names. */
function reportJson(summary: { analysis: TaskAnalysis | null; reportFiles: string[]; ms: number }, results: string) {
  return {
    results,
    report: summary.analysis ? summariseTasks([summary.analysis]) : null,
    files: summary.reportFiles,
    seconds: summary.ms / 1000,
  };
}

function printReport(
  summary: { analysis: TaskAnalysis | null; reportFiles: string[] },
  results: string,
  report: (analysis: TaskAnalysis) => string,
): void {
  if (summary.analysis) process.stdout.write(`${report(summary.analysis)}\n`);
  const md = summary.reportFiles.find((f) => f.endsWith('report.md'));
  if (md) process.stdout.write(`\nreport: ${md}\nresults: ${results}\n`);
}

function interruptOnSigint(message: string): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = () => {
    process.stderr.write(`\nvtc: ${message}\n`);
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  return { signal: controller.signal, dispose: () => process.removeListener('SIGINT', onSignal) };
}

/** Set on `--workers` children: they stop (letting running jobs finish) when that parent is gone, even after a SIGKILL. */
const PARENT_ENV = 'VTC_EVAL_WORKER_PARENT';

/** Starts `count` `vtc eval worker` child processes; their stderr lines are passed on, prefixed. */
function spawnWorkers(count: number, args: string[]): ChildProcess[] {
  const children: ChildProcess[] = [];
  for (let i = 1; i <= count; i++) {
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1]!, 'eval', 'worker', ...args, '--name', `local-${process.pid}-${i}`],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, [PARENT_ENV]: String(process.pid) },
      },
    );
    createInterface({ input: child.stderr! }).on('line', (line) => process.stderr.write(`[worker ${i}] ${line}\n`));
    children.push(child);
  }
  return children;
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
          child.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

/** The `vtc eval run --queue` action: submit, optionally start local workers, collect, report. */
export async function runQueued(
  opts: QueueRunFlags,
  resolved: {
    methods: string[];
    metric: Metric;
    shard?: Shard;
    results: string;
    report: (analysis: TaskAnalysis) => string;
  },
): Promise<void> {
  const queue = parseQueueUrl(opts.queue);
  const workers = opts.workers ?? 0;
  checkInteger(workers, 'workers', { min: 0, where: 'eval run' });
  if (workers > 0 && opts.detach)
    throw new UsageError(
      'eval run: --workers runs workers until the run is collected; drop --detach, or start workers with vtc eval worker',
    );
  const endpoints = opts.endpoint ?? [];
  if (workers > 0 && opts.model !== 'ocr' && endpoints.length === 0)
    throw new UsageError(
      `eval run: --workers needs the endpoints of ${opts.model} (--endpoint <url ending in /v1>, repeatable)`,
    );
  if (opts.apiKeyEnv) apiKeyFromEnv(opts.apiKeyEnv);
  // BullMQ, ioredis and eval/'s runner: imported when a queued run starts, not for --help.
  const { submitQueueRun, failureWarnings, failuresPath } = await import('../../eval/queue-run.js');
  const progress = createProgress();
  const interrupt = interruptOnSigint(
    'stopped collecting; the queued jobs stay in Redis (attach again with vtc eval collect)',
  );
  let children: ChildProcess[] = [];
  try {
    if (workers > 0) {
      children = spawnWorkers(workers, [
        '--queue',
        opts.queue,
        '--queue-name',
        opts.queueName,
        '--concurrency',
        String(opts.concurrency),
        '--timeout',
        String(opts.timeout),
        '--redis-wait',
        String(opts.redisWait),
        ...endpoints.flatMap((e) => ['--endpoint', e]),
        ...(opts.apiKeyEnv ? ['--api-key-env', opts.apiKeyEnv] : []),
      ]);
    }
    const summary = await submitQueueRun({
      queue: opts.queue,
      queueName: opts.queueName,
      dataset: opts.dataset,
      model: opts.model,
      methods: resolved.methods,
      ratios: opts.ratios,
      results: resolved.results,
      out: opts.out,
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      ...(resolved.shard ? { shard: resolved.shard } : {}),
      metric: resolved.metric,
      ...(opts.encoder ? { encoder: opts.encoder } : {}),
      embedsFormat: opts.embedsFormat as EmbedsFormat,
      maxTokens: opts.maxTokens,
      videoFrames: opts.videoFrames,
      seed: opts.seed,
      inlineInputs: opts.inlineInputs ?? false,
      attempts: opts.attempts,
      backoffMs: opts.backoff,
      detach: opts.detach ?? false,
      redisWaitMs: opts.redisWait,
      ...collectCallbacks(progress, interrupt.signal),
    });
    progress.stop();
    const warnings = [...summary.warnings, ...failureWarnings(summary.failed)];
    for (const warning of warnings) process.stderr.write(`vtc: warning: ${warning}\n`);
    if (opts.json) {
      printJson({
        dataset: summary.dataset,
        model: summary.model,
        queue: summary.queue,
        samples: summary.samples,
        jobs: summary.jobs,
        cached: summary.cached,
        enqueued: summary.enqueued,
        retried: summary.retried,
        already_queued: summary.alreadyQueued,
        done: summary.done,
        failed: summary.failed.length,
        unsupported: summary.unsupported,
        detached: summary.detached,
        interrupted: summary.interrupted,
        ...reportJson(summary, resolved.results),
      });
    } else if (summary.detached) {
      process.stdout.write(
        `${summary.dataset} × ${summary.model}: ${summary.jobs} jobs (${summary.cached} cached, ${summary.enqueued} enqueued, ${summary.retried} retried, ${summary.alreadyQueued} already queued) on queue ${summary.queue} at ${queue.display}\n`,
      );
      process.stdout.write(
        `collect with: vtc eval collect --queue ${queue.display} --queue-name ${summary.queue} --results ${resolved.results} --out ${opts.out}\n`,
      );
    } else {
      process.stdout.write(formatSummaryLine(summary, `, ${summary.enqueued} enqueued`));
      printReport(summary, resolved.results, resolved.report);
    }
    if (summary.interrupted)
      throw new VtcError(
        `interrupted: the jobs stay queued; attach again with vtc eval collect --queue ${queue.display} --queue-name ${summary.queue} --results ${resolved.results}`,
        'E_INTERRUPTED',
      );
    if (summary.failed.length > 0)
      throw new VtcError(
        `${summary.failed.length} jobs failed (see warnings and ${failuresPath(resolved.results)}); run the same command again to retry them`,
        'E_EVAL_FAILED',
      );
  } finally {
    progress.stop();
    interrupt.dispose();
    await stopWorkers(children);
  }
}

interface WorkerFlags {
  queue: string;
  queueName: string;
  endpoint?: string[];
  apiKeyEnv?: string;
  concurrency: number;
  rate?: number;
  timeout: number;
  retries: number;
  encoder?: string;
  lockMs: number;
  stalledMs: number;
  redisWait: number;
  name?: string;
  json?: boolean;
}

export function workerSubcommand(): Command {
  return configureCommand(new Command('worker'))
    .description(
      'serve a VTC-Bench queue: take jobs from BullMQ on Redis, prepare the compressed input, ask the model, return the row (runs until Ctrl-C / SIGTERM)',
    )
    .requiredOption('--queue <url>', 'Redis URL redis://HOST:PORT/DB the run was submitted to')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .option(
      '--endpoint <url>',
      "OpenAI-compatible base URL serving the run's model (repeat for several; each job goes to the least loaded)",
      repeatable,
    )
    .option('--api-key-env <VAR>', 'environment variable holding the API key (sent as a Bearer token)')
    .option(
      '--concurrency <n>',
      'jobs at once in this process (tesseract workers for --model ocr runs)',
      parseInteger('--concurrency'),
      2,
    )
    .option(
      '--rate <n/s>',
      "requests per second per endpoint (N/s or N/min), enforced across all workers by BullMQ's queue-wide limiter",
      parseRate,
    )
    .option('--timeout <ms>', 'per-request timeout for the endpoint', parseInteger('--timeout'), 120000)
    .option(
      '--retries <n>',
      "retries inside one attempt (the job's attempts, set by the submitter, already retry transient errors)",
      parseInteger('--retries'),
      0,
    )
    .option('--encoder <spec>', "vision encoder for token-level jobs when its path differs from the submitter's")
    .option(
      '--lock-ms <ms>',
      'job lock time: a job whose worker went silent this long is taken up again',
      parseInteger('--lock-ms'),
      30000,
    )
    .option(
      '--stalled-ms <ms>',
      'how often to look for stalled jobs of dead workers',
      parseInteger('--stalled-ms'),
      30000,
    )
    .option(
      '--redis-wait <ms>',
      'stop with an error when Redis stays unreachable this long',
      parseInteger('--redis-wait'),
      DEFAULT_REDIS_WAIT_MS,
    )
    .option('--name <name>', 'worker name stored on the jobs it takes (default host-pid)')
    .option('--json', 'on exit print one JSON object {name, completed, retried, failed, seconds}')
    .addHelpText(
      'after',
      `
Examples:
  vtc eval worker --queue redis://10.0.0.5:6379/0 --endpoint http://127.0.0.1:8000/v1 --concurrency 8
  vtc eval worker --queue redis://10.0.0.5:6379/0 --endpoint http://gpu1:8000/v1 --endpoint http://gpu2:8000/v1 --rate 20/s

Start any number of workers on any machines; each takes jobs until stopped (Ctrl-C
or SIGTERM let running jobs finish). Image and video paths in the jobs are read on
this machine: the dataset must be on shared storage under the same path, unless the
run was submitted with --inline-inputs. A worker killed mid-job leaves its job to be
taken again once its lock (--lock-ms) expires.`,
    )
    .action(async (opts: WorkerFlags) => {
      const endpoints = opts.endpoint ?? [];
      const queue = parseQueueUrl(opts.queue);
      const { startQueueWorker } = await import('../../eval/queue-worker.js'); // BullMQ and the methods: when run
      const worker = await startQueueWorker({
        queue: opts.queue,
        queueName: opts.queueName,
        endpoints,
        apiKey: apiKeyFromEnv(opts.apiKeyEnv),
        concurrency: opts.concurrency,
        ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
        timeoutMs: opts.timeout,
        retries: opts.retries,
        ...(opts.encoder ? { encoder: opts.encoder } : {}),
        lockMs: opts.lockMs,
        stalledMs: opts.stalledMs,
        redisWaitMs: opts.redisWait,
        ...(opts.name ? { name: opts.name } : {}),
        onEvent: (event) => {
          if (event.type !== 'completed')
            process.stderr.write(
              `vtc: ${event.type === 'retry' ? 'will retry' : 'failed'} ${event.job}: ${event.detail}\n`,
            );
        },
      });
      process.stderr.write(
        `vtc: worker ${worker.name} serving queue ${opts.queueName} at ${queue.display} (concurrency ${opts.concurrency}${endpoints.length ? `, ${endpoints.length} endpoint${endpoints.length > 1 ? 's' : ''}` : ''}); Ctrl-C to stop\n`,
      );
      let stops = 0;
      const onSignal = () => {
        if (++stops === 1) {
          process.stderr.write('vtc: worker stopping after the running jobs\n');
          void worker.close();
        } else process.exit(130);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const parent = Number(process.env[PARENT_ENV]);
      const orphanCheck =
        Number.isInteger(parent) && parent > 0
          ? setInterval(() => process.ppid !== parent && void worker.close(), 1000)
          : undefined;
      orphanCheck?.unref();
      try {
        const summary = await worker.closed;
        if (opts.json)
          printJson({
            name: summary.name,
            completed: summary.completed,
            retried: summary.retried,
            failed: summary.failed,
            seconds: summary.ms / 1000,
          });
        else
          process.stdout.write(
            `worker ${summary.name}: ${summary.completed} jobs done, ${summary.failed} failed, ${summary.retried} sent back for a retry in ${(summary.ms / 1000).toFixed(1)} s\n`,
          );
      } finally {
        clearInterval(orphanCheck);
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
    });
}

interface CollectFlags {
  queue: string;
  queueName: string;
  out: string;
  results?: string;
  drop?: boolean;
  redisWait: number;
  json?: boolean;
}

export function collectSubcommand(report: (analysis: TaskAnalysis) => string): Command {
  return configureCommand(new Command('collect'))
    .description(
      'attach to a queued VTC-Bench run: collect finished rows into the results file until the queue is done, then write the report',
    )
    .requiredOption('--queue <url>', 'Redis URL redis://HOST:PORT/DB the run was submitted to')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .option('--out <dir>', 'report folder; holds results.jsonl unless --results is given', 'vtc-eval')
    .option('--results <file>', 'results file to append to (default <out>/results.jsonl)')
    .option('--drop', 'when everything is collected, delete the queue and its run configuration from Redis')
    .option(
      '--redis-wait <ms>',
      'stop with an error when Redis stays unreachable this long',
      parseInteger('--redis-wait'),
      DEFAULT_REDIS_WAIT_MS,
    )
    .option(
      '--json',
      'print one JSON object {queue, dataset, model, jobs, cached, done, failed, dropped, results, report, files}',
    )
    .addHelpText(
      'after',
      `
Examples:
  vtc eval collect --queue redis://10.0.0.5:6379/0 --out run1
  vtc eval collect --queue redis://10.0.0.5:6379/0 --results run1/results.jsonl --out run1 --drop

Rows already in the results file are kept (the first row per key wins); final
failures are logged with their reason in failed-<results name> beside it.
It exits when nothing is waiting, running or delayed.`,
    )
    .action(async (opts: CollectFlags) => {
      const results = opts.results ?? `${opts.out.replace(/\/+$/, '')}/results.jsonl`;
      const { collectQueue, failureWarnings } = await import('../../eval/queue-run.js'); // BullMQ: when run
      const progress = createProgress();
      const interrupt = interruptOnSigint('stopped collecting; the queued jobs stay in Redis');
      try {
        const summary = await collectQueue({
          queue: opts.queue,
          queueName: opts.queueName,
          results,
          out: opts.out,
          drop: opts.drop ?? false,
          redisWaitMs: opts.redisWait,
          ...collectCallbacks(progress, interrupt.signal),
        });
        progress.stop();
        for (const warning of [...summary.warnings, ...failureWarnings(summary.failed)])
          process.stderr.write(`vtc: warning: ${warning}\n`);
        if (opts.json) {
          printJson({
            queue: summary.queue,
            dataset: summary.dataset,
            model: summary.model,
            jobs: summary.jobs,
            cached: summary.cached,
            done: summary.done,
            failed: summary.failed.length,
            dropped: summary.dropped,
            interrupted: summary.interrupted,
            ...reportJson(summary, results),
          });
        } else {
          process.stdout.write(formatSummaryLine(summary, ''));
          printReport(summary, results, report);
        }
        if (summary.interrupted)
          throw new VtcError(
            'interrupted: the jobs stay queued; run the same command again to attach',
            'E_INTERRUPTED',
          );
        if (summary.failed.length > 0)
          throw new VtcError(
            `${summary.failed.length} jobs failed for good (see warnings); resubmit the run (vtc eval run … --queue) to retry them`,
            'E_EVAL_FAILED',
          );
      } finally {
        progress.stop();
        interrupt.dispose();
      }
    });
}
