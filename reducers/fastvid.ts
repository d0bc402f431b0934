import { UsageError } from '../core/errors.js';
import { matmulABt, topK } from '../core/linalg.js';
import { batchedGramNative, meanPoolNative } from '../core/linalg-kernels.js';
import { mergeTokens, resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { attentionScores } from './attention.js';
import { blockFrames, type FrameBlockSource, forEachBlock, tokenSetFrames } from './frame-blocks.js';
import type { BaseReduceOptions, Reducer } from './types.js';
import { checkInteger, checkNumber, optionLabel } from '../core/validate.js';

/** Options of `fastvid`; defaults are the reference's (LunarShen/FastVID, LLaVA-OneVision). */
export interface FastVidOptions extends BaseReduceOptions {
  /** DySeg c: at least c segments — the c − 1 lowest adjacent-frame similarities are cuts (default 8). */
  segments?: number;
  /** DySeg τ: every adjacent-frame similarity below τ is a cut too (default 0.9). */
  cutThreshold?: number;
  /** STPrune d: share of each frame's kept tokens that are context (density-picked, merged) rather than salient (default 0.4). */
  contextShare?: number;
  /** DTM p: in a multi-frame segment every p-th frame, counted from its last, holds the segment's context tokens (default 4). */
  anchorStride?: number;
  /** DTM β: lower bound of the anchor token's own weight when it absorbs its cluster (default 0.6). */
  mergeWeight?: number;
}

export const FASTVID_DEFAULTS = {
  segments: 8,
  cutThreshold: 0.9,
  contextShare: 0.4,
  anchorStride: 4,
  mergeWeight: 0.6,
} as const;
/** Neighbours (self included) in the DPC-kNN local density. */
const DENSITY_NEIGHBOURS = 4;

/**
 * `fastvid` — FastVID (Shen et al., 2025, LunarShen/FastVID) on a video token
 * set [F frames, P tokens, d], as its reference code runs it:
 *
 * 1. DySeg: cosine of adjacent frames' global features (the frame's CLS
 *    vector, else the mean of its tokens); cut after the c − 1 least similar
 *    pairs and after every pair below τ; segments are the runs between cuts.
 * 2. Per frame m = ⌊budget / F⌋ tokens: m − ⌊m·d⌋ salient ones (highest
 *    attention, `score`), and ctx = ⌊m·d⌋ context ones.
 * 3. Anchor frames: in a segment of L frames, frames L−1, L−1−p, … each get
 *    ⌊ctx·L / ⌈L/p⌉⌋ context tokens (a one-frame segment: ctx).
 * 4. Density (DPC-kNN) per frame over its non-salient tokens: distance
 *    ‖x_i − x_j‖ / √d, density ρ_i = exp(−mean of the 4 smallest squared
 *    distances, self included), δ_i = distance to the nearest denser token
 *    (the frame's largest distance when none is denser), score ρ_i·δ_i;
 *    an anchor frame's context tokens are its top-scoring ones.
 * 5. DTM: every non-salient token of the segment (of the frame, for a
 *    one-frame segment) joins its most cosine-similar context token of each
 *    anchor frame; a context token becomes w·itself + (1 − w)·mean(joined)
 *    with w = max(1/(joined + 1), β).
 * 6. Output: salient + context tokens in original order, in their frames.
 *
 * `assign` counts each input once (sizes and origins): a non-salient token
 * goes to the context token it joined in the anchor frame whose p-frame
 * window holds it; features follow the reference, where it joins one context
 * token of every anchor frame of its segment.
 *
 * @example
 * const { keep, stats } = await fastvidReducer.run(video, { ratio: 0.1 }); // stats.segments: frames per segment
 */
export const fastvidReducer: Reducer<FastVidOptions> = {
  name: 'fastvid',
  summary: 'FastVID: dynamic temporal segmentation, then salient + density-picked context tokens merged per segment',
  kind: 'merge',
  scope: 'video',
  options: {
    segments: {
      type: 'integer',
      description: 'DySeg c: at least this many segments (c − 1 least similar frame pairs are cuts), ≥ 1',
      default: FASTVID_DEFAULTS.segments,
    },
    cutThreshold: {
      type: 'number',
      description: 'DySeg τ: adjacent frames less similar than τ are cut, in [-1, 1]',
      default: FASTVID_DEFAULTS.cutThreshold,
    },
    contextShare: {
      type: 'number',
      description: "STPrune d: share of each frame's kept tokens that are density-picked context tokens, in [0, 1]",
      default: FASTVID_DEFAULTS.contextShare,
    },
    anchorStride: {
      type: 'integer',
      description: 'DTM p: every p-th frame of a segment (from its end) holds its context tokens, ≥ 1',
      default: FASTVID_DEFAULTS.anchorStride,
    },
    mergeWeight: {
      type: 'number',
      description: 'DTM β: least weight of a context token in its merged feature, in [0, 1]',
      default: FASTVID_DEFAULTS.mergeWeight,
    },
  },
  native: ['batched_gram', 'mean_pool', 'gemm'],
  async run(tokens: TokenSet, options: FastVidOptions): Promise<Reduction> {
    const source = tokenSetFrames(tokens, 'fastvid');
    const { scores, from } = attentionScores(tokens);
    const { frames, perFrame } = source;
    const cls = Array.from({ length: frames }, (_, f) => tokens.sources[tokens.source[f * perFrame]!]!.cls);
    const hints: FrameHints = {
      scores: async (_features, start, end) => ({ scores: scores.subarray(start * perFrame, end * perFrame), from }),
      ...(cls.every((v) => v !== undefined) ? { cls: cls as Float32Array[] } : {}),
    };
    const plan = await fastvidBlocks(source, options, hints, { members: true });
    const { keep, stats } = plan;
    if (!plan.joinedBy) return { tokens: selectTokens(tokens, keep), keep, stats };
    const outputOf = new Int32Array(tokens.n).fill(-1);
    keep.forEach((i, o) => (outputOf[i] = o));
    // The DTM rule, for every extra tensor as for the features.
    const joinedBy = plan.joinedBy;
    const combine = (values: Float32Array, width: number): Float32Array => dtmMerge(values, width, keep, joinedBy, 0);
    const outputAssign = Int32Array.from(plan.assign, (target) => outputOf[target]!);
    const merged = mergeTokens(tokens, outputAssign, keep.length, {
      features: plan.features,
      representative: keep,
      combine,
    });
    return { tokens: merged, keep, assign: outputAssign, representative: keep, stats };
  },
};

/**
 * Longest segment fastvid works on at once (frames): a longer DySeg segment
 * is cut into runs of this many frames (the last run shorter). The DTM step
 * compares every token of a segment with the context tokens of each of its
 * anchor frames (cost L²·P·ctx·d / p for L frames), and the block path holds
 * one segment in memory; the reference samples at most 64 frames per video,
 * so it never meets a longer segment and nothing changes there.
 */
export const MAX_SEGMENT_FRAMES = 64;

/** What fastvid needs besides the features, for frames [start, end) of a block. */
export interface FrameHints {
  /** Per-token attention (or its stand-in) of the frames [start, end), from their features. */
  scores(
    features: Float32Array,
    start: number,
    end: number,
  ): Promise<{ scores: Float32Array; from: 'score' | 'cls-cosine' | 'mean-cosine' }>;
  /** Each frame's CLS vector, when every frame has one (DySeg uses it instead of the mean). */
  cls?: Float32Array[];
}

/** The fastvid result before it becomes a TokenSet: kept tokens, their merged features, who joined whom. */
export interface FastVidPlan {
  /** Kept input tokens, ascending. */
  keep: Int32Array;
  /** Output features [keep.length, d] (DTM-merged context tokens, salient ones as they are); empty with `onRows`. */
  features: Float32Array;
  /** For each input token, the kept input token it counts in (primary assignment). */
  assign: Int32Array;
  /** Tokens that joined each context token and its weight (only with `members`; undefined when no context tokens). */
  joinedBy?: Map<number, { members: number[]; weight: number }>;
  stats: Record<string, unknown>;
}

/**
 * FastVID over a frame-block source. Block rule: pass 1 reads blocks of
 * `blockFrames` frames for each frame's global feature and its tokens'
 * scores (O(frames·d + n) kept); DySeg runs on the per-frame globals; pass 2
 * reads one segment at a time (≤ MAX_SEGMENT_FRAMES frames) and does the
 * salient pick, density peaks, DTM and the merged features of that segment.
 *
 * @example
 * const plan = await fastvidBlocks(fileFrames, { ratio: 0.1 }, meanCosineHints);
 */
export async function fastvidBlocks(
  source: FrameBlockSource,
  options: FastVidOptions,
  hints: FrameHints,
  settings: {
    block?: number;
    members?: boolean;
    /**
     * Receives the output rows a segment at a time, in keep order, instead of
     * the plan holding them (`features` is then empty): for writing them to a
     * file as they are produced.
     */
    onRows?: (rows: Float32Array) => Promise<void>;
  } = {},
): Promise<FastVidPlan> {
  const { frames, perFrame, d } = source;
  const n = frames * perFrame;
  const block = settings.block ?? blockFrames(source);
  const { budget, ratio } = resolveBudget(n, options, 'fastvid');
  const params = fastvidParams(options);
  const perFrameKept = Math.floor(budget / frames);
  if (perFrameKept < 1)
    throw new UsageError(
      `fastvid: budget ${budget} is smaller than the number of frames (${frames}); every frame keeps at least one token`,
      'E_RANGE',
    );
  const contextCount = Math.floor(perFrameKept * params.contextShare);
  const salientCount = perFrameKept - contextCount;

  // Pass 1: frame globals and token scores, a block at a time.
  const globals = new Float64Array(frames * d);
  const scores = new Float32Array(n);
  let from: 'score' | 'cls-cosine' | 'mean-cosine' = 'mean-cosine';
  await forEachBlock(source, block, async (features, start, end) => {
    const blockScores = await hints.scores(features, start, end);
    scores.set(blockScores.scores, start * perFrame);
    from = blockScores.from;
    globals.set(await frameGlobals(features, end - start, perFrame, d, hints.cls?.slice(start, end)), start * d);
  });
  const segments = capSegments(
    dynamicSegments(globals, frames, d, params.segments, params.cutThreshold),
    MAX_SEGMENT_FRAMES,
  );
  const anchorContext = anchorDistribution(segments, frames, contextCount, params.anchorStride);

  const keepList: number[] = [];
  // Output rows, written segment by segment: at most F·m ≤ budget of them (salient + Σ anchor context ≤ m per frame).
  const featureRows = new Float32Array(settings.onRows ? 0 : frames * perFrameKept * d);
  const assign = new Int32Array(n).fill(-1);
  const joinedBy =
    settings.members && contextCount > 0 ? new Map<number, { members: number[]; weight: number }>() : undefined;
  // Pass 2: one segment at a time.
  let rowScratch = new Float32Array(0);
  let offset = 0;
  for (const length of segments) {
    const base = offset * perFrame;
    const data = await source.readFrames(offset, offset + length);
    const kept = new Set<number>();
    const segmentJoined = new Map<number, { members: number[]; weight: number }>();
    const filteredPerFrame: Int32Array[] = [];
    for (let f = offset; f < offset + length; f++) {
      const first = f * perFrame;
      const salient = topK(scores.subarray(first, first + perFrame), salientCount);
      const isSalient = new Uint8Array(perFrame);
      for (const p of salient) {
        isSalient[p] = 1;
        kept.add(first + p);
        assign[first + p] = first + p;
      }
      const filtered = new Int32Array(perFrame - salientCount);
      let o = 0;
      for (let p = 0; p < perFrame; p++) if (!isSalient[p]) filtered[o++] = first + p;
      filteredPerFrame.push(filtered);
    }
    if (contextCount > 0) {
      // The non-salient rows of the segment, frame after frame ([L·M, d]), their norms, and each
      // anchor frame's Gram matrix (one batched native MatMul): distances and cosines all come from these.
      const M = perFrame - salientCount;
      // Scratch reused from segment to segment (a fresh 50 MB array per segment costs page faults and GC).
      if (rowScratch.length < length * M * d)
        rowScratch = new Float32Array(Math.min(MAX_SEGMENT_FRAMES, frames) * M * d);
      const rows = rowScratch.subarray(0, length * M * d);
      filteredPerFrame.forEach((list, k) =>
        list.forEach((i, r) => rows.set(data.subarray((i - base) * d, (i - base + 1) * d), (k * M + r) * d)),
      );
      const norms = rowNorms(rows, length * M, d);
      const segmentFrames = Array.from({ length }, (_, k) => offset + k);
      const anchors = length === 1 ? segmentFrames : segmentFrames.filter((f) => anchorContext[f]! > contextCount);
      const anchorRows = new Float32Array(anchors.length * M * d);
      anchors.forEach((a, q) =>
        anchorRows.set(rows.subarray((a - offset) * M * d, (a - offset + 1) * M * d), q * M * d),
      );
      const gram = await batchedGramNative(anchorRows, anchors.length, M, d);
      const memberIndices = concatInt(filteredPerFrame);
      const memberCount = length * M;
      for (const [q, a] of anchors.entries()) {
        const local = a - offset;
        const anchorGram = gram.subarray(q * M * M, (q + 1) * M * M);
        const density = densityPeakScores(anchorGram, norms.subarray(local * M, (local + 1) * M), M, d);
        const count = Math.min(anchorContext[a]!, M);
        const pickedLocal = topK(density, count);
        const targets = Int32Array.from(pickedLocal, (j) => filteredPerFrame[local]![j]!);
        // dots[r, k] = member r · target k: the frame's Gram matrix, or one GEMM across the segment. (One GEMM
        // for the targets of all anchors at once was tried: onnxruntime's sums then differ in the last bits.)
        let dots: Float32Array;
        if (length === 1) {
          dots = new Float32Array(M * count);
          for (let r = 0; r < M; r++)
            for (let k = 0; k < count; k++) dots[r * count + k] = anchorGram[r * M + pickedLocal[k]!]!;
        } else {
          const targetRows = new Float32Array(count * d);
          pickedLocal.forEach((j, k) =>
            targetRows.set(rows.subarray((local * M + j) * d, (local * M + j + 1) * d), k * d),
          );
          dots = (
            await matmulABt({ rows: memberCount, cols: d, data: rows }, { rows: count, cols: d, data: targetRows })
          ).data;
        }
        const joined = mostSimilarTarget(
          dots,
          norms,
          Float64Array.from(pickedLocal, (j) => norms[local * M + j]!),
          memberCount,
          count,
        );
        const members = Array.from(targets, () => [] as number[]);
        joined.forEach((k, r) => members[k]!.push(memberIndices[r]!));
        targets.forEach((t, k) => {
          kept.add(t);
          segmentJoined.set(t, {
            members: members[k]!,
            weight: Math.max(1 / (members[k]!.length + 1), params.mergeWeight),
          });
        });
        // Primary assignment: frames of this anchor's window (a − p, a] (or the anchor's own frame).
        const windowStart = length === 1 ? a : Math.max(offset, a - params.anchorStride + 1);
        memberIndices.forEach((i, r) => {
          const f = Math.floor(i / perFrame);
          if (f >= windowStart && f <= a) assign[i] = targets[joined[r]!]!;
        });
        for (const t of targets) assign[t] = t;
      }
    }
    const segmentKeep = Int32Array.from(kept).sort();
    const segmentRows = dtmMerge(data, d, segmentKeep, segmentJoined, base);
    if (settings.onRows) await settings.onRows(segmentRows);
    else featureRows.set(segmentRows, keepList.length * d);
    for (const t of segmentKeep) keepList.push(t);
    if (joinedBy) for (const [t, entry] of segmentJoined) joinedBy.set(t, entry);
    offset += length;
  }
  const keep = Int32Array.from(keepList);
  const features = settings.onRows ? featureRows : featureRows.subarray(0, keep.length * d);
  const stats = {
    budget: keep.length,
    ratio,
    frames,
    tokens_per_frame: perFrame,
    per_frame: perFrameKept,
    salient: salientCount,
    context: contextCount,
    segments,
    anchor_context: Array.from(anchorContext),
    score_source: from,
  };
  return { keep, features, assign, ...(joinedBy ? { joinedBy } : {}), stats };
}

/**
 * Cuts segments longer than `cap` frames into runs of `cap` (the last run shorter).
 *
 * @example
 * capSegments([3, 150], 64); // [3, 64, 64, 22]
 */
export function capSegments(segments: number[], cap: number): number[] {
  const out: number[] = [];
  for (let length of segments) {
    for (; length > cap; length -= cap) out.push(cap);
    out.push(length);
  }
  return out;
}

/**
 * Output rows in `keep` order: a salient token as it is; a context token t
 * as w·x_t + (1 − w)·mean(x of the tokens that joined it) (itself when none did).
 * `values` starts at token `base` (a segment's rows, or 0 for the whole set).
 *
 * The sums run member row by member row (each row read and widened to
 * float64 once, then added to the sums of the context tokens it joined, one
 * per anchor frame, four per pass), not context token by context token (every
 * row read once per anchor): each sum still adds its members in ascending
 * order starting from 0 — the members lists are ascending — so the results
 * are the same bits, about 3× faster.
 */
function dtmMerge(
  values: Float32Array,
  width: number,
  keep: Int32Array,
  joinedBy: Map<number, { members: number[]; weight: number }>,
  base: number,
): Float32Array {
  const out = new Float32Array(keep.length * width);
  const rowCount = values.length / width;
  // For each row (relative to base), the context outputs it joined: CSR by a counting sort.
  const start = new Int32Array(rowCount + 1);
  let pairs = 0;
  let slots = 0;
  const slotOf = new Int32Array(keep.length).fill(-1);
  keep.forEach((t, o) => {
    const entry = joinedBy.get(t);
    if (!entry) return;
    slotOf[o] = slots++;
    let previous = -1;
    for (const i of entry.members) {
      if (!(i > previous)) throw new Error(`fastvid: members of token ${t} are not ascending`);
      previous = i;
      start[i - base + 1]!++;
      pairs++;
    }
  });
  for (let r = 0; r < rowCount; r++) start[r + 1]! += start[r]!;
  const joinedSlots = new Int32Array(pairs);
  const fill = start.slice(0, rowCount);
  keep.forEach((t, o) => {
    const entry = joinedBy.get(t);
    if (entry) for (const i of entry.members) joinedSlots[fill[i - base]!++] = slotOf[o]!;
  });
  const sums = new Float64Array(slots * width);
  const x = new Float64Array(width);
  for (let r = 0; r < rowCount; r++) {
    const end = start[r + 1]!;
    let p = start[r]!;
    if (p === end) continue;
    // The row once as float64 (exact), then added to four sums per pass (distinct sums: one per anchor frame).
    for (let c = 0; c < width; c++) x[c] = values[r * width + c]!;
    for (; p + 3 < end; p += 4) {
      const s0 = joinedSlots[p]! * width;
      const s1 = joinedSlots[p + 1]! * width;
      const s2 = joinedSlots[p + 2]! * width;
      const s3 = joinedSlots[p + 3]! * width;
      for (let c = 0; c < width; c++) {
        const v = x[c]!;
        sums[s0 + c]! += v;
        sums[s1 + c]! += v;
        sums[s2 + c]! += v;
        sums[s3 + c]! += v;
      }
    }
    for (; p < end; p++) {
      const s0 = joinedSlots[p]! * width;
      for (let c = 0; c < width; c++) sums[s0 + c]! += x[c]!;
    }
  }
  keep.forEach((t, o) => {
    const entry = joinedBy.get(t);
    const own = values.subarray((t - base) * width, (t - base + 1) * width);
    if (!entry) {
      out.set(own, o * width);
      return;
    }
    const sum = slotOf[o]! * width;
    const div = Math.max(entry.members.length, 1);
    const w = entry.weight;
    for (let c = 0; c < width; c++) out[o * width + c] = w * own[c]! + (1 - w) * (sums[sum + c]! / div);
  });
  return out;
}

function fastvidParams(options: FastVidOptions): Required<Pick<FastVidOptions, keyof typeof FASTVID_DEFAULTS>> {
  const p = {
    ...FASTVID_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([k, v]) => k in FASTVID_DEFAULTS && v !== undefined)),
  } as { segments: number; cutThreshold: number; contextShare: number; anchorStride: number; mergeWeight: number };
  const rule = { where: 'fastvid', code: 'E_RANGE' };
  checkInteger(p.segments, 'segments', { min: 1, ...rule });
  checkNumber(p.cutThreshold, optionLabel('cutThreshold'), { min: -1, max: 1, ...rule });
  checkNumber(p.contextShare, optionLabel('contextShare'), { min: 0, max: 1, ...rule });
  checkInteger(p.anchorStride, optionLabel('anchorStride'), { min: 1, ...rule });
  checkNumber(p.mergeWeight, optionLabel('mergeWeight'), { min: 0, max: 1, ...rule });
  return p;
}

