import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { loadTokens } from '../../encoders/tokenfile.js';
import { videoQa } from '../../video/qa.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';
import { refusedPort } from '../servers.js';

const sample = join(repoRoot, 'samples', 'video', 'scenes.mp4');

interface Seen {
  images: { format: string; width: number; height: number }[];
  model: string;
  text: string;
  authorization?: string;
  maxTokens: number;
}

/**
 * A chat-completions server that checks every request like a strict VLM
 * server would: JSON body, the model, image_url parts that are valid JPEG/PNG
 * data URLs (decoded here), and no more images than the test's budget.
 */
async function startServer(maxImages: number, status = 200): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      const fail = (message: string) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message } }));
      };
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { message: 'model overloaded' } }));
      }
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions')
        return fail(`unexpected ${req.method} ${req.url}`);
      const request = JSON.parse(body) as {
        model: string;
        max_tokens: number;
        messages: { role: string; content: { type: string; text?: string; image_url?: { url: string } }[] }[];
      };
      const parts = request.messages[0]!.content;
      const images: Seen['images'] = [];
      for (const part of parts.filter((p) => p.type === 'image_url')) {
        const match = /^data:image\/(jpeg|png);base64,([A-Za-z0-9+/=]+)$/.exec(part.image_url!.url);
        if (!match) return fail('image_url is not a JPEG/PNG base64 data URL');
        try {
          const meta = await sharp(Buffer.from(match[2]!, 'base64')).metadata();
          if (meta.format !== match[1]) return fail(`data URL says ${match[1]} but the bytes are ${meta.format}`);
          images.push({ format: meta.format!, width: meta.width!, height: meta.height! });
        } catch {
          return fail('image does not decode');
        }
      }
      if (images.length === 0) return fail('no images');
      if (images.length > maxImages) return fail(`${images.length} images exceed the budget of ${maxImages}`);
      const text = parts.find((p) => p.type === 'text')?.text ?? '';
      seen.push({
        images,
        model: request.model,
        text,
        authorization: req.headers.authorization,
        maxTokens: request.max_tokens,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          choices: [
            { index: 0, message: { role: 'assistant', content: ` a white sailing boat (${images.length} frames)\n` } },
          ],
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, seen, server };
}

