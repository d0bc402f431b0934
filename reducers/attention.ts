import type { TokenSet } from '../core/tokenset.js';

/**
 * Per-token importance for the methods that rank by the encoder's attention
 * (vispruner's CLS attention, fastvid's attention-pooling weights):
 *
 * - the token set's `score` when it has one (CLS attention from an encoder
 *   or a bundle, the `scores` tensor of a tokens file);
 * - otherwise a stand-in for "attention of a global query": the cosine of
 *   each token to its source's global vector — the source's CLS vector when
 *   it has one, else the mean of the source's tokens (a plain .npy has neither
 *   scores nor CLS vectors).
 *
 * `from` says which one was used (it goes into the reduction's stats).
 *
 * @example
 * const { scores, from } = attentionScores(tokens); // from: 'score' | 'cls-cosine' | 'mean-cosine'
 */
export function attentionScores(tokens: TokenSet): {
  scores: Float32Array;
  from: 'score' | 'cls-cosine' | 'mean-cosine';
} {
  if (tokens.score) return { scores: tokens.score, from: 'score' };
  const { n, d, data } = tokens;
  const sourceCount = tokens.sources.length;
  const globals = new Float64Array(sourceCount * d);
  const useCls = tokens.sources.every((s) => s.cls !== undefined);
  if (useCls) {
    tokens.sources.forEach((s, k) => globals.set(s.cls!, k * d));
  } else {
    const counts = new Float64Array(sourceCount);
    for (let i = 0; i < n; i++) {
      const s = tokens.source[i]!;
      counts[s]!++;
      const base = i * d;
      const g = s * d;
      for (let c = 0; c < d; c++) globals[g + c]! += data[base + c]!;
    }
    for (let s = 0; s < sourceCount; s++) for (let c = 0; c < d; c++) globals[s * d + c]! /= Math.max(1, counts[s]!);
  }
  const globalNorm = new Float64Array(sourceCount);
  for (let s = 0; s < sourceCount; s++) {
    let sum = 0;
    for (let c = 0; c < d; c++) sum += globals[s * d + c]! * globals[s * d + c]!;
    globalNorm[s] = Math.sqrt(sum);
  }
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = tokens.source[i]! * d;
    const base = i * d;
    let dot = 0;
    let norm = 0;
    for (let c = 0; c < d; c++) {
      const v = data[base + c]!;
      dot += v * globals[g + c]!;
      norm += v * v;
    }
    const denom = Math.sqrt(norm) * globalNorm[tokens.source[i]!]!;
    scores[i] = denom > 0 ? dot / denom : 0;
  }
  return { scores, from: useCls ? 'cls-cosine' : 'mean-cosine' };
}
