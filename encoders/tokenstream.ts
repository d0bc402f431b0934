import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { InputError, ShapeError, UsageError } from '../core/errors.js';
import { encodeNpyHeader, parseNpyHeader, readFloats, writeFloats } from '../core/npy.js';
import { createTokenSet, type TokenSet, type TokenSource } from '../core/tokenset.js';
import { writeFailure } from '../io/write.js';
import { checkFrameRange, type FrameBlockSource } from '../reducers/frame-blocks.js';

/**
 * Token files read and written a block of frames at a time, for videos too
 * long to hold: the block reader reads frames [a, b) of a 3-D .npy with
 * positional reads (never the whole file), and the streaming writer appends
 * frame blocks and fixes the header at the end. Files are byte-identical to
 * saveTokens's for the same data.
 */

/** Header bytes read to find a .npy's shape (np.save's headers are 128 bytes; version 2 allows more). */
const HEADER_PROBE_BYTES = 64 * 1024;

/** A 3-D .npy [frames, perFrame, d] opened for block reads. */
export interface NpyFrameFile extends FrameBlockSource {
  path: string;
  dtype: 'float32' | 'float16';
  /** Grid of each frame as the loader sees it (square perFrame: side×side, else 1×perFrame). */
  rows: number;
  cols: number;
  close(): Promise<void>;
}

/**
 * The shape of a .npy file from its header alone (and a check that the file
 * holds the bytes the header promises). Undefined for other extensions.
 *
 * @example
 * await npyShapeOf('video.npy'); // [3600, 196, 1152]
 */
export async function npyShapeOf(path: string): Promise<number[] | undefined> {
  if (extname(path).toLowerCase() !== '.npy') return undefined;
  const handle = await openForRead(path);
  try {
    return (await readHeader(handle, path)).shape;
  } finally {
    await handle.close();
  }
}

/**
 * Opens a 3-D .npy [frames, tokens, d] for block reads. Errors name the file:
 * not 3-D, zero tokens, fewer bytes than the header says (expected vs got).
 * Each block is checked for non-finite values as loadTokens checks the whole.
 *
 * @example
 * const file = await openNpyFrames('hour.npy');
 * const first = await file.readFrames(0, 64); // 64·196·1152 floats
 * await file.close();
 */
