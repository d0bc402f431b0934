import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, test } from 'node:test';
import { HttpFault, httpRequest, withRetries } from '../../client/http.js';
import { closeAll, endlessReply, type Handler, listenOn, refusedPort, trickleReply } from '../servers.js';

const servers: Server[] = [];
after(() => closeAll(servers));
const listen = (handler: Handler, port = 0) => listenOn(servers, handler, port);

test('a reply that streams forever stops at the byte limit with one clear line, without growing the heap', async () => {
  const base = await listen(endlessReply());
  const response = await httpRequest({
    url: `${base}/v1/chat/completions`,
    method: 'POST',
    body: '{}',
    deadlineMs: 60_000,
  });
  await assert.rejects(response.bytes(4 * 1024 * 1024, 'chat reply'), (e: unknown) => {
    assert.ok(e instanceof HttpFault);
    assert.equal(e.kind, 'too-large');
    assert.equal(e.retryable, false);
    assert.equal(
      e.message,
      `${base}/v1/chat/completions: the chat reply exceeds the 4 MiB limit for a chat reply; stopped reading`,
    );
    return true;
  });
  assert.ok(process.memoryUsage().rss < 500 * 1024 * 1024, `rss ${process.memoryUsage().rss}`);
});

test('a Content-Length over the limit fails before any body is read', async () => {
  const base = await listen((_req, res) => {
    res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
    res.write(Buffer.alloc(1024));
  });
  const response = await httpRequest({ url: base });
  await assert.rejects(
    response.bytes(1024 * 1024, 'file list'),
    (e: unknown) =>
      e instanceof HttpFault && e.kind === 'too-large' && /is 10485760 bytes, over the 1 MiB limit/.test(e.message),
  );
});

test('the deadline covers the body: a reply that trickles forever ends with a deadline fault', async () => {
  const base = await listen(trickleReply('x', 20));
  const response = await httpRequest({ url: base, deadlineMs: 300, idleTimeoutMs: 10_000 });
  await assert.rejects(
    response.bytes(1024 * 1024, 'chat reply'),
    (e: unknown) =>
      e instanceof HttpFault &&
      e.kind === 'deadline' &&
      e.retryable &&
      /no complete reply within 300 ms \(the deadline covers connecting, the headers and the whole body\)/.test(
        e.message,
      ),
  );
});

test('connect-and-say-nothing servers hit the header timeout; stalled bodies the idle timeout', async () => {
  const silent = await listen(() => {});
  await assert.rejects(
    httpRequest({ url: silent, headersTimeoutMs: 100 }),
    (e: unknown) =>
      e instanceof HttpFault &&
      e.kind === 'headers-timeout' &&
      e.message === `${silent}: connected, but no reply headers within 100 ms`,
  );
  const stall = await listen((_req, res) => {
    res.writeHead(200);
    res.write('{"partial":');
  });
  const response = await httpRequest({ url: stall, idleTimeoutMs: 100 });
  await assert.rejects(
    response.bytes(1024, 'chat reply'),
    (e: unknown) =>
      e instanceof HttpFault && e.kind === 'idle-timeout' && /stalled \(no data for 100 ms\)/.test(e.message),
  );
});

test('refused connections are final; resets are transient and retried', async () => {
  const port = await refusedPort();
  let attempts = 0;
  await assert.rejects(
    withRetries(
      () => {
        attempts++;
        return httpRequest({ url: `http://127.0.0.1:${port}/` });
      },
      (e) => ({ retry: e instanceof HttpFault && e.retryable }),
      { retries: 3, backoffMs: 1 },
    ),
    (e: unknown) => e instanceof HttpFault && e.kind === 'refused' && !/gave up/.test(e.message),
  );
  assert.equal(attempts, 1);

  let connections = 0;
  const base = await listen((_req, res) => {
    if (connections++ === 0) return void res.socket?.destroy(); // reset the first connection
    res.end('ok');
  });
  const { value, attempts: used } = await withRetries(
    async () => (await (await httpRequest({ url: base })).bytes(100, 'reply')).toString(),
    (e) => ({ retry: e instanceof HttpFault && e.retryable }),
    { retries: 2, backoffMs: 1 },
  );
  assert.equal(value, 'ok');
  assert.equal(used, 2);
});

test('ports that fetch blocks (6000, 6667, …) work', async () => {
  let base: string | undefined;
  for (const port of [6000, 6665, 6666, 6667, 6668, 6669, 10080]) {
    try {
      base = await listen((_req, res) => res.end('through'), port);
      break;
    } catch {
      // port busy on this machine; try the next blocked one
    }
  }
  assert.ok(base, 'no blocked port was free');
  await assert.rejects(fetch(base), /fetch failed/); // what Node's fetch does with it
  const response = await httpRequest({ url: base });
  assert.equal((await response.bytes(100, 'reply')).toString(), 'through');
});

test('redirects are followed when asked, dropping credentials on another origin', async () => {
  const seen: (string | undefined)[] = [];
  const target = await listen((req, res) => {
    seen.push(req.headers.authorization);
    res.end('landed');
  });
  const origin = await listen((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(302, { location: `${target}/blob` });
    res.end();
  });
  const response = await httpRequest({ url: origin, headers: { authorization: 'Bearer t' }, maxRedirects: 2 });
  assert.equal(response.url, `${target}/blob`);
  assert.equal((await response.bytes(100, 'reply')).toString(), 'landed');
  assert.deepEqual(seen, ['Bearer t', undefined]);
  const manual = await httpRequest({ url: origin });
  assert.equal(manual.status, 302);
  manual.discard();
});
