import { pairedCosineNative } from '../core/linalg-kernels.js';
import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { arrayFrames, blockFrames, type FrameBlockSource, forEachBlock, tokenSetFrames } from './frame-blocks.js';
import type { BaseReduceOptions, Reducer } from './types.js';

/** Options of `evs`: only ratio/budget; the kept count is max(tokens per frame, budget). */
export type EvsOptions = BaseReduceOptions;

/** Dissimilarity vLLM gives every first-frame token so they always rank first. */
const FIRST_FRAME_DISSIMILARITY = 255;

/**
 * `evs` — Efficient Video Sampling as vLLM implements it
 * (vllm/multimodal/evs.py, `compute_retention_mask`), on a video token set
 * [T frames, N tokens, d] (merging, if any, already done):
 *
 * - dissimilarity of token p of frame t = 1 − cos(x[t, p], x[t−1, p]), with
 *   torch 2's cosine (x·y / (max(‖x‖, 1e-8)·max(‖y‖, 1e-8))); frame 0 gets 255, so it is
 *   always kept;
 * - kept count K = max(N, budget), budget = max(1, round(T·N·R));
 * - the K largest dissimilarities over the flattened [T·N] array, stable
 *   descending order (lower flat index first on ties);
 * - kept tokens in original order, each still in its frame (sources, grid
 *   positions and times unchanged).
 *
 * @example
 * const { keep, stats } = await evsReducer.run(video, { ratio: 0.1 }); // stats.kept_per_frame[0] === N
 */
export const evsReducer: Reducer<EvsOptions> = {
  name: 'evs',
  summary: 'EVS (vLLM): keep the tokens that changed most since the previous frame, all of frame 0, in original order',
  kind: 'select',
  scope: 'video',
  options: {},
  native: ['paired_cosine'],
  async run(tokens: TokenSet, options: EvsOptions): Promise<Reduction> {
    const { keep, stats } = await evsBlocks(tokenSetFrames(tokens, 'evs'), options);
    return { tokens: selectTokens(tokens, keep), keep, stats };
  },
};

/**
 * EVS over a frame-block source: the kept flat indices (ascending) and the
 * stats, reading `block` frames at a time. Block rule: a token's
 * dissimilarity needs only the previous frame (the last frame of the block
 * before is carried over), so one pass gives all T·N values (8 bytes each);
 * the top-K is global over them, exactly as in memory.
 *
 * @example
 * const { keep } = await evsBlocks(fileFrames, { ratio: 0.1 }); // then gatherRows(fileFrames, keep, …)
 */
export async function evsBlocks(
  source: FrameBlockSource,
  options: EvsOptions,
  block = blockFrames(source),
): Promise<{ keep: Int32Array; stats: Record<string, unknown> }> {
  const { frames, perFrame } = source;
  const n = frames * perFrame;
  const { budget, ratio } = resolveBudget(n, options, 'evs');
  const count = Math.max(perFrame, budget);
  const dissimilarity = await frameDissimilarityBlocks(source, block);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Typed-array sort with a comparator that breaks ties by index: the stable descending argsort.
  order.sort((a, b) => dissimilarity[b]! - dissimilarity[a]! || a - b);
  const keep = order.slice(0, count).sort();
  const keptPerFrame = new Array<number>(frames).fill(0);
  for (const i of keep) keptPerFrame[Math.floor(i / perFrame)]!++;
  return {
    keep,
    stats: { budget: count, ratio, frames, tokens_per_frame: perFrame, kept_per_frame: keptPerFrame },
  };
}

/**
 * 1 − cos between each token and the same token of the previous frame,
 * 255 for frame 0 ([frames·perFrame], flat index t·perFrame + p). The
 * cosines are one native graph over two overlapping views of the features
 * (frames 1…T−1 against frames 0…T−2), in float32 as vLLM computes them.
 *
 * @example
 * await frameDissimilarity(Float32Array.of(1, 0, 0, 1), 2, 1, 2); // [255, 1]
 */
export async function frameDissimilarity(
  data: Float32Array,
  frames: number,
  perFrame: number,
  d: number,
): Promise<Float64Array> {
  return frameDissimilarityBlocks(arrayFrames(data, frames, perFrame, d), frames);
}

/**
 * {@link frameDissimilarity} over a frame-block source, `block` frames at a
 * time: inside a block, frames 1… against 0… (two overlapping views); the
 * block's first frame against the previous block's last frame.
 */
export async function frameDissimilarityBlocks(source: FrameBlockSource, block: number): Promise<Float64Array> {
  const { perFrame, d } = source;
  const out = new Float64Array(source.frames * perFrame);
  out.fill(FIRST_FRAME_DISSIMILARITY, 0, perFrame);
  let previous: Float32Array | undefined;
  await forEachBlock(source, block, async (features, start, end) => {
    if (previous) {
      const cos = await pairedCosineNative(features.subarray(0, perFrame * d), previous, perFrame, d);
      for (let i = 0; i < perFrame; i++) out[start * perFrame + i] = 1 - cos[i]!;
    }
    const pairs = (end - start - 1) * perFrame;
    if (pairs > 0) {
      const cos = await pairedCosineNative(
        features.subarray(perFrame * d, (end - start) * perFrame * d),
        features.subarray(0, pairs * d),
        pairs,
        d,
      );
      for (let i = 0; i < pairs; i++) out[(start + 1) * perFrame + i] = 1 - cos[i]!;
    }
    // A copy: the source may reuse the block's buffer on the next read.
    previous = features.slice(pairs * d, (pairs + perFrame) * d);
  });
  return out;
}
