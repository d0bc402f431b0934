import assert from 'node:assert/strict';
import { test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { OnnxGraph } from '../../core/onnx-graph.js';
import { tinyVitBytes, tinyVitWeights } from '../../samples/tiny-vit.js';

/**
 * OnnxGraph writes its protobuf bytes itself (core/onnx-graph.ts); onnx-proto,
 * the generated ONNX protobuf code it used to go through, is the reference:
 * the same model must give the same bytes.
 */
const { onnx } = onnxProto;

/** onnx-proto's bytes for the builder's model (protobufjs returns a Buffer: compared as plain bytes). */
function reference(graph: OnnxGraph): Uint8Array {
  return Uint8Array.from(onnx.ModelProto.encode(onnx.ModelProto.create(graph.toModel())).finish());
}

/** A graph with every kind of field the builder writes, at awkward values. */
function everything(): OnnxGraph {
  const g = new OnnxGraph('every field ✓', 13);
  g.input('x', ['batch', 3, 0, 2 ** 31, 2 ** 40]);
  g.input('ids', [1, 'len'], 7);
  g.input('half', [], 10);
  g.initializer('w', [2, 3], [0.1, -2, 3.5e38, 0, -0, 1e-45]);
  g.initializer('scalar', [], [7]);
  g.initializer('empty', [0], []);
  g.initializer('axes', [5], [0, -1, 2 ** 31, -(2 ** 40), 2 ** 53 - 1], true);
  g.node('Custom', ['x', 'w'], ['y', 'z'], {
    zero: 0,
    one: 1,
    negative: -3,
    big: 2 ** 33,
    max: 2 ** 53 - 1,
    tiny: 1e-7,
    alpha: -0.5,
    text: 'größe ✓',
    empty: '',
    ints: [0, -1, 127, 128, 2 ** 31, -(2 ** 31)],
    noInts: [],
    floats: Float32Array.of(0.25, -1e10, Number.NaN),
  });
  g.node('Identity', ['y'], ['out']);
  g.output('out', ['batch', 'n']);
  g.output('arg', ['p'], 7);
  return g;
}

test('OnnxGraph.toBytes equals onnx-proto encoding the same model, for every field the builder writes', () => {
  const g = everything();
  assert.deepEqual(g.toBytes(), reference(g));
  // A second graph shape: no initializers, the default opset, one node.
  const small = new OnnxGraph('gemm');
  small.input('A', ['m', 'k']).input('B', ['n', 'k']);
  small.node('Gemm', ['A', 'B'], ['C'], { transB: 1 });
  small.output('C', ['m', 'n']);
  assert.deepEqual(small.toBytes(), reference(small));
});

test('onnx-proto decodes the bytes back to the model (names, dims, attributes, tensors)', () => {
  const decoded = onnx.ModelProto.decode(everything().toBytes());
  assert.equal(Number(decoded.irVersion), 8);
  assert.equal(decoded.producerName, 'vtc');
  assert.equal(Number(decoded.opsetImport[0]!.version), 13);
  const graph = decoded.graph!;
  assert.equal(graph.name, 'every field ✓');
  assert.deepEqual(
    graph.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue)),
    ['batch', 3, 0, 2 ** 31, 2 ** 40],
  );
  const attributes = Object.fromEntries(graph.node![0]!.attribute!.map((a) => [a.name, a]));
  assert.equal(Number(attributes.negative!.i), -3);
  assert.equal(Number(attributes.max!.i), 2 ** 53 - 1);
  assert.equal(attributes.alpha!.f, -0.5);
  assert.equal(new TextDecoder().decode(attributes.text!.s!), 'größe ✓');
  assert.deepEqual(attributes.ints!.ints!.map(Number), [0, -1, 127, 128, 2 ** 31, -(2 ** 31)]);
  assert.deepEqual(attributes.floats!.floats, [0.25, Math.fround(-1e10), Number.NaN]);
  const axes = graph.initializer!.find((t) => t.name === 'axes')!;
  assert.deepEqual(axes.int64Data!.map(Number), [0, -1, 2 ** 31, -(2 ** 40), 2 ** 53 - 1]);
  const w = graph.initializer!.find((t) => t.name === 'w')!;
  assert.deepEqual(
    Array.from(new Float32Array(Uint8Array.from(w.rawData!).buffer)),
    Array.from(Float32Array.of(0.1, -2, 3.5e38, 0, -0, 1e-45)),
  );
});

test('a tiny ViT round-trips through onnx-proto byte for byte, and onnxruntime runs a built graph', async () => {
  const spec = { inputSize: 16, patchSize: 4, dim: 8, heads: 2, seed: 3, embed: 'conv', cls: true } as const;
  const bytes = tinyVitBytes(spec, tinyVitWeights(spec));
  assert.deepEqual(Uint8Array.from(onnx.ModelProto.encode(onnx.ModelProto.decode(bytes)).finish()), bytes);
  const g = new OnnxGraph('scale');
  g.input('x', ['n']);
  g.initializer('two', [1], [2]);
  g.node('Mul', ['x', 'two'], ['y']);
  g.output('y', ['n']);
  const session = await ort.InferenceSession.create(g.toBytes());
  const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, -2.5), [2]) });
  assert.deepEqual(Array.from(y!.data as Float32Array), [2, -5]);
  await session.release();
});
