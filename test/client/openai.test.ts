import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  apiKeyFromEnv,
  chatCompletion,
  chatCompletionsUrl,
  EndpointError,
  imageDataUrl,
  parseRetryAfter,
  serverErrorMessage,
  userMessage,
} from '../../client/openai.js';
import {
  closeAll,
  endlessReply,
  type Handler as HttpHandler,
  listenOn,
  refusedPort,
  trickleReply,
} from '../servers.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

/** A local chat-completions server whose behaviour each test scripts per request. */
async function startServer(
  handler: Handler,
): Promise<{ server: Server; base: string; requests: { body: string; auth?: string; url?: string }[] }> {
  const requests: { body: string; auth?: string; url?: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push({ body, auth: req.headers.authorization, url: req.url });
      handler(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { server, base: `http://127.0.0.1:${port}/v1`, requests };
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const ok = (text: string) => ({
  id: 'x',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content: text } }],
  usage: { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 },
});

describe('imageDataUrl / userMessage', () => {
  it('encodes bytes as a base64 data URL', () => {
    assert.equal(imageDataUrl(new Uint8Array([1, 2, 3]), 'image/png'), 'data:image/png;base64,AQID');
    const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    assert.equal(imageDataUrl(view, 'image/jpeg'), 'data:image/jpeg;base64,AQID');
  });
  it('puts images before the text', () => {
    const msg = userMessage(
      'Q?',
      [{ bytes: new Uint8Array([255]), mime: 'image/png' }, { url: 'http://x/y.png' }],
      'high',
    );
    assert.deepEqual(msg, {
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url: 'data:image/png;base64,/w==', detail: 'high' } },
        { type: 'image_url', image_url: { url: 'http://x/y.png', detail: 'high' } },
        { type: 'text', text: 'Q?' },
      ],
    });
    assert.deepEqual(userMessage('plain'), { role: 'user', content: 'plain' });
  });
});

describe('helpers', () => {
  it('builds the chat completions URL', () => {
    assert.equal(chatCompletionsUrl('http://h:1/v1'), 'http://h:1/v1/chat/completions');
    assert.equal(chatCompletionsUrl('http://h:1/v1/'), 'http://h:1/v1/chat/completions');
    assert.equal(chatCompletionsUrl('http://h:1/v1/chat/completions'), 'http://h:1/v1/chat/completions');
    assert.throws(() => chatCompletionsUrl('h:1/v1x'), /http or https/);
    assert.throws(() => chatCompletionsUrl('nope'), /must be an http\(s\) URL/);
  });
  it('parses Retry-After seconds and dates', () => {
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter('0.5'), 500);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 7_000), 3000);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
  });
  it('extracts server error messages in the common shapes', () => {
    assert.equal(
      serverErrorMessage('{"error":{"message":"model not found","type":"invalid_request_error"}}'),
      'model not found',
    );
    assert.equal(serverErrorMessage('{"object":"error","message":"bad image"}'), 'bad image');
    assert.equal(serverErrorMessage('{"error":"ollama says no"}'), 'ollama says no');
    assert.equal(serverErrorMessage('plain\ntext'), 'plain text');
    assert.equal(serverErrorMessage(''), '(empty body)');
  });
  it('reads the API key from a named variable', () => {
    assert.equal(apiKeyFromEnv(undefined, {}), undefined);
    assert.equal(apiKeyFromEnv('K', { K: 'sk-1' }), 'sk-1');
    assert.throws(
      () => apiKeyFromEnv('MISSING_KEY', {}),
      (e: unknown) =>
        e instanceof Error && /MISSING_KEY is not set/.test(e.message) && (e as EndpointError).exitCode === 2,
    );
  });
});

