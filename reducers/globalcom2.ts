import { InputError, UsageError } from '../core/errors.js';
import { cosineSimilarity, matrix, topK } from '../core/linalg.js';
import { resolveBudget, selectTokens, type AnyResInfo, type Reduction, type TokenSet } from '../core/tokenset.js';
import { anyresUnpadLayout, bilinearResize, type UnpadLayout } from './anyres-unpad.js';
import type { BaseReduceOptions, Reducer } from './types.js';
import { checkNumber } from '../core/validate.js';

/**
 * Options of `globalcom2`. The retention ratio R is `ratio` (or budget / n
 * for a `budget`), R ∈ (0, 1]; the paper evaluates R ∈ {0.75, 0.5, 0.25, 0.1}.
 */
export interface GlobalCom2Options extends BaseReduceOptions {
  /**
   * Softmax temperature of the crop-importance allocation (reference: 10).
   * Range (0, ∞); larger spreads the budget more evenly over crops.
   */
  temperature?: number;
  /**
   * Order of the kept crop tokens: 'bundle' (default) crop 0's, then crop 1's,
   * … each in raster order; 'canvas' in raster order of the whole stitched
   * image, across crops — the order LLaVA-NeXT feeds them to the LLM (minus
   * its newline tokens).
   */
  order?: 'bundle' | 'canvas';
}

/** Reference default `temperature=10.0` of `generate_scale_for_crop_features`. */
export const GLOBALCOM2_TEMPERATURE = 10;

/**
 * `globalcom2` — GlobalCom² ("Thumbnail-guided" AnyRes compression for
 * LLaVA-NeXT), following the public reference code (xuyang-liu16/GlobalCom2,
 * llava_arch.py) step by step:
 *
 * 1. thumbnail: keep the top ⌊T·R⌋ tokens by CLS score, in descending score order;
 * 2. crop budgets: split the thumbnail score map into the crop grid
 *    (patch_h = side // rows, last row/col clamped), sum per region → s_j;
 *    σ = exp((s − max s)/τ) / (Σ exp(…) + 1e-8); r_j = min(1, R·(1 + σ_j − mean σ));
 * 3. per crop j: score = L2norm(local CLS scores on the unpadded region)
 *    + L2norm(thumbnail scores bilinearly resized, align_corners = false, to the
 *    unpadded canvas and cut per crop); keep the top ⌊N_valid_j · r_j⌋ in raster order.
 *
 * Without CLS scores, each tile's scores are s_i = −cos(x_i, mean of the tile).
 * The output count follows these floors, so it need not equal R·n.
 * `stats.crop_ratios` holds r_j; `keep` lists the thumbnail picks, then each
 * crop's (or, with `order: 'canvas'`, the crop picks in stitched-image order).
 *
 * @example
 * const bundle = await loadTokens('bundle.safetensors'); // thumbnail + 2×2 crops
 * const { keep, stats } = await globalcom2Reducer.run(bundle, { ratio: 0.25 });
 * stats.crop_ratios; // e.g. [0.2541, 0.2612, 0.2377, 0.2470]
 */
