import { InputError } from './errors.js';
import { bfloat16ToFloat } from './float16.js';
import { readFloats, writeFloats } from './npy.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64';

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Float tensors as float32; integer tensors as Int32Array (I64 must fit in 32 bits). */
  data: Float32Array | Int32Array;
}

export interface SafetensorsFile {
  tensors: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

const SIZES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8 };

/** One tensor's entry in a safetensors header (offsets relative to the data section). */
export interface SafetensorsHeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses and checks a safetensors header from the file's first bytes
 * (`prefix` must hold at least 8 + the header length; `fileSize` is the whole
 * file's): entries with their byte ranges, checked against the shape and the
 * file size and for overlaps, the metadata and where the data starts. Lets a
 * reader fetch single tensors (or rows of one) with positional reads.
 *
 * @example
 * const { dataStart, entries } = parseSafetensorsHeader(firstBytes, size, 'a.safetensors');
 */
export function parseSafetensorsHeader(
  prefix: Uint8Array,
  fileSize: number,
  where = '.safetensors',
): { dataStart: number; metadata: Record<string, string>; entries: SafetensorsHeaderEntry[] } {
  if (fileSize < 8 || prefix.length < 8)
    throw new InputError(
      `${where}: truncated safetensors file (${fileSize} bytes, header length needs 8)`,
      'E_TRUNCATED',
    );
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > fileSize - 8 || headerLength > 100_000_000) {
    throw new InputError(
      `${where}: header length ${headerLength} exceeds the file (${fileSize} bytes): truncated or not a safetensors file`,
      'E_TRUNCATED',
    );
  }
  if (prefix.length < 8 + headerLength)
    throw new InputError(`${where}: header needs ${8 + headerLength} bytes, got ${prefix.length}`, 'E_TRUNCATED');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(prefix.subarray(8, 8 + headerLength)));
  } catch (error) {
    throw new InputError(`${where}: header is not valid JSON (${(error as Error).message})`, 'E_SAFETENSORS');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new InputError(`${where}: header is not a JSON object`, 'E_SAFETENSORS');
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsHeaderEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) {
        if (typeof v !== 'string')
          throw new InputError(`${where}: __metadata__.${k} must be a string, got ${typeof v}`, 'E_SAFETENSORS');
        metadata[k] = v;
      }
      continue;
    }
    const info = value as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const dtype = info?.dtype as SafetensorsDtype;
    if (!(dtype in SIZES))
      throw new InputError(
        `${where}: tensor '${name}' has unsupported dtype ${JSON.stringify(info?.dtype)} (supported: ${Object.keys(SIZES).join(', ')})`,
        'E_DTYPE',
      );
    const shape = info.shape;
    const offsets = info.data_offsets;
    if (!Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2)
      throw new InputError(`${where}: tensor '${name}' lacks shape or data_offsets`, 'E_SAFETENSORS');
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (end - begin !== count * SIZES[dtype]) {
      throw new InputError(
        `${where}: tensor '${name}' shape [${shape.join(', ')}] ${dtype} needs ${count * SIZES[dtype]} bytes, offsets give ${end - begin}`,
        'E_SAFETENSORS',
      );
    }
    if (begin < 0 || end > dataLength)
      throw new InputError(
        `${where}: tensor '${name}' data [${begin}, ${end}) lies beyond the file's ${dataLength} data bytes (truncated?)`,
        'E_TRUNCATED',
      );
    entries.push({ name, dtype, shape, begin, end });
  }
  assertDisjoint(entries, where);
  return { dataStart, metadata, entries };
}

/**
 * Parses a .safetensors file: 8-byte little-endian header length, JSON header
 * with `dtype`, `shape`, `data_offsets` per tensor and optional `__metadata__`
 * (string → string), then the data. Offsets are checked against the buffer.
 */
export function decodeSafetensors(bytes: Uint8Array, where = '.safetensors'): SafetensorsFile {
  const { dataStart, metadata, entries } = parseSafetensorsHeader(bytes, bytes.length, where);
  const tensors: Record<string, SafetensorsEntry> = {};
  for (const { name, dtype, shape, begin } of entries) {
    const count = shape.reduce((a, b) => a * b, 1);
    tensors[name] = {
      dtype,
      shape,
      data: decodeTensorData(bytes, dataStart + begin, count, dtype, `${where}: tensor '${name}'`),
    };
  }
  return { tensors, metadata };
}

interface ByteRange {
  name: string;
  begin: number;
  end: number;
}

/**
 * Rejects tensors whose data ranges overlap: two tensors sharing bytes would
 * alias each other (the Python library refuses such files too), so a crafted
 * or corrupted header cannot make one tensor silently read another's values.
 */
