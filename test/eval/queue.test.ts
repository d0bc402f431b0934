import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { startFakeEndpoint, type FakeEndpoint } from '../../bench/fake-endpoint.js';
import { redisServerAvailable, startLocalRedis, type LocalRedis } from '../../bench/redis-server.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { createEndpointModel } from '../../eval/models.js';
import { configDifferences, jobIdForKey, keyForJobId, parseQueueUrl, type QueueRunConfig } from '../../eval/queue.js';
import { collectQueue, failuresPath, submitQueueRun } from '../../eval/queue-run.js';
import { limiterFor, startQueueWorker } from '../../eval/queue-worker.js';
import type { ResultRow } from '../../eval/results.js';
import { runEval } from '../../eval/runner.js';
import { parseRate } from '../../cli/commands/eval-queue.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';

/**
 * Queue mode against a real redis-server (started here on a free loopback
 * port without persistence) and a fake endpoint that answers
 * deterministically after a fixed sleep.
 */

const skip = redisServerAvailable()
  ? false
  : 'redis-server is not installed (apt-get install redis-server; .ci/run installs it)';

const WORDS = ['apple', 'pear', 'plum', 'fig'];

/** Four images 800/500/350/250 px wide asking to "say <word>": the fake model sees images ≥ 200 px. */
async function writeDataset(dir: string, words = WORDS): Promise<string> {
  const widths = [800, 500, 350, 250];
  const rows = [];
  for (let i = 0; i < words.length; i++) {
    const file = `img${i}.png`;
    await sharp({
      create: { width: widths[i % 4]!, height: 40, channels: 3, background: { r: 50 * i, g: 100, b: 200 } },
    })
      .png()
      .toFile(join(dir, file));
    rows.push({ id: `s${i}`, image: file, question: `Please say ${words[i]}.`, answer: words[i] });
  }
  const path = join(dir, 'tiny.jsonl');
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

function readRows(path: string): ResultRow[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ResultRow);
}

/** Rows without what differs between two runs of the same job (timing and time of writing), sorted by key. */
function comparable(rows: ResultRow[]): unknown[] {
  return rows.map(({ ms: _ms, at: _at, ...rest }) => rest).sort((a, b) => (jobIdForKey(a) < jobIdForKey(b) ? -1 : 1));
}

const children: ChildProcess[] = [];

