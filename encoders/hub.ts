import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { InputError, UsageError, VtcError } from '../core/errors.js';
import { HttpFault, httpRequest, REPLY_LIMITS, withRetries, type HttpResponse } from '../client/http.js';
import { writeFailure } from '../io/write.js';

/**
 * Downloads model files from the Hugging Face hub (or any server with the same
 * URL layout): `<endpoint>/<repo>/resolve/<revision>/<file>`. Resumes partial
 * downloads with HTTP Range, checks the size and the sha256 the hub announces
 * (`x-linked-etag` / `x-linked-size` on LFS files, or the LFS pointer from
 * `<endpoint>/<repo>/raw/<revision>/<file>`), and writes atomically
 * (`<file>.part`, renamed when verified).
 *
 * The endpoint defaults to $VTC_HF_ENDPOINT, then $HF_ENDPOINT, then
 * https://huggingface.co; a token for gated repos comes from $HF_TOKEN.
 *
 * Bounded (io/http.ts): a server that accepts and never answers fails after
 * `timeoutMs` (connect, then headers, then each silence in the body); a body
 * may not run past the size the hub announced (or Content-Length, or
 * REPLY_LIMITS.download when neither is given); JSON listings are capped at
 * REPLY_LIMITS.hubJson. Resets and stalls are retried `retries` times with
 * backoff, each retry resuming the `.part` file; a refused connection, 4xx
 * and checksum mismatches fail at once.
 */

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

export interface PullProgress {
  file: string;
  received: number;
  /** Expected bytes, when the server announced them. */
  total?: number;
}

export interface PullOptions {
  /** "owner/name" (or a legacy single name). */
  repo: string;
  /** Files to fetch; default: every ONNX file and JSON config the revision lists. */
  files?: string[];
  revision?: string;
  /** Destination directory (default models/<owner>--<name>). */
  dir?: string;
  endpoint?: string;
  token?: string;
  onStart?: (file: string, total: number | undefined, resumeFrom: number) => void;
  onProgress?: (progress: PullProgress) => void;
  /** Connect, header and idle timeout in ms: how long the server may stay silent (default 60000). */
  timeoutMs?: number;
  /** Retries of a file after a reset, stall or 5xx, each resuming the .part (default 3). */
  retries?: number;
  /** First backoff wait in ms, doubled per retry (default 1000). */
  backoffMs?: number;
  signal?: AbortSignal;
}

/** The network settings every hub request shares. */
type HubNet = Pick<PullOptions, 'timeoutMs' | 'signal'>;

export interface PulledFile {
  file: string;
  path: string;
  bytes: number;
  sha256?: string;
  /** downloaded: fresh; resumed: continued a .part; cached: already present and verified. */
  status: 'downloaded' | 'resumed' | 'cached';
  /** What was checked: the announced sha256 (and size), or only the size. */
  verified: 'sha256' | 'size' | 'none';
}

export interface PullResult {
  repo: string;
  revision: string;
  dir: string;
  files: PulledFile[];
}

const REPO_PATTERN = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

export class NetworkError extends VtcError {
  /** Trying again may help (a reset, a stall, a 5xx); false for refused connections and unknown hosts. */
  readonly retryable: boolean;
  constructor(message: string, retryable = false) {
    super(message, 'E_NETWORK', 1);
    this.retryable = retryable;
  }
}

/**
 * Default local directory for a repo: models/<owner>--<name>.
 *
 * @example
 * defaultModelDir('openai/clip-vit-large-patch14-336'); // 'models/openai--clip-vit-large-patch14-336'
 */
export function defaultModelDir(repo: string): string {
  return join('models', repo.replace('/', '--'));
}

function checkFileName(file: string): void {
  const normal = normalize(file);
  if (file.length === 0 || isAbsolute(file) || normal.startsWith('..') || normal.split(sep).includes('..')) {
    throw new UsageError(
      `file path ${JSON.stringify(file)} must be relative to the repo and stay inside it`,
      'E_USAGE',
    );
  }
}

