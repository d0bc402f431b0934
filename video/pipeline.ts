import { ShapeError, UsageError } from '../core/errors.js';
import { selectTokens, type TokenSet } from '../core/tokenset.js';
import { encodeVideoFrames } from '../encoders/video.js';
import { createPatchEncoder } from '../encoders/patch.js';
import type { VideoInfo } from '../encoders/ffmpeg.js';
import type { RgbImage, VisionEncoder } from '../encoders/types.js';
import { framePatchSimilarity, temporalMerge } from '../reducers/temporal-merge.js';
import { getProfile, visionTokens } from '../profiles/index.js';
import type { DualEncoder } from './dual-encoder.js';
import { noveltyCoverageScores, textClipScores, topClips } from './retrieve.js';
import { allocateFrames, isBlankFrame } from './coverage.js';
import { segmentFrameBlocks, type FrameRange } from './segment.js';
import { arrayFrames } from '../reducers/frame-blocks.js';
import { checkInteger } from '../core/validate.js';

/**
 * The video pipeline (MARC-style visual memory retrieval):
 *   frames (ffmpeg, uniform fps) → encoder tokens → event clips (feature change)
 *   → clip scores (dual encoder + question, else novelty/coverage) → top-k clips
 *   → temporal merging of adjacent frames down to the frame budget
 *   → keyframes (pixels to send) and merged tokens (token level).
 */