/** Each frame's global feature [F, d] of a block of frames: its CLS vector when every frame has one, else the mean of its tokens. */
async function frameGlobals(
  data: Float32Array,
  frames: number,
  perFrame: number,
  d: number,
  cls: Float32Array[] | undefined,
): Promise<Float64Array> {
  const out = new Float64Array(frames * d);
  if (cls) {
    cls.forEach((v, f) => out.set(v, f * d));
    return out;
  }
  const side = Math.round(Math.sqrt(perFrame));
  if (side * side === perFrame) {
    // The mean of a frame does not depend on its token order: one side×side pooling cell per frame, natively.
    out.set(await meanPoolNative(data, frames, side, side, side, d));
    return out;
  }
  for (let f = 0; f < frames; f++) {
    for (let p = 0; p < perFrame; p++) {
      const base = (f * perFrame + p) * d;
      for (let c = 0; c < d; c++) out[f * d + c]! += data[base + c]!;
    }
    for (let c = 0; c < d; c++) out[f * d + c]! /= perFrame;
  }
  return out;
}

/**
 * DySeg: segment lengths (frames per segment, in order). Cuts after frame f
 * where cos(g_f, g_{f+1}) is among the c − 1 smallest (ties → lower f) or
 * below τ.
 *
 * @example
 * dynamicSegments(globals, 6, d, 2, 0.9); // e.g. [3, 3] for a cut between frames 2 and 3
 */
