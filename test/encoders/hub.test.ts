import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InputError, UsageError } from '../../core/errors.js';
import { defaultPullFiles, NetworkError, parseLfsPointer, pullModel } from '../../encoders/hub.js';
import { refusedPort } from '../servers.js';

/** A local stand-in for the Hugging Face hub: resolve/raw/api routes, LFS redirects with x-linked headers, Range. */
const weights = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31 + (i >> 8)) & 255));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const config = Buffer.from('{"inputSize": 336}');
const pointerBlob = Buffer.from('pointer-verified payload');
const requests: string[] = [];
let dropNextTransfer = false;
let flakyResets = 0;

function sendBlob(req: IncomingMessage, res: ServerResponse, blob: Buffer): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range) {
    const start = Number(range[1]);
    res.writeHead(206, {
      'content-length': blob.length - start,
      'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`,
    });
    res.end(blob.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': blob.length });
  if (req.method === 'HEAD') return void res.end();
  if (dropNextTransfer) {
    dropNextTransfer = false;
    res.write(blob.subarray(0, 100_000)); // then stalls: the client's idle timeout ends the transfer after every byte sent was read
    return;
  }
  res.end(blob);
}

const server = createServer((req, res) => {
  const url = req.url!;
  requests.push(`${req.method} ${url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
  const lfs = (name: string, blob: Buffer, announcedSha = sha(blob)) => {
    res.writeHead(302, {
      location: `/cdn/${name}`,
      'x-linked-etag': `"${announcedSha}"`,
      'x-linked-size': String(blob.length),
      'content-length': 0,
    });
    res.end();
  };
  if (url === '/api/models/org/tiny/revision/main') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end(
      JSON.stringify({
        siblings: [
          { rfilename: 'README.md' },
          { rfilename: 'model.onnx' },
          { rfilename: 'vtc-encoder.json' },
          { rfilename: 'pytorch_model.bin' },
        ],
      }),
    );
  }
  if (url === '/org/tiny/resolve/main/model.onnx') return lfs('model.onnx', weights);
  if (url === '/org/tiny/resolve/v2/model.onnx') return lfs('model.onnx', weights);
  if (url === '/org/tiny/resolve/main/corrupt.onnx')
    return lfs('model.onnx', weights, sha(Buffer.from('something else')));
  if (url === '/cdn/model.onnx') return sendBlob(req, res, weights);
  if (url === '/org/tiny/resolve/main/vtc-encoder.json') return sendBlob(req, res, config);
  if (url === '/org/tiny/resolve/main/sub/blob.bin') return sendBlob(req, res, pointerBlob);
  if (url === '/org/tiny/raw/main/sub/blob.bin') {
    res.writeHead(200);
    return void res.end(
      `version https://git-lfs.github.com/spec/v1\noid sha256:${sha(pointerBlob)}\nsize ${pointerBlob.length}\n`,
    );
  }
  if (url === '/org/silent/resolve/main/model.onnx') return; // accepts, never answers
  if (url === '/org/endless/resolve/main/model.onnx') {
    // Announces 1000 bytes, then streams without end.
    res.writeHead(200, { 'x-linked-size': '1000' });
    if (req.method === 'HEAD') return void res.end();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    return void pump();
  }
  if (url === '/org/flaky/resolve/main/model.onnx') {
    // The first transfer dies after 100 kB (a reset); later ones resume with Range.
    if (req.method === 'GET' && !req.headers.range && flakyResets++ === 0) {
      res.writeHead(200, { 'content-length': weights.length });
      return void res.write(weights.subarray(0, 100_000)); // then stalls
    }
    return sendBlob(req, res, weights);
  }
  if (url === '/org/gated/resolve/main/model.onnx') {
    res.writeHead(401);
    return void res.end();
  }
  res.writeHead(404);
  res.end();
});

let endpoint = '';
const dir = await mkdtemp(join(tmpdir(), 'vtc-hub-'));
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

test('pulls an LFS file with sha256 verification, then reports it cached', async () => {
  const target = join(dir, 'a');
  const seen: number[] = [];
  const result = await pullModel({
    repo: 'org/tiny',
    files: ['model.onnx'],
    dir: target,
    endpoint,
    onProgress: (p) => seen.push(p.received),
  });
  assert.equal(result.files[0]!.status, 'downloaded');
  assert.equal(result.files[0]!.verified, 'sha256');
  assert.equal(result.files[0]!.sha256, sha(weights));
  assert.deepEqual(await readFile(join(target, 'model.onnx')), weights);
  assert.equal(seen.at(-1), weights.length);
  await assert.rejects(stat(join(target, 'model.onnx.part')), /ENOENT/);
  const again = await pullModel({ repo: 'org/tiny', files: ['model.onnx'], dir: target, endpoint });
  assert.equal(again.files[0]!.status, 'cached');
});

test('resumes an interrupted download with an HTTP Range request', async () => {
  const target = join(dir, 'b');
  dropNextTransfer = true;
  await assert.rejects(
    pullModel({ repo: 'org/tiny', files: ['model.onnx'], dir: target, endpoint, retries: 0, timeoutMs: 300 }),
    (e: unknown) => e instanceof NetworkError && /run the command again to resume/.test(e.message),
  );
  const partial = (await stat(join(target, 'model.onnx.part'))).size;
  assert.equal(partial, 100_000);
  requests.length = 0;
  const result = await pullModel({ repo: 'org/tiny', files: ['model.onnx'], dir: target, endpoint });
  assert.equal(result.files[0]!.status, 'resumed');
  assert.ok(requests.includes(`GET /cdn/model.onnx bytes=${partial}-`), requests.join('; '));
  assert.deepEqual(await readFile(join(target, 'model.onnx')), weights);
});

