/**
 * A tiny builder for ONNX graphs, used for the native GEMM kernels in
 * core/linalg and by tests that generate small vision towers. Not a general
 * converter: it writes float32 graphs with named inputs, outputs, initializers.
 *
 * The protobuf bytes are written here, for the few ModelProto fields the
 * builder sets, rather than through onnx-proto: that package's generated code
 * (with protobufjs) took about 50 ms to import, which every cold `vtc reduce`
 * paid. The bytes are the ones onnx-proto writes for the same model (same
 * field order, packed repeated scalars; test/core/onnx-graph.test.ts compares).
 *
 * @example
 * const g = new OnnxGraph('gemm');
 * g.input('A', ['m', 'k']); g.input('B', ['n', 'k']);
 * g.node('Gemm', ['A', 'B'], ['C'], { transB: 1 });
 * g.output('C', ['m', 'n']);
 * const bytes = g.toBytes(); // pass to ort.InferenceSession.create(bytes)
 */
export type Dim = number | string;
export type AttributeValue = number | number[] | string | Float32Array;

/** onnx.TensorProto.DataType values the builder writes itself. */
const FLOAT = 1;
const INT64 = 7;

/** onnx.AttributeProto.AttributeType. */
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** The model as plain data, named as onnx-proto names ModelProto's fields (only those the builder sets). */
export interface OnnxModel {
  irVersion: number;
  producerName: string;
  opsetImport: { domain: string; version: number }[];
  graph: {
    name: string;
    node: OnnxNode[];
    input: OnnxValueInfo[];
    output: OnnxValueInfo[];
    initializer: OnnxTensor[];
  };
}

export interface OnnxNode {
  opType: string;
  input: string[];
  output: string[];
  name: string;
  attribute: OnnxAttribute[];
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

export interface OnnxValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: ({ dimValue: number } | { dimParam: string })[] } } };
}

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  int64Data?: number[];
  rawData?: Uint8Array;
}

export class OnnxGraph {
  private readonly nodes: OnnxNode[] = [];
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly outputs: OnnxValueInfo[] = [];
  private readonly initializers: OnnxTensor[] = [];
  private counter = 0;

  constructor(
    private readonly name: string,
    private readonly opset = 17,
  ) {}

  input(name: string, dims: Dim[], elemType = FLOAT): this {
    this.inputs.push(valueInfo(name, dims, elemType));
    return this;
  }

  output(name: string, dims: Dim[], elemType = FLOAT): this {
    this.outputs.push(valueInfo(name, dims, elemType));
    return this;
  }

  /** Adds a float32 (or int64 when `int64` is set) constant tensor. */
  initializer(name: string, dims: number[], values: ArrayLike<number>, int64 = false): this {
    if (int64) this.initializers.push({ name, dims, dataType: INT64, int64Data: Array.from(values) });
    else {
      const floats = Float32Array.from(values as ArrayLike<number>);
      this.initializers.push({ name, dims, dataType: FLOAT, rawData: new Uint8Array(floats.buffer) });
    }
    return this;
  }

  /** Adds a node; returns the first output name. */
  node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    const attribute = Object.entries(attributes).map(([name, value]) => attributeProto(name, value));
    this.nodes.push({ opType, input: inputs, output: outputs, name: `${opType}_${this.counter++}`, attribute });
    return outputs[0]!;
  }

  /** A fresh intermediate value name. */
  temp(prefix = 't'): string {
    return `${prefix}_${this.counter++}`;
  }

  /** The model as plain data (what toBytes encodes). */
  toModel(): OnnxModel {
    return {
      irVersion: 8,
      producerName: 'vtc',
      opsetImport: [{ domain: '', version: this.opset }],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    };
  }

  /** The serialized ModelProto. */
  toBytes(): Uint8Array {
    return encodeModel(this.toModel());
  }
}

function valueInfo(name: string, dims: Dim[], elemType: number): OnnxValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeProto(name: string, value: AttributeValue): OnnxAttribute {
  const T = ATTRIBUTE_TYPE;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (value instanceof Float32Array) return { name, type: T.FLOATS, floats: Array.from(value) };
  return { name, type: T.INTS, ints: value };
}

