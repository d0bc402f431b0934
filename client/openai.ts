import { UsageError, VtcError } from '../core/errors.js';
import { checkInteger, checkNumber } from '../core/validate.js';
import { HttpFault, httpRequest, REPLY_LIMITS, withRetries } from './http.js';

/**
 * A small client for OpenAI-compatible chat-completions endpoints (vLLM,
 * llama.cpp server, Ollama, LM Studio, OpenAI itself), shared by `vtc eval`
 * and `vtc video-qa`.
 *
 * Failure policy (why): a long evaluation must ride out transient trouble —
 * timeouts, 429 rate limits, 5xx, dropped sockets — so those are retried with
 * exponential backoff (honouring Retry-After). A refused connection or a DNS
 * failure means the endpoint is wrong or down; retrying only hides that, so it
 * fails at once with one clear line. Other 4xx answers are the caller's fault
 * and are reported with the status and the server's own error message.
 *
 * Bounds (client/http.ts): `timeoutMs` is a deadline for each attempt as a
 * whole — connecting, waiting for the headers and reading the entire body —
 * so a server that answers 200 and then streams without end is cut off; the
 * body is also capped at `maxResponseBytes` (REPLY_LIMITS.chat, 16 MiB). Retries
 * do multiply the timeout: a call takes at most (retries + 1) × timeoutMs plus
 * the backoff waits (each ≤ maxBackoffMs), and never longer.
 */

