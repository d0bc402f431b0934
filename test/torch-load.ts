import { strict as assert } from 'node:assert';
import { crc32 } from 'node:zlib';

/**
 * A test-side reader for the `torch.save` files vtc writes (eval/torch-tensor.ts),
 * so tests can decode them back without PyTorch: the stored zip, then the
 * pickle run as a small stack machine over the opcodes torch's pickler emits
 * for one CPU tensor. Globals other than the tensor rebuild, the Float/Long
 * storages and OrderedDict are refused, as torch.load(weights_only=True) does.
 */

/** Walks the zip's local headers (stored entries only): name → data bytes, their offset and whether the CRC matches. */
export function readStoredZip(bytes: Uint8Array): Map<string, { offset: number; data: Uint8Array; crcOk: boolean }> {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, { offset: number; data: Uint8Array; crcOk: boolean }>();
  let at = 0;
  while (view.readUInt32LE(at) === 0x04034b50) {
    assert.equal(view.readUInt16LE(at + 8), 0, 'stored');
    const crc = view.readUInt32LE(at + 14);
    const size = view.readUInt32LE(at + 18);
    const nameLength = view.readUInt16LE(at + 26);
    const extraLength = view.readUInt16LE(at + 28);
    const name = view.subarray(at + 30, at + 30 + nameLength).toString('utf8');
    const offset = at + 30 + nameLength + extraLength;
    const data = bytes.subarray(offset, offset + size);
    out.set(name, { offset, data, crcOk: crc32(data) >>> 0 === crc });
    at = offset + size;
  }
  assert.equal(view.readUInt32LE(bytes.length - 22), 0x06054b50, 'end of central directory');
  assert.equal(view.readUInt16LE(bytes.length - 12), out.size);
  return out;
}

/** A decoded tensor: row-major values gathered through shape, stride and storage offset. */
export interface LoadedTensor {
  dtype: 'float32' | 'int64';
  shape: number[];
  stride: number[];
  requiresGrad: boolean;
  data: Float32Array | BigInt64Array;
}

interface Global {
  global: string;
}
interface Storage {
  dtype: 'float32' | 'int64';
  values: Float32Array | BigInt64Array;
}
const MARK = Symbol('mark');
type Value =
  | string
  | number
  | boolean
  | Global
  | Storage
  | Value[]
  | Map<unknown, unknown>
  | LoadedTensor
  | typeof MARK;

const ALLOWED = new Set([
  'torch._utils._rebuild_tensor_v2',
  'torch.FloatStorage',
  'torch.LongStorage',
  'collections.OrderedDict',
]);

/**
 * torch.load for one tensor saved by torch.save (zip format): checks every
 * CRC and the byte order, runs data.pkl and returns the tensor.
 *
 * @example
 * const t = loadTorchTensor(encodeTorchTensor([2, 3], values)); // t.shape [2, 3], t.data equal to values
 */
export function loadTorchTensor(bytes: Uint8Array): LoadedTensor {
  const entries = readStoredZip(bytes);
  for (const [name, entry] of entries) assert.ok(entry.crcOk, `crc of ${name}`);
  const pklName = [...entries.keys()].find((name) => name.endsWith('/data.pkl'));
  assert.ok(pklName, 'the zip holds <archive>/data.pkl');
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder) assert.equal(Buffer.from(byteorder.data).toString(), 'little');
  const storage = (type: Global, key: string, numel: number): Storage => {
    const raw = entries.get(`${prefix}data/${key}`);
    assert.ok(raw, `storage ${key} is in the zip`);
    const copy = new Uint8Array(raw.data); // an aligned copy (Buffer.slice would be a view into its pool)
    const dtype = type.global === 'torch.LongStorage' ? 'int64' : 'float32';
    const values = dtype === 'int64' ? new BigInt64Array(copy.buffer) : new Float32Array(copy.buffer);
    assert.equal(values.length, numel, `storage ${key} holds ${numel} elements`);
    return { dtype, values };
  };
  const result = unpickle(entries.get(pklName)!.data, storage);
  assert.ok(result !== null && typeof result === 'object' && 'shape' in result, 'data.pkl yields a tensor');
  return result as LoadedTensor;
}

