import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OnnxGraph } from '../../core/onnx-graph.js';
import { Rng } from '../../core/rng.js';

const INT64 = 7; // onnx.TensorProto.DataType
const FLOAT16 = 10;

/**
 * Tiny Qwen-structured vision towers generated for tests, with the I/O of the
 * public exports: `pixel_values` [N, 3·2·P·P] (processor order) and
 * `image_grid_thw` [1, 3] int64 in, `image_features` [N/4, Dout] out.
 *
 * qwen2.5-vl: patch embedding (MatMul over flattened patches), the window
 * index computed inside the graph from the grid (merged grid padded to whole
 * windows, read window by window, padding dropped with Compress), patches
 * gathered into window order, block 0 with window attention (mask: same
 * window), block 1 with full attention (mask: same temporal patch) exposing
 * its probabilities, RMSNorm + 2×2 merger MLP, and the inverse permutation
 * (ScatterElements) back to raster order. `image_features_window` is the
 * merger output before the inverse.
 *
 * qwen3-vl: patch embedding, two full-attention blocks (LayerNorm, GELU MLP),
 * a DeepStack merger (post-shuffle LayerNorm over 4·D) after each block
 * (`deepstack_0`, `deepstack_1`), the main merger (LayerNorm over D), and
 * `image_features_concat` = [main | ds0 | ds1] (vLLM's layout).
 *
 * Rotary and learned position embeddings are left out: they live inside the
 * tower and do not change its I/O contract; the window grouping and the 2×2
 * merge order already make every output depend on the patch order.
 * `referenceQwenForward` computes the same networks in float64 TS, in raster
 * patch order straight from the pixels, with masks from (row, col) geometry.
 */
export interface TinyQwenSpec {
  family: 'qwen2.5-vl' | 'qwen3-vl';
  dim: number;
  heads: number;
  outDim: number;
  seed: number;
  /** Qwen2.5-VL window side in merged units (112 px / 28 = 4). */
  windowUnits?: number;
  /** A float16 `pixel_values` input (cast to float32 inside), as half-precision exports have. */
  float16Input?: boolean;
}

interface BlockWeights {
  normG: Float32Array;
  normB: Float32Array;
  wq: Float32Array;
  bq: Float32Array;
  wk: Float32Array;
  bk: Float32Array;
  wv: Float32Array;
  bv: Float32Array;
  wo: Float32Array;
  bo: Float32Array;
  norm2G: Float32Array;
  norm2B: Float32Array;
  w1: Float32Array; // [D, F]
  b1: Float32Array;
  wg: Float32Array; // [D, F] (SwiGLU gate, Qwen2.5-VL)
  w2: Float32Array; // [F, D]
  b2: Float32Array;
}

interface MergerWeights {
  normG: Float32Array; // [D] (main) or [4D] (post-shuffle)
  normB: Float32Array;
  w1: Float32Array; // [4D, 4D]
  b1: Float32Array;
  w2: Float32Array; // [4D, Dout]
  b2: Float32Array;
}

export interface TinyQwenWeights {
  patch: Float32Array; // [K, D], K = 3·2·P·P in (c, frame, y, x) order
  patchBias: Float32Array;
  blocks: BlockWeights[];
  merger: MergerWeights;
  deepstack: MergerWeights[];
}

export function patchSizeOf(spec: TinyQwenSpec): number {
  return spec.family === 'qwen2.5-vl' ? 14 : 16;
}