// ---- protobuf wire format (https://protobuf.dev/programming-guides/encoding/), the subset ModelProto needs.
// Fields are written in field-number order, as protobufjs writes them; repeated scalars packed.

/** Bytes written in chunks; a nested message is its own Writer, written with its length in front. */
class Writer {
  private readonly chunks: Uint8Array[] = [];
  length = 0;
  private varintBuffer: number[] = [];

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private flushVarints(): void {
    if (this.varintBuffer.length === 0) return;
    const bytes = Uint8Array.from(this.varintBuffer);
    this.varintBuffer = [];
    this.push(bytes);
  }

  /** A varint of a non-negative integer below 2^53, or of a negative one as 64-bit two's complement (10 bytes). */
  varint(value: number): void {
    const out = this.varintBuffer;
    if (value >= 0 && value < 2 ** 31) {
      let n = value;
      while (n >= 0x80) {
        out.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      out.push(n);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, 2);
    this.varint(value.length);
    this.flushVarints();
    this.push(value);
  }

  string(field: number, value: string): void {
    this.bytes(field, new TextEncoder().encode(value));
  }

  int(field: number, value: number): void {
    this.tag(field, 0);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, 5);
    this.flushVarints();
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(bytes);
  }

  message(field: number, inner: Writer): void {
    this.bytes(field, inner.finish());
  }

  /** A packed repeated int64 field (nothing for an empty list). */
  packedInts(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    this.message(field, inner);
  }

  /** A packed repeated float field (nothing for an empty list). */
  packedFloats(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    const bytes = new Uint8Array(4 * values.length);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => view.setFloat32(4 * i, v, true));
    this.bytes(field, bytes);
  }

  finish(): Uint8Array {
    this.flushVarints();
    if (this.chunks.length === 1) return this.chunks[0]!;
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

function encodeModel(model: OnnxModel): Uint8Array {
  const w = new Writer();
  w.int(1, model.irVersion);
  w.string(2, model.producerName);
  w.message(7, encodeGraph(model.graph));
  for (const opset of model.opsetImport) {
    const o = new Writer();
    o.string(1, opset.domain);
    o.int(2, opset.version);
    w.message(8, o);
  }
  return w.finish();
}

function encodeGraph(graph: OnnxModel['graph']): Writer {
  const w = new Writer();
  for (const node of graph.node) w.message(1, encodeNode(node));
  w.string(2, graph.name);
  for (const tensor of graph.initializer) w.message(5, encodeTensor(tensor));
  for (const info of graph.input) w.message(11, encodeValueInfo(info));
  for (const info of graph.output) w.message(12, encodeValueInfo(info));
  return w;
}

function encodeNode(node: OnnxNode): Writer {
  const w = new Writer();
  for (const name of node.input) w.string(1, name);
  for (const name of node.output) w.string(2, name);
  w.string(3, node.name);
  w.string(4, node.opType);
  for (const attribute of node.attribute) w.message(5, encodeAttribute(attribute));
  return w;
}

function encodeAttribute(a: OnnxAttribute): Writer {
  const w = new Writer();
  w.string(1, a.name);
  if (a.f !== undefined) w.float(2, a.f);
  if (a.i !== undefined) w.int(3, a.i);
  if (a.s !== undefined) w.bytes(4, a.s);
  if (a.floats) w.packedFloats(7, a.floats);
  if (a.ints) w.packedInts(8, a.ints);
  w.int(20, a.type);
  return w;
}

function encodeTensor(t: OnnxTensor): Writer {
  const w = new Writer();
  w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  if (t.int64Data) w.packedInts(7, t.int64Data);
  w.string(8, t.name);
  if (t.rawData) w.bytes(9, t.rawData);
  return w;
}

function encodeValueInfo(info: OnnxValueInfo): Writer {
  const tensorType = new Writer();
  tensorType.int(1, info.type.tensorType.elemType);
  const shape = new Writer();
  for (const dim of info.type.tensorType.shape.dim) {
    const d = new Writer();
    if ('dimValue' in dim) d.int(1, dim.dimValue);
    else d.string(2, dim.dimParam);
    shape.message(1, d);
  }
  tensorType.message(2, shape);
  const type = new Writer();
  type.message(1, tensorType);
  const w = new Writer();
  w.string(1, info.name);
  w.message(2, type);
  return w;
}
