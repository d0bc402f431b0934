import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { EXTRA_PREFIX, tensorsToTokenSet, tokenSetToTensors } from '../core/bundle.js';
import { InputError, ShapeError, UsageError } from '../core/errors.js';
import { encodeNpyHeader, parseNpyHeader, readFloats, writeFloats } from '../core/npy.js';
import {
  decodeTensorData,
  parseSafetensorsHeader,
  type SafetensorsFile,
  safetensorsLayout,
  safetensorsPayload,
} from '../core/safetensors.js';
import { createTokenSet, type TokenSet, type TokenSource } from '../core/tokenset.js';
import { writeFailure } from '../io/write.js';
import { checkFrameRange, type FrameBlockSource } from '../reducers/frame-blocks.js';
import { frameLayout } from '../reducers/frames.js';

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
    return {
      path,
      dtype: header.dtype,
      frames,
      perFrame,
      d,
      rows,
      cols,
      readFrames: frameReader(handle, path, header.dataOffset, { frames, perFrame, d }, header.dtype),
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * readFrames over frame rows stored from byte `dataOffset` of an open file:
 * positional reads into one reused buffer, checked for a file that shrank and
 * for non-finite values. Each frame is checked for non-finite values at its
 * first read only: the block methods read frames again (temporal-merge
 * replays dropped groups, fastvid reads segments after its first pass), and
 * a second check of the same bytes cost a tenth of temporal-merge's time.
 */
function frameReader(
  handle: FileHandle,
  path: string,
  dataOffset: number,
  shape: { frames: number; perFrame: number; d: number },
  dtype: 'float32' | 'float16',
): FrameBlockSource['readFrames'] {
  const { frames, perFrame, d } = shape;
  const frameBytes = perFrame * d * (dtype === 'float32' ? 4 : 2);
  // float32 rows are read straight into one reused float buffer (no copy, no allocation per block).
  let floats = new Float32Array(0);
  let bytes = new Uint8Array(0);
  const checked = new Uint8Array(frames);
  return async (start, end) => {
    checkFrameRange(start, end, frames);
    const values = (end - start) * perFrame * d;
    const length = (end - start) * frameBytes;
    if (dtype === 'float32' && floats.length < values) floats = new Float32Array(values);
    if (dtype === 'float16' && bytes.length < length) bytes = new Uint8Array(length);
    const target = dtype === 'float32' ? new Uint8Array(floats.buffer, 0, length) : bytes;
    const position = dataOffset + start * frameBytes;
    const { bytesRead } = await handle.read(target, 0, length, position);
    if (bytesRead !== length)
      throw new InputError(
        `${path}: truncated: frames [${start}, ${end}) need bytes ${position}–${position + length}, read ${bytesRead} (the file shrank while reading)`,
        'E_TRUNCATED',
      );
    const data = dtype === 'float32' ? floats.subarray(0, values) : readFloats(bytes, 0, values, dtype);
    // Runs of frames not read before are checked (and marked) in order.
    for (let f = start; f < end; f++) {
      if (checked[f]) continue;
      let last = f + 1;
      while (last < end && !checked[last]) last++;
      const offset = (f - start) * perFrame * d;
      assertFiniteRows(data.subarray(offset, offset + (last - f) * perFrame * d), f * perFrame, perFrame, d, path);
      checked.fill(1, f, last);
      f = last;
    }
    return data;
  };
}

/** Throws at the first non-finite feature of rows starting at token `first`, as loadTokens checks a whole file. */
function assertFiniteRows(data: Float32Array, first: number, perFrame: number, d: number, path: string): void {
  // x·0 is 0 for every finite x and NaN for ±Inf and NaN: one branch-free pass, then a search only on failure.
  let probe = 0;
  for (let i = 0; i < data.length; i++) probe += data[i]! * 0;
  if (probe === 0) return;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      const token = first + Math.floor(i / d);
      throw new InputError(
        `${path}: token ${token} (frame ${Math.floor(token / perFrame)}) has a non-finite value ${data[i]} at feature ${i % d}`,
        'E_NONFINITE',
      );
    }
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
  /**
   * Writes the final header and renames the temp file over `path`. `shape`
   * replaces the counted one (same number of values: rows streamed as [n, d]
   * become [frames, tokens, d] once the frames are known).
   */
  close(shape?: number[]): Promise<void>;
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
  const reserved = encodeNpyHeader([0, ...trailing], dtype).length;
  const file = await openRowFile(
    path,
    reserved,
    entry,
    dtype,
    (values) =>
      new ShapeError(
        `${path}: a block of ${values} values is not whole entries of (${trailing.join(', ')}) = ${entry} values`,
      ),
  );
  return {
    path,
    get count() {
      return file.count;
    },
    append: file.append,
    close: (shape) =>
      file.finish(async (handle, count) => {
        const counted = count === 1 && options.collapseSingle ? trailing : [count, ...trailing];
        if (shape && shape.reduce((a, b) => a * b, 1) !== count * entry)
          throw new ShapeError(
            `${path}: shape (${shape.join(', ')}) does not hold the ${count * entry} values written`,
          );
        const header = encodeNpyHeader(shape ?? counted, dtype);
        if (header.length !== reserved) await shiftData(handle, reserved, header.length, count * entry * itemSize);
        await handle.write(header, 0, header.length, 0);
      }),
    abort: file.abort,
  };
}