function assertDisjoint(ranges: ByteRange[], where: string): void {
  const byStart = ranges.filter((r) => r.end > r.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byStart.length; i++) {
    const previous = byStart[i - 1]!;
    const current = byStart[i]!;
    if (current.begin < previous.end) {
      throw new InputError(
        `${where}: tensors '${previous.name}' [${previous.begin}, ${previous.end}) and '${current.name}' [${current.begin}, ${current.end}) overlap in the data section (each tensor needs its own bytes)`,
        'E_SAFETENSORS',
      );
    }
  }
}

/** `count` values of `dtype` at `offset` of `bytes`: floats as float32, integers as int32 (I64 must fit). */
export function decodeTensorData(
  bytes: Uint8Array,
  offset: number,
  count: number,
  dtype: SafetensorsDtype,
  where: string,
): Float32Array | Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * SIZES[dtype]);
  switch (dtype) {
    case 'F32':
      return readFloats(bytes, offset, count, 'float32');
    case 'F16':
      return readFloats(bytes, offset, count, 'float16');
    case 'BF16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n)
          throw new InputError(`${where}: int64 value ${v} at ${i} does not fit in 32 bits`, 'E_DTYPE');
        out[i] = Number(v);
      }
      return out;
    }
  }
}

export interface SafetensorsInput {
  shape: number[];
  data: Float32Array | Int32Array;
  /** F32 (default for floats), F16, or I32 (default for Int32Array). */
  dtype?: 'F32' | 'F16' | 'I32';
}

/** A tensor's place in a file laid out by {@link safetensorsLayout}. */
export interface SafetensorsSlot {
  name: string;
  dtype: 'F32' | 'F16' | 'I32';
  shape: number[];
  /** Byte offsets within the data section (after 8 + header bytes). */
  begin: number;
  end: number;
}

/**
 * The Python library's layout for tensors of these dtypes and shapes:
 * tensors by descending dtype size then name, header JSON padded with spaces
 * to a multiple of 8 bytes, `__metadata__` first. Returns the 8-byte length
 * prefix + header (`head`), the slots in data order and the data length, so a
 * file can be written a tensor (or a row block) at a time.
 *
 * @example
 * const { head, slots } = safetensorsLayout({ tokens: { dtype: 'F32', shape: [2, 3] } });
 * head.length; // 8 + header bytes; slots[0].begin === 0
 */
export function safetensorsLayout(
  tensors: Record<string, { dtype: 'F32' | 'F16' | 'I32'; shape: number[] }>,
  metadata: Record<string, string> = {},
): { head: Uint8Array; slots: SafetensorsSlot[]; dataLength: number } {
  const entries = Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  entries.sort((a, b) => SIZES[b.dtype] - SIZES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const slots: SafetensorsSlot[] = [];
  let offset = 0;
  for (const e of entries) {
    const bytes = e.shape.reduce((a, b) => a * b, 1) * SIZES[e.dtype];
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    slots.push({ ...e, begin: offset, end: offset + bytes });
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces to a multiple of 8 bytes, as the Python library does.
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, slots, dataLength: offset };
}

/** A tensor's bytes as safetensors stores them (little-endian; F16 rounded from float32). */
export function safetensorsPayload(t: SafetensorsInput): Uint8Array {
  const dtype = t.dtype ?? (t.data instanceof Int32Array ? 'I32' : 'F32');
  if (dtype === 'I32') {
    const ints = t.data instanceof Int32Array ? t.data : Int32Array.from(t.data);
    return new Uint8Array(ints.buffer.slice(ints.byteOffset, ints.byteOffset + ints.byteLength));
  }
  const floats = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
  return writeFloats(floats, dtype === 'F16' ? 'float16' : 'float32');
}

/**
 * Serialises tensors the way the Python safetensors library does (the layout
 * of {@link safetensorsLayout}).
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsInput>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const shapes: Record<string, { dtype: 'F32' | 'F16' | 'I32'; shape: number[] }> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new InputError(
        `encodeSafetensors: tensor '${name}' shape [${t.shape.join(', ')}] holds ${count} values, data has ${t.data.length}`,
        'E_SHAPE',
      );
    shapes[name] = { dtype: t.dtype ?? (t.data instanceof Int32Array ? 'I32' : 'F32'), shape: t.shape };
  }
  const { head, slots, dataLength } = safetensorsLayout(shapes, metadata);
  const out = new Uint8Array(head.length + dataLength);
  out.set(head, 0);
  for (const slot of slots) out.set(safetensorsPayload(tensors[slot.name]!), head.length + slot.begin);
  return out;
}