export function tinyQwenWeights(spec: TinyQwenSpec): TinyQwenWeights {
  const rng = new Rng(spec.seed);
  const P = patchSizeOf(spec);
  const K = 3 * 2 * P * P;
  const D = spec.dim;
  const F = 2 * D;
  const rand = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rng.float() * 2 - 1) * scale);
  const ones = (n: number) => Float32Array.from({ length: n }, () => 0.75 + 0.5 * rng.float());
  const block = (): BlockWeights => ({
    normG: ones(D),
    normB: rand(D, 0.1),
    wq: rand(D * D, 1 / Math.sqrt(D)),
    bq: rand(D, 0.1),
    wk: rand(D * D, 1 / Math.sqrt(D)),
    bk: rand(D, 0.1),
    wv: rand(D * D, 1 / Math.sqrt(D)),
    bv: rand(D, 0.1),
    wo: rand(D * D, 1 / Math.sqrt(D)),
    bo: rand(D, 0.1),
    norm2G: ones(D),
    norm2B: rand(D, 0.1),
    w1: rand(D * F, 1 / Math.sqrt(D)),
    b1: rand(F, 0.1),
    wg: rand(D * F, 1 / Math.sqrt(D)),
    w2: rand(F * D, 1 / Math.sqrt(F)),
    b2: rand(D, 0.1),
  });
  const merger = (normWidth: number): MergerWeights => ({
    normG: ones(normWidth),
    normB: rand(normWidth, 0.1),
    w1: rand(16 * D * D, 1 / Math.sqrt(4 * D)),
    b1: rand(4 * D, 0.1),
    w2: rand(4 * D * spec.outDim, 1 / Math.sqrt(4 * D)),
    b2: rand(spec.outDim, 0.1),
  });
  return {
    patch: rand(K * D, (1 / Math.sqrt(K)) * 3),
    patchBias: rand(D, 0.1),
    blocks: [block(), block()],
    merger: merger(D),
    deepstack: spec.family === 'qwen3-vl' ? [merger(4 * D), merger(4 * D)] : [],
  };
}