export function dynamicSegments(globals: Float64Array, frames: number, d: number, c: number, tau: number): number[] {
  if (frames === 1) return [1];
  const norms = new Float64Array(frames);
  for (let f = 0; f < frames; f++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += globals[f * d + k]! * globals[f * d + k]!;
    norms[f] = Math.sqrt(s);
  }
  const similarity = new Float64Array(frames - 1);
  for (let f = 0; f + 1 < frames; f++) {
    let dot = 0;
    for (let k = 0; k < d; k++) dot += globals[f * d + k]! * globals[(f + 1) * d + k]!;
    const denom = norms[f]! * norms[f + 1]!;
    similarity[f] = denom > 0 ? dot / denom : 0;
  }
  const cut = new Uint8Array(frames - 1);
  for (const f of topK(
    similarity.map((v) => -v),
    Math.min(c - 1, frames - 1),
  ))
    cut[f] = 1;
  for (let f = 0; f + 1 < frames; f++) if (similarity[f]! < tau) cut[f] = 1;
  const lengths: number[] = [];
  let start = 0;
  for (let f = 0; f + 1 < frames; f++) {
    if (cut[f]) {
      lengths.push(f + 1 - start);
      start = f + 1;
    }
  }
  lengths.push(frames - start);
  return lengths;
}

