import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/**
 * A tiny builder for ONNX graphs, used for the native GEMM kernels in
 * core/linalg and by tests that generate small vision towers. Not a general
 * converter: it writes float32 graphs with named inputs, outputs, initializers.
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

export class OnnxGraph {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(
    private readonly name: string,
    private readonly opset = 17,
  ) {}

  input(name: string, dims: Dim[], elemType = onnx.TensorProto.DataType.FLOAT): this {
    this.inputs.push(valueInfo(name, dims, elemType));
    return this;
  }

  output(name: string, dims: Dim[], elemType = onnx.TensorProto.DataType.FLOAT): this {
    this.outputs.push(valueInfo(name, dims, elemType));
    return this;
  }

  /** Adds a float32 (or int64 when `int64` is set) constant tensor. */
  initializer(name: string, dims: number[], values: ArrayLike<number>, int64 = false): this {
    const tensor: onnxProto.onnx.ITensorProto = { name, dims };
    if (int64) {
      tensor.dataType = onnx.TensorProto.DataType.INT64;
      tensor.int64Data = Array.from(values);
    } else {
      tensor.dataType = onnx.TensorProto.DataType.FLOAT;
      const floats = Float32Array.from(values as ArrayLike<number>);
      tensor.rawData = new Uint8Array(floats.buffer);
    }
    this.initializers.push(tensor);
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

  toBytes(): Uint8Array {
    const model = onnx.ModelProto.create({
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
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dims: Dim[], elemType: number): onnxProto.onnx.IValueInfoProto {
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

function attributeProto(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (value instanceof Float32Array) return { name, type: T.FLOATS, floats: Array.from(value) };
  return { name, type: T.INTS, ints: value };
}
