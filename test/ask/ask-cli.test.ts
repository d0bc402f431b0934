import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { runCli, tempDir } from '../helpers.js';
import { refusedPort } from '../servers.js';

interface Seen {
  images: { width: number; height: number; detail?: string }[];
  text: string;
  authorization?: string;
}

/**
 * A chat-completions server that decodes every image_url data URL (failing the
 * request on anything that is not a valid PNG/JPEG of its stated type) and
 * records the decoded sizes, so tests compare them with the CLI's JSON.
 */
async function startServer(status = 200): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      const reply = (code: number, value: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (status !== 200) return reply(status, { error: { message: 'the model crashed' } });
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions')
        return reply(400, { error: { message: `unexpected ${req.method} ${req.url}` } });
      const request = JSON.parse(body) as {
        messages: { content: { type: string; text?: string; image_url?: { url: string; detail?: string } }[] }[];
      };
      const images: Seen['images'] = [];
      for (const part of request.messages[0]!.content.filter((p) => p.type === 'image_url')) {
        const match = /^data:image\/(jpeg|png);base64,([A-Za-z0-9+/=]+)$/.exec(part.image_url!.url);
        if (!match) return reply(400, { error: { message: 'not a PNG/JPEG data URL' } });
        try {
          const meta = await sharp(Buffer.from(match[2]!, 'base64')).metadata();
          if (meta.format !== match[1])
            return reply(400, { error: { message: `data URL says ${match[1]}, bytes are ${meta.format}` } });
          images.push({
            width: meta.width!,
            height: meta.height!,
            ...(part.image_url!.detail ? { detail: part.image_url!.detail } : {}),
          });
        } catch {
          return reply(400, { error: { message: 'image does not decode' } });
        }
      }
      const text = request.messages[0]!.content.find((p) => p.type === 'text')?.text ?? '';
      seen.push({ images, text, authorization: req.headers.authorization });
      reply(200, {
        choices: [{ index: 0, message: { role: 'assistant', content: ` 42.50 (${images.length} images)\n` } }],
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, seen, server };
}

let dir: string;
let picture: string;

before(async () => {
  dir = tempDir('vtc-ask-');
  picture = join(dir, 'receipt.png');
  // 900×700 white page, a dark text-like band near the bottom right (the detail).
  const data = Buffer.alloc(900 * 700 * 3, 255);
  for (let y = 560; y < 600; y++)
    for (let x = 600; x < 860; x++)
      if ((x >> 3) % 2 === 0 && (y >> 2) % 3 !== 0) data.fill(20, (y * 900 + x) * 3, (y * 900 + x) * 3 + 3);
  await sharp(data, { raw: { width: 900, height: 700, channels: 3 } })
    .png()
    .toFile(picture);
});

after(() => rmSync(dir, { recursive: true, force: true }));

type AskJson = {
  answer: string | null;
  images: { width: number; height: number; box: number[] }[];
  tokens_sent: number;
  tokens_full: number;
};

test('vtc ask --json: the images the server decodes are exactly those in the JSON, within the budget', async () => {
  const { url, seen, server } = await startServer();
  try {
    for (const method of ['downsample', 'focus']) {
      const result = await runCli(
        [
          'ask',
          picture,
          '-q',
          'What is the total?',
          '--endpoint',
          url,
          '--model',
          'm',
          '--budget',
          '300',
          '--method',
          method,
          '--json',
          '--api-key-env',
          'VTC_ASK_KEY',
        ],
        { env: { VTC_ASK_KEY: 'sk-ask' } },
      );
      assert.equal(result.code, 0, result.stderr);
      const json = JSON.parse(result.stdout) as AskJson;
      assert.deepEqual(Object.keys(json), ['answer', 'images', 'tokens_sent', 'tokens_full']);
      const request = seen.at(-1)!;
      assert.equal(json.answer, `42.50 (${request.images.length} images)`);
      assert.equal(request.authorization, 'Bearer sk-ask');
      assert.equal(json.images.length, request.images.length);
      json.images.forEach((image, i) =>
        assert.deepEqual([image.width, image.height], [request.images[i]!.width, request.images[i]!.height]),
      );
      assert.ok(json.tokens_sent <= 300, `${method}: ${json.tokens_sent}`);
      // qwen2.5-vl: 900×700 → 896×700 → 32·25 tokens as it is.
      assert.equal(json.tokens_full, 800);
      assert.deepEqual(json.images[0]!.box, [0, 0, 900, 700]);
      if (method === 'focus') {
        assert.ok(json.images.length >= 2);
        assert.match(
          request.text,
          /^Image 1 is the whole picture \(900x700 px, downscaled\); image 2 is a detail crop of the region x=\d+\.\.\d+, y=\d+\.\.\d+ of that picture/,
        );
        assert.ok(request.text.endsWith('What is the total?'));
        assert.match(
          result.stderr,
          /vtc: note: focus: the question is not used to choose regions \(no dual encoder configured\); using query-free saliency/,
        );
      } else {
        assert.equal(json.images.length, 1);
        assert.equal(request.text, 'What is the total?');
      }
    }
    // OpenAI detail=low profile: the request carries detail "low".
    const low = await runCli([
      'ask',
      picture,
      '-q',
      'x',
      '--endpoint',
      url,
      '--model',
      'm',
      '--profile',
      'gpt-4o-low',
      '--budget',
      '85',
      '--json',
    ]);
    assert.equal(low.code, 0, low.stderr);
    assert.equal(seen.at(-1)!.images[0]!.detail, 'low');
    assert.equal((JSON.parse(low.stdout) as AskJson).tokens_sent, 85);
  } finally {
    server.close();
  }
});

test('vtc ask --dry-run writes the planned images and the request, prints answer null, calls nothing', async () => {
  const out = join(dir, 'dry');
  const result = await runCli([
    'ask',
    picture,
    '-q',
    'Total?',
    '--dry-run',
    '--ratio',
    '0.25',
    '--method',
    'focus',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout) as AskJson;
  assert.equal(json.answer, null);
  assert.ok(json.tokens_sent <= 200);
  const files = readdirSync(out).sort();
  assert.equal(files.filter((f) => f.startsWith('image_')).length, json.images.length);
  assert.ok(files.includes('request.json'));
  for (const [i, file] of files.filter((f) => f.startsWith('image_')).entries()) {
    const meta = await sharp(readFileSync(join(out, file))).metadata();
    assert.deepEqual([meta.width, meta.height], [json.images[i]!.width, json.images[i]!.height]);
  }
  const request = JSON.parse(readFileSync(join(out, 'request.json'), 'utf8')) as {
    messages: { content: { type: string }[] }[];
  };
  assert.equal(request.messages[0]!.content.filter((p) => p.type === 'image_url').length, json.images.length);
});

test('vtc tokens: processed size and billed tokens per image, total, unknown profile lists the known ones', async () => {
  const result = await runCli(['tokens', picture, picture, '--profile', 'gpt-4o', '--json']);
  assert.equal(result.code, 0, result.stderr);
  // 900×700: short side 700 ≤ 768 → 2×2 tiles → 765
  assert.deepEqual(JSON.parse(result.stdout), {
    profile: 'gpt-4o',
    images: [
      { file: picture, width: 900, height: 700, tokens: 765 },
      { file: picture, width: 900, height: 700, tokens: 765 },
    ],
    total: 1530,
  });
  const unknown = await runCli(['tokens', picture, '--profile', 'gpt-9']);
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /^vtc: error: unknown vision profile "gpt-9" \(expected one of: qwen2-vl, qwen2\.5-vl, qwen3-vl, .*gemini-3-high\)\n$/,
  );
});

test('vtc ask bad input: budget below minimum, unknown profile, huge image, unreadable file, missing budget', async () => {
  const low = await runCli(['ask', picture, '-q', 'x', '--dry-run', '--budget', '3', '--out', join(dir, 'x')]);
  assert.equal(low.code, 2);
  assert.equal(
    low.stderr,
    'vtc: error: token budget 3 is below the smallest image qwen2.5-vl accepts for this 900x700 picture: 4 tokens (at 70x54)\n',
  );
  const profile = await runCli(['ask', picture, '-q', 'x', '--dry-run', '--budget', '300', '--profile', 'nope']);
  assert.equal(profile.code, 2);
  assert.match(profile.stderr, /unknown vision profile "nope" \(expected one of: /);
  const huge = await runCli(['ask', picture, '-q', 'x', '--dry-run', '--budget', '300', '--max-pixels', '100000']);
  assert.equal(huge.code, 1);
  assert.match(huge.stderr, /receipt\.png: image is 900x700 = 630000 pixels, above the limit of 100000/);
  const junk = join(dir, 'junk.png');
  writeFileSync(junk, 'not an image');
  const unreadable = await runCli(['ask', junk, '-q', 'x', '--dry-run', '--budget', '300']);
  assert.equal(unreadable.code, 1);
  assert.match(unreadable.stderr, /junk\.png: not a readable image/);
  const none = await runCli(['ask', picture, '-q', 'x', '--dry-run']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give --budget N \(vision tokens\) or --ratio R/);
});

test('vtc ask endpoint failures: refused, HTTP error, hanging — one line, exit 1', async () => {
  const port = await refusedPort();
  const refused = await runCli([
    'ask',
    picture,
    '-q',
    'x',
    '--endpoint',
    `http://127.0.0.1:${port}/v1`,
    '--model',
    'm',
    '--budget',
    '100',
  ]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  assert.match(refused.stderr, /connection refused/);

  const { url, server } = await startServer(500);
  try {
    const failed = await runCli(['ask', picture, '-q', 'x', '--endpoint', url, '--model', 'm', '--budget', '100']);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^vtc: error: .*answered HTTP 500.*the model crashed \(gave up after 2 attempts\)\n$/);
  } finally {
    server.close();
  }

  const sockets = new Set<Socket>();
  const hanging = createServer(() => {});
  hanging.on('connection', (s) => sockets.add(s));
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const hangUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/v1`;
  try {
    const result = await runCli([
      'ask',
      picture,
      '-q',
      'x',
      '--endpoint',
      hangUrl,
      '--model',
      'm',
      '--budget',
      '100',
      '--timeout',
      '0.5',
    ]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `vtc: error: ${hangUrl}/chat/completions did not answer within 500 ms (gave up after 2 attempts)\n`,
    );
  } finally {
    for (const s of sockets) s.destroy();
    hanging.close();
  }
});