/** `vtc eval worker` as a separate process (kept as a handle so it can be killed). */
function spawnWorker(args: string[]): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'cli', 'main.js'), 'eval', 'worker', ...args], {
    env: { ...process.env, CI: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('queue helpers', () => {
  it('encodes result keys as BullMQ job ids without ":" and back', () => {
    const key = { dataset: 'a|b', sample: 'x:1%', model: 'Qwen/Qwen2.5-VL:7b', method: 'downsample', ratio: 2.5 };
    const id = jobIdForKey(key);
    assert.equal(id, 'a%7Cb|x%3A1%25|Qwen/Qwen2.5-VL%3A7b|downsample|2.5');
    assert.ok(!id.includes(':'));
    assert.deepEqual(keyForJobId(id), key);
    assert.notEqual(jobIdForKey({ ...key, dataset: 'a', sample: 'b|x:1%' }), id);
  });

  it('validates queue URLs, rates and limiter settings', () => {
    assert.equal(parseQueueUrl('redis://user:secret@10.0.0.5:6379/2').display, 'redis://user:***@10.0.0.5:6379/2');
    assert.throws(() => parseQueueUrl('http://127.0.0.1:6379'), /redis:\/\/ or rediss:\/\//);
    assert.throws(() => parseQueueUrl('redis://127.0.0.1:6379/x'), /database must be a number/);
    assert.equal(parseRate('120/min'), 2);
    assert.equal(parseRate('2.5/s'), 2.5);
    assert.throws(() => parseRate('0/s'), /N\/s or N\/min/);
    assert.deepEqual(limiterFor(4), { max: 4, duration: 1000 });
    assert.deepEqual(limiterFor(2.5), { max: 1, duration: 400 });
    assert.deepEqual(limiterFor(0.5), { max: 1, duration: 2000 });
  });

  it('names the fields where two run configurations differ', () => {
    const base: QueueRunConfig = {
      dataset: 'd',
      source: '/a/d.jsonl',
      model: 'm',
      methods: ['pool'],
      ratios: [2, 3],
      metric: 'auto',
      encoder: 'patch',
      embedsFormat: 'npy',
      maxTokens: 64,
      videoFrames: 16,
      seed: 0,
    };
    assert.deepEqual(configDifferences(base, { ...base, source: '/b/d.jsonl', ratios: [3, 2, 2] }), []);
    assert.deepEqual(configDifferences(base, { ...base, model: 'n', ratios: [2] }), [
      'model "m" in the queue, "n" here',
      'ratios [2,3] in the queue, [2] here',
    ]);
  });
});

describe('eval queue mode on a real redis-server', { skip }, () => {
  let redis: LocalRedis;
  let client: Redis;
  let vlm: FakeEndpoint;
  const endpoints: FakeEndpoint[] = [];
  const dirs: string[] = [];
  let release: () => void = () => {};

  before(async () => {
    redis = await startLocalRedis();
    client = new Redis(redis.url);
    vlm = await startFakeEndpoint({ delayMs: 100 });
  });
  after(async () => {
    release();
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    client?.disconnect();
    await vlm?.close();
    for (const endpoint of endpoints) await endpoint.close();
    await redis?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('two worker processes, one SIGKILLed mid-job: every key once, rows equal to a local run; resubmit enqueues nothing; analyze reads the results', async () => {
    const dir = tempDir('vtc-queue-');
    dirs.push(dir);
    const dataset = await writeDataset(dir);
    // The first request for "plum" is held until the test releases it: a job stays mid-flight on its worker.
    let held = 0;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const vlm = await startFakeEndpoint({
      delayMs: 100,
      gate: (prompt) => (prompt.includes('say plum') && held++ === 0 ? hold : undefined),
    });
    endpoints.push(vlm);
    const queueArgs = ['--queue', redis.url, '--queue-name', 'kill'];
    const submitted = await submitQueueRun({
      queue: redis.url,
      queueName: 'kill',
      dataset,
      model: 'fake',
      methods: [],
      ratios: [2, 3],
      results: join(dir, 'q', 'results.jsonl'),
      detach: true,
    });
    assert.deepEqual([submitted.jobs, submitted.enqueued, submitted.cached], [12, 12, 0]);

    // Worker A takes jobs one at a time until one is held at the endpoint, then dies with SIGKILL.
    const a = spawnWorker([
      ...queueArgs,
      '--endpoint',
      vlm.base,
      '--concurrency',
      '1',
      '--name',
      'worker-a',
      '--lock-ms',
      '1000',
      '--stalled-ms',
      '300',
    ]);
    await waitFor('worker A to hold a job', () => held > 0);
    const active = await client.lrange('bull:kill:active', 0, -1);
    assert.equal(active.length, 1);
    const heldId = active[0]!;
    assert.equal(keyForJobId(heldId).sample, 's2');
    assert.equal(await client.hget(`bull:kill:${heldId}`, 'pb'), 'worker-a');
    const b = spawnWorker([
      ...queueArgs,
      '--endpoint',
      vlm.base,
      '--concurrency',
      '2',
      '--name',
      'worker-b',
      '--lock-ms',
      '1000',
      '--stalled-ms',
      '300',
    ]);
    a.child.kill('SIGKILL');
    assert.equal((await a.exited).signal, 'SIGKILL');

    const collected = await runCli(['eval', 'collect', ...queueArgs, '--out', join(dir, 'q'), '--json']);
    assert.equal(collected.code, 0, collected.stderr);
    const summary = JSON.parse(collected.stdout);
    assert.deepEqual([summary.jobs, summary.done, summary.failed], [12, 12, 0]);
    release();
    b.child.kill('SIGTERM');
    const bExit = await b.exited;
    assert.equal(bExit.code, 0, bExit.stderr);

    // The held job ran again on worker B after its lock expired (stalled-job check).
    assert.equal(await client.hget(`bull:kill:${heldId}`, 'pb'), 'worker-b');
    assert.ok(Number(await client.hget(`bull:kill:${heldId}`, 'ats')) >= 2);

    const queued = readRows(join(dir, 'q', 'results.jsonl'));
    assert.equal(queued.length, 12);
    assert.equal(new Set(queued.map(jobIdForKey)).size, 12);
    const model = createEndpointModel({ endpoint: vlm.base, model: 'fake', retries: 0 });
    const local = await runEval({
      dataset,
      model,
      methods: [],
      ratios: [2, 3],
      results: join(dir, 'local', 'results.jsonl'),
      concurrency: 2,
    });
    assert.equal(local.done, 12);
    assert.deepEqual(comparable(queued), comparable(readRows(join(dir, 'local', 'results.jsonl'))));
    assert.deepEqual(summary.report, {
      tasks: {
        tiny: {
          n_correct_uncompressed: 4,
          ratios: { '2': { group_a: 2, group_b: 2, methods: {} }, '3': { group_a: 3, group_b: 1, methods: {} } },
        },
      },
    });

    // Resubmitting the same run enqueues nothing; a different configuration is refused by name.
    const again = await runCli([
      'eval',
      'run',
      '--dataset',
      dataset,
      '--model',
      'fake',
      '--ratios',
      '2,3',
      ...queueArgs,
      '--out',
      join(dir, 'q'),
      '--json',
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(((r) => [r.cached, r.enqueued, r.retried, r.done])(JSON.parse(again.stdout)), [12, 0, 0, 0]);
    assert.equal(await client.zcard('bull:kill:completed'), 12);
    const other = await runCli([
      'eval',
      'run',
      '--dataset',
      dataset,
      '--model',
      'fake',
      '--ratios',
      '2',
      ...queueArgs,
      '--out',
      join(dir, 'other'),
    ]);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      /^vtc: error: queue "kill" at redis:\/\/127\.0\.0\.1:\d+\/0 belongs to another run \(ratios \[2,3\] in the queue, \[2\] here\)/,
    );

    // eval analyze reads the collected file unchanged.
    const analyzed = await runCli(['eval', 'analyze', join(dir, 'q'), '--out', join(dir, 'report'), '--json']);
    assert.equal(analyzed.code, 0, analyzed.stderr);
    assert.deepEqual(JSON.parse(analyzed.stdout), summary.report);
  });

  it('retries transient errors, records permanent ones and missing files as failed rows, and keeps serving', async () => {
    const dir = tempDir('vtc-queue-faults-');
    dirs.push(dir);
    const dataset = await writeDataset(dir, ['apple', 'flaky', 'poison', 'fig']);
    let flaky = 0;
    const endpoint = await startFakeEndpoint({
      override: (prompt) => {
        if (prompt.includes('say flaky') && flaky++ < 2)
          return { status: 503, body: { error: { message: 'overloaded' } } };
        if (prompt.includes('say poison')) return { status: 400, body: { error: { message: 'bad image' } } };
        return undefined;
      },
    });
    try {
      const results = join(dir, 'out', 'results.jsonl');
      const options = {
        queue: redis.url,
        queueName: 'faults',
        dataset,
        model: 'fake',
        methods: [],
        ratios: [2],
        results,
        attempts: 3,
        backoffMs: 20,
        redisWaitMs: 5000,
      };
      const submitted = await submitQueueRun({ ...options, detach: true });
      assert.equal(submitted.enqueued, 8);
      // The worker's machine lacks one input file.
      unlinkSync(join(dir, 'img3.png'));
      const worker = await startQueueWorker({
        queue: redis.url,
        queueName: 'faults',
        endpoints: [endpoint.base],
        concurrency: 2,
      });
      const summary = await collectQueue({ queue: redis.url, queueName: 'faults', results }).finally(() =>
        worker.close(),
      );
      const workerSummary = await worker.close();
      assert.deepEqual([summary.jobs, summary.done, summary.failed.length], [8, 4, 4]);
      assert.deepEqual([workerSummary.completed, workerSummary.failed, workerSummary.retried], [4, 4, 2]);
      const reasons = Object.fromEntries(summary.failed.map((f) => [`${f.sample}@${f.ratio}`, f.error]));
      assert.match(reasons['s2@1']!, /answered HTTP 400 Bad Request: bad image$/);
      assert.match(reasons['s3@1']!, /img3\.png: file not found$/);
      assert.match(reasons['s3@2']!, /img3\.png: file not found$/);
      const rows = readRows(results);
      assert.deepEqual(rows.map((r) => `${r.sample}@${r.ratio}:${r.prediction}`).sort(), [
        's0@1:apple',
        's0@2:apple',
        's1@1:flaky',
        's1@2:flaky',
      ]);
      const logged = readFileSync(failuresPath(results), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { sample: string; error: string; attempts: number });
      assert.deepEqual(logged.map((l) => l.sample).sort(), ['s2', 's2', 's3', 's3']);
      assert.deepEqual(
        logged.map((l) => l.attempts),
        [1, 1, 1, 1],
        JSON.stringify(logged),
      );

      // Rerun with the file back: only the failed jobs run again.
      await sharp({ create: { width: 250, height: 40, channels: 3, background: { r: 1, g: 2, b: 3 } } })
        .png()
        .toFile(join(dir, 'img3.png'));
      const worker2 = await startQueueWorker({
        queue: redis.url,
        queueName: 'faults',
        endpoints: [endpoint.base],
        concurrency: 2,
      });
      const rerun = await submitQueueRun(options).finally(() => worker2.close());
      assert.deepEqual([rerun.cached, rerun.retried, rerun.enqueued, rerun.done, rerun.failed.length], [4, 4, 0, 2, 2]);
      assert.deepEqual(
        readRows(results)
          .map((r) => `${r.sample}@${r.ratio}:${r.prediction}`)
          .sort(),
        ['s0@1:apple', 's0@2:apple', 's1@1:flaky', 's1@2:flaky', 's3@1:fig', 's3@2:wrong'],
      );
    } finally {
      await endpoint.close();
    }
  });

  it("--inline-inputs sends image bytes, so workers need no dataset files; token-level jobs use the worker's encoder; rows equal a local run", async () => {
    const dir = tempDir('vtc-queue-inline-');
    dirs.push(dir);
    const dataset = await writeDataset(dir);
    const model = createEndpointModel({ endpoint: vlm.base, model: 'fake', retries: 0 });
    const local = await runEval({
      dataset,
      model,
      methods: ['pool'],
      ratios: [2],
      results: join(dir, 'local', 'results.jsonl'),
      concurrency: 4,
      context: { encoder: createPatchEncoder() },
    });
    assert.equal(local.done, 12);
    const results = join(dir, 'out', 'results.jsonl');
    const submitted = await submitQueueRun({
      queue: redis.url,
      queueName: 'inline',
      dataset,
      model: 'fake',
      methods: ['pool'],
      ratios: [2],
      encoder: 'patch',
      results,
      inlineInputs: true,
      detach: true,
    });
    assert.equal(submitted.enqueued, 12);
    for (let i = 0; i < 4; i++) unlinkSync(join(dir, `img${i}.png`));
    const worker = await startQueueWorker({
      queue: redis.url,
      queueName: 'inline',
      endpoints: [vlm.base],
      concurrency: 4,
    });
    const summary = await collectQueue({
      queue: redis.url,
      queueName: 'inline',
      results,
      out: join(dir, 'out'),
      drop: true,
    }).finally(() => worker.close());
    assert.deepEqual([summary.done, summary.failed.length, summary.dropped], [12, 0, true]);
    const rows = readRows(results);
    assert.deepEqual(comparable(rows), comparable(readRows(join(dir, 'local', 'results.jsonl'))));
    // pool keeps 576/4 = 144 patch tokens at K=2, sent as image_embeds.
    assert.deepEqual(
      rows.filter((r) => r.method === 'pool').map((r) => r.tokens),
      [144, 144, 144, 144],
    );
    assert.deepEqual(
      [summary.analysis!.ratios['2']!.group_a, summary.analysis!.ratios['2']!.methods.pool!.acc_a],
      [2, 100],
    );
    assert.ok(existsSync(join(dir, 'out', 'report.md')));
    assert.equal(await client.exists('vtc:eval:inline:config', 'bull:inline:meta'), 0);
  });

  it('vtc eval run --queue: --detach enqueues and exits, --workers 2 starts local workers and collects', async () => {
    const dir = tempDir('vtc-queue-cli-');
    dirs.push(dir);
    const dataset = await writeDataset(dir);
    const args = [
      'eval',
      'run',
      '--dataset',
      dataset,
      '--model',
      'fake',
      '--ratios',
      '2',
      '--queue',
      redis.url,
      '--queue-name',
      'cli',
      '--out',
      join(dir, 'out'),
      '--json',
    ];
    const detached = await runCli([...args, '--detach']);
    assert.equal(detached.code, 0, detached.stderr);
    assert.deepEqual(((r) => [r.detached, r.enqueued, r.done, r.report])(JSON.parse(detached.stdout)), [
      true,
      8,
      0,
      null,
    ]);
    const run = await runCli([...args, '--workers', '2', '--endpoint', vlm.base]);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout);
    assert.deepEqual([summary.enqueued, summary.already_queued, summary.done, summary.failed], [0, 8, 8, 0]);
    assert.deepEqual(summary.report.tasks.tiny.ratios['2'], { group_a: 2, group_b: 2, methods: {} });
    // Both local workers started, served and stopped with the command.
    assert.match(run.stderr, /\[worker 1\] vtc: worker local-\d+-1 serving queue cli/);
    assert.match(run.stderr, /\[worker 2\] vtc: worker local-\d+-2 serving queue cli/);
    assert.equal(await client.zcard('bull:cli:completed'), 8);
  });

  it('fails fast with one line when Redis does not answer, and stops when it goes away mid-run; a rerun resumes', async () => {
    const dir = tempDir('vtc-queue-down-');
    dirs.push(dir);
    const dataset = await writeDataset(dir);
    const dead = await startLocalRedis();
    const deadUrl = dead.url;
    await dead.stop();
    const [run, worker, badUrl] = await Promise.all([
      runCli(['eval', 'run', '--dataset', dataset, '--model', 'fake', '--queue', deadUrl, '--out', join(dir, 'x')]),
      runCli(['eval', 'worker', '--queue', deadUrl, '--endpoint', vlm.base]),
      runCli(['eval', 'collect', '--queue', 'http://127.0.0.1:1', '--out', join(dir, 'x')]),
    ]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^vtc: error: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/0: connect ECONNREFUSED 127\.0\.0\.1:\d+ \(start one with: redis-server --port 6379\)\n$/,
    );
    assert.equal(worker.code, 1);
    assert.match(worker.stderr, /^vtc: error: cannot reach Redis at /);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /--queue expects a redis:\/\/ or rediss:\/\/ URL/);

    // A private server that goes away under a submitter (collecting) and a worker.
    const own = await startLocalRedis();
    const results = join(dir, 'out', 'results.jsonl');
    const options = {
      queue: own.url,
      queueName: 'down',
      dataset,
      model: 'fake',
      methods: [],
      ratios: [2],
      results,
      redisWaitMs: 800,
      pollMs: 50,
    };
    const running = submitQueueRun(options);
    const idle = await startQueueWorker({
      queue: own.url,
      queueName: 'other',
      endpoints: [vlm.base],
      redisWaitMs: 800,
    });
    const watcher = new Redis(own.url);
    await waitFor('the jobs to be queued', async () => (await watcher.llen('bull:down:wait')) === 8);
    watcher.disconnect();
    await own.stop();
    await assert.rejects(
      running,
      /lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+\/0 for 1 s \(.+\); run the command again when Redis is back$/,
    );
    await assert.rejects(idle.closed, /lost the connection to Redis/);

    // Redis is back (empty: no persistence): the same command enqueues everything again and finishes.
    const back = await startLocalRedis({ port: own.port });
    try {
      const worker2 = await startQueueWorker({
        queue: back.url,
        queueName: 'down',
        endpoints: [vlm.base],
        concurrency: 4,
      });
      const rerun = await submitQueueRun(options).finally(() => worker2.close());
      assert.deepEqual([rerun.enqueued, rerun.done, rerun.failed.length], [8, 8, 0]);
      assert.equal(new Set(readRows(results).map(jobIdForKey)).size, 8);
    } finally {
      await back.stop();
    }
  });
});