test('without --file: lists the revision and fetches ONNX and JSON files; LFS pointer gives the sha for plain responses', async () => {
  assert.deepEqual(defaultPullFiles(['a.onnx', 'b.onnx_data', 'c.json', 'd.bin', 'README.md']), [
    'a.onnx',
    'b.onnx_data',
    'c.json',
  ]);
  const target = join(dir, 'c');
  const result = await pullModel({ repo: 'org/tiny', dir: target, endpoint });
  assert.deepEqual(
    result.files.map((f) => [f.file, f.verified]),
    [
      ['model.onnx', 'sha256'],
      ['vtc-encoder.json', 'size'],
    ],
  );
  assert.deepEqual(await readFile(join(target, 'vtc-encoder.json')), config);
  const nested = await pullModel({ repo: 'org/tiny', files: ['sub/blob.bin'], dir: target, endpoint });
  assert.equal(nested.files[0]!.verified, 'sha256');
  assert.deepEqual(await readFile(join(target, 'sub', 'blob.bin')), pointerBlob);
});

test('sha256 mismatch, 404, 401, bad names and unreachable servers give clear errors', async () => {
  const target = join(dir, 'd');
  await assert.rejects(
    pullModel({ repo: 'org/tiny', files: ['corrupt.onnx'], dir: target, endpoint }),
    (e: unknown) =>
      e instanceof InputError &&
      e.code === 'E_CHECKSUM' &&
      /corrupt.onnx: sha256 mismatch, expected [0-9a-f]{64}, got [0-9a-f]{64}/.test(e.message),
  );
  await assert.rejects(stat(join(target, 'corrupt.onnx.part')), /ENOENT/);
  await assert.rejects(
    pullModel({ repo: 'org/tiny', files: ['nope.onnx'], dir: target, endpoint }),
    /nope.onnx: not found in org\/tiny at revision main \(HTTP 404\)/,
  );
  await assert.rejects(
    pullModel({ repo: 'org/gated', files: ['model.onnx'], dir: target, endpoint }),
    /access denied \(HTTP 401\); the repo may be gated or private — set HF_TOKEN/,
  );
  await assert.rejects(pullModel({ repo: 'org/tiny', files: ['../escape'], dir: target, endpoint }), UsageError);
  await assert.rejects(pullModel({ repo: 'not a repo', dir: target, endpoint }), /repo must look like "owner\/name"/);
  const deadPort = await refusedPort();
  await assert.rejects(
    pullModel({ repo: 'org/tiny', files: ['model.onnx'], dir: target, endpoint: `http://127.0.0.1:${deadPort}` }),
    (e: unknown) =>
      e instanceof NetworkError && e.message === `model.onnx: cannot reach http://127.0.0.1:${deadPort} (ECONNREFUSED)`,
  );
  const revision = await pullModel({
    repo: 'org/tiny',
    files: ['model.onnx'],
    revision: 'v2',
    dir: join(dir, 'e'),
    endpoint,
  });
  assert.equal(revision.files[0]!.bytes, weights.length);
});

test('parseLfsPointer reads oid and size', () => {
  assert.deepEqual(
    parseLfsPointer(`version https://git-lfs.github.com/spec/v1\noid sha256:${'a'.repeat(64)}\nsize 12\n`),
    { sha256: 'a'.repeat(64), size: 12 },
  );
  assert.equal(parseLfsPointer('{"json": true}'), undefined);
});

test('a server that accepts and never answers fails after the timeout; an endless body stops at the announced size', async () => {
  const target = join(dir, 'f');
  await assert.rejects(
    pullModel({
      repo: 'org/silent',
      files: ['model.onnx'],
      dir: target,
      endpoint,
      timeoutMs: 200,
      retries: 1,
      backoffMs: 10,
    }),
    (e: unknown) =>
      e instanceof NetworkError &&
      /model\.onnx: .*no reply headers within 200 ms \(gave up after 2 attempts\)$/.test(e.message),
  );
  await assert.rejects(
    pullModel({ repo: 'org/endless', files: ['model.onnx'], dir: target, endpoint, timeoutMs: 2000 }),
    (e: unknown) =>
      e instanceof InputError && e.code === 'E_SIZE' && /more than the 1000 bytes it announced/.test(e.message),
  );
  await assert.rejects(stat(join(target, 'model.onnx.part')), /ENOENT/);
});

test('a transfer that dies mid-download is retried and resumes from the .part (no second full transfer)', async () => {
  const target = join(dir, 'g');
  requests.length = 0;
  const result = await pullModel({
    repo: 'org/flaky',
    files: ['model.onnx'],
    dir: target,
    endpoint,
    backoffMs: 10,
    timeoutMs: 300,
  });
  assert.equal(result.files[0]!.status, 'resumed');
  assert.deepEqual(await readFile(join(target, 'model.onnx')), weights);
  const gets = requests.filter((r) => r.startsWith('GET /org/flaky/resolve/main/model.onnx'));
  assert.equal(gets.length, 2);
  assert.match(gets[1]!, /bytes=\d+-$/);
});
