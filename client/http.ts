import {
  request as httpRequestRaw,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { request as httpsRequestRaw } from 'node:https';
import { VtcError } from '../core/errors.js';

/**
 * The one HTTP client every network caller in vtc uses (chat endpoints, the
 * model hub). Built on node:http(s) rather than fetch because it needs what
 * fetch cannot give:
 *
 * - **bounded replies**: every body is read with a byte limit
 *   ({@link REPLY_LIMITS}); a server that streams forever ends with one clear
 *   line instead of growing the heap until Node dies;
 * - **deadlines that include the body**: `deadlineMs` runs from the first byte
 *   sent to the last byte received, `connectTimeoutMs`, `headersTimeoutMs` and
 *   `idleTimeoutMs` catch a server that accepts and never answers or stalls
 *   mid-body;
 * - **every port**: fetch refuses "unsafe" ports (6000, 6667, …) with a bare
 *   "bad port"; node:http connects to any port the user names;
 * - **classified faults** ({@link HttpFault}): a refused connection or an
 *   unknown host is final, resets / timeouts / 429 / 5xx are transient and
 *   retried by {@link withRetries}.
 */

/** Reply body limits per kind of reply, in bytes (documented in docs/architecture.md). */
export const REPLY_LIMITS = {
  /** A chat-completions JSON answer (a few KiB in practice; 16 MiB leaves room for logprobs). */
  chat: 16 * 1024 * 1024,
  /** Hub API JSON (a revision's file list). */
  hubJson: 32 * 1024 * 1024,
  /** An error body, kept only for its message. */
  errorBody: 64 * 1024,
  /** A model file whose size the server announces neither in the hub headers nor in Content-Length. */
  download: 64 * 1024 * 1024 * 1024,
} as const;

export type HttpFaultKind =
  | 'refused'
  | 'dns'
  | 'reset'
  | 'connect-timeout'
  | 'headers-timeout'
  | 'idle-timeout'
  | 'deadline'
  | 'too-large'
  | 'cancelled'
  | 'redirect'
  | 'url';

/** A request that did not produce a usable reply. `retryable` says whether trying again may help. */
export class HttpFault extends VtcError {
  readonly kind: HttpFaultKind;
  readonly retryable: boolean;
  /** Whether the status line and headers had arrived (a deadline hit while reading the body). */
  headersReceived = false;
  constructor(message: string, kind: HttpFaultKind) {
    super(message, `E_HTTP_${kind.toUpperCase().replace(/-/g, '_')}`, 1);
    this.kind = kind;
    this.retryable =
      kind === 'reset' ||
      kind === 'connect-timeout' ||
      kind === 'headers-timeout' ||
      kind === 'idle-timeout' ||
      kind === 'deadline';
  }
}

export interface HttpTimeouts {
  /** Until the TCP (and TLS) connection is up (default 30000 ms). */
  connectTimeoutMs?: number;
  /** From connected until the status line and headers arrive (default 60000 ms). */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks (default 60000 ms). */
  idleTimeoutMs?: number;
  /** The whole request, first byte sent to last byte received, redirects included (default none). */
  deadlineMs?: number;
}

export interface HttpRequestOptions extends HttpTimeouts {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Redirects to follow (default 0: 3xx answers are returned as they are). Authorization is dropped when the origin changes. */
  maxRedirects?: number;
}

export interface HttpResponse {
  /** The final URL (after redirects). */
  url: string;
  status: number;
  statusText: string;
  ok: boolean;
  headers: IncomingHttpHeaders;
  header(name: string): string | undefined;
  /** The body as chunks; the idle timeout and the deadline keep running while it is read. */
  chunks(): AsyncIterable<Buffer>;
  /** The whole body, failing with a `too-large` fault past `maxBytes` (`what` names the kind of reply in the message). */
  bytes(maxBytes: number, what: string): Promise<Buffer>;
  /** Up to `maxBytes` of the body as UTF-8, silently cut (for error messages and prefixes); closes the connection. */
  prefix(maxBytes: number): Promise<string>;
  /** Closes the connection without reading (or finishing) the body. */
  discard(): void;
}

/** Formats a byte count for messages ("16 MiB"). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1 && value % 1024 === 0) {
    value /= 1024;
    unit++;
  }
  return `${value} ${units[unit]}`;
}

/**
 * Sends one HTTP(S) request and resolves when the headers arrive; the body is
 * read through the returned {@link HttpResponse} under the same timers.
 *
 * @example
 * const response = await httpRequest({ url: 'http://127.0.0.1:8000/v1/models', deadlineMs: 5000 });
 * const json = JSON.parse((await response.bytes(REPLY_LIMITS.hubJson, 'model list')).toString('utf8'));
 */
export async function httpRequest(options: HttpRequestOptions): Promise<HttpResponse> {
  const deadlineAt = options.deadlineMs !== undefined ? Date.now() + options.deadlineMs : undefined;
  let url = options.url;
  let method = options.method ?? 'GET';
  let body = options.body;
  let headers = { ...(options.headers ?? {}) };
  for (let hop = 0; ; hop++) {
    const response = await requestOnce(
      { ...options, url, method, headers, ...(body !== undefined ? { body } : {}) },
      deadlineAt,
    );
    const location = response.header('location');
    const maxRedirects = options.maxRedirects ?? 0;
    if (!(maxRedirects > 0 && response.status >= 300 && response.status < 400 && location)) return response;
    if (hop >= maxRedirects) {
      response.discard();
      throw new HttpFault(`${options.url}: more than ${maxRedirects} redirects`, 'redirect');
    }
    response.discard();
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new HttpFault(`${url}: redirect to a non-http(s) URL ${location}`, 'redirect');
    if (next.origin !== new URL(url).origin) {
      // Credentials are for the server the user named, not for wherever it points (as fetch does).
      headers = Object.fromEntries(
        Object.entries(headers).filter(
          ([name]) => name.toLowerCase() !== 'authorization' && name.toLowerCase() !== 'cookie',
        ),
      );
    }
    if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
      method = method === 'HEAD' ? 'HEAD' : 'GET';
      body = undefined;
    }
    url = next.toString();
  }
}

