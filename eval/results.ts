import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError, VtcError } from '../core/errors.js';

/**
 * The results cache of `vtc eval run`: an append-only JSONL file, one line
 * per finished (dataset, sample, model, method, ratio). Each line is written
 * whole with one write() and fsync'd, so a kill can only tear the last line;
 * on open a last line without its newline is cut off (and redone), and keys
 * already present are never run or written again.
 */

export interface ResultKey {
  dataset: string;
  sample: string;
  model: string;
  method: string;
  /** Downsample factor K (1 = uncompressed). */
  ratio: number;
}

export interface ResultRow extends ResultKey {
  question: string;
  answer: string;
  prediction: string;
  metric: string;
  score: number;
  correct: boolean;
  /** Visual cost sent: pixels of the images, embedding rows. */
  pixels: number;
  tokens: number;
  ms: number;
  usage?: Record<string, number>;
  /** ISO time the row was written. */
  at: string;
}

/** The cache key of a row. */
export function resultKey(key: ResultKey): string {
  return JSON.stringify([key.dataset, key.sample, key.model, key.method, key.ratio]);
}

export interface OpenResults {
  rows: ResultRow[];
  /** Bytes of a torn last line that were cut off. */
  repairedBytes: number;
  /** Lines whose key was already present (kept: the first). */
  duplicates: number;
}

const REQUIRED: (keyof ResultRow)[] = [
  'dataset',
  'sample',
  'model',
  'method',
  'ratio',
  'prediction',
  'correct',
  'score',
];

/**
 * Reads a results file, cutting off a torn last line. A malformed line that
 * is not the last is corruption and fails with its line number.
 *
 * @example
 * const { rows, repairedBytes } = await readResults('out/results.jsonl');
 */
export async function readResults(path: string, options: { repair?: boolean } = {}): Promise<OpenResults> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { rows: [], repairedBytes: 0, duplicates: 0 };
    throw new InputError(`${path}: cannot read results (${(error as Error).message})`);
  }
  const complete = bytes.lastIndexOf(0x0a) + 1;
  const repairedBytes = bytes.length - complete;
  if (repairedBytes > 0 && options.repair) await truncate(path, complete);
  const lines = bytes.subarray(0, complete).toString('utf8').split('\n');
  const rows: ResultRow[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    let row: ResultRow;
    try {
      row = JSON.parse(line) as ResultRow;
    } catch (error) {
      throw new InputError(
        `${path}:${i + 1}: corrupt results line (${(error as Error).message}); remove the line or the file to continue`,
      );
    }
    const missing = REQUIRED.filter((k) => row[k] === undefined);
    if (missing.length) throw new InputError(`${path}:${i + 1}: results line lacks ${missing.join(', ')}`);
    const key = resultKey(row);
    if (seen.has(key)) {
      duplicates++;
      continue;
    }
    seen.add(key);
    rows.push(row);
  }
  return { rows, repairedBytes, duplicates };
}

/**
 * An open results file for appending. Appends are serialised (concurrent
 * workers share one store) and each is fsync'd before it resolves.
 */
export class ResultsStore {
  private readonly keys: Set<string>;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly lockPath: string,
    readonly rows: ResultRow[],
    readonly repairedBytes: number,
    readonly duplicates: number,
  ) {
    this.keys = new Set(rows.map(resultKey));
  }

  /**
   * Opens (creating) a results file and takes its lock file (`<path>.lock`,
   * holding the pid), so two runs never append to one file at once. A lock
   * left by a dead process is taken over.
   */
  static async open(path: string): Promise<ResultsStore> {
    await mkdir(dirname(path), { recursive: true });
    const lockPath = `${path}.lock`;
    takeLock(lockPath, path);
    try {
      const { rows, repairedBytes, duplicates } = await readResults(path, { repair: true });
      const handle = await open(path, 'a');
      return new ResultsStore(path, handle, lockPath, rows, repairedBytes, duplicates);
    } catch (error) {
      await unlink(lockPath).catch(() => {});
      throw error;
    }
  }

  has(key: ResultKey): boolean {
    return this.keys.has(resultKey(key));
  }

  /** Appends one row (ignored when its key is already stored). */
  append(row: ResultRow): Promise<void> {
    const key = resultKey(row);
    if (this.keys.has(key)) return this.chain;
    this.keys.add(key);
    this.rows.push(row);
    const line = Buffer.from(`${JSON.stringify(row)}\n`);
    this.chain = this.chain.then(async () => {
      await this.handle.write(line, 0, line.length);
      await this.handle.sync();
    });
    return this.chain;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.handle.close();
    await unlink(this.lockPath).catch(() => {});
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function takeLock(lockPath: string, path: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new VtcError(`${lockPath}: cannot create lock (${(error as Error).message})`, 'E_LOCK');
      let pid = NaN;
      try {
        pid = Number(readFileSync(lockPath, 'utf8'));
      } catch {
        // vanished meanwhile: retry
      }
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new VtcError(
          `${path} is in use by another vtc eval run (pid ${pid}); use another --results file or wait for it`,
          'E_LOCK',
        );
      }
      // A stale lock from a killed run.
      unlinkSyncSafe(lockPath);
    }
  }
  throw new VtcError(`${lockPath}: cannot take the results lock`, 'E_LOCK');
}

function unlinkSyncSafe(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
