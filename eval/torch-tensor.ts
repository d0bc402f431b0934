import { crc32 } from 'node:zlib';
import { ShapeError } from '../core/errors.js';

/**
 * Writes a float32 tensor in PyTorch's `torch.save` format (a stored zip
 * holding `archive/data.pkl`, `archive/data/0`, `archive/byteorder`,
 * `archive/version`), which is what vLLM decodes from a base64 `image_embeds`
 * part (torch.load with weights_only=True). Pure bytes, no torch needed.
 *
 * The pickle is the one torch writes for a contiguous CPU tensor:
 * `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`
 * with the storage as persistent id `('storage', torch.FloatStorage, '0', 'cpu', numel)`.
 */

function pickleString(text: string): number[] {
  const bytes = [...Buffer.from(text, 'utf8')];
  return [0x58, ...u32(bytes.length), ...bytes]; // BINUNICODE
}

function pickleInt(value: number): number[] {
  if (value >= 0 && value < 256) return [0x4b, value]; // BININT1
  return [0x4a, ...u32(value)]; // BININT (signed 32-bit; sizes here are < 2^31)
}

function pickleGlobal(module: string, name: string): number[] {
  return [0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1')]; // GLOBAL
}

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

function u16(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff];
}

/** The data.pkl stream for a contiguous tensor of the given shape (float32 by default; LongStorage for int64). */
export function tensorPickle(shape: number[], storage: 'FloatStorage' | 'LongStorage' = 'FloatStorage'): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const tuple = (items: number[][]) => [0x28, ...items.flat(), 0x74]; // MARK … TUPLE
  const out = [
    0x80,
    0x02, // PROTO 2
    ...pickleGlobal('torch._utils', '_rebuild_tensor_v2'),
    0x28, // MARK (arguments)
    ...tuple([
      pickleString('storage'),
      pickleGlobal('torch', storage),
      pickleString('0'),
      pickleString('cpu'),
      pickleInt(numel),
    ]),
    0x51, // BINPERSID
    ...pickleInt(0), // storage offset
    ...tuple(shape.map(pickleInt)),
    ...tuple(stride.map(pickleInt)),
    0x89, // NEWFALSE (requires_grad)
    ...pickleGlobal('collections', 'OrderedDict'),
    0x29, // EMPTY_TUPLE
    0x52, // REDUCE → OrderedDict()
    0x74, // TUPLE (the arguments)
    0x52, // REDUCE → tensor
    0x2e, // STOP
  ];
  return new Uint8Array(out);
}

/** A zip archive with stored (uncompressed) entries whose data start on 64-byte boundaries, as torch writes them. */
export function storedZip(entries: { name: string; data: Uint8Array }[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const central: number[][] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const crc = crc32(entry.data) >>> 0;
    const headerSize = 30 + name.length;
    // Extra field "FB" padding so the data are 64-byte aligned (torch does the same for mmap).
    const pad = (64 - ((offset + headerSize + 4) % 64)) % 64;
    const extra = [...u16(0x4246), ...u16(pad), ...new Array<number>(pad).fill(0x5a)];
    const local = [
      ...u32(0x04034b50),
      ...u16(20),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u16(0x21),
      ...u32(crc),
      ...u32(entry.data.length),
      ...u32(entry.data.length),
      ...u16(name.length),
      ...u16(extra.length),
      ...name,
      ...extra,
    ];
    chunks.push(new Uint8Array(local), entry.data);
    central.push([
      ...u32(0x02014b50),
      ...u16(20),
      ...u16(20),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u16(0x21),
      ...u32(crc),
      ...u32(entry.data.length),
      ...u32(entry.data.length),
      ...u16(name.length),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u32(0),
      ...u32(offset),
      ...name,
    ]);
    offset += local.length + entry.data.length;
  }
  const centralBytes = central.flat();
  const end = [
    ...u32(0x06054b50),
    ...u16(0),
    ...u16(0),
    ...u16(entries.length),
    ...u16(entries.length),
    ...u32(centralBytes.length),
    ...u32(offset),
    ...u16(0),
  ];
  chunks.push(new Uint8Array(centralBytes), new Uint8Array(end));
  const total = chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Encodes a row-major float32 (or int64, given as BigInt64Array: e.g. a
 * Qwen `image_grid_thw`) tensor as `torch.save` bytes.
 *
 * @example
 * const bytes = encodeTorchTensor([144, 4096], features);
 * const part = { type: 'image_embeds', image_embeds: Buffer.from(bytes).toString('base64') };
 */
export function encodeTorchTensor(shape: number[], data: Float32Array | BigInt64Array): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (shape.some((s) => !Number.isInteger(s) || s < 0) || numel !== data.length)
    throw new ShapeError(`torch tensor: shape [${shape.join(', ')}] does not match ${data.length} values`);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // Little-endian on every platform Node runs on; copy so the zip owns aligned bytes.
  return storedZip([
    {
      name: 'archive/data.pkl',
      data: tensorPickle(shape, data instanceof BigInt64Array ? 'LongStorage' : 'FloatStorage'),
    },
    { name: 'archive/byteorder', data: new Uint8Array(Buffer.from('little')) },
    { name: 'archive/data/0', data: new Uint8Array(raw) },
    { name: 'archive/version', data: new Uint8Array(Buffer.from('3\n')) },
  ]);
}
