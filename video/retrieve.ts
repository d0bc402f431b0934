import { cosine, type FrameRange } from './segment.js';
import { checkInteger } from '../core/validate.js';

/**
 * Clip scoring. With a question and a dual encoder: cosine between the clip's
 * mean image embedding and the text embedding (MARC's retriever, CLIP-style).
 * Without one: a query-free score that favours clips that are both unlike the
 * rest of the video (novelty) and long (coverage), so a short budget still
 * sees the main distinct events. Pure numerics.
 */

/**
 * Mean of the embeddings of frames [start, end).
 *
 * @example
 * clipEmbedding([Float32Array.of(1, 0), Float32Array.of(0, 1)], { start: 0, end: 2 }); // Float32Array [0.5, 0.5]
 */
export function clipEmbedding(frameEmbeddings: Float32Array[], range: FrameRange): Float32Array {
  const d = frameEmbeddings[0]!.length;
  const mean = new Float32Array(d);
  for (let f = range.start; f < range.end; f++) {
    const e = frameEmbeddings[f]!;
    for (let c = 0; c < d; c++) mean[c]! += e[c]! / (range.end - range.start);
  }
  return mean;
}

/**
 * Query-driven scores: cos(mean clip embedding, text embedding) per clip.
 *
 * @example
 * textClipScores([Float32Array.of(1, 0), Float32Array.of(0, 1)], [{ start: 0, end: 1 }, { start: 1, end: 2 }], Float32Array.of(0, 1)); // [0, 1]
 */
export function textClipScores(frameEmbeddings: Float32Array[], clips: FrameRange[], text: Float32Array): number[] {
  return clips.map((clip) => cosine(clipEmbedding(frameEmbeddings, clip), text));
}

/**
 * Query-free scores in [0, 1]: ½·novelty/max novelty + ½·length/max length,
 * where novelty = 1 − cos(clip mean, whole-video mean). One clip scores 1.
 *
 * @example
 * // two equally long clips, the second unlike the video's average → it scores higher
 * noveltyCoverageScores(embeddings, [{ start: 0, end: 4 }, { start: 4, end: 8 }]);
 */
export function noveltyCoverageScores(frameEmbeddings: Float32Array[], clips: FrameRange[]): number[] {
  const all = clipEmbedding(frameEmbeddings, { start: 0, end: frameEmbeddings.length });
  const novelty = clips.map((clip) => Math.max(0, 1 - cosine(clipEmbedding(frameEmbeddings, clip), all)));
  const length = clips.map((clip) => clip.end - clip.start);
  const maxNovelty = Math.max(...novelty);
  const maxLength = Math.max(...length);
  return clips.map((_, i) => 0.5 * (maxNovelty > 0 ? novelty[i]! / maxNovelty : 1) + 0.5 * (length[i]! / maxLength));
}

/**
 * Indices of the k best clips (highest score; earlier clip on ties), returned in temporal order.
 *
 * @example
 * topClips([0.2, 0.9, 0.5, 0.7], 2); // [1, 3]
 */
export function topClips(scores: number[], k: number): number[] {
  checkInteger(k, 'clips', { min: 1 });
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}