test('vtc video-qa --json: answer, clips, frames and token accounting against a checking server', async () => {
  const { url, seen, server } = await startServer(4);
  try {
    const result = await runCli(
      [
        'video-qa',
        sample,
        '-q',
        'What is on the sea?',
        '--endpoint',
        url,
        '--model',
        'm',
        '--frames',
        '4',
        '--json',
        '--api-key-env',
        'VTC_TEST_KEY',
        '--max-tokens',
        '64',
      ],
      {
        env: { VTC_TEST_KEY: 'sk-test' },
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const json = JSON.parse(result.stdout) as {
      answer: string;
      clips: { start: number; end: number; score: number }[];
      frames: { t: number }[];
      tokens_sent: number;
      tokens_uniform: number;
    };
    assert.deepEqual(Object.keys(json), ['answer', 'clips', 'frames', 'tokens_sent', 'tokens_uniform']);
    assert.equal(json.answer, 'a white sailing boat (4 frames)');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.model, 'm');
    assert.equal(seen[0]!.authorization, 'Bearer sk-test');
    assert.equal(seen[0]!.maxTokens, 64);
    // frames lists exactly the images sent.
    assert.equal(json.frames.length, seen[0]!.images.length);
    assert.equal(json.frames.length, 4);
    for (const image of seen[0]!.images)
      assert.deepEqual([image.format, image.width, image.height], ['jpeg', 320, 180]);
    // The prompt names the timestamps of the frames sent, then the question.
    assert.ok(seen[0]!.text.includes(json.frames.map((f) => `${f.t.toFixed(1)}s`).join(', ')), seen[0]!.text);
    assert.ok(seen[0]!.text.endsWith('What is on the sea?'));
    // No dual encoder, so query-free coverage: each 1.5 s scene is ≥ 6 s / 4 frames long → one frame in each of the four.
    assert.equal(json.clips.length, 4);
    for (const c of json.clips)
      assert.equal(
        json.frames.filter((f) => f.t >= c.start && f.t < c.end).length,
        1,
        `one frame in [${c.start}, ${c.end})`,
      );
    // qwen2.5-vl: 320×180 → smart_resize 308×168 → 11·6 = 66 tokens per frame; uniform 1 fps over 6 s = 6 frames.
    assert.equal(json.tokens_sent, 4 * 66);
    assert.equal(json.tokens_uniform, 6 * 66);
  } finally {
    server.close();
  }
});

test('--token-budget picks floor(budget / tokens per frame) frames under the profile', async () => {
  const { url, seen, server } = await startServer(2);
  try {
    // llava-1.5 costs 576 per image: 1200 tokens → 2 frames.
    const { result } = await videoQa(sample, {
      question: 'Describe it.',
      endpoint: url,
      model: 'm',
      tokenBudget: 1200,
      profile: 'llava-1.5',
    });
    assert.equal(seen[0]!.images.length, 2);
    assert.equal(result.frames.length, 2);
    assert.equal(result.tokens_sent, 1152);
    assert.equal(result.tokens_uniform, 6 * 576);
  } finally {
    server.close();
  }
  const tooSmall = await runCli([
    'video-qa',
    sample,
    '-q',
    'x',
    '--dry-run',
    '--token-budget',
    '10',
    '--out',
    tempDir(),
  ]);
  assert.equal(tooSmall.code, 2);
  assert.match(tooSmall.stderr, /token budget 10 is below the cost of one frame \(66 tokens/);
});

test('--dry-run writes a contact sheet and the exact request, without calling anything', async () => {
  const out = tempDir();
  const tokensFile = join(out, 'merged.safetensors');
  const result = await runCli([
    'video-qa',
    sample,
    '-q',
    'What happens?',
    '--dry-run',
    '--frames',
    '3',
    '--out',
    out,
    '--tokens-out',
    tokensFile,
  ]);
  assert.equal(result.code, 0, result.stderr);
  // Token level: 3 merged frames × 16×16 patch-encoder tokens, frame sources with their timestamps.
  const merged = await loadTokens(tokensFile);
  assert.deepEqual([merged.n, merged.d], [3 * 256, 58]);
  assert.deepEqual(
    merged.sources.map((s) => s.time),
    Array.from({ length: 12 }, (_, i) => i * 0.5),
  );
  // 3 frames for four 1.5 s scenes: none is ≥ 6/3 s, so D'Hondt gives the first three one each (ties → earlier)
  assert.equal(
    Array.from(merged.size).reduce((a, b) => a + b, 0),
    9 * 256,
    '9 kept frames (3 clips of 3) merged into 3',
  );
  assert.match(result.stdout, /clips: 3 of 4 kept \(query-free retrieval\)/);
  assert.match(
    result.stdout,
    /vision tokens \(qwen2\.5-vl\): 198 sent vs 396 for uniform 1 fps sampling → 50\.0% fewer/,
  );
  const sheet = await sharp(readFileSync(join(out, 'contact-sheet.png'))).metadata();
  assert.equal(sheet.format, 'png');
  assert.ok(sheet.width! > 3 * 200, `sheet width ${sheet.width}`);
  const request = JSON.parse(readFileSync(join(out, 'request.json'), 'utf8')) as {
    messages: { content: { type: string; image_url?: { url: string } }[] }[];
  };
  const urls = request.messages[0]!.content.filter((p) => p.type === 'image_url').map((p) => p.image_url!.url);
  assert.equal(urls.length, 3);
  for (const url of urls) assert.match(url, /^data:image\/jpeg;base64,\/9j\//);
});

test('a refused connection fails at once with one line and exit 1; non-2xx answers are reported', async () => {
  const port = await refusedPort();
  const started = Date.now();
  const refused = await runCli([
    'video-qa',
    sample,
    '-q',
    'x',
    '--endpoint',
    `http://127.0.0.1:${port}/v1`,
    '--model',
    'm',
  ]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  assert.match(refused.stderr, /connection refused/);
  assert.ok(Date.now() - started < 15_000, 'no retries or waits on a refused connection');

  const { url, server } = await startServer(8, 404);
  try {
    const notFound = await runCli(['video-qa', sample, '-q', 'x', '--endpoint', url, '--model', 'm']);
    assert.equal(notFound.code, 1);
    assert.match(notFound.stderr, /^vtc: error: .*answered HTTP 404.*model overloaded\n$/);
  } finally {
    server.close();
  }
});

test('usage errors: missing endpoint, both budgets, unknown profile, bad video', async () => {
  const noEndpoint = await runCli(['video-qa', sample, '-q', 'x']);
  assert.equal(noEndpoint.code, 2);
  assert.match(noEndpoint.stderr, /endpoint \(--endpoint\) is required \(or use dryRun, --dry-run\)/);
  const both = await runCli(['video-qa', sample, '-q', 'x', '--dry-run', '--frames', '2', '--token-budget', '500']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /either frames \(--frames\) or tokenBudget \(--token-budget\), not both/);
  const profile = await runCli(['video-qa', sample, '-q', 'x', '--dry-run', '--profile', 'nope', '--out', tempDir()]);
  assert.equal(profile.code, 2);
  assert.match(profile.stderr, /unknown vision profile "nope"/);
  const fps = await runCli(['video-qa', sample, '-q', 'x', '--dry-run', '--fps', '-1', '--out', tempDir()]);
  assert.equal(fps.code, 2);
  assert.equal(fps.stderr, 'vtc: error: fps must be > 0, got -1\n');
  const missing = await runCli(['video-qa', join(tempDir(), 'none.mp4'), '-q', 'x', '--dry-run']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^vtc: error: video not found: .*none\.mp4\n$/);
});

test('an endpoint that never answers times out with one line (--timeout), after one retry', async () => {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer(() => {
    /* never answers */
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  try {
    const result = await runCli([
      'video-qa',
      sample,
      '-q',
      'x',
      '--endpoint',
      url,
      '--model',
      'm',
      '--frames',
      '2',
      '--timeout',
      '0.5',
    ]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `vtc: error: ${url}/chat/completions did not answer within 500 ms (gave up after 2 attempts)\n`,
    );
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test('--encoder takes an ONNX model directory (tiny generated ViT) instead of the patch encoder', async () => {
  const { writeTinyVit } = await import('../encoders/tiny-vit.js');
  const dir = tempDir();
  await writeTinyVit(
    join(dir, 'vit'),
    { inputSize: 28, patchSize: 7, dim: 8, heads: 2, seed: 4, embed: 'conv', cls: true },
    { name: 'tiny-vit', attention: 'attention_logits' },
  );
  const { loadEncoder } = await import('../../encoders/encode.js');
  const { planVideo } = await import('../../video/pipeline.js');
  const encoder = await loadEncoder(join(dir, 'vit'));
  try {
    const plan = await planVideo(sample, { encoder, frames: 3, clips: 4, segments: 4, threshold: 0 });
    assert.deepEqual([plan.allTokens.d, plan.allTokens.sources.length, plan.allTokens.sources[0]!.rows], [8, 12, 4]);
    assert.ok(plan.allTokens.sources.every((s) => s.kind === 'frame' && s.cls?.length === 8));
    assert.equal(plan.keyframes.length, 3);
    assert.equal(plan.tokens.n, 3 * 16);
  } finally {
    await encoder.dispose();
  }
  const result = await runCli([
    'video-qa',
    sample,
    '-q',
    'x',
    '--encoder',
    join(dir, 'vit'),
    '--dry-run',
    '--frames',
    '2',
    '--out',
    join(dir, 'out'),
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal((JSON.parse(result.stdout) as { frames: unknown[] }).frames.length, 2);
});
