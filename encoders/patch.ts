import { ShapeError, UsageError } from '../core/errors.js';
import type { EncodedTile, RgbImage, VisionEncoder } from './types.js';
import { checkInteger } from '../core/validate.js';

/**
 * The built-in `patch` encoder: a weight-free, deterministic baseline that
 * describes each patch with hand-made statistics. It is NOT a semantic model —
 * two patches are close when they look alike (colour, texture direction,
 * layout), not when they show the same thing. It exists so every pipeline
 * (reducers, overlays, video) runs without downloading weights, and as a
 * floor that learned encoders must beat.
 *
 * Descriptor per patch (PATCH_DESCRIPTOR_DIM = 58 values, then L2-normalised):
 *   [0, 9)   colour moments per R, G, B: mean, standard deviation, cube root
 *            of the third central moment (all in [0, 1] intensity units)
 *   [9, 41)  gradient-orientation histogram: 2×2 spatial cells × 8 signed
 *            orientation bins of the luminance gradient (central differences),
 *            magnitude-weighted with linear interpolation between bins,
 *            averaged over the cell's pixels, ×2
 *   [41, 57) luminance layout: 4×4 block means minus the patch mean
 *   [57]     constant 0.25, so a flat black patch still has a direction
 * Importance: there is no CLS token, so s_i = −cos(x_i, mean of the tile's
 * descriptors) — GlobalCom²'s rule for encoders without CLS: patches unlike
 * the rest of the tile score highest.
 */

export const PATCH_DESCRIPTOR_DIM = 58;
const ORIENTATION_BINS = 8;
const HOG_OFFSET = 9;
const LAYOUT_OFFSET = 41;
const BIAS_INDEX = 57;
const HOG_WEIGHT = 2;
const BIAS = 0.25;

export interface PatchEncoderOptions {
  /** Square input side in pixels (default 336, as CLIP ViT-L/14-336). */
  inputSize?: number;
  /** Patch side in pixels (default 14 → 24×24 patches per 336 tile). */
  patchSize?: number;
}

/**
 * Creates the weight-free `patch` encoder.
 *
 * @example
 * const encoder = createPatchEncoder(); // 336 px, 14 px patches
 * const [tile] = await encoder.encode([rgb336]);
 * tile.rows * tile.cols; // 576 tokens of dimension 58
 */
export function createPatchEncoder(options: PatchEncoderOptions = {}): VisionEncoder {
  const inputSize = options.inputSize ?? 336;
  const patchSize = options.patchSize ?? 14;
  checkInteger(patchSize, 'patch size', { min: 4, where: 'patch encoder', code: 'E_ENCODER' });
  if (!(Number.isInteger(inputSize) && inputSize >= patchSize && inputSize % patchSize === 0)) {
    throw new UsageError(
      `patch encoder: input size must be a positive multiple of the patch size ${patchSize}, got ${inputSize}`,
      'E_ENCODER',
    );
  }
  return {
    name: 'patch',
    inputSize,
    patchSize,
    dim: PATCH_DESCRIPTOR_DIM,
    hasCls: false,
    async encode(images: RgbImage[]): Promise<EncodedTile[]> {
      return images.map((image, i) => {
        if (
          image.width !== inputSize ||
          image.height !== inputSize ||
          image.data.length !== inputSize * inputSize * 3
        ) {
          throw new ShapeError(
            `patch encoder: image ${i} must be ${inputSize}x${inputSize} RGB (${inputSize * inputSize * 3} bytes), got ${image.width}x${image.height} with ${image.data.length} bytes`,
          );
        }
        return encodePatchTile(image, patchSize);
      });
    },
    async dispose() {},
  };
}

/**
 * Descriptors and scores of one tile (image sides must be multiples of patchSize).
 *
 * @example
 * const tile = encodePatchTile(rgb336, 14); // tile.rows === 24, tile.dim === 58
 */
export function encodePatchTile(image: RgbImage, patchSize: number): EncodedTile {
  const { width, height } = image;
  const rows = height / patchSize;
  const cols = width / patchSize;
  const luminance = toLuminance(image);
  const { magnitude, orientation } = luminanceGradients(luminance, width, height);
  const dim = PATCH_DESCRIPTOR_DIM;
  const features = new Float32Array(rows * cols * dim);
  for (let pr = 0; pr < rows; pr++) {
    for (let pc = 0; pc < cols; pc++) {
      const out = features.subarray((pr * cols + pc) * dim, (pr * cols + pc + 1) * dim);
      describePatch(image, luminance, magnitude, orientation, pc * patchSize, pr * patchSize, patchSize, out);
      normalizeInPlace(out);
    }
  }
  return { features, rows, cols, dim, scores: negativeCosineToMean(features, rows * cols, dim) };
}

function toLuminance(image: RgbImage): Float32Array {
  const { data, width, height } = image;
  const out = new Float32Array(width * height);
  for (let p = 0, q = 0; p < out.length; p++, q += 3)
    out[p] = (0.299 * data[q]! + 0.587 * data[q + 1]! + 0.114 * data[q + 2]!) / 255;
  return out;
}

