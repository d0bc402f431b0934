import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeNpy } from '../../core/npy.js';
import { createPatchEncoder } from '../../encoders/patch.js';
import { analyzeLogs } from '../../eval/analyze.js';
import { createEndpointModel } from '../../eval/models.js';
import { resultKey, type ResultRow } from '../../eval/results.js';
import { parseShard, runEval, selectSamples } from '../../eval/runner.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';
import { refusedPort } from '../servers.js';

/**
 * A fake VLM speaking chat completions. It answers the word named in the
 * prompt ("say <word>") when it can "see" enough: an image at least 200 px
 * wide, image_embeds with at least 100 rows, or plain text; otherwise "wrong".
 */
function fakeVlm(): Promise<{ server: Server; base: string; requests: (string | undefined)[] }> {
  const requests: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const parts = JSON.parse(body).messages[0].content as {
        type: string;
        text?: string;
        image_url?: { url: string };
        image_embeds?: string;
      }[];
      const text = parts.find((p) => p.type === 'text')!.text!;
      const word = /say (\w+)/.exec(text)![1]!;
      let sees = parts.length === 1;
      for (const part of parts) {
        if (part.type === 'image_url') {
          const png = Buffer.from(part.image_url!.url.split(',')[1]!, 'base64');
          if (png.readUInt32BE(16) >= 200) sees = true;
        }
        if (part.type === 'image_embeds') {
          const tensor = decodeNpy(new Uint8Array(Buffer.from(part.image_embeds!, 'base64')));
          if (tensor.shape[0]! >= 100) sees = true;
        }
      }
      requests.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: sees ? word : 'wrong' } }] }));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, requests }),
    ),
  );
}

