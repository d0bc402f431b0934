import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OnnxGraph } from '../core/onnx-graph.js';
import { Rng } from '../core/rng.js';

const FLOAT = 1; // onnx.TensorProto.DataType
const FLOAT16 = 10;

/**
 * A tiny ViT generated for tests and benchmarks (`vtc bench encoders` builds
 * a CLIP-L-sized one): patch embedding (Conv or reshape+MatMul),
 * a CLS token, position embeddings, LayerNorm, one multi-head self-attention
 * block with a residual, exposing its q, k, pre-softmax logits and softmax
 * probabilities. test/encoders/tiny-vit.ts computes the same network in plain TS.
 */
export interface TinyVitSpec {
  inputSize: number;
  patchSize: number;
  dim: number;
  heads: number;
  seed: number;
  /** Patch embedding as a strided Conv, or as Reshape/Transpose + MatMul. */
  embed: 'conv' | 'matmul';
  /** Without CLS the network has no CLS token (SigLIP-like). */
  cls: boolean;
  /** A static batch dimension (default symbolic). */
  fixedBatch?: number;
  /** Half-precision I/O: a float16 pixel input and float16 copies of every output, named `<output>_fp16`. */
  float16?: boolean;
}

export interface TinyVitWeights {
  patch: Float32Array; // [D, 3, P, P]
  patchBias: Float32Array; // [D]
  cls: Float32Array; // [D]
  pos: Float32Array; // [T, D]
  gamma: Float32Array;
  beta: Float32Array;
  wq: Float32Array; // [D, D] (in, out)
  bq: Float32Array;
  wk: Float32Array;
  bk: Float32Array;
  wv: Float32Array;
  bv: Float32Array;
  wo: Float32Array;
  bo: Float32Array;
}

export function tinyVitWeights(spec: TinyVitSpec): TinyVitWeights {
  const rng = new Rng(spec.seed);
  const { dim: D, patchSize: P } = spec;
  const g = spec.inputSize / P;
  const T = g * g + (spec.cls ? 1 : 0);
  const rand = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rng.float() * 2 - 1) * scale);
  return {
    patch: rand(D * 3 * P * P, 1 / Math.sqrt(3 * P * P)),
    patchBias: rand(D, 0.1),
    cls: rand(D, 1),
    pos: rand(T * D, 0.5),
    gamma: Float32Array.from({ length: D }, () => 0.5 + rng.float()),
    beta: rand(D, 0.2),
    wq: rand(D * D, 1),
    bq: rand(D, 0.1),
    wk: rand(D * D, 1),
    bk: rand(D, 0.1),
    wv: rand(D * D, 1 / Math.sqrt(D)),
    bv: rand(D, 0.1),
    wo: rand(D * D, 1 / Math.sqrt(D)),
    bo: rand(D, 0.1),
  };
}

