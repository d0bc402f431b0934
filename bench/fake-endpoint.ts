import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A deterministic stand-in for a VLM behind an OpenAI-compatible endpoint,
 * for the queue benchmark and tests: every request sleeps `delayMs` (at most
 * `capacity` at once, like a GPU server's batch; the rest wait), then
 * answers the word after "say" in the prompt when it can "see" enough (an
 * image at least `minWidth` px wide, or no image at all), else "wrong".
 * `override` may answer a request itself (to inject 503s or 400s), and
 * `gate` may hold a request until a promise settles (a job kept mid-flight).
 */

export interface FakeEndpoint {
  server: Server;
  /** Base URL ending in /v1. */
  base: string;
  /** Prompts received, in order. */
  prompts: string[];
  /** Requests being answered right now, and the most at once so far. */
  inFlight(): number;
  maxInFlight(): number;
  close(): Promise<void>;
}

export interface FakeEndpointOptions {
  delayMs?: number;
  /** Requests served at once (default unlimited); later ones queue in arrival order. */
  capacity?: number;
  minWidth?: number;
  override?: (prompt: string) => { status: number; body: unknown } | undefined;
  gate?: (prompt: string) => Promise<void> | undefined;
}

/**
 * @example
 * const vlm = await startFakeEndpoint({ delayMs: 50 });
 * // … point an endpoint model at vlm.base
 * await vlm.close();
 */
export function startFakeEndpoint(options: FakeEndpointOptions = {}): Promise<FakeEndpoint> {
  const prompts: string[] = [];
  let current = 0;
  let most = 0;
  let serving = 0;
  const waiting: (() => void)[] = [];
  const slot = (): Promise<void> => {
    if (serving < (options.capacity ?? Infinity)) {
      serving++;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const freeSlot = () => {
    const next = waiting.shift();
    if (next) next();
    else serving--;
  };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', async () => {
      current++;
      most = Math.max(most, current);
      const parts = (
        JSON.parse(body) as {
          messages: { content: string | { type: string; text?: string; image_url?: { url: string } }[] }[];
        }
      ).messages[0]!.content;
      const list = typeof parts === 'string' ? [{ type: 'text', text: parts }] : parts;
      const prompt = list.find((p) => p.type === 'text')?.text ?? '';
      await options.gate?.(prompt);
      await slot();
      setTimeout(() => {
        freeSlot();
        current--;
        prompts.push(prompt);
        const injected = options.override?.(prompt);
        if (injected) {
          res.writeHead(injected.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(injected.body));
          return;
        }
        const word = /say (\w+)/.exec(prompt)?.[1] ?? 'nothing';
        const images = list.filter((p) => p.type === 'image_url');
        // PNG width: bytes 16..19 of the file (IHDR).
        const sees =
          images.length === 0 ||
          images.some(
            (p) => Buffer.from(p.image_url!.url.split(',')[1]!, 'base64').readUInt32BE(16) >= (options.minWidth ?? 200),
          );
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            choices: [{ message: { role: 'assistant', content: sees ? word : 'wrong' } }],
            usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 },
          }),
        );
      }, options.delayMs ?? 0);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
        prompts,
        inFlight: () => current,
        maxInFlight: () => most,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    ),
  );
}