/**
 * What both streaming writers share: a hidden temp file next to `path`, rows
 * of `entry` floats appended after `reserved` bytes, and an atomic finish
 * (`head` writes what goes in front, then the temp file is renamed over
 * `path`). A failure removes the temp file; shape errors keep their message,
 * file errors name `path`.
 */
async function openRowFile(
  path: string,
  reserved: number,
  entry: number,
  dtype: 'float32' | 'float16',
  partialBlock: (values: number) => ShapeError,
) {
  const itemSize = dtype === 'float32' ? 4 : 2;
  const temp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  let handle: FileHandle;
  try {
    // Read and write: a header that outgrows its room moves the rows (shiftData reads them back).
    handle = await open(temp, 'wx+');
  } catch (error) {
    throw writeFailure(error, path);
  }
  let count = 0;
  let closed = false;
  const fail = async (error: unknown) => {
    closed = true;
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    return error instanceof ShapeError ? error : writeFailure(error, path);
  };
  return {
    get count() {
      return count;
    },
    async append(data: Float32Array): Promise<void> {
      if (closed) throw new ShapeError(`${path}: append after close`);
      if (data.length % entry !== 0) throw partialBlock(data.length);
      try {
        const bytes = writeFloats(data, dtype);
        await handle.write(bytes, 0, bytes.length, reserved + count * entry * itemSize);
      } catch (error) {
        throw await fail(error);
      }
      count += data.length / entry;
    },
    async finish(head: (handle: FileHandle, count: number) => Promise<void>): Promise<void> {
      if (closed) throw new ShapeError(`${path}: closed twice`);
      try {
        await head(handle, count);
        await handle.close();
        closed = true;
        await rename(temp, path);
      } catch (error) {
        throw await fail(error);
      }
    },
    async abort(): Promise<void> {
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

export interface TokenStreamOptions {
  /** Feature dimension of the rows to come. */
  d: number;
  dtype?: 'float32' | 'float16';
  /**
   * The output's metadata when it is known before its rows (a reduction
   * knows what it keeps before it reads the rows): the header and metadata
   * tensors then get exactly their room and close() moves nothing.
   */
  expect?: TokenSet;
}

/** A token-set .safetensors written a block of rows at a time (saveTokens's flat layout). */
export interface TokenStreamWriter {
  readonly path: string;
  /** Rows (tokens) written so far. */
  readonly count: number;
  /** Appends whole rows of d features. */
  append(rows: Float32Array): Promise<void>;
  /**
   * Writes the header and the metadata tensors of `tokens` — everything
   * saveTokens writes except the features, which came through append():
   * tokens.n must equal count; tokens.d and tokens.data are not read (a
   * skeleton with d = 1 will do); an empty `origin` list means every token
   * is its own origin (no origin tensors, as saveTokens writes then). Or
   * the same metadata run by run ({@link TokenChunks}: memory for one run,
   * not per-token metadata of the whole). Then renames the temp file over
   * `path`.
   */
  close(tokens: TokenSet | TokenChunks): Promise<void>;
  /** Removes the temp file (after a failure). */
  abort(): Promise<void>;
}

/**
 * The metadata of a token set too long to hold as one: consecutive runs of
 * its tokens, each a token set of its own (d = 1 zeros will do; features are
 * not read) whose `sources` list is the whole's and whose source indices are
 * the whole's, so that each run's tensors are exactly its slice of the
 * whole's tensors (sizes, source, grid_pos, scores, positions) and its
 * metadata (sources, meta) the whole's. Runs carry no origins (every token
 * is its own origin) and no extra tensors. `chunks()` is iterated once.
 *
 * @example
 * await out.close({ n, chunks: () => framesInRunsOf(64) });
 */
export interface TokenChunks {
  /** Tokens in all (the rows appended). */
  n: number;
  chunks(): Iterable<TokenSet>;
}

type TensorShapes = Record<string, { dtype: 'F32' | 'F16' | 'I32'; shape: number[] }>;

/**
 * saveTokens's layout for metadata tensors `shapes` plus `tokens` [count, d]
 * last: the head (8-byte length + header), every slot, and the prefix length
 * (bytes before the rows). `tokens` is last in the data section whatever the
 * other tensors are (same dtype size: 'tokens' sorts after every other name,
 * extra.* included; float16 tokens sort after all 4-byte tensors), so the
 * rows can stream in after the prefix.
 */
function prefixLayout(
  shapes: TensorShapes,
  metadata: Record<string, string>,
  count: number,
  d: number,
  dtype: 'float32' | 'float16',
  path: string,
) {
  const all: TensorShapes = { ...shapes, tokens: { dtype: dtype === 'float16' ? 'F16' : 'F32', shape: [count, d] } };
  const { head, slots, dataLength } = safetensorsLayout(all, metadata);
  const last = slots.at(-1)!;
  if (last.name !== 'tokens') throw new Error(`${path}: 'tokens' is not the last tensor (layout changed)`);
  return { head, slots: slots.slice(0, -1), length: head.length + dataLength - (last.end - last.begin) };
}

/** The metadata tensors (everything but `tokens`) and metadata of saveTokens for `tokens`, checked against `count` rows. */
function metadataTensors(tokens: TokenSet, count: number, path: string) {
  if (tokens.n !== count)
    throw new ShapeError(`${path}: the metadata describes ${tokens.n} tokens, ${count} rows were written`);
  if (tokens.extra && Object.keys(tokens.extra).length > 0)
    throw new ShapeError(
      `${path}: the streaming writer carries no extra tensors (${Object.keys(tokens.extra).join(', ')}); use saveTokens`,
    );
  const { tensors, metadata } = tokenSetToTensors(tokens);
  delete tensors.tokens;
  const shapes: TensorShapes = {};
  for (const [name, t] of Object.entries(tensors))
    shapes[name] = { dtype: t.dtype ?? (t.data instanceof Int32Array ? 'I32' : 'F32'), shape: t.shape };
  return { tensors, shapes, metadata };
}

/**
 * The bytes before the `tokens` tensor of saveTokens(path.safetensors, tokens)
 * for `tokens` with `count` rows of `d` features: 8-byte length, header, then
 * every metadata tensor.
 */
function tokenFilePrefix(
  tokens: TokenSet,
  count: number,
  d: number,
  dtype: 'float32' | 'float16',
  path: string,
): Uint8Array {
  const { tensors, shapes, metadata } = metadataTensors(tokens, count, path);
  const { head, slots, length } = prefixLayout(shapes, metadata, count, d, dtype, path);
  const prefix = new Uint8Array(length);
  prefix.set(head, 0);
  for (const slot of slots) prefix.set(safetensorsPayload(tensors[slot.name]!), head.length + slot.begin);
  return prefix;
}

/**
 * Writes the prefix of saveTokens's file for the token set `whole` describes
 * run by run, at offset 0 of `handle`, one run's tensors at a time (memory:
 * one run, never the whole's per-token metadata). `place(length)` runs once
 * the prefix length is known, before anything is written (it moves the rows
 * up to make room). Each run must give the tensors and metadata the first
 * gave, and the runs must add up to `count` tokens.
 */
async function writeChunkedPrefix(
  handle: FileHandle,
  whole: TokenChunks,
  count: number,
  d: number,
  dtype: 'float32' | 'float16',
  path: string,
  place: (length: number) => Promise<void>,
): Promise<void> {
  if (whole.n !== count)
    throw new ShapeError(`${path}: the metadata describes ${whole.n} tokens, ${count} rows were written`);
  let layout: ReturnType<typeof prefixLayout> | undefined;
  // What every run must share with the first: tensor names, dtypes and row shapes; the metadata.
  const signatureOf = (shapes: TensorShapes, metadata: Record<string, string>) =>
    JSON.stringify([
      Object.entries(shapes)
        .map(([name, t]) => [name, t.dtype, t.shape.slice(1)])
        .sort(),
      metadata,
    ]);
  let signature = '';
  let offset = 0;
  for (const run of whole.chunks()) {
    const { tensors, shapes, metadata } = metadataTensors(run, run.n, path);
    if ('origin_offsets' in tensors)
      throw new ShapeError(
        `${path}: runs of tokens carry no origins (tokens ${offset}–${offset + run.n - 1} have some)`,
      );
    if (!layout) {
      // Every metadata tensor has one row per token: the whole's shape is the run's with n rows.
      const wholeShapes: TensorShapes = {};
      for (const [name, t] of Object.entries(shapes))
        wholeShapes[name] = { ...t, shape: [whole.n, ...t.shape.slice(1)] };
      layout = prefixLayout(wholeShapes, metadata, count, d, dtype, path);
      signature = signatureOf(shapes, metadata);
      await place(layout.length);
      await handle.write(layout.head, 0, layout.head.length, 0);
    } else if (signatureOf(shapes, metadata) !== signature)
      throw new ShapeError(
        `${path}: tokens ${offset}–${offset + run.n - 1} give other tensors or metadata than the first run (${Object.keys(shapes).sort().join(', ')})`,
      );
    if (offset + run.n > whole.n)
      throw new ShapeError(`${path}: the runs hold more than the ${whole.n} tokens described`);
    for (const slot of layout.slots) {
      const perToken = (slot.end - slot.begin) / whole.n;
      const payload = safetensorsPayload(tensors[slot.name]!);
      await handle.write(payload, 0, payload.length, layout.head.length + slot.begin + offset * perToken);
    }
    offset += run.n;
  }
  if (!layout || offset !== whole.n)
    throw new ShapeError(`${path}: the runs hold ${offset} tokens, ${whole.n} were described`);
}

/**
 * Opens a streaming writer for a token-set .safetensors: rows go to a hidden
 * temp file next to `path`; close() writes the header and the metadata
 * tensors in front of them and renames (no half file under `path`). The
 * file is byte-identical to saveTokens's for the same token set. The header
 * lists every tensor's offsets, and it and the metadata tensors (sizes,
 * source, grid_pos, scores, positions, origins: O(n) integers, a few MB for
 * an hour of video) come before the rows, so their length is known only at
 * the end: with `expect` the room is reserved exactly; without it (a video
 * being encoded: frame count and times unknown) the rows are moved once at
 * close, block by block, by the prefix length. close() takes the metadata
 * whole (a TokenSet) or run by run (TokenChunks: written a run at a time, so
 * an hour of frames never holds its ~40 bytes a token of metadata tensors).
 *
 * @example
 * const out = await createTokenStream('frames.safetensors', { d: 1152 });
 * await out.append(blockOfRows); // k·1152 floats
 * await out.close(skeleton);      // sources, grid cells, scores, … of every row
 */
export async function createTokenStream(path: string, options: TokenStreamOptions): Promise<TokenStreamWriter> {
  if (extname(path).toLowerCase() !== '.safetensors')
    throw new UsageError(`${path}: the token stream writer writes .safetensors files only`, 'E_FORMAT');
  const { d } = options;
  const dtype = options.dtype ?? 'float32';
  if (!(Number.isInteger(d) && d > 0)) throw new ShapeError(`${path}: d must be a positive integer, got ${d}`);
  const itemSize = dtype === 'float32' ? 4 : 2;
  const reserved = options.expect ? tokenFilePrefix(options.expect, options.expect.n, d, dtype, path).length : 0;
  const file = await openRowFile(
    path,
    reserved,
    d,
    dtype,
    (values) => new ShapeError(`${path}: a block of ${values} values is not whole rows of d = ${d}`),
  );
  return {
    path,
    get count() {
      return file.count;
    },
    append: file.append,
    close: (tokens) =>
      file.finish(async (handle, count) => {
        const length = count * d * itemSize;
        // The rows go right after the prefix: moved once when the room reserved for it differs.
        const place = async (prefixLength: number) => {
          if (prefixLength === reserved) return;
          await moveData(handle, reserved, prefixLength, length);
          await handle.truncate(prefixLength + length);
        };
        if ('chunks' in tokens) return writeChunkedPrefix(handle, tokens, count, d, dtype, path, place);
        const prefix = tokenFilePrefix(tokens, count, d, dtype, path);
        await place(prefix.length);
        await handle.write(prefix, 0, prefix.length, 0);
      }),
    abort: file.abort,
  };
}

/** Moves `length` bytes from offset `from` to `to` in chunks, in the order that never overwrites unread bytes. */
async function moveData(handle: FileHandle, from: number, to: number, length: number): Promise<void> {
  if (to > from) return shiftData(handle, from, to, length);
  const chunk = 8 * 1024 * 1024;
  const buffer = new Uint8Array(Math.min(chunk, Math.max(1, length)));
  for (let start = 0; start < length; start += chunk) {
    const size = Math.min(chunk, length - start);
    await handle.read(buffer, 0, size, from + start);
    await handle.write(buffer, 0, size, to + start);
  }
}

/** A video token file opened for block reads: a 3-D .npy or a token-set .safetensors whose tokens are frames. */
export interface FrameFile extends NpyFrameFile {
  /**
   * The file's token set without its features (d = 1, zeros): sources,
   * grid cells, sizes, origins, scores, positions and metadata as loadTokens
   * gives them. O(n) scalars.
   */
  skeleton(): TokenSet;
}

/**
 * Whether `path` can be read a block of frames at a time: a 3-D .npy, or a
 * .safetensors with a float32/float16 `tokens` [n, d] tensor, no extra.*
 * tensors, no AnyRes bundle, and only 'frame' sources in its metadata.
 * Reads the header only; openFrameFile checks the rest (frame order, equal
 * counts) with the errors the in-memory path gives.
 *
 * @example
 * await isFrameFile('hour.safetensors'); // true for a video written by vtc encode
 */
export async function isFrameFile(path: string): Promise<boolean> {
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') return (await npyShapeOf(path))?.length === 3;
  if (ext !== '.safetensors') return false;
  const handle = await openForRead(path);
  try {
    const { metadata, entries } = await readSafetensorsHeader(handle, path);
    const tokens = entries.find((e) => e.name === 'tokens');
    if (!tokens || tokens.shape.length !== 2 || (tokens.dtype !== 'F32' && tokens.dtype !== 'F16')) return false;
    if (entries.some((e) => e.name.startsWith(EXTRA_PREFIX) || e.name === 'thumbnail' || e.name === 'crops'))
      return false;
    const sources = JSON.parse(metadata.sources ?? '[]') as { kind?: string }[];
    return Array.isArray(sources) && sources.length > 0 && sources.every((s) => s?.kind === 'frame');
  } catch {
    return false; // not readable by blocks: loadTokens gives the error
  } finally {
    await handle.close();
  }
}

/** A safetensors header read by itself; a file shorter than its header promises is an error naming both sizes. */
async function readSafetensorsHeader(handle: FileHandle, path: string) {
  const { size } = await handle.stat();
  const lengthBytes = new Uint8Array(8);
  await handle.read(lengthBytes, 0, Math.min(8, size), 0);
  const headerLength = size < 8 ? 0 : Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
  if (size < 8 || (headerLength <= 100_000_000 && size < 8 + headerLength))
    throw new InputError(
      `${path}: truncated: the header needs ${size < 8 ? 8 : 8 + headerLength} bytes, the file has ${size}`,
      'E_TRUNCATED',
    );
  const prefix = new Uint8Array(8 + Math.min(headerLength, 100_000_001));
  await handle.read(prefix, 0, prefix.length, 0);
  // Offsets are checked against the size the header promises, so a short file gets one message with both sizes.
  const header = parseSafetensorsHeader(prefix, Number.MAX_SAFE_INTEGER, path);
  const promised = header.dataStart + Math.max(0, ...header.entries.map((e) => e.end));
  if (size < promised)
    throw new InputError(
      `${path}: truncated: the header promises ${promised} bytes, the file has ${size}`,
      'E_TRUNCATED',
    );
  return { size, ...header };
}

/**
 * Opens a video token file for block reads (frames [a, b) by positional
 * reads, never the whole file): a 3-D .npy (openNpyFrames) or a token-set
 * .safetensors whose tokens are frames in order with equal counts (as vtc
 * encode writes a video). Errors name the file: truncated (expected vs got
 * bytes), not frames, unequal frames (`method` names who asks).
 *
 * @example
 * const file = await openFrameFile('hour.safetensors', 'evs');
 * const first = await file.readFrames(0, 64);
 * await file.close();
 */
export async function openFrameFile(path: string, method: string): Promise<FrameFile> {
  if (extname(path).toLowerCase() === '.npy') {
    const file = await openNpyFrames(path);
    const skeleton = () => {
      const tokens = frameSkeleton({ frames: file.frames, perFrame: file.perFrame, d: 1 });
      return { ...tokens, data: new Float32Array(tokens.n) };
    };
    return { ...file, skeleton };
  }
  const handle = await openForRead(path);
  try {
    const { dataStart, metadata, entries } = await readSafetensorsHeader(handle, path);
    const tokensEntry = entries.find((e) => e.name === 'tokens');
    if (!tokensEntry || tokensEntry.shape.length !== 2 || (tokensEntry.dtype !== 'F32' && tokensEntry.dtype !== 'F16'))
      throw new InputError(
        `${path}: block reads need a float32 or float16 'tokens' [n, d] tensor, got ${tokensEntry ? `${tokensEntry.dtype} [${tokensEntry.shape.join(', ')}]` : 'none'}`,
        'E_TOKENS',
      );
    const [n, d] = tokensEntry.shape as [number, number];
    // Every tensor but the features, read by itself: O(n) scalars.
    const tensors: SafetensorsFile['tensors'] = {};
    for (const entry of entries) {
      if (entry.name === 'tokens') continue;
      const bytes = new Uint8Array(entry.end - entry.begin);
      await handle.read(bytes, 0, bytes.length, dataStart + entry.begin);
      const count = entry.shape.reduce((a, b) => a * b, 1);
      tensors[entry.name] = {
        dtype: entry.dtype,
        shape: entry.shape,
        data: decodeTensorData(bytes, 0, count, entry.dtype, `${path}: tensor '${entry.name}'`),
      };
    }
    tensors.tokens = { dtype: 'F32', shape: [n, 1], data: new Float32Array(n) };
    // Identity origins stay implicit: one small array per token is ~100 B, 200 MB for an hour of video.
    const skeleton = tensorsToTokenSet({ tensors, metadata }, path, { lazyOrigins: true });
    const { frames, perFrame } = frameLayout(skeleton, method);
    const first = skeleton.sources[skeleton.source[0]!]!;
    const dtype = tokensEntry.dtype === 'F32' ? 'float32' : 'float16';
    return {
      path,
      dtype,
      frames,
      perFrame,
      d,
      rows: first.rows,
      cols: first.cols,
      skeleton: () => skeleton,
      readFrames: frameReader(handle, path, dataStart + tokensEntry.begin, { frames, perFrame, d }, dtype),
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