/** Builds the ONNX bytes of a tiny tower. */
export function tinyQwenBytes(spec: TinyQwenSpec, w: TinyQwenWeights): Uint8Array {
  const P = patchSizeOf(spec);
  const K = 3 * 2 * P * P;
  const D = spec.dim;
  const H = spec.heads;
  const dh = D / H;
  const g = new OnnxGraph(`tiny_${spec.family}`);
  const int = (name: string, values: number[], dims: number[] = [values.length]) => {
    g.initializer(name, dims, values, true);
    return name;
  };
  const float = (name: string, dims: number[], values: ArrayLike<number>) => {
    g.initializer(name, dims, values);
    return name;
  };
  if (spec.float16Input) {
    g.input('pixel_values', ['patches', K], FLOAT16);
    g.node('Cast', ['pixel_values'], ['pixel_values_f32'], { to: 1 });
  } else {
    g.input('pixel_values', ['patches', K]);
  }
  const pixels = spec.float16Input ? 'pixel_values_f32' : 'pixel_values';
  g.input('image_grid_thw', [1, 3], INT64);
  float('patch_w', [K, D], w.patch);
  float('patch_b', [D], w.patchBias);
  g.node('MatMul', [pixels, 'patch_w'], ['pe_mm']);
  g.node('Add', ['pe_mm', 'patch_b'], ['patch_embeds']);

  // Grid scalars.
  int('zero_i', [0], []);
  int('one_i', [1], []);
  int('two_i', [2], []);
  int('axes0', [0]);
  int('idx0', [0], []);
  int('idx1', [1], []);
  int('idx2', [2], []);
  g.node('Reshape', ['image_grid_thw', int('shape_3', [3])], ['grid_flat']);
  const gt = g.node('Gather', ['grid_flat', 'idx0'], ['gt'], { axis: 0 });
  const gh = g.node('Gather', ['grid_flat', 'idx1'], ['gh'], { axis: 0 });
  const gw = g.node('Gather', ['grid_flat', 'idx2'], ['gw'], { axis: 0 });
  g.node('Mul', [gh, gw], ['hw']);
  g.node('Mul', [gt, 'hw'], ['n_patches']);
  // Frame (temporal patch) of each sequence position: windows never cross frames, so this holds in both orders.
  g.node('Range', ['zero_i', 'n_patches', 'one_i'], ['seq']);
  g.node('Div', ['seq', 'hw'], ['frame_of']);
  g.node('Unsqueeze', ['frame_of', int('axes1', [1])], ['frame_col']);
  g.node('Unsqueeze', ['frame_of', 'axes0'], ['frame_row']);
  g.node('Equal', ['frame_col', 'frame_row'], ['same_frame']);
  float('mask_zero', [], [0]);
  float('mask_neg', [], [-1e9]);
  g.node('Where', ['same_frame', 'mask_zero', 'mask_neg'], ['frame_mask']);

  let x = 'patch_embeds';
  let windowIndex = '';
  let windowMask = '';
  if (spec.family === 'qwen2.5-vl') {
    const side = spec.windowUnits ?? 4;
    int('side', [side], []);
    g.node('Div', [gh, 'two_i'], ['lh']);
    g.node('Div', [gw, 'two_i'], ['lw']);
    // pad = side − l % side (a full window when already a multiple, as the reference does).
    g.node('Mod', ['lh', 'side'], ['lh_mod']);
    g.node('Sub', ['side', 'lh_mod'], ['pad_h']);
    g.node('Mod', ['lw', 'side'], ['lw_mod']);
    g.node('Sub', ['side', 'lw_mod'], ['pad_w']);
    g.node('Add', ['lh', 'pad_h'], ['lh_p']);
    g.node('Add', ['lw', 'pad_w'], ['lw_p']);
    g.node('Div', ['lh_p', 'side'], ['nwh']);
    g.node('Div', ['lw_p', 'side'], ['nww']);
    // Unsqueeze takes its axes as an input from opset 13.
    for (const name of ['gt', 'lh', 'lw', 'pad_h', 'pad_w', 'nwh', 'nww'])
      g.node('Unsqueeze', [name, 'axes0'], [`${name}_v`]);
    g.node('Mul', ['lh', 'lw'], ['lhw']);
    g.node('Mul', ['gt', 'lhw'], ['units']);
    g.node('Range', ['zero_i', 'units', 'one_i'], ['unit_ids']);
    g.node('Concat', ['gt_v', 'lh_v', 'lw_v'], ['shape_tlhw'], { axis: 0 });
    g.node('Reshape', ['unit_ids', 'shape_tlhw'], ['unit_grid']);
    int('zeros3', [0, 0, 0]);
    int('zero1', [0]);
    g.node('Concat', ['zeros3', 'zero1', 'pad_h_v', 'pad_w_v'], ['pads'], { axis: 0 });
    int('pad_value', [-100], []);
    g.node('Pad', ['unit_grid', 'pads', 'pad_value'], ['unit_padded'], { mode: 'constant' });
    int('side_v', [side]);
    g.node('Concat', ['gt_v', 'nwh_v', 'side_v', 'nww_v', 'side_v'], ['shape_windows'], { axis: 0 });
    g.node('Reshape', ['unit_padded', 'shape_windows'], ['unit_windows']);
    g.node('Transpose', ['unit_windows'], ['unit_windows_t'], { perm: [0, 1, 3, 2, 4] });
    int('flat', [-1]);
    g.node('Reshape', ['unit_windows_t', 'flat'], ['unit_order_padded']);
    g.node('Equal', ['unit_order_padded', 'pad_value'], ['is_pad']);
    g.node('Not', ['is_pad'], ['is_unit']);
    windowIndex = g.node('Compress', ['unit_order_padded', 'is_unit'], ['window_index']);
    // Window id of each unit: (t·nwh + wy)·nww + wx, laid out like the padded grid, then the same reorder.
    g.node('Mul', ['gt', 'nwh'], ['t_nwh']);
    g.node('Mul', ['t_nwh', 'nww'], ['n_windows']);
    g.node('Range', ['zero_i', 'n_windows', 'one_i'], ['window_ids']);
    g.node('Concat', ['gt_v', 'nwh_v', int('one_v', [1]), 'nww_v', 'one_v'], ['shape_wid'], { axis: 0 });
    g.node('Reshape', ['window_ids', 'shape_wid'], ['wid_grid']);
    g.node('Expand', ['wid_grid', 'shape_windows'], ['wid_full']);
    g.node('Transpose', ['wid_full'], ['wid_full_t'], { perm: [0, 1, 3, 2, 4] });
    g.node('Reshape', ['wid_full_t', 'flat'], ['wid_padded']);
    g.node('Compress', ['wid_padded', 'is_unit'], ['wid_units']);
    // Each unit is 4 consecutive patches.
    g.node('Unsqueeze', ['wid_units', 'axes1'], ['wid_col1']);
    g.node('Expand', ['wid_col1', 'shape_u4_e'], ['wid_u4']);
    int('shape_u4_e', [1, 4]);
    g.node('Reshape', ['wid_u4', 'flat'], ['wid_seq']);
    g.node('Unsqueeze', ['wid_seq', 'axes1'], ['wid_c']);
    g.node('Unsqueeze', ['wid_seq', 'axes0'], ['wid_r']);
    g.node('Equal', ['wid_c', 'wid_r'], ['same_window']);
    windowMask = g.node('Where', ['same_window', 'mask_zero', 'mask_neg'], ['window_mask']);
    // Patches → window order (units of 4 rows).
    int('shape_u4d', [-1, 4, D]);
    g.node('Reshape', ['patch_embeds', 'shape_u4d'], ['pe_units']);
    g.node('Gather', ['pe_units', 'window_index'], ['pe_units_w'], { axis: 0 });
    int('shape_nd', [-1, D]);
    x = g.node('Reshape', ['pe_units_w', 'shape_nd'], ['x_window']);
  } else {
    int('shape_nd', [-1, D]);
  }

  const norm = (input: string, gamma: string, beta: string, width: number, prefix: string, rms: boolean): string => {
    if (rms) {
      g.node('Mul', [input, input], [`${prefix}_sq`]);
      g.node('ReduceMean', [`${prefix}_sq`], [`${prefix}_ms`], { axes: [-1], keepdims: 1 });
      float(`${prefix}_eps`, [], [1e-6]);
      g.node('Add', [`${prefix}_ms`, `${prefix}_eps`], [`${prefix}_mse`]);
      g.node('Sqrt', [`${prefix}_mse`], [`${prefix}_rms`]);
      g.node('Div', [input, `${prefix}_rms`], [`${prefix}_n`]);
      return g.node('Mul', [`${prefix}_n`, gamma], [`${prefix}_out`]);
    }
    void width;
    return g.node('LayerNormalization', [input, gamma, beta], [`${prefix}_out`], { axis: -1, epsilon: 1e-6 });
  };
  const linear = (
    input: string,
    weight: Float32Array,
    bias: Float32Array | undefined,
    inDim: number,
    outDim: number,
    prefix: string,
  ): string => {
    float(`${prefix}_w`, [inDim, outDim], weight);
    g.node('MatMul', [input, `${prefix}_w`], [`${prefix}_mm`]);
    if (!bias) return `${prefix}_mm`;
    float(`${prefix}_b`, [outDim], bias);
    return g.node('Add', [`${prefix}_mm`, `${prefix}_b`], [`${prefix}_out`]);
  };
  const gelu = (input: string, prefix: string): string => {
    float(`${prefix}_isq2`, [], [Math.SQRT1_2]);
    float(`${prefix}_half`, [], [0.5]);
    float(`${prefix}_one`, [], [1]);
    g.node('Mul', [input, `${prefix}_isq2`], [`${prefix}_s`]);
    g.node('Erf', [`${prefix}_s`], [`${prefix}_erf`]);
    g.node('Add', [`${prefix}_erf`, `${prefix}_one`], [`${prefix}_e1`]);
    g.node('Mul', [input, `${prefix}_e1`], [`${prefix}_xe`]);
    return g.node('Mul', [`${prefix}_xe`, `${prefix}_half`], [`${prefix}_out`]);
  };
  const rms = spec.family === 'qwen2.5-vl';
  const block = (input: string, bw: BlockWeights, mask: string, b: number, probsName?: string): string => {
    const p = `b${b}`;
    float(`${p}_g1`, [D], bw.normG);
    float(`${p}_be1`, [D], bw.normB);
    const h1 = norm(input, `${p}_g1`, `${p}_be1`, D, `${p}_n1`, rms);
    const q = linear(h1, bw.wq, bw.bq, D, D, `${p}_q`);
    const k = linear(h1, bw.wk, bw.bk, D, D, `${p}_k`);
    const v = linear(h1, bw.wv, bw.bv, D, D, `${p}_v`);
    int(`${p}_shape_heads`, [-1, H, dh]);
    g.node('Reshape', [q, `${p}_shape_heads`], [`${p}_qh`]);
    g.node('Reshape', [k, `${p}_shape_heads`], [`${p}_kh`]);
    g.node('Reshape', [v, `${p}_shape_heads`], [`${p}_vh`]);
    g.node('Transpose', [`${p}_qh`], [`${p}_qt`], { perm: [1, 0, 2] });
    g.node('Transpose', [`${p}_kh`], [`${p}_kt`], { perm: [1, 2, 0] });
    g.node('Transpose', [`${p}_vh`], [`${p}_vt`], { perm: [1, 0, 2] });
    g.node('MatMul', [`${p}_qt`, `${p}_kt`], [`${p}_qk`]);
    float(`${p}_scale`, [], [1 / Math.sqrt(dh)]);
    g.node('Mul', [`${p}_qk`, `${p}_scale`], [b === 1 ? 'attn_logits_1' : `${p}_logits`]);
    g.node('Add', [b === 1 ? 'attn_logits_1' : `${p}_logits`, mask], [`${p}_masked`]);
    const probs = g.node('Softmax', [`${p}_masked`], [probsName ?? `${p}_probs`], { axis: -1 });
    g.node('MatMul', [probs, `${p}_vt`], [`${p}_ctx`]);
    g.node('Transpose', [`${p}_ctx`], [`${p}_ctx_t`], { perm: [1, 0, 2] });
    g.node('Reshape', [`${p}_ctx_t`, 'shape_nd'], [`${p}_ctx_flat`]);
    const o = linear(`${p}_ctx_flat`, bw.wo, bw.bo, D, D, `${p}_o`);
    g.node('Add', [input, o], [`${p}_r1`]);
    float(`${p}_g2`, [D], bw.norm2G);
    float(`${p}_be2`, [D], bw.norm2B);
    const h2 = norm(`${p}_r1`, `${p}_g2`, `${p}_be2`, D, `${p}_n2`, rms);
    let act: string;
    if (rms) {
      // SwiGLU: silu(gate) · up.
      const gate = linear(h2, bw.wg, undefined, D, 2 * D, `${p}_gate`);
      const up = linear(h2, bw.w1, bw.b1, D, 2 * D, `${p}_up`);
      g.node('Sigmoid', [gate], [`${p}_sig`]);
      g.node('Mul', [gate, `${p}_sig`], [`${p}_silu`]);
      act = g.node('Mul', [`${p}_silu`, up], [`${p}_act`]);
    } else {
      act = gelu(linear(h2, bw.w1, bw.b1, D, 2 * D, `${p}_fc1`), `${p}_gelu`);
    }
    const down = linear(act, bw.w2, bw.b2, 2 * D, D, `${p}_down`);
    return g.node('Add', [`${p}_r1`, down], [`${p}_out`]);
  };
  const merger = (input: string, mw: MergerWeights, prefix: string, postShuffle: boolean): string => {
    int(`${prefix}_shape_4d`, [-1, 4 * D]);
    let h: string;
    if (postShuffle) {
      g.node('Reshape', [input, `${prefix}_shape_4d`], [`${prefix}_cat`]);
      float(`${prefix}_g`, [4 * D], mw.normG);
      float(`${prefix}_be`, [4 * D], mw.normB);
      h = norm(`${prefix}_cat`, `${prefix}_g`, `${prefix}_be`, 4 * D, `${prefix}_n`, false);
    } else {
      float(`${prefix}_g`, [D], mw.normG);
      float(`${prefix}_be`, [D], mw.normB);
      const n = norm(input, `${prefix}_g`, `${prefix}_be`, D, `${prefix}_n`, rms);
      h = g.node('Reshape', [n, `${prefix}_shape_4d`], [`${prefix}_cat`]);
    }
    const a = gelu(linear(h, mw.w1, mw.b1, 4 * D, 4 * D, `${prefix}_fc1`), `${prefix}_gelu`);
    return linear(a, mw.w2, mw.b2, 4 * D, spec.outDim, `${prefix}_fc2`);
  };

  const outputs: [string, (number | string)[]][] = [['patch_embeds', ['patches', D]]];
  if (spec.family === 'qwen2.5-vl') {
    const b0 = block(x, w.blocks[0]!, windowMask, 0);
    const b1 = block(b0, w.blocks[1]!, 'frame_mask', 1, 'attn_probs_1');
    const mergedWindow = merger(b1, w.merger, 'merger', false);
    g.node('Identity', [mergedWindow], ['image_features_window']);
    // Inverse permutation: reverse[window_index[s]] = s.
    g.node('Shape', [windowIndex], ['units_shape']);
    g.node('Reshape', ['units_shape', int('shape_scalar', [], [0])], ['units_scalar']);
    g.node('Range', ['zero_i', 'units_scalar', 'one_i'], ['positions']);
    g.node('ScatterElements', ['positions', windowIndex, 'positions'], ['reverse'], { axis: 0 });
    g.node('Gather', [mergedWindow, 'reverse'], ['image_features'], { axis: 0 });
    outputs.push(
      ['image_features', ['tokens', spec.outDim]],
      ['image_features_window', ['tokens', spec.outDim]],
      ['attn_probs_1', [H, 'patches', 'patches']],
      ['attn_logits_1', [H, 'patches', 'patches']],
      ['window_index', ['tokens']],
    );
  } else {
    const b0 = block(x, w.blocks[0]!, 'frame_mask', 0);
    const ds0 = merger(b0, w.deepstack[0]!, 'ds0', true);
    g.node('Identity', [ds0], ['deepstack_0']);
    const b1 = block(b0, w.blocks[1]!, 'frame_mask', 1, 'attn_probs_1');
    const ds1 = merger(b1, w.deepstack[1]!, 'ds1', true);
    g.node('Identity', [ds1], ['deepstack_1']);
    const main = merger(b1, w.merger, 'merger', false);
    g.node('Identity', [main], ['image_features']);
    g.node('Concat', [main, ds0, ds1], ['image_features_concat'], { axis: 1 });
    outputs.push(
      ['image_features', ['tokens', spec.outDim]],
      ['deepstack_0', ['tokens', spec.outDim]],
      ['deepstack_1', ['tokens', spec.outDim]],
      ['image_features_concat', ['tokens', 3 * spec.outDim]],
      ['attn_probs_1', [H, 'patches', 'patches']],
      ['attn_logits_1', [H, 'patches', 'patches']],
    );
  }
  for (const [name, dims] of outputs) g.output(name, dims, name === 'window_index' ? INT64 : undefined);
  return g.toBytes();
}