/**
 * Resolves the endpoint option / environment to a base URL without trailing slash.
 *
 * @example
 * hubEndpoint('http://127.0.0.1:8080/'); // 'http://127.0.0.1:8080'
 */
export function hubEndpoint(explicit?: string): string {
  const value = explicit ?? process.env.VTC_HF_ENDPOINT ?? process.env.HF_ENDPOINT ?? DEFAULT_HF_ENDPOINT;
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new UsageError(`hub endpoint must be an http(s) URL, got ${JSON.stringify(value)}`, 'E_USAGE');
  }
  return value.replace(/\/+$/, '');
}

function fileUrl(endpoint: string, repo: string, kind: 'resolve' | 'raw', revision: string, file: string): string {
  return `${endpoint}/${repo}/${kind}/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

async function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; follow?: boolean },
  what: string,
  net: HubNet,
): Promise<HttpResponse> {
  const timeoutMs = net.timeoutMs ?? 60_000;
  try {
    return await httpRequest({
      url,
      method: init.method ?? 'GET',
      headers: init.headers ?? {},
      maxRedirects: init.follow === false ? 0 : 5,
      connectTimeoutMs: timeoutMs,
      headersTimeoutMs: timeoutMs,
      idleTimeoutMs: timeoutMs,
      ...(net.signal ? { signal: net.signal } : {}),
    });
  } catch (error) {
    throw networkFailure(error, url, what);
  }
}

function networkFailure(error: unknown, url: string, what: string): unknown {
  if (!(error instanceof HttpFault)) return error;
  const origin = new URL(url).origin;
  if (error.kind === 'refused') return new NetworkError(`${what}: cannot reach ${origin} (ECONNREFUSED)`);
  if (error.kind === 'dns') return new NetworkError(`${what}: cannot reach ${origin} (unknown host)`);
  return new NetworkError(`${what}: ${error.message}`, error.retryable);
}

function httpError(response: HttpResponse, what: string, repo: string, revision: string): VtcError {
  const status = response.status;
  response.discard();
  if (status === 404)
    return new InputError(`${what}: not found in ${repo} at revision ${revision} (HTTP 404)`, 'E_NOENT');
  if (status === 401 || status === 403)
    return new InputError(
      `${what}: access denied (HTTP ${status}); the repo may be gated or private — set HF_TOKEN`,
      'E_AUTH',
    );
  return new NetworkError(
    `${what}: server answered HTTP ${status} ${response.statusText}`,
    status === 429 || status === 408 || status >= 500,
  );
}

/**
 * Lists the files of a repo revision (hub API `/api/models/<repo>/revision/<rev>`).
 *
 * @example
 * const files = await listRepoFiles('Xenova/clip-vit-base-patch32'); // ['config.json', 'onnx/vision_model.onnx', …]
 */
export async function listRepoFiles(
  repo: string,
  revision = 'main',
  options: { endpoint?: string; token?: string } & HubNet = {},
): Promise<string[]> {
  const endpoint = hubEndpoint(options.endpoint);
  const url = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const what = `${repo}@${revision}`;
  const response = await request(url, { headers: authHeaders(options.token) }, what, options);
  if (!response.ok) throw httpError(response, what, repo, revision);
  let text: string;
  try {
    text = (await response.bytes(REPLY_LIMITS.hubJson, 'file list')).toString('utf8');
  } catch (error) {
    throw networkFailure(error, url, what);
  }
  let body: { siblings?: { rfilename?: unknown }[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new NetworkError(`${url}: expected JSON with a "siblings" list`);
  }
  if (!Array.isArray(body.siblings)) throw new NetworkError(`${url}: response has no "siblings" list`);
  return body.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === 'string');
}

/**
 * The files `vtc models pull` fetches when none are named: ONNX graphs, their external data, JSON configs.
 *
 * @example
 * defaultPullFiles(['model.onnx', 'pytorch_model.bin', 'config.json']); // ['model.onnx', 'config.json']
 */
export function defaultPullFiles(files: string[]): string[] {
  return files.filter((f) => /\.(onnx|onnx_data|onnx\.data|json)$/i.test(f));
}

function authHeaders(token?: string): Record<string, string> {
  const value = token ?? process.env.HF_TOKEN;
  return value ? { authorization: `Bearer ${value}` } : {};
}

/** What the hub says about a file before we download it. */
export interface RemoteFileInfo {
  size?: number;
  sha256?: string;
}

function parseSha(etag: string | null | undefined): string | undefined {
  const value = etag?.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return value && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

function parseSize(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Parses a Git LFS pointer ("version …\noid sha256:<hex>\nsize <n>").
 *
 * @example
 * parseLfsPointer(pointerText); // { sha256: '3f…', size: 1710540580 }
 */
export function parseLfsPointer(text: string): RemoteFileInfo | undefined {
  if (!text.startsWith('version https://git-lfs.github.com/spec/')) return undefined;
  const oid = /^oid sha256:([0-9a-f]{64})$/m.exec(text)?.[1];
  const size = parseSize(/^size (\d+)$/m.exec(text)?.[1] ?? null);
  if (!oid || size === undefined) return undefined;
  return { sha256: oid, size };
}

/**
 * HEAD on the resolve URL without following the redirect, so the hub's
 * x-linked-etag / x-linked-size (set on LFS redirects) are visible; falls back
 * to the LFS pointer at /raw/ when the hub gives no sha256.
 *
 * @example
 * const { size, sha256 } = await remoteFileInfo('https://huggingface.co', 'org/vit', 'main', 'model.onnx');
 */
export async function remoteFileInfo(
  endpoint: string,
  repo: string,
  revision: string,
  file: string,
  token?: string,
  net: HubNet = {},
): Promise<RemoteFileInfo> {
  const url = fileUrl(endpoint, repo, 'resolve', revision, file);
  const response = await request(url, { method: 'HEAD', follow: false, headers: authHeaders(token) }, file, net);
  if (response.status >= 400) throw httpError(response, file, repo, revision);
  response.discard();
  const info: RemoteFileInfo = {};
  const linkedSha = parseSha(response.header('x-linked-etag'));
  const linkedSize = parseSize(response.header('x-linked-size'));
  if (linkedSha) info.sha256 = linkedSha;
  if (linkedSize !== undefined) info.size = linkedSize;
  else if (response.status < 300) {
    const length = parseSize(response.header('content-length'));
    if (length !== undefined) info.size = length;
  }
  if (!info.sha256) {
    const raw = await request(
      fileUrl(endpoint, repo, 'raw', revision, file),
      { headers: { ...authHeaders(token), range: 'bytes=0-1023' } },
      file,
      net,
    );
    if (raw.ok) {
      const pointer = parseLfsPointer(await raw.prefix(1024));
      if (pointer) Object.assign(info, pointer);
    } else {
      raw.discard();
    }
  }
  return info;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

async function hashFile(path: string, hash = createHash('sha256')): Promise<ReturnType<typeof createHash>> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash;
}

/**
 * Downloads one file into `dir`, resuming `<file>.part` when present.
 *
 * @example
 * await pullFile({ repo: 'openai/clip-vit-large-patch14-336', file: 'onnx/model.onnx', dir: 'models/clip' });
 */
export async function pullFile(
  options: {
    repo: string;
    file: string;
    revision?: string;
    dir: string;
    endpoint?: string;
    token?: string;
    onStart?: PullOptions['onStart'];
    onProgress?: PullOptions['onProgress'];
  } & HubNet,
): Promise<PulledFile> {
  const { repo, file, dir } = options;
  const revision = options.revision ?? 'main';
  checkFileName(file);
  const endpoint = hubEndpoint(options.endpoint);
  const net: HubNet = {
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const info = await remoteFileInfo(endpoint, repo, revision, file, options.token, net);
  const path = join(dir, file);
  const part = `${path}.part`;
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (error) {
    throw writeFailure(error, path);
  }
  const verified: PulledFile['verified'] = info.sha256 ? 'sha256' : info.size !== undefined ? 'size' : 'none';

  const existing = await fileSize(path);
  if (existing !== undefined && info.size !== undefined && existing === info.size) {
    const sha = info.sha256 ? (await hashFile(path)).digest('hex') : undefined;
    if (!info.sha256 || sha === info.sha256)
      return { file, path, bytes: existing, ...(sha ? { sha256: sha } : {}), status: 'cached', verified };
  }

  let offset = (await fileSize(part)) ?? 0;
  if (info.size !== undefined && offset > info.size) {
    await rm(part, { force: true });
    offset = 0;
  }
  const hash = createHash('sha256');
  let received = offset;
  let resumed = false;
  const url = fileUrl(endpoint, repo, 'resolve', revision, file);
  const progress = (r: number) =>
    options.onProgress?.({ file, received: r, ...(info.size !== undefined ? { total: info.size } : {}) });
  // The body may not run past what the hub announced (or Content-Length): a server that streams forever is cut off at once.
  const limitFor = (response: HttpResponse, start: number) =>
    info.size ??
    (Number(response.header('content-length')) >= 0
      ? start + Number(response.header('content-length'))
      : REPLY_LIMITS.download);
  if (offset > 0 && (info.size === undefined || offset < info.size)) {
    const response = await request(
      url,
      { headers: { ...authHeaders(options.token), range: `bytes=${offset}-` } },
      file,
      net,
    );
    if (response.status === 206 && rangeStart(response) === offset) {
      await hashFile(part, hash);
      resumed = true;
      options.onStart?.(file, info.size, offset);
      received = await streamTo(response, part, 'a', hash, offset, limitFor(response, offset), file, progress);
    } else if (response.ok) {
      // The server ignored the Range: start over with this full response.
      options.onStart?.(file, info.size, 0);
      received = await streamTo(response, part, 'w', hash, 0, limitFor(response, 0), file, progress);
    } else {
      throw httpError(response, file, repo, revision);
    }
  } else if (offset > 0) {
    await hashFile(part, hash); // a complete .part from an interrupted verification
    resumed = true;
  } else {
    const response = await request(url, { headers: authHeaders(options.token) }, file, net);
    if (!response.ok) throw httpError(response, file, repo, revision);
    options.onStart?.(file, info.size, 0);
    received = await streamTo(response, part, 'w', hash, 0, limitFor(response, 0), file, progress);
  }

  if (info.size !== undefined && received !== info.size) {
    if (received < info.size)
      throw new NetworkError(
        `${file}: download stopped at ${received} of ${info.size} bytes; run the command again to resume from ${part}`,
        true,
      );
    await rm(part, { force: true });
    throw new InputError(
      `${file}: size mismatch, expected ${info.size} bytes, got ${received}; the partial file was removed`,
      'E_SIZE',
    );
  }
  const sha = hash.digest('hex');
  if (info.sha256 && sha !== info.sha256) {
    await rm(part, { force: true });
    throw new InputError(
      `${file}: sha256 mismatch, expected ${info.sha256}, got ${sha}; the partial file was removed`,
      'E_CHECKSUM',
    );
  }
  try {
    await rename(part, path);
  } catch (error) {
    throw writeFailure(error, path);
  }
  return { file, path, bytes: received, sha256: sha, status: resumed ? 'resumed' : 'downloaded', verified };
}

function rangeStart(response: HttpResponse): number | undefined {
  const match = /^bytes (\d+)-/.exec(response.header('content-range') ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * Streams a response body into `path`, updating the hash; returns the total
 * bytes now in the file. Stops (and removes the file) as soon as the body
 * passes `limit` bytes in total.
 */
async function streamTo(
  response: HttpResponse,
  path: string,
  flags: 'a' | 'w',
  hash: ReturnType<typeof createHash>,
  start: number,
  limit: number,
  file: string,
  onProgress: (received: number) => void,
): Promise<number> {
  const out = createWriteStream(path, { flags });
  let writeError: unknown;
  out.on('error', (error) => (writeError ??= error));
  let received = start;
  const close = () => new Promise<void>((resolve) => (out.closed ? resolve() : out.end(() => resolve())));
  try {
    for await (const chunk of response.chunks()) {
      if (writeError) break;
      if (received + chunk.length > limit) {
        response.discard();
        await close();
        await rm(path, { force: true });
        throw new InputError(
          `${file}: the server sent more than the ${limit} bytes it announced; stopped and removed the partial file`,
          'E_SIZE',
        );
      }
      hash.update(chunk);
      if (!out.write(chunk))
        await new Promise<void>((resolve) => {
          out.once('drain', resolve);
          out.once('error', () => resolve());
        });
      received += chunk.length;
      onProgress(received);
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    // Keep what arrived: the next attempt (or run) resumes from it.
    await close();
    if (writeError) throw writeFailure(writeError, path);
    const reason = error instanceof HttpFault ? error.message.replace(/^\S+: /, '') : (error as Error).message;
    throw new NetworkError(
      `${file}: connection lost after ${received} bytes (${reason}); run the command again to resume from ${path}`,
      !(error instanceof HttpFault) || error.retryable,
    );
  }
  if (writeError) {
    response.discard();
    await close();
    throw writeFailure(writeError, path);
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(writeFailure(err, path)) : resolve())),
  );
  return received;
}

/**
 * `vtc models pull`: fetches the named files (or the repo's ONNX files and
 * JSON configs) of a revision into a directory.
 *
 * @example
 * const result = await pullModel({ repo: 'Xenova/clip-vit-base-patch32', files: ['onnx/vision_model.onnx'] });
 * result.files[0].verified; // 'sha256'
 */
export async function pullModel(options: PullOptions): Promise<PullResult> {
  const { repo } = options;
  if (!REPO_PATTERN.test(repo))
    throw new UsageError(`repo must look like "owner/name", got ${JSON.stringify(repo)}`, 'E_USAGE');
  const revision = options.revision ?? 'main';
  if (!/^[\w./-]+$/.test(revision))
    throw new UsageError(`revision must be a branch, tag or commit, got ${JSON.stringify(revision)}`, 'E_USAGE');
  const dir = options.dir ?? defaultModelDir(repo);
  let files = options.files;
  if (!files || files.length === 0) {
    const listed = await listRepoFiles(repo, revision, {
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.token ? { token: options.token } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    files = defaultPullFiles(listed);
    if (files.length === 0)
      throw new InputError(
        `${repo}@${revision}: no .onnx or .json files among ${listed.length} files; name files with --file`,
        'E_NOENT',
      );
  }
  for (const file of files) checkFileName(file);
  const pulled: PulledFile[] = [];
  for (const file of files) {
    // A retry resumes the .part the failed attempt left, so a reset costs only the bytes in flight.
    const { value } = await withRetries(
      () =>
        pullFile({
          repo,
          file,
          revision,
          dir,
          ...(options.endpoint ? { endpoint: options.endpoint } : {}),
          ...(options.token ? { token: options.token } : {}),
          ...(options.onStart ? { onStart: options.onStart } : {}),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
          ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      (error) => ({ retry: error instanceof NetworkError && error.retryable }),
      {
        retries: options.retries ?? 3,
        backoffMs: options.backoffMs ?? 1000,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    pulled.push(value);
  }
  return { repo, revision, dir, files: pulled };
}
