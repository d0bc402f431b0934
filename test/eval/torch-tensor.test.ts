import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeNpy } from '../../core/npy.js';
import { encodeEmbeds } from '../../eval/models.js';
import { encodeTorchTensor, tensorPickle } from '../../eval/torch-tensor.js';
import { tempDir } from '../helpers.js';
import { loadTorchTensor, readStoredZip } from '../torch-load.js';

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

  it('decodes back (zip + pickle, as torch.load) to the same shape, strides and values, float32 and int64', () => {
    const values = new Float32Array([0.5, -1, 3, 4, 1e-7, -0]);
    const t = loadTorchTensor(encodeTorchTensor([3, 2], values));
    assert.deepEqual([t.dtype, t.shape, t.stride, t.requiresGrad], ['float32', [3, 2], [2, 1], false]);
    assert.deepEqual(t.data, values);
    const grid = loadTorchTensor(encodeTorchTensor([1, 3], BigInt64Array.of(1n, 300n, 70000n)));
    assert.deepEqual([grid.dtype, grid.shape, [...grid.data]], ['int64', [1, 3], [1n, 300n, 70000n]]);
    const big = loadTorchTensor(encodeTorchTensor([70000], new Float32Array(70000).fill(2)));
    assert.deepEqual([big.shape, big.data.length, big.data[69999]], [[70000], 70000, 2]);
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
