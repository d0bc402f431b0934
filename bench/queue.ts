import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { VtcError } from '../core/errors.js';
import { collectQueue, submitQueueRun } from '../eval/queue-run.js';
import { connectRedis, openQueue, parseQueueUrl } from '../eval/queue.js';
import { startFakeEndpoint } from './fake-endpoint.js';
import type { Benchmark, BenchResult } from './harness.js';
import { redisServerAvailable, startLocalRedis } from './redis-server.js';

/**
 * Queue-mode throughput: 1, 2 and 4 `vtc eval worker` processes (each with
 * concurrency 2) against a fake endpoint that sleeps 200 ms per request and
 * serves at most 6 at once (so it tops out at 30 requests/s), on a private
 * redis-server. Workers start (and connect) before the clock starts; a round
 * is submit → every row collected into a fresh results file.
 */

const DELAY_MS = 200;
const CAPACITY = 6;
const SAMPLES = 40;
const WORKER_CONCURRENCY = 2;

/** The CLI entry next to this file (dist/cli/main.js), or the source through tsx. */
function cliCommand(): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(fromSource ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  return fromSource ? ['--import', 'tsx', main] : [main];
}

async function writeDataset(dir: string): Promise<string> {
  const rows = [];
  for (let i = 0; i < SAMPLES; i++) {
    const file = join(dir, `img${i}.png`);
    await sharp({ create: { width: 256, height: 64, channels: 3, background: { r: (i * 37) % 256, g: 90, b: 160 } } })
      .png()
      .toFile(file);
    rows.push(JSON.stringify({ id: `q${i}`, image: file, question: `Please say w${i}.`, answer: `w${i}` }));
  }
  const path = join(dir, 'queue-bench.jsonl');
  writeFileSync(path, `${rows.join('\n')}\n`);
  return path;
}

function stop(children: ChildProcess[]): Promise<unknown[]> {
  return Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
}

export const queueBenchmark: Benchmark = {
  description: `eval queue mode: jobs/s with 1, 2, 4 worker processes (concurrency ${WORKER_CONCURRENCY} each) against a fake endpoint sleeping ${DELAY_MS} ms per request, at most ${CAPACITY} at once`,
  async run({ runs, log }) {
    if (!redisServerAvailable())
      throw new VtcError('bench queue needs redis-server on PATH (apt-get install redis-server)', 'E_BENCH');
    const dir = mkdtempSync(join(tmpdir(), 'vtc-bench-queue-'));
    const redis = await startLocalRedis();
    const endpoint = await startFakeEndpoint({ delayMs: DELAY_MS, capacity: CAPACITY });
    const queueUrl = parseQueueUrl(redis.url);
    const client = await connectRedis(queueUrl);
    const queue = openQueue(client, 'bench');
    const results: BenchResult[] = [];
    try {
      const dataset = await writeDataset(dir);
      const jobs = SAMPLES * 2;
      let round = 0;
      for (const count of [1, 2, 4]) {
        const children = Array.from({ length: count }, (_, i) =>
          spawn(
            process.execPath,
            [
              ...cliCommand(),
              'eval',
              'worker',
              '--queue',
              redis.url,
              '--queue-name',
              'bench',
              '--endpoint',
              endpoint.base,
              '--concurrency',
              String(WORKER_CONCURRENCY),
              '--name',
              `bench-${count}-${i}`,
            ],
            { stdio: 'ignore' },
          ),
        );
        try {
          const deadline = Date.now() + 60_000;
          while ((await queue.getWorkersCount()) < count) {
            if (Date.now() > deadline)
              throw new VtcError(`bench queue: ${count} workers did not connect within 60 s`, 'E_BENCH');
            await new Promise((r) => setTimeout(r, 100));
          }
          const times: number[] = [];
          for (let r = 0; r < Math.min(runs, 3); r++) {
            const file = join(dir, `results-${round++}.jsonl`);
            const started = performance.now();
            const summary = await submitQueueRun({
              queue: redis.url,
              queueName: 'bench',
              dataset,
              model: 'fake',
              methods: [],
              ratios: [2],
              results: file,
              pollMs: 20,
            });
            times.push(performance.now() - started);
            if (summary.done !== jobs)
              throw new VtcError(`bench queue: ${summary.done} of ${jobs} rows collected`, 'E_BENCH');
            await collectQueue({ queue: redis.url, queueName: 'bench', results: file, drop: true });
          }
          times.sort((a, b) => a - b);
          const medianMs =
            times.length % 2
              ? times[(times.length - 1) / 2]!
              : (times[times.length / 2 - 1]! + times[times.length / 2]!) / 2;
          const perSecond = jobs / (medianMs / 1000);
          results.push({
            name: `${count} worker process${count > 1 ? 'es' : ''} × concurrency ${WORKER_CONCURRENCY}, ${jobs} jobs`,
            medianMs,
            minMs: times[0]!,
            runs: times.length,
            extra: {
              'jobs/s': perSecond.toFixed(1),
              'bound jobs/s': Math.min(count * WORKER_CONCURRENCY, CAPACITY) * (1000 / DELAY_MS),
            },
          });
          log(`${count} workers: ${perSecond.toFixed(1)} jobs/s`);
        } finally {
          await stop(children);
        }
      }
      return results;
    } finally {
      await queue.close().catch(() => {});
      client.disconnect();
      await endpoint.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