async function writeImageDataset(dir: string): Promise<string> {
  const widths = [800, 500, 350, 250];
  const words = ['apple', 'pear', 'plum', 'fig'];
  const rows = [];
  for (let i = 0; i < widths.length; i++) {
    const file = `img${i}.png`;
    await sharp({ create: { width: widths[i]!, height: 60, channels: 3, background: { r: 40 * i, g: 120, b: 200 } } })
      .png()
      .toFile(join(dir, file));
    rows.push({ id: `s${i}`, image: file, question: `Please say ${words[i]}.`, answer: words[i] });
  }
  const path = join(dir, 'tiny.jsonl');
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

describe('runEval against an OpenAI-compatible endpoint', () => {
  let vlm: Awaited<ReturnType<typeof fakeVlm>>;
  before(async () => {
    vlm = await fakeVlm();
  });
  after(() => vlm.server.close());

  it('groups by the downsample baseline and scores a token-level reducer via image_embeds', async () => {
    const dir = tempDir('vtc-run-');
    const dataset = await writeImageDataset(dir);
    const model = createEndpointModel({ endpoint: vlm.base, model: 'fake-vlm', retries: 0 });
    const options = {
      dataset,
      model,
      methods: ['pool'],
      ratios: [3, 2],
      results: join(dir, 'out', 'results.jsonl'),
      out: join(dir, 'out'),
      concurrency: 3,
      context: { encoder: createPatchEncoder() },
    };
    const first = await runEval(options);
    // 4 samples × (K=1, downsample ×2, pool ×2, downsample ×3, pool ×3)
    assert.equal(first.jobs, 20);
    assert.equal(first.done, 20);
    assert.equal(vlm.requests.length, 20);
    const a = first.analysis!;
    assert.equal(a.n_correct_uncompressed, 4);
    // K=2: widths 400, 250, 175, 125 → s0, s1 right. K=3: 267, 167, 117, 83 → only s0.
    assert.equal(a.ratios['2']!.group_a, 2);
    assert.equal(a.ratios['2']!.group_b, 2);
    assert.equal(a.ratios['3']!.group_a, 3);
    assert.equal(a.ratios['3']!.group_b, 1);
    // pool keeps 576/4 = 144 rows at K=2 (seen) and 576/9 = 64 at K=3 (not seen).
    assert.deepEqual([a.ratios['2']!.methods.pool!.acc_a, a.ratios['2']!.methods.pool!.acc_b], [100, 100]);
    assert.deepEqual([a.ratios['3']!.methods.pool!.acc_a, a.ratios['3']!.methods.pool!.acc_b], [0, 0]);
    assert.equal(a.ratios['2']!.downsample.accuracy, 50);
    const rows = readFileSync(options.results, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ResultRow);
    assert.deepEqual(
      rows
        .filter((r) => r.method === 'pool')
        .map((r) => r.tokens)
        .sort(),
      [144, 144, 144, 144, 64, 64, 64, 64].sort(),
    );
    assert.equal(rows.find((r) => r.sample === 's0' && r.method === 'downsample' && r.ratio === 2)!.pixels, 400 * 30);
    assert.ok(existsSync(join(dir, 'out', 'report.md')));
    assert.ok(existsSync(join(dir, 'out', 'tiny_groups_a_b.png')));

    // Rerun: everything cached, nothing sent, nothing appended.
    const second = await runEval(options);
    assert.equal(second.cached, 20);
    assert.equal(second.done, 0);
    assert.equal(vlm.requests.length, 20);
    assert.equal(readFileSync(options.results, 'utf8').trim().split('\n').length, 20);
    assert.deepEqual(second.analysis, first.analysis);
  });

  it('runs from the CLI against the endpoint with an API key from the environment', async () => {
    const dir = tempDir('vtc-run-cli-');
    const dataset = await writeImageDataset(dir);
    const sent = vlm.requests.length;
    const { code, stdout, stderr } = await runCli(
      [
        'eval',
        'run',
        '--dataset',
        dataset,
        '--model',
        'fake-vlm',
        '--endpoint',
        vlm.base,
        '--api-key-env',
        'VTC_TEST_KEY',
        '--ratios',
        '2',
        '--concurrency',
        '4',
        '--out',
        join(dir, 'out'),
        '--json',
      ],
      { env: { VTC_TEST_KEY: 'sk-local' } },
    );
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout);
    assert.deepEqual(summary.report, {
      tasks: { tiny: { n_correct_uncompressed: 4, ratios: { '2': { group_a: 2, group_b: 2, methods: {} } } } },
    });
    assert.equal(summary.done, 8);
    assert.deepEqual(vlm.requests.slice(sent), Array(8).fill('Bearer sk-local'));
    const missing = await runCli([
      'eval',
      'run',
      '--dataset',
      dataset,
      '--model',
      'fake-vlm',
      '--endpoint',
      vlm.base,
      '--api-key-env',
      'VTC_UNSET_KEY',
      '--out',
      join(dir, 'o2'),
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /API key variable VTC_UNSET_KEY is not set/);
  });

  it('merges --shard runs into one report, and eval analyze reads copied result files', async () => {
    const dir = tempDir('vtc-run-shards-');
    const dataset = await writeImageDataset(dir);
    const model = createEndpointModel({ endpoint: vlm.base, model: 'fake-vlm', retries: 0 });
    const base = { dataset, model, methods: [], ratios: [2, 3], out: join(dir, 'out') };
    const one = await runEval({
      ...base,
      shard: { index: 1, count: 2 },
      results: join(dir, 'out', 'results.shard-1-of-2.jsonl'),
    });
    assert.equal(one.samples, 2);
    const two = await runEval({
      ...base,
      shard: { index: 2, count: 2 },
      results: join(dir, 'out', 'results.shard-2-of-2.jsonl'),
    });
    assert.equal(two.samples, 2);
    // The second shard's report covers both shards: the same groups as the unsharded run above.
    const sizes = (a: typeof two.analysis) =>
      Object.fromEntries(Object.entries(a!.ratios).map(([k, r]) => [k, [r.group_a, r.group_b]]));
    assert.equal(two.analysis!.n_correct_uncompressed, 4);
    assert.deepEqual(sizes(two.analysis), { '2': [2, 2], '3': [3, 1] });

    const copied = tempDir('vtc-run-copied-');
    for (const name of ['results.shard-1-of-2.jsonl', 'results.shard-2-of-2.jsonl'])
      writeFileSync(join(copied, name), readFileSync(join(dir, 'out', name)));
    const analyzed = await analyzeLogs(copied, { noReport: true });
    assert.deepEqual(analyzed.summary, {
      tasks: {
        tiny: {
          n_correct_uncompressed: 4,
          ratios: { '2': { group_a: 2, group_b: 2, methods: {} }, '3': { group_a: 3, group_b: 1, methods: {} } },
        },
      },
    });
  });

  it('renders text inputs with glyph at 144/K dpi', async () => {
    const dir = tempDir('vtc-run-glyph-');
    const text = Array.from({ length: 40 }, (_, i) => `Line ${i}: the quick brown fox jumps over the lazy dog.`).join(
      '\n',
    );
    const dataset = join(dir, 'text.jsonl');
    writeFileSync(dataset, `${JSON.stringify({ id: 't1', text, question: 'Now say ok.', answer: 'ok' })}\n`);
    const model = createEndpointModel({ endpoint: vlm.base, model: 'fake-vlm', retries: 0 });
    const summary = await runEval({
      dataset,
      model,
      methods: ['glyph'],
      ratios: [2, 4],
      results: join(dir, 'r.jsonl'),
    });
    const rows = readFileSync(join(dir, 'r.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ResultRow);
    const pixels = (method: string, k: number) => rows.find((r) => r.method === method && r.ratio === k)!.pixels;
    assert.equal(pixels('downsample', 1), 0); // uncompressed text goes as text
    assert.equal(rows.find((r) => r.ratio === 1)!.correct, true);
    const ratio = pixels('glyph', 2) / pixels('glyph', 4);
    assert.ok(ratio > 3 && ratio < 5.5, `72 dpi vs 36 dpi pages should differ ~4× in pixels, got ${ratio}`);
    assert.equal(summary.unsupported, 0);
  });

  it('fails at once when the endpoint refuses connections', async () => {
    const dir = tempDir('vtc-run-refused-');
    const dataset = await writeImageDataset(dir);
    const port = await refusedPort();
    const model = createEndpointModel({ endpoint: `http://127.0.0.1:${port}/v1`, model: 'm', retries: 3 });
    await assert.rejects(
      runEval({ dataset, model, methods: [], ratios: [2], results: join(dir, 'r.jsonl') }),
      /connection refused/,
    );
    assert.equal(readFileSync(join(dir, 'r.jsonl'), 'utf8'), '');
    // Port 1 is one fetch would refuse by itself ("bad port"); vtc's client connects to any port, so
    // this is an ordinary refused connection: the same URL fails every job, so the run stops at the first.
    const blocked = createEndpointModel({ endpoint: 'http://127.0.0.1:1/v1', model: 'm', retries: 3 });
    await assert.rejects(
      runEval({
        dataset,
        model: blocked,
        methods: [],
        ratios: [2],
        results: join(dir, 'b.jsonl'),
        maxConsecutiveFailures: 100,
      }),
      (e: unknown) =>
        e instanceof Error &&
        e.message ===
          'cannot connect to 127.0.0.1:1: connection refused (is the server running at http://127.0.0.1:1/v1/chat/completions?)',
    );
    assert.equal(readFileSync(join(dir, 'b.jsonl'), 'utf8'), '');
  });
});

describe('endpoint concurrency', () => {
  it('keeps exactly --concurrency requests in flight, and one at a time with 1', async () => {
    let inFlight = 0;
    let peak = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        peak = Math.max(peak, ++inFlight);
        // Hold each answer so the workers' requests overlap.
        setTimeout(() => {
          inFlight--;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'x' } }] }));
        }, 150);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const dir = tempDir('vtc-run-concurrency-');
      const dataset = await writeImageDataset(dir);
      const model = createEndpointModel({ endpoint, model: 'slow', retries: 0 });
      // 4 samples × (K=1, K=2) = 8 requests.
      const three = await runEval({
        dataset,
        model,
        methods: [],
        ratios: [2],
        results: join(dir, 'three.jsonl'),
        concurrency: 3,
      });
      assert.equal(three.done, 8);
      assert.equal(peak, 3);
      peak = 0;
      await runEval({ dataset, model, methods: [], ratios: [2], results: join(dir, 'one.jsonl'), concurrency: 1 });
      assert.equal(peak, 1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('sharding', () => {
  it('parses and splits', () => {
    assert.deepEqual(parseShard('2/3'), { index: 2, count: 3 });
    assert.throws(() => parseShard('0/3'), /--shard expects i\/n with 1 ≤ i ≤ n/);
    assert.throws(() => parseShard('4/3'), /--shard/);
    const samples = Array.from({ length: 7 }, (_, i) => ({ id: String(i) })) as never[];
    const ids = (s: { id: string }[]) => s.map((x) => x.id);
    assert.deepEqual(ids(selectSamples(samples, undefined, { index: 1, count: 3 })), ['0', '3', '6']);
    assert.deepEqual(ids(selectSamples(samples, 5, { index: 2, count: 3 })), ['1', '4']);
    assert.deepEqual(ids(selectSamples(samples, 2)), ['0', '1']);
  });
});

describe('vtc eval run --model ocr on the sample benchmark', () => {
  it('resumes after being killed mid-run with no lost or duplicated rows', async () => {
    const out = tempDir('vtc-run-kill-');
    const results = join(out, 'results.jsonl');
    const args = [
      'eval',
      'run',
      '--dataset',
      join(repoRoot, 'samples', 'bench', 'bench.jsonl'),
      '--model',
      'ocr',
      '--methods',
      'downsample',
      '--ratios',
      '2,3,4',
      '--limit',
      '8',
      '--concurrency',
      '1',
      '--out',
      out,
    ];
    const fromDist = import.meta.url.endsWith('.js');
    const entry = fromDist
      ? [join(repoRoot, 'dist', 'cli', 'main.js')]
      : ['--import', 'tsx', join(repoRoot, 'cli', 'main.ts')];
    const child = spawn(process.execPath, [...entry, ...args], {
      cwd: repoRoot,
      env: { ...process.env, CI: '1' },
      stdio: 'ignore',
    });
    const lines = () => (existsSync(results) ? readFileSync(results, 'utf8').split('\n').length - 1 : 0);
    const deadline = Date.now() + 90_000;
    while (lines() < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const before = lines();
    assert.ok(before >= 6 && before < 32, `killed mid-run: ${before} of 32 rows written`);
    // Whatever the kill left, make the last line torn as a kill inside write() would.
    appendFileSync(results, '{"dataset":"bench","sample":"sign-0","mod');

    const { code, stdout, stderr } = await runCli([...args, '--json']);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /results\.jsonl: cut off a torn last line \(\d+ bytes\) left by an interrupted run/);
    const summary = JSON.parse(stdout);
    assert.equal(summary.jobs, 32);
    assert.equal(summary.cached, before);
    assert.equal(summary.done, 32 - before);
    const rows = readFileSync(results, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ResultRow);
    assert.equal(rows.length, 32);
    assert.equal(new Set(rows.map(resultKey)).size, 32);
    assert.deepEqual([...new Set(rows.map((r) => r.ratio))].sort(), [1, 2, 3, 4]);
    const task = summary.report.tasks.bench;
    assert.equal(task.n_correct_uncompressed, rows.filter((r) => r.ratio === 1 && r.correct).length);
    for (const k of ['2', '3', '4']) {
      const downsampledRight = rows.filter((r) => r.ratio === Number(k) && r.correct).map((r) => r.sample);
      const base = rows.filter((r) => r.ratio === 1 && r.correct).map((r) => r.sample);
      assert.equal(task.ratios[k].group_b, base.filter((s) => downsampledRight.includes(s)).length);
      assert.equal(task.ratios[k].group_a + task.ratios[k].group_b, task.n_correct_uncompressed);
    }
    for (const file of [
      'report.md',
      'report.json',
      'summary.csv',
      'bench_accuracy_vs_reduction.png',
      'bench_groups_a_b.png',
    ])
      assert.ok(existsSync(join(out, file)), file);
    assert.ok(!existsSync(`${results}.lock`));
  });

  it('stops cleanly on Ctrl-C: finished rows saved, lock released, exit 1 with a resume hint', async () => {
    const out = tempDir('vtc-run-sigint-');
    const results = join(out, 'results.jsonl');
    const fromDist = import.meta.url.endsWith('.js');
    const entry = fromDist
      ? [join(repoRoot, 'dist', 'cli', 'main.js')]
      : ['--import', 'tsx', join(repoRoot, 'cli', 'main.ts')];
    const args = [
      'eval',
      'run',
      '--dataset',
      join(repoRoot, 'samples', 'bench', 'bench.jsonl'),
      '--model',
      'ocr',
      '--ratios',
      '2',
      '--limit',
      '30',
      '--concurrency',
      '1',
      '--out',
      out,
    ];
    const child = spawn(process.execPath, [...entry, ...args], {
      cwd: repoRoot,
      env: { ...process.env, CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const deadline = Date.now() + 90_000;
    while (!(existsSync(results) && readFileSync(results, 'utf8').split('\n').length > 4) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 1, stderr);
    assert.match(
      stderr,
      /vtc: error: interrupted: \d+ of 60 jobs saved in .*results\.jsonl; run the same command again to resume/,
    );
    const text = readFileSync(results, 'utf8');
    assert.ok(text.endsWith('\n'));
    const rows = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ResultRow);
    assert.ok(rows.length >= 4 && rows.length < 60);
    assert.ok(!existsSync(`${results}.lock`));
  });

  it('rejects bad flags with a usage error', async () => {
    let r = await runCli([
      'eval',
      'run',
      '--dataset',
      join(repoRoot, 'samples', 'bench', 'bench.jsonl'),
      '--model',
      'qwen',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vtc: error: eval run: model "qwen" needs endpoint \(--endpoint\), a URL ending in \/v1/);
    r = await runCli([
      'eval',
      'run',
      '--dataset',
      join(repoRoot, 'samples', 'bench', 'bench.jsonl'),
      '--model',
      'ocr',
      '--methods',
      'fastv',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown method "fastv" \(available: downsample, glyph, keyframes/);
    r = await runCli([
      'eval',
      'run',
      '--dataset',
      join(repoRoot, 'samples', 'bench', 'bench.jsonl'),
      '--model',
      'ocr',
      '--shard',
      '3/2',
    ]);
    assert.equal(r.code, 2);
    r = await runCli([
      'eval',
      'run',
      '--dataset',
      join(repoRoot, 'samples', 'bench', 'bench.jsonl'),
      '--model',
      'ocr',
      '--ratios',
      '1',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ratios \(downsample factors K, budget 1\/K²\) must be > 1, got 1/);
  });
});

describe('video inputs', () => {
  it('sends N uniform frames uncompressed, downsampled frames, and keyframes within the same pixel budget', async () => {
    const vlm = await fakeVlm();
    try {
      const dir = tempDir('vtc-run-video-');
      const dataset = join(dir, 'video.jsonl');
      writeFileSync(
        dataset,
        `${JSON.stringify({ id: 'v1', video: join(repoRoot, 'samples', 'video', 'scenes.mp4'), question: 'Please say boat.', answer: 'boat' })}\n`,
      );
      const model = createEndpointModel({ endpoint: vlm.base, model: 'fake-vlm', retries: 0 });
      await runEval({
        dataset,
        model,
        methods: ['keyframes'],
        ratios: [2, 3],
        results: join(dir, 'r.jsonl'),
        context: { videoFrames: 4, videoMaxSide: 256 },
      });
      const rows = readFileSync(join(dir, 'r.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as ResultRow);
      const pixels = (method: string, k: number) => rows.find((r) => r.method === method && r.ratio === k)!.pixels;
      const frame = pixels('downsample', 1) / 4;
      assert.equal(frame, 256 * 144); // 4 frames of the 16:9 video at 256 px
      assert.equal(pixels('downsample', 2), 4 * 128 * 72);
      // keyframes get downsample's pixel budget at each K: 4·128·72 = one full 256×144 keyframe at K = 2;
      // at K = 3 4·85·48 = 16320 pixels, less than one frame → one keyframe scaled by √(16320/36864) to ⌊170.3⌋×⌊95.8⌋ = 170×95
      assert.equal(pixels('keyframes', 2), frame);
      assert.equal(pixels('downsample', 3), 4 * 85 * 48);
      assert.equal(pixels('keyframes', 3), 170 * 95);
    } finally {
      vlm.server.close();
    }
  });
});
