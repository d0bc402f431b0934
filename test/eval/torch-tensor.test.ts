import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { decodeNpy } from '../../core/npy.js';
import { encodeEmbeds } from '../../eval/models.js';
import { encodeTorchTensor, tensorPickle } from '../../eval/torch-tensor.js';
import { tempDir } from '../helpers.js';

/** Walks the zip's local headers: name → data bytes and their offset. */
function readStoredZip(bytes: Uint8Array): Map<string, { offset: number; data: Uint8Array; crcOk: boolean }> {
  const view = Buffer.from(bytes);
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

describe('torch.save writer', () => {
  it('writes the pickle torch writes for a contiguous float tensor', () => {
    const expected =
      '8002' +
      Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n').toString('hex') +
      '28' +
      '28' +
      '58' +
      '07000000' +
      Buffer.from('storage').toString('hex') +
      Buffer.from('ctorch\nFloatStorage\n').toString('hex') +
      '58' +
      '01000000' +
      '30' +
      '58' +
      '03000000' +
      Buffer.from('cpu').toString('hex') +
      '4b06' +
      '74' +
      '51' +
      '4b00' +
      '28' +
      '4b02' +
      '4b03' +
      '74' +
      '28' +
      '4b03' +
      '4b01' +
      '74' +
      '89' +
      Buffer.from('ccollections\nOrderedDict\n').toString('hex') +
      '29' +
      '52' +
      '74' +
      '52' +
      '2e';
    assert.equal(Buffer.from(tensorPickle([2, 3])).toString('hex'), expected);
    assert.ok(
      Buffer.from(tensorPickle([300, 70000])).includes(
        Buffer.from([0x4a, 0x2c, 0x01, 0, 0, 0x4a, 0x70, 0x11, 0x01, 0]),
      ),
    );
  });

  it('stores data.pkl, byteorder, 64-byte aligned raw data and version in a valid zip', () => {
    const values = new Float32Array([1, 2, 3, 4, 5, 6.5]);
    const entries = readStoredZip(encodeTorchTensor([2, 3], values));
    assert.deepEqual(
      [...entries.keys()],
      ['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/version'],
    );
    for (const [name, e] of entries) assert.ok(e.crcOk, `crc of ${name}`);
    const raw = entries.get('archive/data/0')!;
    assert.equal(raw.offset % 64, 0);
    assert.deepEqual(new Float32Array(raw.data.slice().buffer), values);
    assert.equal(Buffer.from(entries.get('archive/byteorder')!.data).toString(), 'little');
    assert.throws(() => encodeTorchTensor([4, 2], values), /shape \[4, 2\] does not match 6 values/);
  });

  it('is readable by Python zipfile + pickle as torch.load would read it (when python3 is present)', (t) => {
    const dir = tempDir('vtc-torch-');
    const path = join(dir, 't.pt');
    writeFileSync(path, encodeTorchTensor([2, 2], new Float32Array([0.5, -1, 3, 4])));
    const script = `
import zipfile, pickle, io, struct, collections, sys
z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None
class U(pickle.Unpickler):
    def find_class(self, m, n):
        if (m, n) == ('torch._utils', '_rebuild_tensor_v2'):
            return lambda st, off, size, stride, rg, hooks: (st[off:off + size[0] * size[1]], size, stride, rg, type(hooks).__name__)
        if (m, n) == ('torch', 'FloatStorage'): return 'FloatStorage'
        if (m, n) == ('collections', 'OrderedDict'): return collections.OrderedDict
        raise pickle.UnpicklingError(m + '.' + n)
    def persistent_load(self, pid):
        raw = z.read(z.namelist()[0].split('/')[0] + '/data/' + pid[2])
        return list(struct.unpack('<%df' % pid[4], raw))
print(U(io.BytesIO(z.read('archive/data.pkl'))).load())`;
    const py = spawnSync('python3', ['-c', script, path], { encoding: 'utf8' });
    if (py.error) return t.skip('python3 not available');
    assert.equal(py.status, 0, py.stderr);
    assert.equal(py.stdout.trim(), "([0.5, -1.0, 3.0, 4.0], (2, 2), (2, 1), False, 'OrderedDict')");
  });

  it('encodes image_embeds as base64 npy or torch bytes', () => {
    const embeds = { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [3, 2] as [number, number] };
    const npy = decodeNpy(new Uint8Array(Buffer.from(encodeEmbeds(embeds), 'base64')));
    assert.deepEqual(npy.shape, [3, 2]);
    assert.deepEqual([...npy.data], [1, 2, 3, 4, 5, 6]);
    const torch = Buffer.from(encodeEmbeds(embeds, 'torch'), 'base64');
    assert.equal(torch.readUInt32LE(0), 0x04034b50);
  });
});