describe('chatCompletion against a local server', () => {
  let script: Handler[] = [];
  let ctx: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    ctx = await startServer((req, body, res) => {
      const next = script.shift();
      if (!next) return reply(res, 500, { error: { message: 'no scripted reply' } });
      next(req, body, res);
    });
  });
  after(() => {
    ctx.server.closeAllConnections();
    ctx.server.close();
  });
  const reset = (...handlers: Handler[]) => {
    script = handlers;
    ctx.requests.length = 0;
  };

  it('sends the request body and returns text, usage and raw', async () => {
    reset((_q, _b, res) => reply(res, 200, ok('42')));
    const result = await chatCompletion({
      endpoint: ctx.base,
      model: 'm',
      messages: [userMessage('hi', [{ bytes: new Uint8Array([1]), mime: 'image/png' }])],
      apiKey: 'sk-test',
      maxTokens: 8,
      temperature: 0,
      extraBody: { seed: 3 },
      timeoutMs: 2000,
      retries: 0,
    });
    assert.equal(result.text, '42');
    assert.equal(result.attempts, 1);
    assert.deepEqual(result.usage, { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 });
    assert.equal(ctx.requests[0]!.url, '/v1/chat/completions');
    assert.equal(ctx.requests[0]!.auth, 'Bearer sk-test');
    const sent = JSON.parse(ctx.requests[0]!.body);
    assert.equal(sent.model, 'm');
    assert.equal(sent.max_tokens, 8);
    assert.equal(sent.temperature, 0);
    assert.equal(sent.seed, 3);
    assert.equal(sent.stream, false);
    assert.equal(sent.messages[0].content[0].image_url.url, 'data:image/png;base64,AQ==');
  });

  it('joins array content parts', async () => {
    reset((_q, _b, res) =>
      reply(res, 200, {
        choices: [
          {
            message: {
              content: [
                { type: 'text', text: 'a' },
                { type: 'text', text: 'b' },
              ],
            },
          },
        ],
      }),
    );
    const result = await chatCompletion({ endpoint: ctx.base, model: 'm', messages: [userMessage('x')], retries: 0 });
    assert.equal(result.text, 'ab');
  });

  it('retries 429 (honouring Retry-After) and 5xx, then succeeds', async () => {
    reset(
      (_q, _b, res) => reply(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '0.2' }),
      (_q, _b, res) => reply(res, 503, { error: { message: 'overloaded' } }),
      (_q, _b, res) => reply(res, 200, ok('done')),
    );
    const started = Date.now();
    const result = await chatCompletion({
      endpoint: ctx.base,
      model: 'm',
      messages: [userMessage('x')],
      retries: 3,
      backoffMs: 10,
    });
    const elapsed = Date.now() - started;
    assert.equal(result.text, 'done');
    assert.equal(result.attempts, 3);
    assert.equal(ctx.requests.length, 3);
    // waits: max(10, Retry-After 200) then 20 ms
    assert.ok(elapsed >= 215, `expected ≥ 215 ms of backoff, got ${elapsed}`);
  });

  it('gives up after the retries with status and server message', async () => {
    reset(
      ...Array.from(
        { length: 3 },
        (): Handler => (_q, _b, res) => reply(res, 500, { error: { message: 'CUDA out of memory' } }),
      ),
    );
    await assert.rejects(
      chatCompletion({ endpoint: ctx.base, model: 'm', messages: [userMessage('x')], retries: 2, backoffMs: 1 }),
      (e: unknown) =>
        e instanceof EndpointError &&
        e.status === 500 &&
        e.exitCode === 1 &&
        /HTTP 500 .*: CUDA out of memory \(gave up after 3 attempts\)$/.test(e.message),
    );
    assert.equal(ctx.requests.length, 3);
  });

  it('does not retry a 400 and reports the server message', async () => {
    reset((_q, _b, res) => reply(res, 400, { object: 'error', message: 'The model `m` does not exist.' }));
    await assert.rejects(
      chatCompletion({ endpoint: ctx.base, model: 'm', messages: [userMessage('x')], retries: 5, backoffMs: 1 }),
      (e: unknown) =>
        e instanceof EndpointError &&
        e.status === 400 &&
        e.message.endsWith('HTTP 400 Bad Request: The model `m` does not exist.'),
    );
    assert.equal(ctx.requests.length, 1);
  });

  it('retries a timeout and then fails clearly', async () => {
    // Never answers: each attempt times out.
    reset(
      () => {},
      () => {},
    );
    await assert.rejects(
      chatCompletion({
        endpoint: ctx.base,
        model: 'm',
        messages: [userMessage('x')],
        timeoutMs: 100,
        retries: 1,
        backoffMs: 1,
      }),
      (e: unknown) =>
        e instanceof EndpointError &&
        e.code === 'E_ENDPOINT_TIMEOUT' &&
        /did not answer within 100 ms \(gave up after 2 attempts\)/.test(e.message),
    );
    assert.equal(ctx.requests.length, 2);
  });

  it('a timeout followed by success returns the answer', async () => {
    reset(
      () => {},
      (_q, _b, res) => reply(res, 200, ok('late')),
    );
    const result = await chatCompletion({
      endpoint: ctx.base,
      model: 'm',
      messages: [userMessage('x')],
      timeoutMs: 100,
      retries: 2,
      backoffMs: 1,
    });
    assert.equal(result.text, 'late');
    assert.equal(result.attempts, 2);
  });

  it('rejects a 200 answer whose body is not JSON', async () => {
    reset((_q, _b, res) => reply(res, 200, '<html>proxy</html>'));
    await assert.rejects(
      chatCompletion({ endpoint: ctx.base, model: 'm', messages: [userMessage('x')], retries: 2 }),
      /not JSON: <html>proxy<\/html>/,
    );
  });

  it('rejects an answer with no text content instead of returning an empty answer', async () => {
    reset((_q, _b, res) =>
      reply(res, 200, {
        choices: [
          { index: 0, message: { role: 'assistant', content: null, refusal: 'I cannot help' }, finish_reason: 'stop' },
        ],
      }),
    );
    await assert.rejects(
      chatCompletion({ endpoint: ctx.base, model: 'm', messages: [userMessage('x')], retries: 2 }),
      /answered without text content \(finish_reason "stop", refusal: I cannot help\)/,
    );
  });

  it('cancels through the caller signal', async () => {
    reset(() => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(
      chatCompletion({
        endpoint: ctx.base,
        model: 'm',
        messages: [userMessage('x')],
        timeoutMs: 5000,
        retries: 3,
        signal: controller.signal,
      }),
      (e: unknown) => e instanceof EndpointError && e.code === 'E_ENDPOINT_CANCELLED',
    );
  });
});