export async function openNpyFrames(path: string): Promise<NpyFrameFile> {
  const handle = await openForRead(path);
  try {
    const header = await readHeader(handle, path);
    if (header.shape.length !== 3)
      throw new InputError(
        `${path}: expected a 3-D [frames, tokens, d] array for block reading, got shape (${header.shape.join(', ')})`,
        'E_SHAPE',
      );
    const [frames, perFrame, d] = header.shape as [number, number, number];
    if (frames * perFrame * d === 0)
      throw new InputError(`${path}: contains zero tokens (shape (${header.shape.join(', ')}))`, 'E_EMPTY');
    const { rows, cols } = frameGrid(perFrame);
    const itemSize = header.dtype === 'float32' ? 4 : 2;
    const frameBytes = perFrame * d * itemSize;
    let buffer = new Uint8Array(0);
    return {
      path,
      dtype: header.dtype,
      frames,
      perFrame,
      d,
      rows,
      cols,
      async readFrames(start, end) {
        checkFrameRange(start, end, frames);
        const length = (end - start) * frameBytes;
        if (buffer.length < length) buffer = new Uint8Array(length);
        const position = header.dataOffset + start * frameBytes;
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        if (bytesRead !== length)
          throw new InputError(
            `${path}: truncated: frames [${start}, ${end}) need bytes ${position}–${position + length}, read ${bytesRead} (the file shrank while reading)`,
            'E_TRUNCATED',
          );
        const data = readFloats(buffer, 0, (end - start) * perFrame * d, header.dtype);
        for (let i = 0; i < data.length; i++) {
          if (!Number.isFinite(data[i]!)) {
            const token = start * perFrame + Math.floor(i / d);
            throw new InputError(
              `${path}: token ${token} (frame ${Math.floor(token / perFrame)}) has a non-finite value ${data[i]} at feature ${i % d}`,
              'E_NONFINITE',
            );
          }
        }
        return data;
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function openForRead(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${path}: file not found`, 'E_NOENT');
    throw new InputError(`${path}: cannot read (${(error as Error).message})`, 'E_READ');
  }
}

async function readHeader(handle: FileHandle, path: string) {
  const { size } = await handle.stat();
  if (size === 0) throw new InputError(`${path}: is empty (0 bytes), expected a .npy file`, 'E_NPY');
  const probe = new Uint8Array(Math.min(size, HEADER_PROBE_BYTES));
  await handle.read(probe, 0, probe.length, 0);
  return parseNpyHeader(probe, path, size);
}

/** The grid the loader gives a frame of `perFrame` tokens: square when it is a square, else one row. */
export function frameGrid(perFrame: number): { rows: number; cols: number } {
  const side = Math.round(Math.sqrt(perFrame));
  return side * side === perFrame ? { rows: side, cols: side } : { rows: 1, cols: perFrame };
}

/** One 'frame' source per frame, as loadTokens builds them for a 3-D .npy. */
export function npyFrameSources(frames: number, perFrame: number): TokenSource[] {
  const { rows, cols } = frameGrid(perFrame);
  return Array.from({ length: frames }, (_, f) => ({ kind: 'frame', index: f, rows, cols }));
}

/**
 * The TokenSet selectTokens(loadTokens(file), keep) would give, built from
 * the kept rows alone (the file is never loaded whole): frame sources, each
 * kept token in its frame at its grid cell, size 1, origin its input index.
 *
 * @example
 * const kept = frameSelection(file, keep, await gatherRows(file, keep, block));
 */
export function frameSelection(
  file: Pick<NpyFrameFile, 'frames' | 'perFrame' | 'd'>,
  keep: Int32Array,
  rows: Float32Array,
): TokenSet {
  const { frames, perFrame, d } = file;
  const { cols } = frameGrid(perFrame);
  const k = keep.length;
  const source = new Int32Array(k);
  const row = new Int32Array(k);
  const col = new Int32Array(k);
  for (let j = 0; j < k; j++) {
    const i = keep[j]!;
    const p = i % perFrame;
    source[j] = Math.floor(i / perFrame);
    row[j] = Math.floor(p / cols);
    col[j] = p % cols;
  }
  const origin = Array.from(keep, (i) => Int32Array.of(i));
  return createTokenSet({ data: rows, n: k, d, sources: npyFrameSources(frames, perFrame), source, row, col, origin });
}

/**
 * The metadata of loadTokens(file) without its features (`data` is empty):
 * for mergeTokens with explicit features, which reads only sizes, origins,
 * sources and grid cells. O(n) integers, no floats.
 *
 * @example
 * mergeTokens(frameSkeleton(file), assign, keep.length, { features, representative: keep });
 */
export function frameSkeleton(file: Pick<NpyFrameFile, 'frames' | 'perFrame' | 'd'>): TokenSet {
  const { frames, perFrame, d } = file;
  const n = frames * perFrame;
  const { cols } = frameGrid(perFrame);
  const source = new Int32Array(n);
  const row = new Int32Array(n);
  const col = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const p = i % perFrame;
    source[i] = Math.floor(i / perFrame);
    row[i] = Math.floor(p / cols);
    col[i] = p % cols;
  }
  return {
    n,
    d,
    data: new Float32Array(0),
    source,
    row,
    col,
    size: new Float64Array(n).fill(1),
    origin: Array.from({ length: n }, (_, i) => Int32Array.of(i)),
    sources: npyFrameSources(frames, perFrame),
    meta: {},
  };
}

export interface NpyStreamOptions {
  /** Shape after the leading (growing) dimension: [tokens, d] for frames, [d] for rows. */
  trailing: number[];
  dtype?: 'float32' | 'float16';
  /** One entry in all is written without the leading dimension (saveTokens writes a one-frame video as [tokens, d]). */
  collapseSingle?: boolean;
}

/** A .npy written a block at a time; the leading dimension is counted as blocks arrive. */
export interface NpyStreamWriter {
  readonly path: string;
  /** Leading-dimension entries written so far (frames for [frames, tokens, d]). */
  readonly count: number;
  /** Appends whole entries: data.length must be a multiple of the trailing size. */
  append(data: Float32Array): Promise<void>;
  /** Writes the final header and renames the temp file over `path`. */
  close(): Promise<void>;
  /** Removes the temp file (after a failure). */
  abort(): Promise<void>;
}

/**
 * Opens a streaming .npy writer: data goes to a hidden temp file next to
 * `path` after room for the header; close() writes np.save's header for the
 * final shape and renames (io/write's atomic rule: no half file under `path`).
 * When the final header is longer than the room left (only for shapes with
 * dozens of digits), the data is moved up once, block by block.
 *
 * @example
 * const out = await createNpyStream('frames.npy', { trailing: [196, 1152] });
 * await out.append(blockOfFrames); // k·196·1152 floats
 * await out.close();
 */
export async function createNpyStream(path: string, options: NpyStreamOptions): Promise<NpyStreamWriter> {
  if (extname(path).toLowerCase() !== '.npy')
    throw new UsageError(`${path}: the streaming writer writes .npy files only`, 'E_FORMAT');
  const { trailing } = options;
  const dtype = options.dtype ?? 'float32';
  const entry = trailing.reduce((a, b) => a * b, 1);
  if (!trailing.every((v) => Number.isInteger(v) && v > 0))
    throw new ShapeError(`${path}: trailing shape (${trailing.join(', ')}) must be positive integers`);
  const itemSize = dtype === 'float32' ? 4 : 2;
  const temp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const reserved = encodeNpyHeader([0, ...trailing], dtype).length;
  let handle: FileHandle;
  try {
    handle = await open(temp, 'wx');
  } catch (error) {
    throw writeFailure(error, path);
  }
  let count = 0;
  let closed = false;
  const fail = async (error: unknown) => {
    closed = true;
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    return writeFailure(error, path);
  };
  return {
    path,
    get count() {
      return count;
    },
    async append(data) {
      if (closed) throw new ShapeError(`${path}: append after close`);
      if (data.length % entry !== 0)
        throw new ShapeError(
          `${path}: a block of ${data.length} values is not whole entries of (${trailing.join(', ')}) = ${entry} values`,
        );
      try {
        const bytes = writeFloats(data, dtype);
        await handle.write(bytes, 0, bytes.length, reserved + count * entry * itemSize);
      } catch (error) {
        throw await fail(error);
      }
      count += data.length / entry;
    },
    async close() {
      if (closed) throw new ShapeError(`${path}: closed twice`);
      try {
        const header = encodeNpyHeader(count === 1 && options.collapseSingle ? trailing : [count, ...trailing], dtype);
        if (header.length !== reserved) await shiftData(handle, reserved, header.length, count * entry * itemSize);
        await handle.write(header, 0, header.length, 0);
        await handle.close();
        closed = true;
        await rename(temp, path);
      } catch (error) {
        throw await fail(error);
      }
    },
    async abort() {
      if (!closed) await fail(new Error('aborted'));
    },
  };
}

/** Moves `length` data bytes from offset `from` to `to` (> from), last chunk first, so nothing is overwritten unread. */
async function shiftData(handle: FileHandle, from: number, to: number, length: number): Promise<void> {
  const chunk = 8 * 1024 * 1024;
  const buffer = new Uint8Array(Math.min(chunk, Math.max(1, length)));
  for (let end = length; end > 0; end -= chunk) {
    const start = Math.max(0, end - chunk);
    await handle.read(buffer, 0, end - start, from + start);
    await handle.write(buffer, 0, end - start, to + start);
  }
}