export const globalcom2Reducer: Reducer<GlobalCom2Options> = {
  name: 'globalcom2',
  summary: 'GlobalCom²: thumbnail-guided pruning of AnyRes crops (needs a bundle)',
  kind: 'select',
  scope: 'anyres',
  options: {
    temperature: {
      type: 'number',
      description: 'softmax temperature of the per-crop retention allocation',
      default: GLOBALCOM2_TEMPERATURE,
    },
    order: {
      type: 'string',
      description:
        'kept crop token order: bundle (crop by crop) or canvas (image raster order across crops, as LLaVA-NeXT)',
      default: 'bundle',
    },
  },
  async run(tokens: TokenSet, options: GlobalCom2Options): Promise<Reduction> {
    const { ratio } = resolveBudget(tokens.n, options, 'globalcom2');
    const temperature = options.temperature ?? GLOBALCOM2_TEMPERATURE;
    checkNumber(temperature, 'temperature', { gt: 0, where: 'globalcom2' });
    const order = options.order ?? 'bundle';
    if (order !== 'bundle' && order !== 'canvas')
      throw new UsageError(`globalcom2: order must be "bundle" or "canvas", got ${JSON.stringify(order)}`);
    const info = checkBundleLayout(tokens);
    const T = info.patchRows * info.patchCols;
    const C = info.gridRows * info.gridCols;
    const tileScores: Float64Array[] = [];
    for (let t = 0; t <= C; t++) tileScores.push(await tileImportance(tokens, t * T, T));

    const thumbnailScores = tileScores[0]!;
    const thumbnailKeep = topK(thumbnailScores, Math.floor(T * ratio));
    const cropRatios = cropRetentionRatios(thumbnailScores, info, ratio, temperature);
    const layout = anyresUnpadLayout(info);
    const globalPerCrop = thumbnailScoresPerCrop(thumbnailScores, info, layout);

    const keep: number[] = Array.from(thumbnailKeep);
    const cropKept: number[] = [];
    const cropValid: number[] = [];
    for (let c = 0; c < C; c++) {
      const region = layout.crops[c]!;
      const local = validRegionValues(tileScores[c + 1]!, region, info.patchCols);
      const combined = addNormalized(local, globalPerCrop[c]!);
      const budget = Math.floor(combined.length * cropRatios[c]!);
      const picked = topK(combined, budget).sort();
      cropValid.push(combined.length);
      cropKept.push(budget);
      const base = (c + 1) * T;
      for (const p of picked) {
        const r = region.top + Math.floor(p / region.width);
        const col = region.left + (p % region.width);
        keep.push(base + r * info.patchCols + col);
      }
    }
    if (keep.length === 0) {
      // The reference's floors can keep nothing at tiny R; an empty output would only fail later.
      throw new UsageError(
        `globalcom2: ratio ${ratio} keeps no token (thumbnail ⌊${T}·R⌋ = 0 and every crop ⌊N_valid·r_j⌋ = 0); use a larger ratio or budget`,
      );
    }
    if (order === 'canvas') sortCropsByCanvas(keep, thumbnailKeep.length, info);
    const keepArray = Int32Array.from(keep);
    return {
      tokens: selectTokens(tokens, keepArray),
      keep: keepArray,
      stats: {
        ratio,
        crop_ratios: cropRatios,
        thumbnail_kept: thumbnailKeep.length,
        crop_kept: cropKept,
        crop_valid: cropValid,
        scores: tokens.score ? 'cls' : 'mean-cosine',
      },
    };
  },
};

/** Sorts keep[from..] (crop token indices of a bundle) by their position on the stitched crop canvas. */
function sortCropsByCanvas(keep: number[], from: number, info: AnyResInfo): void {
  const T = info.patchRows * info.patchCols;
  const canvasCols = info.gridCols * info.patchCols;
  const canvasIndex = (i: number): number => {
    const crop = Math.floor(i / T) - 1;
    const local = i % T;
    const row = Math.floor(crop / info.gridCols) * info.patchRows + Math.floor(local / info.patchCols);
    const col = (crop % info.gridCols) * info.patchCols + (local % info.patchCols);
    return row * canvasCols + col;
  };
  const crops = keep.slice(from).sort((a, b) => canvasIndex(a) - canvasIndex(b));
  keep.splice(from, crops.length, ...crops);
}

/** Checks the token set is an unreduced AnyRes bundle in bundle order. */
function checkBundleLayout(tokens: TokenSet): AnyResInfo {
  const info = tokens.anyres;
  if (!info) {
    throw new InputError(
      'globalcom2: input has no AnyRes information (field anyres: needs a bundle .safetensors with thumbnail, crops, grid and image_size)',
      'E_BUNDLE',
    );
  }
  const T = info.patchRows * info.patchCols;
  const C = info.gridRows * info.gridCols;
  if (tokens.n !== T * (C + 1)) {
    throw new InputError(
      `globalcom2: an AnyRes bundle of ${info.gridRows}x${info.gridCols} crops of ${info.patchRows}x${info.patchCols} tokens needs n = ${T * (C + 1)} tokens, got ${tokens.n} (was it already reduced?)`,
      'E_BUNDLE',
    );
  }
  for (let i = 0; i < tokens.n; i++) {
    const tile = Math.floor(i / T);
    const local = i - tile * T;
    const src = tokens.sources[tokens.source[i]!]!;
    const expectedKind = tile === 0 ? 'thumbnail' : 'crop';
    if (
      src.kind !== expectedKind ||
      tokens.row[i] !== Math.floor(local / info.patchCols) ||
      tokens.col[i] !== local % info.patchCols
    ) {
      throw new InputError(
        `globalcom2: token ${i} is not in bundle order (expected ${expectedKind} token at row ${Math.floor(local / info.patchCols)}, col ${local % info.patchCols})`,
        'E_BUNDLE',
      );
    }
  }
  return info;
}

