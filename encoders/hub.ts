import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { InputError, UsageError, VtcError } from '../core/errors.js';

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
}

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
  constructor(message: string) {
    super(message, 'E_NETWORK', 1);
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
    throw new UsageError(`file path ${JSON.stringify(file)} must be relative to the repo and stay inside it`, 'E_USAGE');
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

async function request(url: string, init: RequestInit, what: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new NetworkError(`${what}: cannot reach ${new URL(url).origin} (${cause?.code ?? cause?.message ?? (error as Error).message})`);
  }
}

function httpError(response: Response, what: string, repo: string, revision: string): VtcError {
  const status = response.status;
  if (status === 404) return new InputError(`${what}: not found in ${repo} at revision ${revision} (HTTP 404)`, 'E_NOENT');
  if (status === 401 || status === 403) return new InputError(`${what}: access denied (HTTP ${status}); the repo may be gated or private — set HF_TOKEN`, 'E_AUTH');
  return new NetworkError(`${what}: server answered HTTP ${status} ${response.statusText}`);
}

/**
 * Lists the files of a repo revision (hub API `/api/models/<repo>/revision/<rev>`).
 *
 * @example
 * const files = await listRepoFiles('Xenova/clip-vit-base-patch32'); // ['config.json', 'onnx/vision_model.onnx', …]
 */
