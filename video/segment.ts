import { UsageError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import { blockFrames, type FrameBlockSource } from '../reducers/frame-blocks.js';
import { frameSimilarityBlocks } from '../reducers/temporal-merge.js';

/**
 * Event segmentation: a video's frame sequence is cut into clips where the
 * content changes. Two rules, united: cut at the `segments − 1` least similar
 * adjacent-frame transitions (so a video always yields about the requested
 * number of events, even when changes are gradual), and cut wherever the
 * similarity of adjacent frames drops below τ (so every hard scene change is
 * a boundary, however many there are). Pure numerics.
 */

/** A run of consecutive sampled frames [start, end). */
export interface FrameRange {
  start: number;
  end: number;
}

export interface SegmentOptions {
  /** Target number of events from the least-similar rule (default ceil(frames / 8)). */
  segments?: number;
  /** Cut wherever adjacent similarity < τ (default 0.8; see docs/video.md for how it was chosen). */
  threshold?: number;
}

/**
 * Cosine of two vectors (0 when either is zero).
 *
 * @example
 * cosine(Float32Array.of(1, 0), Float32Array.of(1, 1)); // 0.7071…
 */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/**
 * Splits frames [0, similarities.length + 1) into clips, given the
 * similarity of each adjacent pair (similarities[i] is between frame i and i+1).
 *
 * @example
 * segmentBySimilarity([0.99, 0.2, 0.98, 0.97, 0.5], { segments: 2, threshold: 0.6 });
 * // cuts after frames 1 (least similar, and < τ) and 4 (< τ): [{0,2},{2,5},{5,6}]
 */
export function segmentBySimilarity(similarities: number[], options: SegmentOptions = {}): FrameRange[] {
  const frames = similarities.length + 1;
  const segments = options.segments ?? Math.ceil(frames / 8);
  const threshold = options.threshold ?? 0.8;
  checkInteger(segments, 'segments', { min: 1 });
  if (!Number.isFinite(threshold)) throw new UsageError(`segment threshold must be a number, got ${threshold}`);
  const cuts = new Set<number>();
  // Least similar transitions first; earlier transition on ties (stable sort).
  const order = similarities.map((_, i) => i).sort((a, b) => similarities[a]! - similarities[b]! || a - b);
  for (const i of order.slice(0, Math.min(segments - 1, similarities.length))) cuts.add(i);
  similarities.forEach((s, i) => {
    if (s < threshold) cuts.add(i);
  });
  const ranges: FrameRange[] = [];
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    ranges.push({ start, end: cut + 1 });
    start = cut + 1;
  }
  ranges.push({ start, end: frames });
  return ranges;
}

/**
 * Adjacent-frame similarities from per-frame embeddings (cosine).
 *
 * @example
 * adjacentSimilarities([Float32Array.of(1, 0), Float32Array.of(1, 0), Float32Array.of(0, 1)]); // [1, 0]
 */
export function adjacentSimilarities(embeddings: Float32Array[]): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < embeddings.length; i++) out.push(cosine(embeddings[i]!, embeddings[i + 1]!));
  return out;
}

/**
 * Segmentation of a video read a block of frames at a time: the adjacent
 * similarities (mean per-patch cosine, as temporal merging measures them)
 * come from one streaming pass over the source (O(block) features plus one
 * number per frame), then {@link segmentBySimilarity} cuts. The pipeline
 * segments its encoded frames this way.
 *
 * @example
 * const clips = await segmentFrameBlocks(await openNpyFrames('hour.npy'), { segments: 60 });
 */
export async function segmentFrameBlocks(
  source: FrameBlockSource,
  options: SegmentOptions = {},
  block = blockFrames(source),
): Promise<FrameRange[]> {
  return segmentBySimilarity(await frameSimilarityBlocks(source, block), options);
}
