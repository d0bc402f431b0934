import type { Normalization } from '../../encoders/image.js';
import type { TinyVitSpec, TinyVitWeights } from '../../samples/tiny-vit.js';

export { tinyVitBytes, tinyVitWeights, writeTinyVit } from '../../samples/tiny-vit.js';
export type { TinyVitSpec, TinyVitWeights } from '../../samples/tiny-vit.js';

/**
 * The same network in plain TS for one image given as packed RGB bytes.
 * Returns all tokens' features [T, D] and the head-averaged pre-softmax CLS row [N].
 */
export function referenceForward(
  spec: TinyVitSpec,
  w: TinyVitWeights,
  rgb: Uint8Array,
  norm: Normalization,
): { features: Float32Array; clsRow: Float32Array } {
  const { dim: D, patchSize: P, heads: H, inputSize: S } = spec;
  const g = S / P;
  const N = g * g;
  const dh = D / H;
  const offset = spec.cls ? 1 : 0;
  const T = N + offset;
  const pixel = (c: number, y: number, x: number) => (rgb[(y * S + x) * 3 + c]! / 255 - norm.mean[c]!) / norm.std[c]!;
  const x0 = new Float64Array(T * D);
  if (spec.cls) for (let d = 0; d < D; d++) x0[d] = w.cls[d]!;
  for (let pr = 0; pr < g; pr++) {
    for (let pc = 0; pc < g; pc++) {
      const t = offset + pr * g + pc;
      for (let d = 0; d < D; d++) {
        let s = w.patchBias[d]!;
        for (let c = 0; c < 3; c++)
          for (let py = 0; py < P; py++)
            for (let px = 0; px < P; px++)
              s += w.patch[((d * 3 + c) * P + py) * P + px]! * pixel(c, pr * P + py, pc * P + px);
        x0[t * D + d] = s;
      }
    }
  }
  for (let i = 0; i < T * D; i++) x0[i]! += w.pos[i]!;
  const ln = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += x0[t * D + d]!;
    mean /= D;
    let variance = 0;
    for (let d = 0; d < D; d++) variance += (x0[t * D + d]! - mean) ** 2;
    variance /= D;
    for (let d = 0; d < D; d++)
      ln[t * D + d] = ((x0[t * D + d]! - mean) / Math.sqrt(variance + 1e-5)) * w.gamma[d]! + w.beta[d]!;
  }
  const project = (W: Float32Array, b: Float32Array, input: Float64Array) => {
    const out = new Float64Array(T * D);
    for (let t = 0; t < T; t++)
      for (let o = 0; o < D; o++) {
        let s = b[o]!;
        for (let i = 0; i < D; i++) s += input[t * D + i]! * W[i * D + o]!;
        out[t * D + o] = s;
      }
    return out;
  };
  const q = project(w.wq, w.bq, ln);
  const k = project(w.wk, w.bk, ln);
  const v = project(w.wv, w.bv, ln);
  const ctx = new Float64Array(T * D);
  const clsRow = new Float32Array(N);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < T; i++) {
      const logits = new Float64Array(T);
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let e = 0; e < dh; e++) s += q[i * D + h * dh + e]! * k[j * D + h * dh + e]!;
        logits[j] = s / Math.sqrt(dh);
      }
      if (i === 0 && spec.cls) for (let j = 1; j < T; j++) clsRow[j - 1]! += logits[j]! / H;
      const max = Math.max(...logits);
      let z = 0;
      for (let j = 0; j < T; j++) z += Math.exp(logits[j]! - max);
      for (let j = 0; j < T; j++) {
        const p = Math.exp(logits[j]! - max) / z;
        for (let e = 0; e < dh; e++) ctx[i * D + h * dh + e]! += p * v[j * D + h * dh + e]!;
      }
    }
  }
  const o = project(w.wo, w.bo, ctx);
  const features = new Float32Array(T * D);
  for (let i = 0; i < T * D; i++) features[i] = x0[i]! + o[i]!;
  return { features, clsRow };
}
