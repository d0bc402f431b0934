import { ShapeError, UsageError } from '../core/errors.js';
import { mergeTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { checkInteger } from '../core/validate.js';

/**
 * Temporal merging of video frames, as in MARC's visual memory retriever:
 * while there are more frames than the budget, find the most similar pair of
 * ADJACENT frames and replace both by their average H = (Ha + Hb) / 2.
 * Similarity = mean over patch positions of the cosine between the two
 * frames' tokens at that position. Pure numerics: no I/O.
 *
 * Cost is one pass over P·d values per pair, and after a merge only the two
 * neighbouring similarities change, so the whole run is O(n·P·d): a banded
 * problem where a GEMM (all n² pairs) would do about n/3 times more work.
 * (Pre-normalising every frame was measured slower: the extra n·P·d copies
 * cost more in allocation than they save in arithmetic.)
 */

/** One frame: P tokens × d, row-major. */
export type FrameFeatures = Float32Array;

export interface TemporalMergeResult {
  /** Merged frames in temporal order (each P×d). */
  features: FrameFeatures[];
  /** For each merged frame, the original frame indices it covers (contiguous, ascending). */
  groups: number[][];
  /** Similarity of each merge performed, in order (for inspection/tests). */
  mergedSimilarities: number[];
  /** Each merge performed, in order: the index (in the frame list at that moment) of the pair's first frame. */
  steps: number[];
}

/**
 * Mean per-patch cosine between two frames of P tokens × d.
 * Zero-norm patches contribute 0.
 *
 * @example
 * framePatchSimilarity(Float32Array.of(1, 0, 0, 1), Float32Array.of(1, 0, 1, 0), 2); // (1 + 0) / 2 = 0.5
 */
export function framePatchSimilarity(a: FrameFeatures, b: FrameFeatures, d: number): number {
  if (a.length !== b.length)
    throw new ShapeError(`framePatchSimilarity: frames have ${a.length} and ${b.length} values`);
  const patches = a.length / d;
  let total = 0;
  for (let p = 0; p < patches; p++) {
    const base = p * d;
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let c = 0; c < d; c++) {
      const x = a[base + c]!;
      const y = b[base + c]!;
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    if (na > 0 && nb > 0) total += dot / Math.sqrt(na * nb);
  }
  return total / patches;
}

/**
 * Merges adjacent frames until `budget` remain (H = (Ha + Hb)/2, most similar
 * pair first, earliest pair on ties). Budget ≥ frame count returns the input.
 * With `quotas`, pairs merge only inside a segment until every segment is
 * down to its quota (the frames left are then Σ quota, not `budget`).
 *
 * @example
 * const { groups } = mergeAdjacentFrames([f0, f1, f2, f3], 4, 2); // e.g. [[0, 1], [2, 3]]
 */
export function mergeAdjacentFrames(
  frames: FrameFeatures[],
  d: number,
  budget: number,
  quotas?: SegmentQuotas,
): TemporalMergeResult {
  checkInteger(budget, 'frame budget', { min: 1, where: 'temporal merge' });
  if (frames.length === 0) throw new ShapeError('temporal merge: no frames');
  const size = frames[0]!.length;
  for (const [i, f] of frames.entries()) {
    if (f.length !== size)
      throw new ShapeError(
        `temporal merge: frame ${i} has ${f.length} values, expected ${size} (all frames need the same token grid)`,
      );
    if (size % d !== 0)
      throw new ShapeError(`temporal merge: frame ${i} has ${f.length} values, not a multiple of d = ${d}`);
  }
  const features = frames.map((f) => f);
  const groups = frames.map((_, i) => [i]);
  const segmentOfGroup = quotas ? checkQuotas(quotas, frames.length) : undefined;
  const groupsLeft = quotas ? quotas.quota.map((_, q) => segmentOfGroup!.filter((s) => s === q).length) : [];
  const target = quotas ? quotas.quota.reduce((a, b) => a + b, 0) : budget;
  if (frames.length <= target) return { features, groups, mergedSimilarities: [], steps: [] };
  const sims: number[] = [];
  for (let i = 0; i + 1 < features.length; i++) sims.push(framePatchSimilarity(features[i]!, features[i + 1]!, d));
  const mergedSimilarities: number[] = [];
  const steps: number[] = [];
  // With quotas a pair may merge only inside one segment that still has more groups than its quota.
  const mergeable = (i: number) =>
    !segmentOfGroup ||
    (segmentOfGroup[i] === segmentOfGroup[i + 1] &&
      groupsLeft[segmentOfGroup[i]!]! > quotas!.quota[segmentOfGroup[i]!]!);
  while (features.length > target) {
    let best = -1;
    for (let i = 0; i < sims.length; i++) if (mergeable(i) && (best < 0 || sims[i]! > sims[best]!)) best = i;
    if (segmentOfGroup) {
      groupsLeft[segmentOfGroup[best]!]!--;
      segmentOfGroup.splice(best, 1);
    }
    mergedSimilarities.push(sims[best]!);
    steps.push(best);
    const h = averagePair(features, best);
    groups.splice(best, 2, [...groups[best]!, ...groups[best + 1]!]);
    sims.splice(best, 1);
    if (best > 0) sims[best - 1] = framePatchSimilarity(features[best - 1]!, h, d);
    if (best < features.length - 1) sims[best] = framePatchSimilarity(h, features[best + 1]!, d);
  }
  return { features, groups, mergedSimilarities, steps };
}

/**
 * Per-segment frame quotas for mergeAdjacentFrames: `segment[f]` is frame f's
 * segment (0, 1, … non-decreasing), `quota[s]` ≥ 1 how many merged frames
 * segment s ends with (at most its frame count). Merges never cross a
 * segment boundary, so every segment stays represented.
 */
export interface SegmentQuotas {
  segment: ArrayLike<number>;
  quota: number[];
}

/** Validates quotas; returns each frame's segment as a mutable list (spliced as groups merge). */
function checkQuotas(quotas: SegmentQuotas, frameCount: number): number[] {
  if (quotas.segment.length !== frameCount)
    throw new ShapeError(
      `temporal merge: quotas name a segment for ${quotas.segment.length} frames, expected ${frameCount}`,
    );
  const segmentOf = Array.from(quotas.segment);
  const counts = quotas.quota.map(() => 0);
  segmentOf.forEach((s, f) => {
    if (!(Number.isInteger(s) && s >= 0 && s < quotas.quota.length) || (f > 0 && s < segmentOf[f - 1]!)) {
      throw new ShapeError(
        `temporal merge: frame ${f} has segment ${s}; segments must be non-decreasing integers in [0, ${quotas.quota.length})`,
      );
    }
    counts[s]!++;
  });
  quotas.quota.forEach((q, s) => {
    if (!(Number.isInteger(q) && q >= 1 && q <= counts[s]!))
      throw new UsageError(
        `temporal merge: segment ${s} has ${counts[s]} frames, its quota must be an integer in [1, ${counts[s]}], got ${q}`,
      );
  });
  return segmentOf;
}

/** Replaces frames[at] and frames[at + 1] by their average (MARC's H = (Ha + Hb) / 2); returns it. */
function averagePair(frames: FrameFeatures[], at: number): FrameFeatures {
  const a = frames[at]!;
  const b = frames[at + 1]!;
  const h = new Float32Array(a.length);
  for (let c = 0; c < a.length; c++) h[c] = (a[c]! + b[c]!) / 2;
  frames.splice(at, 2, h);
  return h;
}

/**
 * Temporal merging on a frame TokenSet (sources of kind 'frame', each with the
 * same rows×cols, tokens grouped by frame in order): merges down to
 * `frames` frames. Token p of every frame in a group goes into output token p
 * of that group; features are the MARC running average, not the size-weighted
 * mean (extra tensors replay the same averages); positions and source come
 * from the group's first (earliest) frame.
 *
 * @example
 * const { tokens, stats } = temporalMerge(videoTokens, { frames: 4 });
 * stats.groups; // [[0,1,2],[3],[4,5],[6,7]]
 */
export function temporalMerge(tokens: TokenSet, options: { frames: number; quotas?: SegmentQuotas }): Reduction {
  const frameTokens = framesOf(tokens);
  const { d } = tokens;
  const perFrame = frameTokens[0]!.length;
  const frames = frameTokens.map((indices) => {
    const f = new Float32Array(perFrame * d);
    indices.forEach((t, p) => f.set(tokens.data.subarray(t * d, (t + 1) * d), p * d));
    return f;
  });
  const result = mergeAdjacentFrames(frames, d, Math.min(options.frames, frames.length), options.quotas);
  const assign = new Int32Array(tokens.n);
  for (const [g, members] of result.groups.entries()) {
    for (const f of members) frameTokens[f]!.forEach((t, p) => (assign[t] = g * perFrame + p));
  }
  const outputCount = result.groups.length * perFrame;
  const data = new Float32Array(outputCount * d);
  result.features.forEach((f, g) => data.set(f, g * perFrame * d));
  const representative = new Int32Array(outputCount);
  result.groups.forEach((members, g) =>
    frameTokens[members[0]!]!.forEach((t, p) => (representative[g * perFrame + p] = t)),
  );
  const combine = (values: Float32Array, width: number): Float32Array => {
    const replay = frameTokens.map((indices) => {
      const f = new Float32Array(perFrame * width);
      indices.forEach((t, p) => f.set(values.subarray(t * width, (t + 1) * width), p * width));
      return f;
    });
    for (const at of result.steps) averagePair(replay, at);
    const out = new Float32Array(outputCount * width);
    replay.forEach((f, g) => out.set(f, g * perFrame * width));
    return out;
  };
  const merged = mergeTokens(tokens, assign, outputCount, { features: data, representative, combine });
  return {
    tokens: merged,
    assign,
    representative,
    stats: {
      frames_in: frames.length,
      frames_out: result.groups.length,
      groups: result.groups,
      merged_similarities: result.mergedSimilarities,
    },
  };
}

/** Token indices of each frame source, validated to share one grid. */
function framesOf(tokens: TokenSet): number[][] {
  const bySource = new Map<number, number[]>();
  for (let i = 0; i < tokens.n; i++) {
    const s = tokens.source[i]!;
    if (tokens.sources[s]!.kind !== 'frame')
      throw new ShapeError(
        `temporal merge: token ${i} comes from a ${tokens.sources[s]!.kind} source, expected frames`,
      );
    let list = bySource.get(s);
    if (!list) bySource.set(s, (list = []));
    list.push(i);
  }
  const order = [...bySource.keys()];
  for (let k = 1; k < order.length; k++) {
    if (order[k]! < order[k - 1]!) throw new ShapeError('temporal merge: frames must appear in temporal order');
  }
  const frames = order.map((s) => bySource.get(s)!);
  if (frames.length === 0) throw new ShapeError('temporal merge: no frames');
  for (const [k, f] of frames.entries()) {
    if (f.length !== frames[0]!.length)
      throw new ShapeError(
        `temporal merge: frame ${k} has ${f.length} tokens, expected ${frames[0]!.length} like frame 0`,
      );
  }
  return frames;
}