/** Central-difference gradients (one-sided at the border); orientation in bin units [0, 8). */
function luminanceGradients(
  y: Float32Array,
  width: number,
  height: number,
): { magnitude: Float32Array; orientation: Float32Array } {
  const magnitude = new Float32Array(width * height);
  const orientation = new Float32Array(width * height);
  const binScale = ORIENTATION_BINS / (2 * Math.PI);
  for (let r = 0; r < height; r++) {
    const up = r > 0 ? r - 1 : r;
    const down = r < height - 1 ? r + 1 : r;
    for (let c = 0; c < width; c++) {
      const left = c > 0 ? c - 1 : c;
      const right = c < width - 1 ? c + 1 : c;
      const gx = (y[r * width + right]! - y[r * width + left]!) / Math.max(1, right - left);
      const gy = (y[down * width + c]! - y[up * width + c]!) / Math.max(1, down - up);
      const p = r * width + c;
      magnitude[p] = Math.sqrt(gx * gx + gy * gy);
      let angle = Math.atan2(gy, gx);
      if (angle < 0) angle += 2 * Math.PI;
      orientation[p] = (angle * binScale) % ORIENTATION_BINS;
    }
  }
  return { magnitude, orientation };
}

function describePatch(
  image: RgbImage,
  luminance: Float32Array,
  magnitude: Float32Array,
  orientation: Float32Array,
  x0: number,
  y0: number,
  size: number,
  out: Float32Array,
): void {
  const { data, width } = image;
  const { half, quarter } = cellTables(size);
  let r1 = 0,
    g1 = 0,
    b1 = 0,
    r2 = 0,
    g2 = 0,
    b2 = 0,
    r3 = 0,
    g3 = 0,
    b3 = 0;
  const hog = new Float64Array(4 * ORIENTATION_BINS);
  const hogCount = new Float64Array(4);
  const layout = new Float64Array(16);
  const layoutCount = new Float64Array(16);
  let lumSum = 0;
  for (let dy = 0; dy < size; dy++) {
    const cellRow = half[dy]! * 2;
    const blockRow = quarter[dy]! * 4;
    for (let dx = 0; dx < size; dx++) {
      const p = (y0 + dy) * width + (x0 + dx);
      const r = data[p * 3]! / 255;
      const g = data[p * 3 + 1]! / 255;
      const b = data[p * 3 + 2]! / 255;
      r1 += r;
      g1 += g;
      b1 += b;
      r2 += r * r;
      g2 += g * g;
      b2 += b * b;
      r3 += r * r * r;
      g3 += g * g * g;
      b3 += b * b * b;
      const cell = cellRow + half[dx]!;
      const o = orientation[p]!;
      const lower = Math.floor(o);
      const frac = o - lower;
      const m = magnitude[p]!;
      const bin = cell * ORIENTATION_BINS;
      hog[bin + lower]! += m * (1 - frac);
      hog[bin + (lower + 1 === ORIENTATION_BINS ? 0 : lower + 1)]! += m * frac;
      hogCount[cell]!++;
      const block = blockRow + quarter[dx]!;
      const y = luminance[p]!;
      layout[block]! += y;
      layoutCount[block]!++;
      lumSum += y;
    }
  }
  const sum = [r1, g1, b1];
  const sum2 = [r2, g2, b2];
  const sum3 = [r3, g3, b3];
  const count = size * size;
  for (let ch = 0; ch < 3; ch++) {
    const mean = sum[ch]! / count;
    // Central moments from raw sums: E[(v−μ)²] = E[v²] − μ², E[(v−μ)³] = E[v³] − 3μE[v²] + 2μ³.
    const variance = Math.max(0, sum2[ch]! / count - mean * mean);
    const third = sum3[ch]! / count - 3 * mean * (sum2[ch]! / count) + 2 * mean * mean * mean;
    out[ch * 3] = mean;
    out[ch * 3 + 1] = Math.sqrt(variance);
    out[ch * 3 + 2] = Math.cbrt(third);
  }
  for (let i = 0; i < hog.length; i++)
    out[HOG_OFFSET + i] = (HOG_WEIGHT * hog[i]!) / Math.max(1, hogCount[Math.floor(i / ORIENTATION_BINS)]!);
  const lumMean = lumSum / count;
  for (let b = 0; b < 16; b++)
    out[LAYOUT_OFFSET + b] = layoutCount[b]! > 0 ? layout[b]! / layoutCount[b]! - lumMean : 0;
  out[BIAS_INDEX] = BIAS;
}

const tableCache = new Map<number, { half: Uint8Array; quarter: Uint8Array }>();

/** Which half (0/1) and quarter (0–3) of a patch side each offset falls in. */
function cellTables(size: number): { half: Uint8Array; quarter: Uint8Array } {
  let tables = tableCache.get(size);
  if (!tables) {
    tables = {
      half: Uint8Array.from({ length: size }, (_, d) => Math.floor((d * 2) / size)),
      quarter: Uint8Array.from({ length: size }, (_, d) => Math.floor((d * 4) / size)),
    };
    tableCache.set(size, tables);
  }
  return tables;
}

function normalizeInPlace(v: Float32Array): void {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const scale = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let i = 0; i < v.length; i++) v[i]! *= scale;
}

/**
 * s_i = −cos(x_i, x̄) for n rows of dimension d (GlobalCom²'s score for
 * encoders without a CLS token). O(n·d): no GEMM needed.
 *
 * @example
 * negativeCosineToMean(Float32Array.of(1, 0, 1, 0, 0, 1), 3, 2); // ≈ [-0.894, -0.894, -0.447]
 */
export function negativeCosineToMean(features: Float32Array, n: number, d: number): Float32Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c]! += features[i * d + c]!;
  let meanNorm = 0;
  for (let c = 0; c < d; c++) {
    mean[c]! /= Math.max(1, n);
    meanNorm += mean[c]! * mean[c]!;
  }
  meanNorm = Math.sqrt(meanNorm);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let dot = 0;
    let norm = 0;
    for (let c = 0; c < d; c++) {
      const v = features[i * d + c]!;
      dot += v * mean[c]!;
      norm += v * v;
    }
    const denom = Math.sqrt(norm) * meanNorm;
    scores[i] = denom > 0 ? -dot / denom : 0;
  }
  return scores;
}
