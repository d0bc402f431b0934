import { InputError } from './errors.js';
import { floatToHalf, halfToFloat } from './float16.js';

/** A float tensor read from or written to .npy / .safetensors. */
export interface FloatTensor {
  shape: number[];
  /** Values converted to float32, C order. */
  data: Float32Array;
  /** The dtype it had on disk. */
  dtype: 'float32' | 'float16';
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Parses a .npy file (format versions 1, 2 and 3; little-endian float32 or
 * float16; C order). Fortran order and any other dtype are rejected with an
 * InputError that says what was found.
 *
 * @example
 * const { shape, data } = decodeNpy(bytes, 'tokens.npy'); // shape [576, 1024]
 */
export function decodeNpy(bytes: Uint8Array, where = '.npy'): FloatTensor {
  const { shape, dtype, dataOffset, count } = parseNpyHeader(bytes, where, bytes.length);
  return { shape, data: readFloats(bytes, dataOffset, count, dtype), dtype };
}

/** What a .npy header says: shape, dtype, where the data starts, how many values. */
export interface NpyHeader {
  shape: number[];
  dtype: 'float32' | 'float16';
  /** Byte offset of the first value. */
  dataOffset: number;
  /** Number of values (product of the shape). */
  count: number;
}

/**
 * Parses the header at the start of a .npy file and checks that the file
 * (of `fileBytes` bytes in all, of which `bytes` is the beginning) holds the
 * data the header promises. Used by decodeNpy on a whole file and by the
 * block reader on the first bytes of a file it never loads whole.
 *
 * @example
 * parseNpyHeader(firstBytes, 'video.npy', fileSize); // { shape: [3600, 196, 1152], dtype: 'float32', dataOffset: 128, … }
 */
export function parseNpyHeader(bytes: Uint8Array, where: string, fileBytes: number): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new InputError(`${where}: not a .npy file (missing the \\x93NUMPY magic; got ${fileBytes} bytes)`, 'E_NPY');
  }
  const major = bytes[6]!;
  let headerLength: number;
  let headerStart: number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new InputError(`${where}: truncated .npy header`, 'E_NPY');
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new InputError(
      `${where}: unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`,
      'E_NPY',
    );
  }
  if (headerStart + headerLength > bytes.length) {
    throw new InputError(
      `${where}: truncated .npy header (needs ${headerStart + headerLength} bytes, file has ${fileBytes})`,
      'E_TRUNCATED',
    );
  }
  const decoder = new TextDecoder(major === 3 ? 'utf-8' : 'latin1');
  const header = decoder.decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new InputError(`${where}: malformed .npy header ${JSON.stringify(header.trim())}`, 'E_NPY');
  }
  if (fortran === 'True') {
    throw new InputError(
      `${where}: Fortran-order arrays are not supported (expected C order; save with np.ascontiguousarray)`,
      'E_NPY_ORDER',
    );
  }
  let dtype: 'float32' | 'float16';
  if (descr === '<f4') dtype = 'float32';
  else if (descr === '<f2') dtype = 'float16';
  else
    throw new InputError(
      `${where}: unsupported dtype '${descr}' (expected little-endian float32 '<f4' or float16 '<f2')`,
      'E_DTYPE',
    );
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((s) => !Number.isInteger(s) || s < 0))
    throw new InputError(`${where}: invalid shape (${shapeText})`, 'E_NPY');
  const count = shape.reduce((a, b) => a * b, 1);
  const itemSize = dtype === 'float32' ? 4 : 2;
  const dataStart = headerStart + headerLength;
  const needed = count * itemSize;
  if (fileBytes - dataStart < needed) {
    throw new InputError(
      `${where}: truncated data: shape (${shape.join(', ')}) needs ${needed} bytes, file has ${fileBytes - dataStart}`,
      'E_TRUNCATED',
    );
  }
  return { shape, dtype, dataOffset: dataStart, count };
}

/** Reads `count` little-endian floats of `dtype` starting at byte `offset` into a new Float32Array. */
export function readFloats(
  bytes: Uint8Array,
  offset: number,
  count: number,
  dtype: 'float32' | 'float16',
): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'float32') {
    // Copy into an aligned buffer: the data offset need not be a multiple of 4.
    new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + count * 4));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * 2);
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  }
  return out;
}

/** float32 values as little-endian bytes of `dtype`. */
export function writeFloats(data: Float32Array, dtype: 'float32' | 'float16'): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint8Array(data.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setUint16(i * 2, floatToHalf(data[i]!), true);
  return out;
}

/**
 * Serialises a tensor as NumPy's `np.save` does: version 1.0 header (2.0 if
 * it does not fit), padded with spaces so data starts on a 64-byte boundary.
 */
export function encodeNpy(shape: number[], data: Float32Array, dtype: 'float32' | 'float16' = 'float32'): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length)
    throw new InputError(
      `encodeNpy: shape (${shape.join(', ')}) holds ${count} values, data has ${data.length}`,
      'E_SHAPE',
    );
  const header = encodeNpyHeader(shape, dtype);
  const payload = writeFloats(data, dtype);
  const out = new Uint8Array(header.length + payload.length);
  out.set(header, 0);
  out.set(payload, header.length);
  return out;
}

/**
 * The header bytes np.save writes for `shape` and `dtype` (magic, version,
 * dict padded so the data starts on a 64-byte boundary). The streaming writer
 * writes the same header, so its files equal encodeNpy's byte for byte.
 */
export function encodeNpyHeader(shape: number[], dtype: 'float32' | 'float16' = 'float32'): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtype === 'float32' ? '<f4' : '<f2'}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    version = 2;
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const headerLength = total - prefix;
  const header = dict + ' '.repeat(headerLength - dict.length - 1) + '\n';
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  return out;
}