/** One part of a multimodal user message. */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } }
  | { type: 'image_embeds'; image_embeds: string | Record<string, string> }
  | { type: 'video_url'; video_url: { url: string } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

export interface ChatCompletionOptions {
  /** Base URL ending in /v1 (e.g. http://127.0.0.1:8000/v1); /chat/completions is appended. */
  endpoint: string;
  model: string;
  messages: ChatMessage[];
  /** Bearer token; see {@link apiKeyFromEnv} to read it from an environment variable. */
  apiKey?: string;
  /** Deadline of each attempt in ms, body included (default 60000); see the module note for the total. */
  timeoutMs?: number;
  /** Largest reply body accepted, in bytes (default REPLY_LIMITS.chat = 16 MiB). */
  maxResponseBytes?: number;
  /** Retries after the first attempt for timeouts, 429, 5xx and dropped connections (default 3). */
  retries?: number;
  /** First backoff delay in ms, doubled on each retry (default 500). */
  backoffMs?: number;
  /** Upper bound for one wait, including a server's Retry-After (default 30000). */
  maxBackoffMs?: number;
  maxTokens?: number;
  temperature?: number;
  /** Extra fields merged into the request body (e.g. { top_p: 1, seed: 0 }). */
  extraBody?: Record<string, unknown>;
  /** Cancels the request and any pending retry wait. */
  signal?: AbortSignal;
}

export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

export interface ChatCompletionResult {
  /** The first choice's message text ('' when the model returned no content). */
  text: string;
  usage?: ChatUsage;
  /** The parsed response body, untouched. */
  raw: unknown;
  /** How many attempts it took (1 = no retry). */
  attempts: number;
}

/** A failed call to a chat-completions endpoint (exit code 1). `status` is set for HTTP answers. */
export class EndpointError extends VtcError {
  readonly status?: number;
  readonly retryable: boolean;
  /** The server's Retry-After in ms, when it sent one. */
  readonly retryAfterMs?: number;
  constructor(
    message: string,
    code: string,
    options: { status?: number; retryable?: boolean; retryAfterMs?: number } = {},
  ) {
    super(message, code, 1);
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * Encodes image bytes as a base64 data URL for an `image_url` content part.
 *
 * @example
 * imageDataUrl(new Uint8Array([1, 2, 3]), 'image/png'); // 'data:image/png;base64,AQID'
 */
export function imageDataUrl(bytes: Uint8Array, mime: string): string {
  return `data:${mime};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

/** An image given to {@link userMessage}: raw bytes with their MIME type, or a ready URL. */
export type MessageImage = { bytes: Uint8Array; mime: string } | { url: string };

/**
 * Builds a user message from text and images (images first, as most VLM chat
 * templates expect them before the question).
 *
 * @example
 * const msg = userMessage('What does the sign say?', [{ bytes: png, mime: 'image/png' }]);
 * // { role: 'user', content: [{ type: 'image_url', ... }, { type: 'text', text: 'What does the sign say?' }] }
 */
export function userMessage(text: string, images: MessageImage[] = [], detail?: 'auto' | 'low' | 'high'): ChatMessage {
  if (images.length === 0) return { role: 'user', content: text };
  const parts: ContentPart[] = images.map((image) => {
    const url = 'url' in image ? image.url : imageDataUrl(image.bytes, image.mime);
    return { type: 'image_url', image_url: detail ? { url, detail } : { url } };
  });
  parts.push({ type: 'text', text });
  return { role: 'user', content: parts };
}

/**
 * Reads an API key from the named environment variable; undefined when no
 * name is given, a usage error when the variable is named but empty.
 *
 * @example
 * const apiKey = apiKeyFromEnv('OPENAI_API_KEY');
 */
export function apiKeyFromEnv(name: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!name) return undefined;
  const value = env[name];
  if (!value)
    throw new UsageError(`API key variable ${name} is not set (export ${name}=… or drop --api-key-env)`, 'E_API_KEY');
  return value;
}

/** Normalises a base URL to `<base>/chat/completions` (accepts a trailing slash or the full path). */
export function chatCompletionsUrl(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(
      `endpoint must be an http(s) URL ending in /v1, got ${JSON.stringify(endpoint)}`,
      'E_ENDPOINT_URL',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`endpoint must use http or https, got ${JSON.stringify(endpoint)}`, 'E_ENDPOINT_URL');
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/chat/completions') ? base : `${base}/chat/completions`;
}

/**
 * Sends one chat-completions request, retrying transient failures.
 *
 * @example
 * const { text } = await chatCompletion({
 *   endpoint: 'http://127.0.0.1:8000/v1', model: 'Qwen/Qwen2.5-VL-3B-Instruct',
 *   messages: [userMessage('Answer with one word. What colour is the sky?')],
 *   timeoutMs: 30000, retries: 3, maxTokens: 16, temperature: 0,
 * });
 */
export async function chatCompletion(options: ChatCompletionOptions): Promise<ChatCompletionResult> {
  const url = chatCompletionsUrl(options.endpoint);
  const retries = options.retries ?? 3;
  const timeoutMs = options.timeoutMs ?? 60_000;
  checkInteger(retries, 'retries', { min: 0 });
  checkNumber(timeoutMs, 'timeoutMs', { gt: 0 });
  const body = JSON.stringify({
    model: options.model,
    messages: options.messages,
    ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    ...(options.extraBody ?? {}),
    stream: false,
  });
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const maxResponseBytes = options.maxResponseBytes ?? REPLY_LIMITS.chat;
  checkNumber(maxResponseBytes, 'maxResponseBytes', { gt: 0 });
  try {
    const { value, attempts } = await withRetries(
      () => attemptOnce(url, headers, body, timeoutMs, maxResponseBytes, options.signal),
      (error) =>
        error instanceof EndpointError
          ? { retry: error.retryable, ...(error.retryAfterMs !== undefined ? { afterMs: error.retryAfterMs } : {}) }
          : { retry: false },
      {
        retries,
        backoffMs: options.backoffMs ?? 500,
        maxBackoffMs: options.maxBackoffMs ?? 30_000,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    return { ...value, attempts };
  } catch (error) {
    if (error instanceof HttpFault && error.kind === 'cancelled')
      throw new EndpointError(`request to ${url} was cancelled`, 'E_ENDPOINT_CANCELLED');
    throw error;
  }
}

async function attemptOnce(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  maxResponseBytes: number,
  signal: AbortSignal | undefined,
): Promise<Omit<ChatCompletionResult, 'attempts'>> {
  let status: number;
  let text: string;
  try {
    const response = await httpRequest({
      url,
      method: 'POST',
      headers,
      body,
      deadlineMs: timeoutMs,
      connectTimeoutMs: timeoutMs,
      headersTimeoutMs: timeoutMs,
      idleTimeoutMs: timeoutMs,
      ...(signal ? { signal } : {}),
    });
    status = response.status;
    if (!response.ok) {
      const errorText = await response.prefix(REPLY_LIMITS.errorBody);
      const retryable = status === 429 || status === 408 || status >= 500;
      const message = `${url} answered HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}: ${serverErrorMessage(errorText)}`;
      const retryAfterMs = parseRetryAfter(response.header('retry-after') ?? null);
      throw new EndpointError(message, 'E_ENDPOINT_HTTP', {
        status,
        retryable,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    }
    text = (await response.bytes(maxResponseBytes, 'chat reply')).toString('utf8');
  } catch (error) {
    throw endpointFailure(url, error, timeoutMs);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new EndpointError(
      `${url} answered HTTP ${status} with a body that is not JSON: ${clip(text)}`,
      'E_ENDPOINT_BODY',
      { status },
    );
  }
  return { text: messageText(raw, url), usage: (raw as { usage?: ChatUsage }).usage, raw };
}

/** Maps a transport fault to an endpoint error: refused and DNS failures are final, resets and timeouts are retried. */
function endpointFailure(url: string, error: unknown, timeoutMs: number): unknown {
  if (!(error instanceof HttpFault)) return error;
  switch (error.kind) {
    case 'cancelled':
      return new EndpointError(`request to ${url} was cancelled`, 'E_ENDPOINT_CANCELLED');
    case 'refused':
      return new EndpointError(error.message, 'E_ENDPOINT_REFUSED');
    case 'dns':
      return new EndpointError(error.message, 'E_ENDPOINT_DNS');
    case 'connect-timeout':
    case 'headers-timeout':
      return new EndpointError(`${url} did not answer within ${timeoutMs} ms`, 'E_ENDPOINT_TIMEOUT', {
        retryable: true,
      });
    case 'deadline':
      if (!error.headersReceived)
        return new EndpointError(`${url} did not answer within ${timeoutMs} ms`, 'E_ENDPOINT_TIMEOUT', {
          retryable: true,
        });
      return new EndpointError(
        `${url} did not finish its reply within ${timeoutMs} ms (the timeout covers the whole reply, body included)`,
        'E_ENDPOINT_TIMEOUT',
        { retryable: true },
      );
    case 'idle-timeout':
      return new EndpointError(
        `${url} did not finish its reply within ${timeoutMs} ms (the timeout covers the whole reply, body included)`,
        'E_ENDPOINT_TIMEOUT',
        { retryable: true },
      );
    case 'too-large':
      return new EndpointError(error.message, 'E_ENDPOINT_TOO_LARGE');
    default:
      return new EndpointError(
        `request to ${url} failed: ${error.message.replace(`${url}: `, '')}`,
        'E_ENDPOINT_NETWORK',
        { retryable: error.retryable },
      );
  }
}

/** What a one-question command (`vtc ask`, `vtc video-qa`) sends with: its endpoint, model and limits. */
export interface QuestionRequest {
  endpoint: string;
  model: string;
  messages: ChatMessage[];
  apiKey?: string | undefined;
  /** Per attempt (default 120000 ms: one image-heavy answer). */
  timeoutMs?: number | undefined;
  /** Retries after the first attempt (default 1: a question is cheap to ask again, a long wait is not). */
  retries?: number | undefined;
  maxTokens?: number | undefined;
}

/**
 * One deterministic answer (temperature 0) to a single question, trimmed:
 * the shared call of `vtc ask` and `vtc video-qa`.
 *
 * @example
 * const answer = await answerQuestion({ endpoint, model: 'm', messages: [userMessage('Hi?')] });
 */
export async function answerQuestion(request: QuestionRequest): Promise<string> {
  const completion = await chatCompletion({
    endpoint: request.endpoint,
    model: request.model,
    messages: request.messages,
    apiKey: request.apiKey,
    timeoutMs: request.timeoutMs ?? 120_000,
    retries: request.retries ?? 1,
    maxTokens: request.maxTokens,
    temperature: 0,
  });
  return completion.text.trim();
}

/** The server's own error text: OpenAI/llama.cpp `{error: {message}}`, vLLM `{message}`, Ollama `{error: "..."}`, else the body. */
export function serverErrorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    if (typeof parsed.error === 'string') return clip(parsed.error);
    if (parsed.error && typeof (parsed.error as { message?: unknown }).message === 'string')
      return clip((parsed.error as { message: string }).message);
    if (typeof parsed.message === 'string') return clip(parsed.message);
    if (typeof parsed.detail === 'string') return clip(parsed.detail);
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.trim() === '' ? '(empty body)' : clip(body);
}

function clip(text: string, max = 300): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (header.trim() !== '' && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The first choice's text; content may be a string, null, or an array of parts. */
function messageText(raw: unknown, url: string): string {
  const choices = (raw as { choices?: unknown }).choices;
  if (!Array.isArray(choices) || choices.length === 0) {
    throw new EndpointError(`${url} answered without choices: ${clip(JSON.stringify(raw))}`, 'E_ENDPOINT_BODY');
  }
  const choice = choices[0] as { message?: { content?: unknown; refusal?: unknown }; finish_reason?: unknown };
  const content = choice.message?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        part && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '',
      )
      .join('');
  }
  // No text at all (content null: a refusal, a tool call, a filtered answer) is not an empty answer.
  const refusal = typeof choice.message?.refusal === 'string' ? `, refusal: ${clip(choice.message.refusal)}` : '';
  throw new EndpointError(
    `${url} answered without text content (finish_reason ${JSON.stringify(choice.finish_reason ?? null)}${refusal})`,
    'E_ENDPOINT_BODY',
  );
}