function unpickle(pkl: Uint8Array, storage: (type: Global, key: string, numel: number) => Storage): Value {
  const view = Buffer.from(pkl.buffer, pkl.byteOffset, pkl.byteLength);
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  const popMark = (): Value[] => {
    const at = stack.lastIndexOf(MARK);
    assert.ok(at >= 0, 'MARK on the stack');
    const items = stack.splice(at);
    return items.slice(1);
  };
  let at = 0;
  for (;;) {
    const op = view[at++]!;
    switch (op) {
      case 0x80: // PROTO
        at++;
        break;
      case 0x63: {
        // GLOBAL module\nname\n
        const end1 = view.indexOf(0x0a, at);
        const end2 = view.indexOf(0x0a, end1 + 1);
        const name = `${view.toString('latin1', at, end1)}.${view.toString('latin1', end1 + 1, end2)}`;
        assert.ok(ALLOWED.has(name), `global ${name} is not one a tensor file needs`);
        stack.push({ global: name });
        at = end2 + 1;
        break;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x58: {
        // BINUNICODE
        const length = view.readUInt32LE(at);
        stack.push(view.toString('utf8', at + 4, at + 4 + length));
        at += 4 + length;
        break;
      }
      case 0x4b: // BININT1
        stack.push(view[at++]!);
        break;
      case 0x4d: // BININT2
        stack.push(view.readUInt16LE(at));
        at += 2;
        break;
      case 0x4a: // BININT
        stack.push(view.readInt32LE(at));
        at += 4;
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: // TUPLE3
        stack.push(stack.splice(stack.length - (op - 0x84)));
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        stack.push(op === 0x88);
        break;
      case 0x71: // BINPUT
        memo.set(view[at++]!, stack.at(-1)!);
        break;
      case 0x68: // BINGET
        stack.push(memo.get(view[at++]!)!);
        break;
      case 0x51: {
        // BINPERSID: ('storage', StorageType, key, location, numel)
        const pid = stack.pop() as Value[];
        assert.equal(pid[0], 'storage');
        stack.push(storage(pid[1] as Global, pid[2] as string, pid[4] as number));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = stack.pop() as Value[];
        const callable = stack.pop() as Global;
        stack.push(call(callable, args));
        break;
      }
      case 0x2e: // STOP
        assert.equal(stack.length, 1, 'one value left at STOP');
        return stack[0]!;
      default:
        throw new Error(`pickle opcode 0x${op.toString(16)} at byte ${at - 1} is not supported`);
    }
  }
}

function call(callable: Global, args: Value[]): Value {
  if (callable.global === 'collections.OrderedDict') return new Map();
  assert.equal(callable.global, 'torch._utils._rebuild_tensor_v2');
  const [stored, offset, shape, stride, requiresGrad] = args as [Storage, number, number[], number[], boolean];
  const numel = shape.reduce((a, b) => a * b, 1);
  const data = stored.dtype === 'int64' ? new BigInt64Array(numel) : new Float32Array(numel);
  const set = (flat: number, position: number) => {
    (data as unknown as (number | bigint)[])[flat] = stored.values[position]!;
  };
  for (let flat = 0; flat < numel; flat++) {
    // Row-major index → storage position through the strides.
    let rest = flat;
    let position = offset;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      position += (rest % shape[axis]!) * stride[axis]!;
      rest = Math.floor(rest / shape[axis]!);
    }
    assert.ok(position < stored.values.length, 'tensor view inside its storage');
    set(flat, position);
  }
  return { dtype: stored.dtype, shape: [...shape], stride: [...stride], requiresGrad, data };
}
