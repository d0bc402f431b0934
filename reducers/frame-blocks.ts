import { ShapeError } from '../core/errors.js';
import type { TokenSet } from '../core/tokenset.js';
import { frameLayout } from './frames.js';

/**
 * Video features [frames, perFrame, d] read a block of frames at a time, so
 * the temporal methods (evs, fastvid) never need the whole video in memory.
 * The in-memory path is this same interface over a TokenSet
 * ({@link tokenSetFrames}); the file-backed one (encoders/tokenstream.ts)
 * reads frames with positional reads. Pure: no I/O here.
 */
export interface FrameBlockSource {
  frames: number;
  perFrame: number;
  d: number;
  /**
   * Features of frames [start, end): (end − start)·perFrame·d floats, frame
   * after frame, token p of frame f at row (f − start)·perFrame + p. The
   * result may be a view the caller must not keep past its next call.
   */
  readFrames(start: number, end: number): Promise<Float32Array>;
}

/**
 * Bytes of float32 features a block method reads at once (64 MiB: an hour
 * at 196×1152 is 3.2 GB, a block ~74 frames). The methods hold O(block) of
 * features plus O(frames·perFrame) scalars (scores, indices) and the output.
 */
export const BLOCK_BYTES = 64 * 1024 * 1024;

/**
 * Frames per block for a `maxBytes` budget of float32 features (at least 1).
 *
 * @example
 * blockFrames({ frames: 3600, perFrame: 196, d: 1152 }); // 74
 */
export function blockFrames(source: Pick<FrameBlockSource, 'perFrame' | 'd'>, maxBytes = BLOCK_BYTES): number {
  return Math.max(1, Math.floor(maxBytes / (source.perFrame * source.d * 4)));
}

/**
 * A video TokenSet as a frame-block source (views, no copies); validated by
 * frameLayout (frame sources in order, equal counts, one grid).
 *
 * @example
 * const source = tokenSetFrames(video, 'evs'); // source.frames === 32
 */
export function tokenSetFrames(tokens: TokenSet, method: string): FrameBlockSource {
  const { frames, perFrame } = frameLayout(tokens, method);
  return arrayFrames(tokens.data, frames, perFrame, tokens.d);
}

/**
 * Features already in one array [frames·perFrame·d] as a frame-block source.
 *
 * @example
 * const source = arrayFrames(Float32Array.of(1, 0, 0, 1), 2, 1, 2);
 */
export function arrayFrames(data: Float32Array, frames: number, perFrame: number, d: number): FrameBlockSource {
  if (data.length !== frames * perFrame * d)
    throw new ShapeError(
      `frame blocks: ${frames} frames × ${perFrame} tokens × d = ${d} need ${frames * perFrame * d} values, got ${data.length}`,
    );
  return {
    frames,
    perFrame,
    d,
    readFrames: async (start, end) => {
      checkFrameRange(start, end, frames);
      return data.subarray(start * perFrame * d, end * perFrame * d);
    },
  };
}

/** Throws unless [start, end) is a non-empty range of frames within [0, frames). */
export function checkFrameRange(start: number, end: number, frames: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= frames))
    throw new ShapeError(`frame blocks: frames [${start}, ${end}) are not a range within [0, ${frames})`);
}

/**
 * Visits every frame block in order: `visit(features, start, end)`.
 *
 * @example
 * await forEachBlock(source, 64, (x, start, end) => console.log(start, end));
 */
export async function forEachBlock(
  source: FrameBlockSource,
  block: number,
  visit: (features: Float32Array, start: number, end: number) => void | Promise<void>,
): Promise<void> {
  for (let start = 0; start < source.frames; start += block) {
    const end = Math.min(source.frames, start + block);
    await visit(await source.readFrames(start, end), start, end);
  }
}

/**
 * The rows of the flat token indices `keep` (ascending), read block by block:
 * [keep.length, d]. Memory: the output plus one block.
 *
 * @example
 * const rows = await gatherRows(source, keep, blockFrames(source));
 */
export async function gatherRows(source: FrameBlockSource, keep: Int32Array, block: number): Promise<Float32Array> {
  const out = new Float32Array(keep.length * source.d);
  let j = 0;
  await forEachGathered(source, keep, block, async (rows) => {
    out.set(rows, j * source.d);
    j += rows.length / source.d;
  });
  return out;
}

/**
 * The rows of `keep` (ascending flat indices) handed to `emit` a block of
 * frames at a time, in keep order (blocks that keep nothing are not read):
 * for writing them out as they are read. Memory: one block and its kept rows.
 *
 * @example
 * await forEachGathered(source, keep, blockFrames(source), (rows) => writer.append(rows));
 */
export async function forEachGathered(
  source: FrameBlockSource,
  keep: Int32Array,
  block: number,
  emit: (rows: Float32Array) => Promise<void>,
): Promise<void> {
  const { perFrame, d } = source;
  let j = 0;
  for (let start = 0; start < source.frames && j < keep.length; start += block) {
    const end = Math.min(source.frames, start + block);
    const first = start * perFrame;
    const last = end * perFrame;
    if (keep[j]! >= last) continue; // nothing kept in this block: skip the read
    const features = await source.readFrames(start, end);
    let count = 0;
    while (j + count < keep.length && keep[j + count]! < last) count++;
    const rows = new Float32Array(count * d);
    for (let r = 0; r < count; r++, j++) {
      const local = keep[j]! - first;
      if (local < 0) throw new ShapeError(`gatherRows: keep is not ascending at position ${j} (${keep[j]})`);
      rows.set(features.subarray(local * d, (local + 1) * d), r * d);
    }
    await emit(rows);
  }
  if (j !== keep.length) throw new ShapeError(`gatherRows: index ${keep[j]} is outside the ${source.frames} frames`);
}