export async function listRepoFiles(repo: string, revision = 'main', options: { endpoint?: string; token?: string } = {}): Promise<string[]> {
  const endpoint = hubEndpoint(options.endpoint);
  const url = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const response = await request(url, { headers: authHeaders(options.token) }, `${repo}@${revision}`);
  if (!response.ok) throw httpError(response, `${repo}@${revision}`, repo, revision);
  let body: { siblings?: { rfilename?: unknown }[] };
  try {
    body = (await response.json()) as typeof body;
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

function parseSha(etag: string | null): string | undefined {
  const value = etag?.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return value && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

function parseSize(text: string | null): number | undefined {
  if (text === null) return undefined;
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
export async function remoteFileInfo(endpoint: string, repo: string, revision: string, file: string, token?: string): Promise<RemoteFileInfo> {
  const url = fileUrl(endpoint, repo, 'resolve', revision, file);
  const response = await request(url, { method: 'HEAD', redirect: 'manual', headers: authHeaders(token) }, file);
  if (response.status >= 400) throw httpError(response, file, repo, revision);
  const info: RemoteFileInfo = {};
  const linkedSha = parseSha(response.headers.get('x-linked-etag'));
  const linkedSize = parseSize(response.headers.get('x-linked-size'));
  if (linkedSha) info.sha256 = linkedSha;
  if (linkedSize !== undefined) info.size = linkedSize;
  else if (response.status < 300) {
    const length = parseSize(response.headers.get('content-length'));
    if (length !== undefined) info.size = length;
  }
  if (!info.sha256) {
    const raw = await request(fileUrl(endpoint, repo, 'raw', revision, file), { headers: { ...authHeaders(token), range: 'bytes=0-1023' } }, file);
    if (raw.ok && raw.body) {
      const pointer = parseLfsPointer(await readPrefix(raw, 1024));
      if (pointer) Object.assign(info, pointer);
    } else {
      await raw.body?.cancel();
    }
  }
  return info;
}

async function readPrefix(response: Response, limit: number): Promise<string> {
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  await reader.cancel();
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
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
export async function pullFile(options: { repo: string; file: string; revision?: string; dir: string; endpoint?: string; token?: string; onStart?: PullOptions['onStart']; onProgress?: PullOptions['onProgress'] }): Promise<PulledFile> {
  const { repo, file, dir } = options;
  const revision = options.revision ?? 'main';
  checkFileName(file);
  const endpoint = hubEndpoint(options.endpoint);
  const info = await remoteFileInfo(endpoint, repo, revision, file, options.token);
  const path = join(dir, file);
  const part = `${path}.part`;
  await mkdir(dirname(path), { recursive: true });
  const verified: PulledFile['verified'] = info.sha256 ? 'sha256' : info.size !== undefined ? 'size' : 'none';

  const existing = await fileSize(path);
  if (existing !== undefined && info.size !== undefined && existing === info.size) {
    const sha = info.sha256 ? (await hashFile(path)).digest('hex') : undefined;
    if (!info.sha256 || sha === info.sha256) return { file, path, bytes: existing, ...(sha ? { sha256: sha } : {}), status: 'cached', verified };
  }

  let offset = (await fileSize(part)) ?? 0;
  if (info.size !== undefined && offset > info.size) {
    await rm(part, { force: true });
    offset = 0;
  }
  const hash = createHash('sha256');
  let received = offset;
  let resumed = false;
  if (offset > 0 && (info.size === undefined || offset < info.size)) {
    const response = await request(fileUrl(endpoint, repo, 'resolve', revision, file), { headers: { ...authHeaders(options.token), range: `bytes=${offset}-` } }, file);
    if (response.status === 206 && rangeStart(response) === offset) {
      await hashFile(part, hash);
      resumed = true;
      options.onStart?.(file, info.size, offset);
      received = await streamTo(response, part, 'a', hash, offset, (r) => options.onProgress?.({ file, received: r, ...(info.size !== undefined ? { total: info.size } : {}) }));
    } else if (response.ok) {
      // The server ignored the Range: start over with this full response.
      options.onStart?.(file, info.size, 0);
      received = await streamTo(response, part, 'w', hash, 0, (r) => options.onProgress?.({ file, received: r, ...(info.size !== undefined ? { total: info.size } : {}) }));
    } else {
      await response.body?.cancel();
      throw httpError(response, file, repo, revision);
    }
  } else if (offset > 0) {
    await hashFile(part, hash); // a complete .part from an interrupted verification
    resumed = true;
  } else {
    const response = await request(fileUrl(endpoint, repo, 'resolve', revision, file), { headers: authHeaders(options.token) }, file);
    if (!response.ok) {
      await response.body?.cancel();
      throw httpError(response, file, repo, revision);
    }
    options.onStart?.(file, info.size, 0);
    received = await streamTo(response, part, 'w', hash, 0, (r) => options.onProgress?.({ file, received: r, ...(info.size !== undefined ? { total: info.size } : {}) }));
  }

  if (info.size !== undefined && received !== info.size) {
    if (received < info.size) throw new NetworkError(`${file}: download stopped at ${received} of ${info.size} bytes; run the command again to resume from ${part}`);
    await rm(part, { force: true });
    throw new InputError(`${file}: size mismatch, expected ${info.size} bytes, got ${received}; the partial file was removed`, 'E_SIZE');
  }
  const sha = hash.digest('hex');
  if (info.sha256 && sha !== info.sha256) {
    await rm(part, { force: true });
    throw new InputError(`${file}: sha256 mismatch, expected ${info.sha256}, got ${sha}; the partial file was removed`, 'E_CHECKSUM');
  }
  await rename(part, path);
  return { file, path, bytes: received, sha256: sha, status: resumed ? 'resumed' : 'downloaded', verified };
}

function rangeStart(response: Response): number | undefined {
  const match = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Streams a response body into `path`, updating the hash; returns the total bytes now in the file. */
async function streamTo(response: Response, path: string, flags: 'a' | 'w', hash: ReturnType<typeof createHash>, start: number, onProgress: (received: number) => void): Promise<number> {
  const out = createWriteStream(path, { flags });
  let received = start;
  try {
    if (response.body) {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
        received += chunk.length;
        onProgress(received);
      }
    }
  } catch (error) {
    // Keep what arrived: the next run resumes from it.
    await new Promise<void>((resolve) => out.end(resolve));
    const cause = (error as { cause?: { code?: string } }).cause;
    throw new NetworkError(`${path}: connection lost after ${received} bytes (${cause?.code ?? (error as Error).message}); run the command again to resume`);
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
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
  if (!REPO_PATTERN.test(repo)) throw new UsageError(`repo must look like "owner/name", got ${JSON.stringify(repo)}`, 'E_USAGE');
  const revision = options.revision ?? 'main';
  if (!/^[\w./-]+$/.test(revision)) throw new UsageError(`revision must be a branch, tag or commit, got ${JSON.stringify(revision)}`, 'E_USAGE');
  const dir = options.dir ?? defaultModelDir(repo);
  let files = options.files;
  if (!files || files.length === 0) {
    const listed = await listRepoFiles(repo, revision, { ...(options.endpoint ? { endpoint: options.endpoint } : {}), ...(options.token ? { token: options.token } : {}) });
    files = defaultPullFiles(listed);
    if (files.length === 0) throw new InputError(`${repo}@${revision}: no .onnx or .json files among ${listed.length} files; name files with --file`, 'E_NOENT');
  }
  for (const file of files) checkFileName(file);
  const pulled: PulledFile[] = [];
  for (const file of files) {
    pulled.push(
      await pullFile({
        repo,
        file,
        revision,
        dir,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        ...(options.token ? { token: options.token } : {}),
        ...(options.onStart ? { onStart: options.onStart } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      }),
    );
  }
  return { repo, revision, dir, files: pulled };
}
