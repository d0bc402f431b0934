import type { RgbImage } from '../encoders/types.js';

/**
 * Query-free frame selection that covers the timeline. Without a question
 * there is nothing to rank shots by, so every shot long enough to matter must
 * be seen: a plan that sends the best three clips can leave the last third of
 * a video unseen, and a black fade-in frame carries nothing at all.
 */

/**
 * Luma standard deviation (0–255 scale) below which a frame counts as
 * near-blank: fades to/from black or white, blank title cards. A frame with
 * any visible structure — even dark, low-contrast footage — is far above
 * this (the sample scenes are ≥ 20).
 */
export const BLANK_LUMA_STD = 4;

/**
 * Standard deviation of a frame's luma (Rec. 601 weights), sampled on a grid
 * of at most ~4096 pixels — enough to tell a uniform frame from a picture.
 *
 * @example
 * lumaStd({ width: 2, height: 1, data: Uint8Array.of(0, 0, 0, 255, 255, 255) }); // 127.5
 */
export function lumaStd(image: RgbImage): number {
  const pixels = image.width * image.height;
  const step = Math.max(1, Math.floor(pixels / 4096));
  let sum = 0;
  let sumSquares = 0;
  let count = 0;
  for (let p = 0; p < pixels; p += step) {
    const y = 0.299 * image.data[p * 3]! + 0.587 * image.data[p * 3 + 1]! + 0.114 * image.data[p * 3 + 2]!;
    sum += y;
    sumSquares += y * y;
    count++;
  }
  const mean = sum / count;
  return Math.sqrt(Math.max(0, sumSquares / count - mean * mean));
}

/** True when the frame is near-uniform (see BLANK_LUMA_STD). */
export function isBlankFrame(image: RgbImage): boolean {
  return lumaStd(image) < BLANK_LUMA_STD;
}

export interface CoverageSegment {
  /** Seconds the segment spans on the timeline. */
  duration: number;
  /** Frames that may represent it (its non-blank sampled frames). */
  candidates: number;
}

/**
 * How many frames each segment gets from a budget of `frames`:
 * 1. every segment at least 1/frames of the total duration long (there are at
 *    most `frames` of them) gets one frame, so no long shot goes unseen;
 * 2. the rest go one at a time to the segment with the largest
 *    duration / (frames so far + 1) — the D'Hondt rule, so time on screen
 *    buys frames — earlier segments first on ties;
 * never more than a segment's candidates, nothing for a segment without any.
 *
 * @example
 * // 80 s, 4 frames: the 40 s and 30 s shots are ≥ 80/4 s (one each), D'Hondt gives the other two
 * allocateFrames([{ duration: 40, candidates: 80 }, { duration: 30, candidates: 60 }, { duration: 6, candidates: 12 }, { duration: 4, candidates: 8 }], 4); // [2, 2, 0, 0]
 */
export function allocateFrames(segments: CoverageSegment[], frames: number): number[] {
  const allocation = segments.map(() => 0);
  const total = segments.reduce((sum, s) => sum + (s.candidates > 0 ? s.duration : 0), 0);
  const available = segments.reduce((sum, s) => sum + s.candidates, 0);
  let left = Math.min(frames, available);
  // Longest first so that, if rounding ever lets more than `frames` qualify, the longest are served.
  const byLength = segments.map((_, i) => i).sort((a, b) => segments[b]!.duration - segments[a]!.duration || a - b);
  for (const i of byLength) {
    const segment = segments[i]!;
    if (left === 0) break;
    if (segment.candidates > 0 && segment.duration * frames >= total) {
      allocation[i] = 1;
      left--;
    }
  }
  while (left > 0) {
    let best = -1;
    for (let i = 0; i < segments.length; i++) {
      if (allocation[i]! >= segments[i]!.candidates) continue;
      if (best < 0 || segments[i]!.duration / (allocation[i]! + 1) > segments[best]!.duration / (allocation[best]! + 1))
        best = i;
    }
    allocation[best]!++;
    left--;
  }
  return allocation;
}