export function tinyVitBytes(spec: TinyVitSpec, w: TinyVitWeights): Uint8Array {
  const { dim: D, patchSize: P, heads: H, inputSize: S } = spec;
  const g = S / P;
  const N = g * g;
  const dh = D / H;
  const graph = new OnnxGraph('tiny_vit');
  const batch = spec.fixedBatch ?? 'batch';
  if (spec.float16) {
    graph.input('pixel_values_h', [batch, 3, S, S], FLOAT16);
    graph.node('Cast', ['pixel_values_h'], ['pixel_values'], { to: FLOAT });
  } else {
    graph.input('pixel_values', [batch, 3, S, S]);
  }
  let patches: string;
  if (spec.embed === 'conv') {
    graph.initializer('patch_w', [D, 3, P, P], w.patch).initializer('patch_b', [D], w.patchBias);
    graph.node('Conv', ['pixel_values', 'patch_w', 'patch_b'], ['conv'], { kernel_shape: [P, P], strides: [P, P] });
    graph.initializer('shape_bdn', [3], [0, D, N], true);
    graph.node('Reshape', ['conv', 'shape_bdn'], ['conv_flat']);
    patches = graph.node('Transpose', ['conv_flat'], ['patches'], { perm: [0, 2, 1] });
  } else {
    // [B,3,g,P,g,P] → [B,g,g,3,P,P] → [B,N,3PP]: the flattened order equals the Conv weight's (c, py, px).
    graph.initializer('shape_split', [6], [0, 3, g, P, g, P], true);
    graph.node('Reshape', ['pixel_values', 'shape_split'], ['split']);
    graph.node('Transpose', ['split'], ['split_t'], { perm: [0, 2, 4, 1, 3, 5] });
    graph.initializer('shape_rows', [3], [0, N, 3 * P * P], true);
    graph.node('Reshape', ['split_t', 'shape_rows'], ['rows']);
    const wT = new Float32Array(3 * P * P * D);
    for (let d = 0; d < D; d++) for (let k = 0; k < 3 * P * P; k++) wT[k * D + d] = w.patch[d * 3 * P * P + k]!;
    graph.initializer('patch_wt', [3 * P * P, D], wT).initializer('patch_b', [D], w.patchBias);
    graph.node('MatMul', ['rows', 'patch_wt'], ['rows_w']);
    patches = graph.node('Add', ['rows_w', 'patch_b'], ['patches']);
  }
  let tokens = patches;
  if (spec.cls) {
    // A batch-sized CLS row without Shape/Expand: mean over tokens × 0 + cls.
    graph.node('ReduceMean', [patches], ['mean_tok'], { axes: [1], keepdims: 1 });
    graph.initializer('zero', [], [0]).initializer('cls', [1, 1, D], w.cls);
    graph.node('Mul', ['mean_tok', 'zero'], ['zeros']);
    graph.node('Add', ['zeros', 'cls'], ['cls_b']);
    tokens = graph.node('Concat', ['cls_b', patches], ['tokens'], { axis: 1 });
  }
  const T = N + (spec.cls ? 1 : 0);
  graph.initializer('pos', [1, T, D], w.pos);
  graph.node('Add', [tokens, 'pos'], ['x0']);
  graph.initializer('gamma', [D], w.gamma).initializer('beta', [D], w.beta);
  graph.node('LayerNormalization', ['x0', 'gamma', 'beta'], ['ln'], { axis: -1, epsilon: 1e-5 });
  for (const [name, W, b] of [
    ['q', w.wq, w.bq],
    ['k', w.wk, w.bk],
    ['v', w.wv, w.bv],
  ] as const) {
    graph.initializer(`w${name}`, [D, D], W).initializer(`b${name}`, [D], b);
    graph.node('MatMul', ['ln', `w${name}`], [`${name}_mm`]);
    graph.node('Add', [`${name}_mm`, `b${name}`], [name]);
  }
  graph.initializer('shape_heads', [4], [0, 0, H, dh], true);
  graph.node('Reshape', ['q', 'shape_heads'], ['q_h']);
  graph.node('Reshape', ['k', 'shape_heads'], ['k_h']);
  graph.node('Reshape', ['v', 'shape_heads'], ['v_h']);
  graph.node('Transpose', ['q_h'], ['q_bhtd'], { perm: [0, 2, 1, 3] });
  graph.node('Transpose', ['k_h'], ['k_bhdt'], { perm: [0, 2, 3, 1] });
  graph.node('Transpose', ['v_h'], ['v_bhtd'], { perm: [0, 2, 1, 3] });
  graph.node('MatMul', ['q_bhtd', 'k_bhdt'], ['qk']);
  graph.initializer('scale', [], [1 / Math.sqrt(dh)]);
  graph.node('Mul', ['qk', 'scale'], ['attention_logits']);
  graph.node('Softmax', ['attention_logits'], ['attention_probs'], { axis: -1 });
  graph.node('MatMul', ['attention_probs', 'v_bhtd'], ['ctx']);
  graph.node('Transpose', ['ctx'], ['ctx_t'], { perm: [0, 2, 1, 3] });
  graph.initializer('shape_btd', [3], [0, 0, D], true);
  graph.node('Reshape', ['ctx_t', 'shape_btd'], ['ctx_flat']);
  graph.initializer('wo', [D, D], w.wo).initializer('bo', [D], w.bo);
  graph.node('MatMul', ['ctx_flat', 'wo'], ['o_mm']);
  graph.node('Add', ['o_mm', 'bo'], ['o']);
  graph.node('Add', ['x0', 'o'], ['features']);
  graph.node('Transpose', ['k_h'], ['k_bhtd_src'], { perm: [0, 2, 1, 3] });
  const outputs: [string, (number | string)[]][] = [
    ['features', [batch, T, D]],
    ['attention_logits', [batch, H, T, T]],
    ['attention_probs', [batch, H, T, T]],
    ['q', [batch, T, D]],
    ['k', [batch, T, D]],
    ['q_bhtd', [batch, H, T, dh]],
    ['k_bhtd_src', [batch, H, T, dh]],
  ];
  for (const [name, dims] of outputs) {
    if (spec.float16) {
      graph.node('Cast', [name], [`${name}_fp16`], { to: FLOAT16 });
      graph.output(`${name}_fp16`, dims, FLOAT16);
    } else {
      graph.output(name, dims);
    }
  }
  return graph.toBytes();
}

/** Writes model.onnx + vtc-encoder.json into dir. */
export async function writeTinyVit(
  dir: string,
  spec: TinyVitSpec,
  config: Record<string, unknown>,
): Promise<TinyVitWeights> {
  const weights = tinyVitWeights(spec);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), tinyVitBytes(spec, weights));
  await writeFile(
    join(dir, 'vtc-encoder.json'),
    JSON.stringify({ inputSize: spec.inputSize, patchSize: spec.patchSize, hasCls: spec.cls, ...config }),
  );
  return weights;
}