export interface VideoPlanOptions {
  /** The question; used for retrieval when a dual encoder is given. */
  question?: string;
  /** Token encoder for segmentation and merging (default: built-in patch encoder, 224 px, 14 px patches). */
  encoder?: VisionEncoder;
  /** CLIP-style dual encoder for query-driven clip retrieval. */
  dualEncoder?: DualEncoder;
  /** Sampling rate in frames per second (default 2). */
  fps?: number;
  /** Frame cap for sampling (default 64). */
  maxFrames?: number;
  /** Long side of the frames that would be sent, in pixels (default 448). */
  maxSide?: number;
  /** Frames to send (default 8 unless tokenBudget is given). */
  frames?: number;
  /** Vision-token budget under `profile`; frames = floor(budget / tokens per frame). */
  tokenBudget?: number;
  /** Model profile for token accounting (default 'qwen2.5-vl'; see profiles/). */
  profile?: string;
  /** Clips to keep when a question drives retrieval (default 3); query-free plans cover every long shot instead. */
  clips?: number;
  /** Segmentation: target event count and cut threshold τ (see video/segment.ts). */
  segments?: number;
  threshold?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface PlannedClip extends FrameRange {
  /** Seconds. */
  startTime: number;
  endTime: number;
  score: number;
  selected: boolean;
  /** Frames this clip sends (query-free coverage allocation; question-driven plans leave it to temporal merging). */
  frames?: number;
}

export interface Keyframe {
  /** Timestamp of the frame sent, seconds. */
  time: number;
  /** Index among the sampled frames. */
  frame: number;
  /** Sampled frames this keyframe stands for (its merge group). */
  members: number[];
  image: RgbImage;
}

export interface VideoPlan {
  info: VideoInfo;
  /** Timestamps of all sampled frames. */
  sampledTimes: number[];
  /** All event clips in temporal order, with scores and whether they were kept. */
  clips: PlannedClip[];
  retrieval: 'dual-encoder' | 'query-free';
  /** Frames to send, in temporal order. */
  keyframes: Keyframe[];
  /** Token level: the kept frames' tokens after temporal merging (one source per merged frame's first frame). */
  tokens: TokenSet;
  /** Every sampled frame's tokens, before retrieval and merging. */
  allTokens: TokenSet;
  frameBudget: number;
  profile: string;
  frameWidth: number;
  frameHeight: number;
  /** Vision tokens one sent frame costs under the profile. */
  tokensPerFrame: number;
  tokensSent: number;
  /** Cost of the default alternative: uniform 1 fps, at most 64 frames, same resolution. */
  tokensUniform: number;
}

/**
 * Frames sent by the uniform 1 fps baseline: one per started second, at most 64.
 *
 * @example
 * uniformFrameCount(6, 12); // 6
 * uniformFrameCount(600.5, 64); // 64
 */
export function uniformFrameCount(duration: number, sampledFrames: number): number {
  if (!(duration > 0) || !Number.isFinite(duration)) return Math.min(64, Math.max(1, sampledFrames));
  return Math.min(64, Math.max(1, Math.ceil(duration)));
}

/**
 * Frame budget from --frames or --token-budget under a profile.
 *
 * @example
 * frameBudget({ tokenBudget: 600 }, 144); // 4 frames of 144 tokens
 */
export function frameBudget(options: Pick<VideoPlanOptions, 'frames' | 'tokenBudget'>, tokensPerFrame: number): number {
  if (options.frames !== undefined && options.tokenBudget !== undefined)
    throw new UsageError('give either a frame budget or a token budget, not both');
  if (options.tokenBudget !== undefined) {
    const budget = options.tokenBudget;
    checkInteger(budget, 'tokenBudget (--token-budget)', { min: 1 });
    const frames = Math.floor(budget / tokensPerFrame);
    if (frames < 1)
      throw new UsageError(
        `token budget ${budget} is below the cost of one frame (${tokensPerFrame} tokens at this resolution and profile)`,
      );
    return frames;
  }
  const frames = options.frames ?? 8;
  checkInteger(frames, 'frames', { min: 1 });
  return frames;
}

/** Token indices of each frame (tokens are grouped by frame in order). */
function frameTokenRanges(tokens: TokenSet, frameCount: number): { start: number; end: number }[] {
  const ranges = Array.from({ length: frameCount }, () => ({ start: Number.MAX_SAFE_INTEGER, end: 0 }));
  for (let i = 0; i < tokens.n; i++) {
    const r = ranges[tokens.source[i]!]!;
    r.start = Math.min(r.start, i);
    r.end = Math.max(r.end, i + 1);
  }
  return ranges;
}

/**
 * Runs the whole pipeline on a video file and returns what to send.
 *
 * @example
 * const plan = await planVideo('samples/video/scenes.mp4', { frames: 4, clips: 2 });
 * plan.keyframes.map((k) => k.time); // e.g. [1.5, 2.5, 4.5, 5.5]
 */
export async function planVideo(path: string, options: VideoPlanOptions = {}): Promise<VideoPlan> {
  const profileName = options.profile ?? 'qwen2.5-vl';
  getProfile(profileName);
  const clipsWanted = options.clips ?? 3;
  checkInteger(clipsWanted, 'clips', { min: 1 });
  // Check the budget options before decoding (a token budget is checked against the real per-frame cost later).
  frameBudget(options, 1);
  const encoder = options.encoder ?? createPatchEncoder({ inputSize: 224, patchSize: 14 });
  const progress = options.onProgress ?? (() => {});

  const { info, frames, tokens } = await encodeVideoFrames(path, {
    encoder,
    fps: options.fps ?? 2,
    maxFrames: options.maxFrames ?? 64,
    maxSide: options.maxSide ?? 448,
    onFrame: (done, total) => progress('encode', done, total),
  });
  const { width: frameWidth, height: frameHeight } = frames[0]!.image;
  const tokensPerFrame = visionTokens(profileName, frameWidth, frameHeight);
  const budget = frameBudget(options, tokensPerFrame);
  const d = tokens.d;
  const ranges = frameTokenRanges(tokens, frames.length);
  const frameFeatures = ranges.map((r) => tokens.data.subarray(r.start * d, r.end * d));

  // Segmentation on the same similarity temporal merging uses (mean per-patch cosine), in one pass over frame blocks.
  const segments = await segmentFrameBlocks(
    arrayFrames(tokens.data, frames.length, ranges[0]!.end - ranges[0]!.start, d),
    {
      segments: options.segments,
      threshold: options.threshold,
    },
  );

  let scores: number[];
  let retrieval: VideoPlan['retrieval'];
  if (options.dualEncoder && options.question) {
    progress('retrieve', 0, 1);
    const embeddings = await options.dualEncoder.embedImages(frames.map((f) => f.image));
    const text = await options.dualEncoder.embedText(options.question);
    if (text.length !== embeddings[0]!.length) {
      throw new ShapeError(
        `dual encoder ${options.dualEncoder.name}: text embeddings have ${text.length} dimensions but image embeddings ${embeddings[0]!.length}`,
      );
    }
    scores = textClipScores(embeddings, segments, text);
    retrieval = 'dual-encoder';
    progress('retrieve', 1, 1);
  } else {
    const frameMeans = frameFeatures.map((f) => meanToken(f, d));
    scores = noveltyCoverageScores(frameMeans, segments);
    retrieval = 'query-free';
  }
  const times = frames.map((f) => f.time);
  // A clip ends where the next begins; the last one at the end of the video.
  const videoEnd = Number.isFinite(info.duration)
    ? Math.max(info.duration, times.at(-1)!)
    : times.at(-1)! + sampleStep(times);
  // Near-blank frames (fades, black cards) are never sent, unless the whole video is blank.
  const blank = frames.map((f) => isBlankFrame(f.image));
  const anyVisible = blank.some((b) => !b);
  const clipFrames = segments.map((s) => range(s.start, s.end).filter((f) => !anyVisible || !blank[f]));
  const clips: PlannedClip[] = segments.map((s, i) => ({
    ...s,
    startTime: times[s.start]!,
    endTime: i + 1 < segments.length ? times[segments[i + 1]!.start]! : videoEnd,
    score: scores[i]!,
    selected: false,
  }));
  let quotas: { segment: number[]; quota: number[] } | undefined;
  if (retrieval === 'query-free') {
    // No question to rank shots by: cover the timeline (video/coverage.ts).
    const allocation = allocateFrames(
      clips.map((c, i) => ({ duration: c.endTime - c.startTime, candidates: clipFrames[i]!.length })),
      budget,
    );
    clips.forEach((c, i) => {
      c.selected = allocation[i]! > 0;
      if (c.selected) c.frames = allocation[i]!;
    });
    const kept = clips.map((_clip, i) => i).filter((i) => clips[i]!.selected);
    quotas = { segment: kept.flatMap((i, q) => clipFrames[i]!.map(() => q)), quota: kept.map((i) => allocation[i]!) };
  } else {
    const rankable = scores.map((score, i) => (clipFrames[i]!.length > 0 ? score : -Infinity));
    const withFrames = clipFrames.filter((f) => f.length > 0).length;
    for (const i of topClips(rankable, Math.min(clipsWanted, withFrames))) clips[i]!.selected = true;
  }

  // Temporal merging over the kept clips' frames, in temporal order (query-free: within each clip, down to its quota).
  const keptFrames = clips.flatMap((c, i) => (c.selected ? clipFrames[i]! : []));
  const keptTokenIndices = keptFrames.flatMap((f) => range(ranges[f]!.start, ranges[f]!.end));
  const keptTokens = selectTokens(tokens, keptTokenIndices);
  const merged = temporalMerge(keptTokens, { frames: budget, ...(quotas ? { quotas } : {}) });
  const groups = (merged.stats.groups as number[][]).map((g) => g.map((local) => keptFrames[local]!));
  const perFrame = ranges[0]!.end - ranges[0]!.start;
  const keyframes = groups.map((members, g) => {
    const h = merged.tokens.data.subarray(g * perFrame * d, (g + 1) * perFrame * d);
    // Pixels can't be averaged meaningfully: send the member frame closest to the merged features.
    let best = members[0]!;
    let bestSim = -Infinity;
    for (const f of members) {
      const s = framePatchSimilarity(frameFeatures[f]!, h, d);
      if (s > bestSim + 1e-9) {
        bestSim = s;
        best = f;
      }
    }
    return { time: times[best]!, frame: best, members, image: frames[best]!.image };
  });
  return {
    info,
    sampledTimes: times,
    clips,
    retrieval,
    keyframes,
    tokens: merged.tokens,
    allTokens: tokens,
    frameBudget: budget,
    profile: profileName,
    frameWidth,
    frameHeight,
    tokensPerFrame,
    tokensSent: keyframes.length * tokensPerFrame,
    tokensUniform: uniformFrameCount(info.duration, frames.length) * tokensPerFrame,
  };
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

function meanToken(frame: Float32Array, d: number): Float32Array {
  const mean = new Float32Array(d);
  const count = frame.length / d;
  for (let p = 0; p < count; p++) for (let c = 0; c < d; c++) mean[c]! += frame[p * d + c]! / count;
  return mean;
}

/** Median gap between sampled timestamps (the sampling interval). */
function sampleStep(times: number[]): number {
  if (times.length < 2) return 0;
  const gaps = times
    .slice(1)
    .map((t, i) => t - times[i]!)
    .sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)]!;
}