/**
 * Context tokens per frame: in a segment of L frames the frames L−1, L−1−p, …
 * (offsets from its start) get ⌊ctx·L / ⌈L/p⌉⌋, the others 0.
 *
 * @example
 * anchorDistribution([1, 5], 6, 7, 4); // [7, 17, 0, 0, 0, 17]
 */
export function anchorDistribution(
  segments: number[],
  frames: number,
  contextCount: number,
  stride: number,
): Int32Array {
  const out = new Int32Array(frames);
  let offset = 0;
  for (const length of segments) {
    const anchors = Math.ceil(length / stride);
    const each = Math.floor((contextCount * length) / anchors);
    for (let k = 0; k < length; k++) if ((length - 1 - k) % stride === 0) out[offset + k] = each;
    offset += length;
  }
  return out;
}

/**
 * DPC-kNN density-peak scores ρ·δ of one frame's m non-salient tokens, from
 * their Gram matrix and norms: distance ‖x_i − x_j‖/√d (the reference's
 * cdist also expands ‖a‖² + ‖b‖² − 2a·b), 0 on the diagonal.
 */
function densityPeakScores(gram: Float32Array, norms: Float64Array, m: number, d: number): Float64Array {
  const out = new Float64Array(m);
  if (m === 0) return out;
  const scale = 1 / Math.sqrt(d);
  const dist = new Float64Array(m * m);
  let distMax = 0;
  for (let i = 0; i < m; i++) {
    const ni = norms[i]! * norms[i]!;
    for (let j = 0; j < m; j++) {
      const squared = ni + norms[j]! * norms[j]! - 2 * gram[i * m + j]!;
      const v = i === j || squared <= 0 ? 0 : Math.sqrt(squared) * scale;
      dist[i * m + j] = v;
      if (v > distMax) distMax = v;
    }
  }
  const k = Math.min(DENSITY_NEIGHBOURS, m);
  const density = new Float64Array(m);
  const nearest = new Float64Array(k);
  for (let i = 0; i < m; i++) {
    nearest.fill(Infinity);
    for (let j = 0; j < m; j++) {
      const v = dist[i * m + j]!;
      if (v < nearest[k - 1]!) {
        let p = k - 1;
        while (p > 0 && nearest[p - 1]! > v) {
          nearest[p] = nearest[p - 1]!;
          p--;
        }
        nearest[p] = v;
      }
    }
    let sum = 0;
    for (let q = 0; q < k; q++) sum += nearest[q]! * nearest[q]!;
    density[i] = Math.exp(-sum / k);
  }
  for (let i = 0; i < m; i++) {
    let delta = distMax;
    for (let j = 0; j < m; j++) if (density[j]! > density[i]! && dist[i * m + j]! < delta) delta = dist[i * m + j]!;
    out[i] = delta * density[i]!;
  }
  return out;
}

/** L2 norm of each of `rows` rows. */
function rowNorms(x: Float32Array, rows: number, d: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * d;
    for (let c = 0; c < d; c++) s += x[base + c]! * x[base + c]!;
    out[r] = Math.sqrt(s);
  }
  return out;
}

/**
 * For each member row, the target of largest cosine dots[r,k] / (‖member‖·‖target‖)
 * (first on ties; a zero-norm row has cosine 0 to all).
 */
function mostSimilarTarget(
  dots: Float32Array,
  memberNorms: Float64Array,
  targetNorms: Float64Array,
  members: number,
  targets: number,
): Int32Array {
  const out = new Int32Array(members);
  for (let r = 0; r < members; r++) {
    let best = 0;
    let bestValue = -Infinity;
    for (let k = 0; k < targets; k++) {
      const denominator = memberNorms[r]! * targetNorms[k]!;
      const v = denominator > 0 ? dots[r * targets + k]! / denominator : 0;
      if (v > bestValue) {
        bestValue = v;
        best = k;
      }
    }
    out[r] = best;
  }
  return out;
}

function concatInt(parts: Int32Array[]): Int32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Int32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