/** One tile's importance: its CLS scores, or −cos(x_i, tile mean) without them. */
async function tileImportance(tokens: TokenSet, start: number, count: number): Promise<Float64Array> {
  if (tokens.score) return Float64Array.from(tokens.score.subarray(start, start + count));
  const { d } = tokens;
  const tile = matrix(count, d, tokens.data.subarray(start * d, (start + count) * d));
  const mean = new Float64Array(d);
  for (let i = 0; i < count; i++) for (let c = 0; c < d; c++) mean[c]! += tile.data[i * d + c]!;
  const meanRow = matrix(
    1,
    d,
    Float32Array.from(mean, (v) => v / count),
  );
  const sims = await cosineSimilarity(tile, meanRow);
  return Float64Array.from(sims.data, (v) => -v);
}

/**
 * The reference's `generate_scale_for_crop_features`: per-crop sums of the
 * thumbnail score map, softmax with temperature and its +1e-8, then
 * r_j = min(1, R·(1 + σ_j − mean σ)).
 *
 * @example
 * cropRetentionRatios(scores576, { gridRows: 2, gridCols: 2, … }, 0.25, 10); // 4 ratios around 0.25
 */
export function cropRetentionRatios(
  thumbnailScores: ArrayLike<number>,
  info: AnyResInfo,
  ratio: number,
  temperature = GLOBALCOM2_TEMPERATURE,
): number[] {
  // The reference assumes a square thumbnail grid (side = √T); rows/cols generalise it.
  const side = info.patchCols;
  const patchWidth = Math.max(Math.floor(info.patchCols / info.gridCols), 1);
  const patchHeight = Math.max(Math.floor(info.patchRows / info.gridRows), 1);
  const count = info.gridRows * info.gridCols;
  const sums = new Float64Array(count);
  for (let idx = 0; idx < thumbnailScores.length; idx++) {
    const i = Math.floor(idx / side);
    const j = idx % side;
    const pi = Math.min(Math.floor(i / patchHeight), info.gridRows - 1);
    const pj = Math.min(Math.floor(j / patchWidth), info.gridCols - 1);
    sums[pi * info.gridCols + pj]! += thumbnailScores[idx]!;
  }
  let max = -Infinity;
  for (const s of sums) if (s > max) max = s;
  const exps = Array.from(sums, (s) => Math.exp((s - max) / temperature));
  const total = exps.reduce((a, b) => a + b, 0);
  const softmax = exps.map((e) => e / (total + 1e-8));
  const mean = softmax.reduce((a, b) => a + b, 0) / count;
  return softmax.map((s) => Math.min(ratio * (1 + s - mean), 1));
}

/**
 * The thumbnail score map resized to the unpadded canvas and cut per crop,
 * with the reference's offsets (`interpolate_and_split_cls_attn_scores`):
 * columns advance by each crop's width, rows by the height of the first crop
 * of each grid row.
 */
function thumbnailScoresPerCrop(thumbnailScores: Float64Array, info: AnyResInfo, layout: UnpadLayout): Float64Array[] {
  const outRows = layout.rowEnd - layout.rowStart;
  const outCols = layout.colEnd - layout.colStart;
  const resized = bilinearResize(thumbnailScores, info.patchRows, info.patchCols, outRows, outCols);
  const perCrop: Float64Array[] = [];
  let currentH = 0;
  for (let gr = 0; gr < info.gridRows; gr++) {
    let currentW = 0;
    for (let gc = 0; gc < info.gridCols; gc++) {
      const { width, height } = layout.crops[gr * info.gridCols + gc]!;
      const values = new Float64Array(width * height);
      for (let r = 0; r < height; r++) {
        for (let c = 0; c < width; c++) {
          const rr = currentH + r;
          const cc = currentW + c;
          // Out-of-canvas reads can only happen in the reference's degenerate
          // all-padding layouts; PyTorch slicing would shorten the crop there.
          values[r * width + c] = rr < outRows && cc < outCols ? resized[rr * outCols + cc]! : 0;
        }
      }
      perCrop.push(values);
      currentW += width;
    }
    currentH += layout.crops[gr * info.gridCols]!.height;
  }
  return perCrop;
}

/** A tile's values on its valid rectangle, in raster order. */
function validRegionValues(
  values: Float64Array,
  region: { top: number; left: number; height: number; width: number },
  cols: number,
): Float64Array {
  const out = new Float64Array(region.height * region.width);
  for (let r = 0; r < region.height; r++) {
    for (let c = 0; c < region.width; c++)
      out[r * region.width + c] = values[(region.top + r) * cols + region.left + c]!;
  }
  return out;
}

/** L2-normalised a + L2-normalised b (F.normalize, eps 1e-12). */
function addNormalized(a: Float64Array, b: Float64Array): Float64Array {
  const norm = (v: Float64Array): number => Math.max(Math.sqrt(v.reduce((s, x) => s + x * x, 0)), 1e-12);
  const na = norm(a);
  const nb = norm(b);
  return a.map((x, i) => x / na + b[i]! / nb);
}