function requestOnce(options: HttpRequestOptions, deadlineAt: number | undefined): Promise<HttpResponse> {
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch {
    return Promise.reject(new HttpFault(`not a valid URL: ${JSON.stringify(options.url)}`, 'url'));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return Promise.reject(new HttpFault(`${options.url}: only http and https URLs are supported`, 'url'));
  const url = options.url;
  const connectMs = options.connectTimeoutMs ?? 30_000;
  const headersMs = options.headersTimeoutMs ?? 60_000;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const signal = options.signal;

  return new Promise<HttpResponse>((resolve, reject) => {
    let fault: HttpFault | undefined;
    let settled = false;
    let response: IncomingMessage | undefined;
    const timers = new Set<NodeJS.Timeout>();
    const clearTimers = () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    };
    const startTimer = (ms: number, make: () => HttpFault): NodeJS.Timeout => {
      const timer = setTimeout(() => fail(make()), Math.max(0, ms));
      timers.add(timer);
      return timer;
    };
    const fail = (error: HttpFault) => {
      error.headersReceived = response !== undefined;
      if (!fault) fault = error;
      clearTimers();
      req.destroy(fault);
      response?.destroy(fault);
      if (!settled) {
        settled = true;
        reject(fault);
      }
    };
    const onAbort = () => fail(new HttpFault(`request to ${url} was cancelled`, 'cancelled'));
    if (signal?.aborted) return reject(new HttpFault(`request to ${url} was cancelled`, 'cancelled'));

    const send = parsed.protocol === 'https:' ? httpsRequestRaw : httpRequestRaw;
    const bodyBytes =
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? Buffer.from(options.body, 'utf8')
          : options.body;
    const req: ClientRequest = send(parsed, {
      method: options.method ?? 'GET',
      headers: { ...(bodyBytes ? { 'content-length': String(bodyBytes.byteLength) } : {}), ...(options.headers ?? {}) },
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => {
      if (!response) signal?.removeEventListener('abort', onAbort);
    });
    if (deadlineAt !== undefined)
      startTimer(
        deadlineAt - Date.now(),
        () =>
          new HttpFault(
            `${url}: no complete reply within ${options.deadlineMs} ms (the deadline covers connecting, the headers and the whole body)`,
            'deadline',
          ),
      );
    const connectTimer = startTimer(
      connectMs,
      () => new HttpFault(`${url}: could not connect within ${connectMs} ms`, 'connect-timeout'),
    );
    let headersTimer: NodeJS.Timeout | undefined;
    const connected = () => {
      clearTimeout(connectTimer);
      timers.delete(connectTimer);
      if (!response && !headersTimer)
        headersTimer = startTimer(
          headersMs,
          () => new HttpFault(`${url}: connected, but no reply headers within ${headersMs} ms`, 'headers-timeout'),
        );
    };
    req.on('socket', (socket) => {
      if (!(socket as { connecting?: boolean }).connecting)
        connected(); // a kept-alive socket
      else socket.once(parsed.protocol === 'https:' ? 'secureConnect' : 'connect', connected);
    });
    req.on('error', (error) => {
      if (settled && !response) return;
      const mapped = fault ?? classifyError(url, error);
      if (!settled) {
        settled = true;
        clearTimers();
        reject(mapped);
      } else if (response && !fault) {
        fault = mapped;
        response.destroy(mapped);
      }
    });
    req.on('response', (res) => {
      response = res;
      if (headersTimer) {
        clearTimeout(headersTimer);
        timers.delete(headersTimer);
      }
      clearTimeout(connectTimer);
      timers.delete(connectTimer);
      res.on('error', () => {}); // surfaced through chunks()
      res.on('close', () => {
        clearTimers();
        signal?.removeEventListener('abort', onAbort);
      });
      settled = true;
      const header = (name: string): string | undefined => {
        const value = res.headers[name.toLowerCase()];
        return Array.isArray(value) ? value.join(', ') : value;
      };
      const chunks = async function* (): AsyncGenerator<Buffer> {
        const iterator = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        for (;;) {
          // The idle timer runs only while waiting for the server, not while the caller holds a chunk.
          const idle = startTimer(
            idleMs,
            () => new HttpFault(`${url}: the reply stalled (no data for ${idleMs} ms)`, 'idle-timeout'),
          );
          let step: IteratorResult<Buffer>;
          try {
            step = await iterator.next();
          } catch (error) {
            throw fault ?? classifyError(url, error);
          } finally {
            clearTimeout(idle);
            timers.delete(idle);
          }
          if (step.done) break;
          yield step.value;
        }
        // A reply cut short (socket closed before Content-Length bytes) may end without an error event.
        if (fault) throw fault;
        if (!res.complete) throw new HttpFault(`${url}: the connection closed before the reply was complete`, 'reset');
      };
      const status = res.statusCode ?? 0;
      resolve({
        url,
        status,
        statusText: res.statusMessage ?? '',
        ok: status >= 200 && status < 300,
        headers: res.headers,
        header,
        chunks,
        bytes: async (maxBytes: number, what: string) => {
          const announced = Number(header('content-length'));
          if (Number.isFinite(announced) && announced > maxBytes) {
            const error = new HttpFault(
              `${url}: the ${what} is ${announced} bytes, over the ${formatBytes(maxBytes)} limit for a ${what}`,
              'too-large',
            );
            fail(error);
            throw error;
          }
          const parts: Buffer[] = [];
          let length = 0;
          for await (const chunk of chunks()) {
            length += chunk.length;
            if (length > maxBytes) {
              const error = new HttpFault(
                `${url}: the ${what} exceeds the ${formatBytes(maxBytes)} limit for a ${what}; stopped reading`,
                'too-large',
              );
              fail(error);
              throw error;
            }
            parts.push(chunk);
          }
          return Buffer.concat(parts, length);
        },
        prefix: async (maxBytes: number) => {
          const parts: Buffer[] = [];
          let length = 0;
          try {
            for await (const chunk of chunks()) {
              parts.push(chunk);
              length += chunk.length;
              if (length >= maxBytes) break;
            }
          } catch {
            // a prefix is best effort (error messages): keep what arrived
          }
          res.destroy();
          return Buffer.concat(parts, length).subarray(0, maxBytes).toString('utf8');
        },
        discard: () => {
          clearTimers();
          res.destroy();
        },
      });
    });
    if (bodyBytes) req.end(bodyBytes);
    else req.end();
  });
}

/**
 * Maps a socket error to a fault: a refused connection and an unknown host
 * are final (the endpoint is wrong or down: retrying only hides it); resets,
 * broken pipes and other socket failures are transient.
 */
function classifyError(url: string, error: unknown): HttpFault {
  if (error instanceof HttpFault) return error;
  const code = (error as { code?: unknown }).code;
  const host = safeHost(url);
  if (code === 'ECONNREFUSED')
    return new HttpFault(`cannot connect to ${host}: connection refused (is the server running at ${url}?)`, 'refused');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new HttpFault(`cannot resolve host ${host} (${code}); check the URL ${url}`, 'dns');
  const detail = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
  return new HttpFault(`${url}: connection failed (${detail})`, 'reset');
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** First wait in ms, doubled on each retry (default 500). */
  backoffMs?: number;
  /** Longest single wait, a server's Retry-After included (default 30000). */
  maxBackoffMs?: number;
  signal?: AbortSignal;
  /** Called before each wait (logging). */
  onRetry?: (error: unknown, attempt: number, waitMs: number) => void;
}

/** What {@link withRetries} needs to know about a failure. */
export interface RetryVerdict {
  retry: boolean;
  /** The server's Retry-After in ms, when it gave one. */
  afterMs?: number;
}

/**
 * Runs `attempt` up to retries + 1 times, waiting backoffMs·2^i (at most
 * maxBackoffMs, at least a server's Retry-After up to that cap) between tries
 * while `judge` says the failure is transient. The total time is bounded:
 * (retries + 1) attempts plus at most retries · maxBackoffMs of waiting.
 *
 * @example
 * const body = await withRetries((n) => fetchOnce(n), (e) => ({ retry: e instanceof HttpFault && e.retryable }), { retries: 3 });
 */
export async function withRetries<T>(
  attempt: (index: number) => Promise<T>,
  judge: (error: unknown) => RetryVerdict,
  options: RetryOptions = {},
): Promise<{ value: T; attempts: number }> {
  const retries = options.retries ?? 3;
  const backoffMs = options.backoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  for (let index = 0; ; index++) {
    try {
      return { value: await attempt(index), attempts: index + 1 };
    } catch (error) {
      const verdict = judge(error);
      if (!verdict.retry || index >= retries || options.signal?.aborted)
        throw decorate(error, index + 1, verdict.retry);
      const wait = Math.min(maxBackoffMs, Math.max(backoffMs * 2 ** index, verdict.afterMs ?? 0));
      options.onRetry?.(error, index + 1, wait);
      await sleep(wait, options.signal);
    }
  }
}

/** Adds "(gave up after N attempts)" to a transient failure's message. */
function decorate(error: unknown, attempts: number, transient: boolean): unknown {
  if (attempts > 1 && transient && error instanceof Error) {
    try {
      error.message = `${error.message} (gave up after ${attempts} attempts)`;
    } catch {
      // read-only message: leave it
    }
  }
  return error;
}

/** Waits ms, rejecting with a `cancelled` fault when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new HttpFault('request was cancelled', 'cancelled'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new HttpFault('request was cancelled', 'cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