/** Writes the tower and a vtc-encoder.json (family + `config`) into dir. */
export async function writeTinyQwen(
  dir: string,
  spec: TinyQwenSpec,
  config: Record<string, unknown> = {},
): Promise<TinyQwenWeights> {
  const weights = tinyQwenWeights(spec);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'vision_encoder.onnx'), tinyQwenBytes(spec, weights));
  await writeFile(
    join(dir, 'vtc-encoder.json'),
    JSON.stringify({ family: spec.family, model: 'vision_encoder.onnx', ...config }),
  );
  return weights;
}

export interface ReferenceQwenOutput {
  /** [t·h/2·w/2, outDim], raster order. */
  features: Float32Array;
  deepstack: Float32Array[];
  /** Attention received per merged token from block 1 (head-averaged column sums over its 4 patches). */
  received: Float32Array;
}

/**
 * The same network in float64 TS. `frames` are normalised planar
 * [F, 3, height, width] pixels; a clip of F frames has ceil(F/2) temporal
 * patches (the last frame repeated). Patches are visited in raster order
 * (t, row, col); window attention allows (i, j) when both patches are in the
 * same temporal patch and the same windowUnits×windowUnits block of merged cells.
 */
export function referenceQwenForward(
  spec: TinyQwenSpec,
  w: TinyQwenWeights,
  frames: Float32Array,
  count: number,
  height: number,
  width: number,
): ReferenceQwenOutput {
  const P = patchSizeOf(spec);
  const D = spec.dim;
  const H = spec.heads;
  const dh = D / H;
  const gt = Math.ceil(count / 2);
  const gh = height / P;
  const gw = width / P;
  const N = gt * gh * gw;
  const plane = height * width;
  const pix = (f: number, c: number, y: number, x: number) =>
    frames[(Math.min(f, count - 1) * 3 + c) * plane + y * width + x]!;
  const K = 3 * 2 * P * P;
  let x = new Float64Array(N * D);
  for (let t = 0; t < gt; t++)
    for (let r = 0; r < gh; r++)
      for (let c = 0; c < gw; c++) {
        const i = (t * gh + r) * gw + c;
        for (let d = 0; d < D; d++) {
          let s = w.patchBias[d]!;
          for (let ch = 0; ch < 3; ch++)
            for (let tt = 0; tt < 2; tt++)
              for (let py = 0; py < P; py++)
                for (let px = 0; px < P; px++) {
                  s +=
                    w.patch[(((ch * 2 + tt) * P + py) * P + px) * D + d]! * pix(t * 2 + tt, ch, r * P + py, c * P + px);
                }
          x[i * D + d] = s;
        }
      }
  void K;
  const side = spec.windowUnits ?? 4;
  const frameOf = (i: number) => Math.floor(i / (gh * gw));
  const rowOf = (i: number) => Math.floor((i % (gh * gw)) / gw);
  const colOf = (i: number) => i % gw;
  const sameWindow = (i: number, j: number) =>
    frameOf(i) === frameOf(j) &&
    Math.floor(rowOf(i) / 2 / side) === Math.floor(rowOf(j) / 2 / side) &&
    Math.floor(colOf(i) / 2 / side) === Math.floor(colOf(j) / 2 / side);
  const sameFrame = (i: number, j: number) => frameOf(i) === frameOf(j);
  const rms = spec.family === 'qwen2.5-vl';
  const normRows = (
    input: Float64Array,
    rows: number,
    width: number,
    gamma: Float32Array,
    beta: Float32Array,
    useRms: boolean,
  ) => {
    const out = new Float64Array(rows * width);
    for (let i = 0; i < rows; i++) {
      let mean = 0;
      let sq = 0;
      for (let d = 0; d < width; d++) {
        mean += input[i * width + d]!;
        sq += input[i * width + d]! ** 2;
      }
      mean /= width;
      if (useRms) {
        const scale = 1 / Math.sqrt(sq / width + 1e-6);
        for (let d = 0; d < width; d++) out[i * width + d] = input[i * width + d]! * scale * gamma[d]!;
      } else {
        let variance = 0;
        for (let d = 0; d < width; d++) variance += (input[i * width + d]! - mean) ** 2;
        variance /= width;
        for (let d = 0; d < width; d++)
          out[i * width + d] = ((input[i * width + d]! - mean) / Math.sqrt(variance + 1e-6)) * gamma[d]! + beta[d]!;
      }
    }
    return out;
  };
  const matmul = (
    input: Float64Array,
    rows: number,
    inDim: number,
    weight: Float32Array,
    bias: Float32Array | undefined,
    outDim: number,
  ) => {
    const out = new Float64Array(rows * outDim);
    for (let i = 0; i < rows; i++)
      for (let o = 0; o < outDim; o++) {
        let s = bias ? bias[o]! : 0;
        for (let k = 0; k < inDim; k++) s += input[i * inDim + k]! * weight[k * outDim + o]!;
        out[i * outDim + o] = s;
      }
    return out;
  };
  const gelu = (v: number) => 0.5 * v * (1 + erf(v * Math.SQRT1_2));
  const received = new Float64Array(N);
  const block = (
    input: Float64Array,
    bw: BlockWeights,
    allowed: (i: number, j: number) => boolean,
    record: boolean,
  ) => {
    const h1 = normRows(input, N, D, bw.normG, bw.normB, rms);
    const q = matmul(h1, N, D, bw.wq, bw.bq, D);
    const k = matmul(h1, N, D, bw.wk, bw.bk, D);
    const v = matmul(h1, N, D, bw.wv, bw.bv, D);
    const ctx = new Float64Array(N * D);
    for (let hd = 0; hd < H; hd++) {
      for (let i = 0; i < N; i++) {
        const logits = new Float64Array(N).fill(-Infinity);
        let max = -Infinity;
        for (let j = 0; j < N; j++) {
          if (!allowed(i, j)) continue;
          let s = 0;
          for (let e = 0; e < dh; e++) s += q[i * D + hd * dh + e]! * k[j * D + hd * dh + e]!;
          logits[j] = s / Math.sqrt(dh);
          if (logits[j]! > max) max = logits[j]!;
        }
        let z = 0;
        for (let j = 0; j < N; j++) if (logits[j] !== -Infinity) z += Math.exp(logits[j]! - max);
        for (let j = 0; j < N; j++) {
          if (logits[j] === -Infinity) continue;
          const p = Math.exp(logits[j]! - max) / z;
          if (record) received[j]! += p / H;
          for (let e = 0; e < dh; e++) ctx[i * D + hd * dh + e]! += p * v[j * D + hd * dh + e]!;
        }
      }
    }
    const o = matmul(ctx, N, D, bw.wo, bw.bo, D);
    const r1 = new Float64Array(N * D);
    for (let i = 0; i < N * D; i++) r1[i] = input[i]! + o[i]!;
    const h2 = normRows(r1, N, D, bw.norm2G, bw.norm2B, rms);
    let act: Float64Array;
    if (rms) {
      const gate = matmul(h2, N, D, bw.wg, undefined, 2 * D);
      const up = matmul(h2, N, D, bw.w1, bw.b1, 2 * D);
      act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]!);
    } else {
      act = matmul(h2, N, D, bw.w1, bw.b1, 2 * D).map(gelu);
    }
    const down = matmul(act, N, 2 * D, bw.w2, bw.b2, D);
    const out = new Float64Array(N * D);
    for (let i = 0; i < N * D; i++) out[i] = r1[i]! + down[i]!;
    return out;
  };
  // Merged cell (t, br, bc) concatenates patches (2br+mh, 2bc+mw) in (mh, mw) order.
  const units = N / 4;
  const gather4 = (input: Float64Array) => {
    const out = new Float64Array(units * 4 * D);
    let u = 0;
    for (let t = 0; t < gt; t++)
      for (let br = 0; br < gh / 2; br++)
        for (let bc = 0; bc < gw / 2; bc++) {
          for (let m = 0; m < 4; m++) {
            const i = (t * gh + 2 * br + (m >> 1)) * gw + 2 * bc + (m & 1);
            out.set(input.subarray(i * D, (i + 1) * D), (u * 4 + m) * D);
          }
          u++;
        }
    return out;
  };
  const merge = (input: Float64Array, mw: MergerWeights, postShuffle: boolean) => {
    const cat = postShuffle
      ? normRows(gather4(input), units, 4 * D, mw.normG, mw.normB, false)
      : gather4(normRows(input, N, D, mw.normG, mw.normB, rms));
    const a = matmul(cat, units, 4 * D, mw.w1, mw.b1, 4 * D).map(gelu);
    return Float32Array.from(matmul(a, units, 4 * D, mw.w2, mw.b2, spec.outDim));
  };
  const deepstack: Float32Array[] = [];
  if (spec.family === 'qwen2.5-vl') {
    x = block(x, w.blocks[0]!, sameWindow, false);
    x = block(x, w.blocks[1]!, sameFrame, true);
  } else {
    x = block(x, w.blocks[0]!, sameFrame, false);
    deepstack.push(merge(x, w.deepstack[0]!, true));
    x = block(x, w.blocks[1]!, sameFrame, true);
    deepstack.push(merge(x, w.deepstack[1]!, true));
  }
  const features = merge(x, w.merger, false);
  const receivedUnits = new Float32Array(units);
  let u = 0;
  for (let t = 0; t < gt; t++)
    for (let br = 0; br < gh / 2; br++)
      for (let bc = 0; bc < gw / 2; bc++) {
        for (let m = 0; m < 4; m++)
          receivedUnits[u]! += received[(t * gh + 2 * br + (m >> 1)) * gw + 2 * bc + (m & 1)]!;
        u++;
      }
  return { features, deepstack, received: receivedUnits };
}

/** Abramowitz–Stegun 7.1.26 is too coarse for 1e-4 on outputs; this series/continued-fraction erf is accurate to ~1e-15. */
function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  if (a < 3) {
    // Maclaurin series.
    let term = a;
    let sum = a;
    for (let n = 1; n < 60; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return (sign * 2 * sum) / Math.sqrt(Math.PI);
  }
  // Continued fraction for erfc.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (a + f);
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  return sign * (1 - erfc);
}
