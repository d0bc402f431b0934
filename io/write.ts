import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VtcError } from '../core/errors.js';

/**
 * Every file vtc writes goes through here: the bytes go to a hidden temp file
 * next to the target, which is renamed over the target only once it is
 * complete. A failure (disk full, no permission, a missing folder, a folder
 * where the file should be) removes the temp file, so nothing 0-byte, half
 * written or named *.tmp-* stays behind, and the error names the path the
 * user asked for, in words, never a temp name or a bare ENOSPC.
 */

/** Writing an output failed (exit code 1). `path` is the file the user asked for. */
export class OutputError extends VtcError {
  readonly path: string;
  constructor(message: string, path: string, code = 'E_WRITE') {
    super(message, code, 1);
    this.path = path;
  }
}

/** Why a file operation failed, in words (from a Node system error code). */
export function describeFsError(error: unknown, path: string): string {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOENT':
      return `the folder ${dirname(path)} does not exist (or vanished while writing)`;
    case 'ENOTDIR':
      return `a part of ${dirname(path)} is a file, not a folder`;
    case 'EISDIR':
      return 'a folder with that name is in the way';
    case 'EEXIST':
      return 'a file with that name is in the way';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files';
    case 'EIO':
      return 'an I/O error from the device';
    default:
      return typeof code === 'string' ? `system error ${code}` : error instanceof Error ? error.message : String(error);
  }
}

/** The error for a failed write of `path`. */
export function writeFailure(error: unknown, path: string): OutputError {
  if (error instanceof OutputError) return error;
  return new OutputError(`cannot write ${path}: ${describeFsError(error, path)}`, path);
}

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Creates a folder (and its parents) for outputs, failing with a clear line.
 *
 * @example
 * await ensureDir('out/pages');
 */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new OutputError(`cannot create folder ${dir}: ${describeFsError(error, join(dir, '.'))}`, dir, 'E_MKDIR');
  }
}

/** Synchronous {@link ensureDir}. */
export function ensureDirSync(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new OutputError(`cannot create folder ${dir}: ${describeFsError(error, join(dir, '.'))}`, dir, 'E_MKDIR');
  }
}

/**
 * Writes a whole file atomically (temp file + rename).
 *
 * @example
 * await writeFileAtomic('out/report.json', JSON.stringify(report));
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = tempName(path);
  try {
    await writeFile(temp, data, { flag: 'wx' });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw writeFailure(error, path);
  }
}

/** Synchronous {@link writeFileAtomic}. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const temp = tempName(path);
  try {
    writeFileSync(temp, data, { flag: 'wx' });
    renameSync(temp, path);
  } catch (error) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // the folder itself may be gone; nothing left to clean
    }
    throw writeFailure(error, path);
  }
}