describe('unreachable endpoints fail at once', () => {
  it('connection refused: one line, no retries', async () => {
    const port = await refusedPort();
    const started = Date.now();
    await assert.rejects(
      chatCompletion({
        endpoint: `http://127.0.0.1:${port}/v1`,
        model: 'm',
        messages: [userMessage('x')],
        retries: 5,
        backoffMs: 1000,
      }),
      (e: unknown) =>
        e instanceof EndpointError &&
        e.code === 'E_ENDPOINT_REFUSED' &&
        e.message ===
          `cannot connect to 127.0.0.1:${port}: connection refused (is the server running at http://127.0.0.1:${port}/v1/chat/completions?)`,
    );
    assert.ok(Date.now() - started < 900, 'must not back off before failing');
  });

  it('DNS failure: one line, no retries', async () => {
    const started = Date.now();
    await assert.rejects(
      chatCompletion({
        endpoint: 'http://no-such-host.invalid/v1',
        model: 'm',
        messages: [userMessage('x')],
        retries: 5,
        backoffMs: 1000,
      }),
      (e: unknown) =>
        e instanceof EndpointError &&
        e.code === 'E_ENDPOINT_DNS' &&
        /^cannot resolve host no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\)/.test(e.message),
    );
    assert.ok(Date.now() - started < 900);
  });
});

describe('bounded replies and transient faults', () => {
  const servers: Server[] = [];
  after(() => closeAll(servers));
  const serve = async (handler: HttpHandler, port = 0) => `${await listenOn(servers, handler, port)}/v1`;

  it('a 200 that streams forever ends with one line at the reply cap, memory bounded', async () => {
    const base = await serve(endlessReply(256 * 1024));
    await assert.rejects(
      chatCompletion({ endpoint: base, model: 'm', messages: [userMessage('x')], timeoutMs: 60_000, retries: 3 }),
      (e: unknown) => {
        assert.ok(e instanceof EndpointError);
        assert.equal(e.code, 'E_ENDPOINT_TOO_LARGE');
        assert.equal(
          e.message,
          `${base}/chat/completions: the chat reply exceeds the 16 MiB limit for a chat reply; stopped reading`,
        );
        return true;
      },
    );
    assert.ok(process.memoryUsage().rss < 500 * 1024 * 1024, `rss ${process.memoryUsage().rss}`);
  });

  it('--timeout is a deadline for the whole reply: a body that trickles forever is cut off, per attempt', async () => {
    let requests = 0;
    const trickle = trickleReply(' ', 10);
    const base = await serve((req, res) => {
      requests++;
      trickle(req, res);
    });
    await assert.rejects(
      chatCompletion({
        endpoint: base,
        model: 'm',
        messages: [userMessage('x')],
        timeoutMs: 200,
        retries: 1,
        backoffMs: 1,
      }),
      (e: unknown) =>
        e instanceof EndpointError &&
        e.code === 'E_ENDPOINT_TIMEOUT' &&
        e.message ===
          `${base}/chat/completions did not finish its reply within 200 ms (the timeout covers the whole reply, body included) (gave up after 2 attempts)`,
    );
    assert.equal(requests, 2);
  });

  it('a connection reset is retried (only a refused connection fails fast)', async () => {
    let connections = 0;
    const base = await serve((req, res) => {
      req.resume();
      req.on('end', () => {
        if (connections++ === 0) return void res.socket?.destroy();
        reply(res, 200, ok('after reset'));
      });
    });
    const result = await chatCompletion({
      endpoint: base,
      model: 'm',
      messages: [userMessage('x')],
      retries: 2,
      backoffMs: 1,
    });
    assert.equal(result.text, 'after reset');
    assert.equal(result.attempts, 2);
  });

  it('endpoints on ports that fetch refuses (6000, 6667, …) work', async () => {
    let base: string | undefined;
    for (const port of [6000, 6665, 6666, 6667, 6668, 6669, 10080]) {
      try {
        base = await serve((req, res) => {
          req.resume();
          req.on('end', () => reply(res, 200, ok('blocked port ok')));
        }, port);
        break;
      } catch {
        // busy here; try the next port fetch blocks
      }
    }
    assert.ok(base, 'no blocked port was free');
    const result = await chatCompletion({ endpoint: base, model: 'm', messages: [userMessage('x')], retries: 0 });
    assert.equal(result.text, 'blocked port ok');
  });
});
