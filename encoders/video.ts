import { ShapeError } from '../core/errors.js';
import { createTokenSet, gridPositions, type TokenSet, type TokenSource } from '../core/tokenset.js';
import {
  effectiveFps,
  probeVideo,
  readFrames,
  sceneChanges,
  streamFrames,
  type VideoFrame,
  type VideoInfo,
} from './ffmpeg.js';
import { resizeImage } from './image.js';
import { extname } from 'node:path';
import { UsageError } from '../core/errors.js';
import {
  createNpyStream,
  createTokenStream,
  type NpyStreamWriter,
  type TokenChunks,
  type TokenStreamWriter,
} from './tokenstream.js';
import type { EncodedTile, RgbImage, VisionEncoder } from './types.js';

/**
 * Video → TokenSet: frames sampled by ffmpeg, encoded tile by tile, one
 * TokenSource per frame (kind 'frame', `time` in seconds).
 */

export interface EncodeVideoOptions {
  encoder: VisionEncoder;
  /** Uniform sampling rate (default 1 frame per second). */
  fps?: number;
  /** Frame cap (default 64); the rate drops so the cap still spans the whole video. */
  maxFrames?: number;
  /** Frames per encoder call (default 8). */
  batchSize?: number;
  /** Also detect scene changes (ffmpeg scene score above this, in (0, 1)); their times go to meta.scene_changes ("1.5,3,4.5"). */
  sceneThreshold?: number;
  /**
   * A truncated file keeps the frames decoded before the cut (meta.truncated
   * says what was cut) instead of failing (default false).
   */
  partial?: boolean;
  /** Progress: frames encoded so far and the expected total (from the probe; the cap when the duration is unknown). */
  onFrame?: (done: number, total: number) => void;
}

/**
 * Builds the frame TokenSet from encoded tiles: tokens of frame f come after
 * those of frame f−1, each frame is one source with its timestamp and CLS vector.
 *
 * @example
 * const tokens = tilesToFrameTokens(tiles, [0, 1, 2]); // tokens.sources[2].time === 2
 */
export function tilesToFrameTokens(tiles: EncodedTile[], times: number[], meta: Record<string, string> = {}): TokenSet {
  if (tiles.length === 0) throw new ShapeError('tilesToFrameTokens: no frames');
  if (tiles.length !== times.length)
    throw new ShapeError(`tilesToFrameTokens: ${tiles.length} tiles but ${times.length} timestamps`);
  const { dim } = tiles[0]!;
  const perFrame = tiles.map((t) => t.rows * t.cols);
  const n = perFrame.reduce((a, b) => a + b, 0);
  const data = new Float32Array(n * dim);
  const score = new Float32Array(n);
  const source = new Int32Array(n);
  const row = new Int32Array(n);
  const col = new Int32Array(n);
  const sources: TokenSource[] = [];
  let offset = 0;
  for (const [f, tile] of tiles.entries()) {
    if (tile.dim !== dim) throw new ShapeError(`tilesToFrameTokens: frame ${f} has dim ${tile.dim}, expected ${dim}`);
    const count = perFrame[f]!;
    if (tile.features.length !== count * dim)
      throw new ShapeError(
        `tilesToFrameTokens: frame ${f} has ${tile.features.length} values, expected ${count}*${dim}`,
      );
    data.set(tile.features, offset * dim);
    score.set(tile.scores, offset);
    for (let i = 0; i < count; i++) {
      source[offset + i] = f;
      row[offset + i] = Math.floor(i / tile.cols);
      col[offset + i] = i % tile.cols;
    }
    const src: TokenSource = { kind: 'frame', index: f, rows: tile.rows, cols: tile.cols, time: times[f]! };
    if (tile.clsToken) src.cls = tile.clsToken;
    sources.push(src);
    offset += count;
  }
  const tokens = createTokenSet({ data, n, d: dim, sources, source, row, col, score, meta });
  // (t, h, w) = (frame index, grid row, grid col).
  tokens.positions = gridPositions(tokens);
  return tokens;
}

/**
 * Encodes frames of any size with a VisionEncoder (each resized to its square
 * input with the encoder's preferred mode, squash by default).
 *
 * @example
 * const tiles = await encodeFrames(frames.map((f) => f.image), createPatchEncoder());
 */
export async function encodeFrames(
  images: RgbImage[],
  encoder: VisionEncoder,
  batchSize = 8,
  onBatch?: (done: number) => void,
): Promise<EncodedTile[]> {
  const tiles: EncodedTile[] = [];
  for (let start = 0; start < images.length; start += batchSize) {
    // The encoder's own preprocessing (CLIP: shortest side + centre crop), as encodeImage does; squash otherwise.
    const mode = encoder.preferredResize ?? 'squash';
    const batch = await Promise.all(
      images
        .slice(start, start + batchSize)
        .map((image) => resizeImage(image, encoder.inputSize, encoder.inputSize, { mode })),
    );
    tiles.push(...(await encoder.encode(batch)));
    onBatch?.(tiles.length);
  }
  return tiles;
}

/**
 * Samples a video uniformly and encodes every frame: one TokenSet, one source
 * per frame (kind 'frame', time in seconds), meta.video = path.
 *
 * @example
 * const tokens = await encodeVideo('samples/video/scenes.mp4', { encoder: createPatchEncoder(), fps: 2, maxFrames: 16 });
 * tokens.sources.map((s) => s.time); // [0, 0.5, 1, …]
 * (await encodeVideo('samples/video/scenes.mp4', { encoder, sceneThreshold: 0.3 })).meta.scene_changes; // '1.5,3,4.5'
 */
export async function encodeVideo(path: string, options: EncodeVideoOptions): Promise<TokenSet> {
  const tiles: EncodedTile[] = [];
  const times: number[] = [];
  const { meta } = await encodeVideoBlocks(path, options, async (block, blockTimes) => {
    tiles.push(...block);
    times.push(...blockTimes);
  });
  return tilesToFrameTokens(tiles, times, meta);
}

/**
 * The streaming core of encodeVideo: frames are decoded (ffmpeg at most one
 * batch plus its read-ahead ahead of the encoder), encoded a batch at a time
 * and handed to `sink` with their times; nothing is kept here, so memory is
 * bounded by the batch whatever the video's length. Returns the frame count,
 * every frame's time and the metadata (video, encoder, truncated?, scene_changes?).
 *
 * @example
 * await encodeVideoBlocks('long.mp4', { encoder, maxFrames: 3600 }, async (tiles) => writer.append(concat(tiles)));
 */
export async function encodeVideoBlocks(
  path: string,
  options: EncodeVideoOptions,
  sink: (tiles: EncodedTile[], times: number[]) => Promise<void>,
): Promise<{ frames: number; times: number[]; meta: Record<string, string> }> {
  const { encoder } = options;
  const info = await probeVideo(path);
  const fps = options.fps ?? 1;
  const maxFrames = options.maxFrames ?? 64;
  const batchSize = options.batchSize ?? 8;
  const expected = Number.isFinite(info.duration)
    ? Math.max(1, Math.min(maxFrames, Math.ceil(info.duration * effectiveFps(info.duration, fps, maxFrames))))
    : maxFrames;
  const squash = (encoder.preferredResize ?? 'squash') === 'squash';
  const size = squash ? { width: encoder.inputSize, height: encoder.inputSize } : { maxSide: 2 * encoder.inputSize };
  const meta: Record<string, string> = { video: path, encoder: encoder.name };
  const times: number[] = [];
  let batch: VideoFrame[] = [];
  const flush = async () => {
    const tiles = await encodeFrames(
      batch.map((f) => f.image),
      encoder,
      batchSize,
    );
    const batchTimes = batch.map((f) => f.time);
    batch = [];
    await sink(tiles, batchTimes);
    times.push(...batchTimes);
    options.onFrame?.(times.length, Math.max(expected, times.length));
  };
  const stream = streamFrames(
    path,
    {
      fps,
      maxFrames,
      ...size,
      readAhead: batchSize,
      partial: options.partial ?? false,
      onTruncated: (message) => (meta.truncated = message),
    },
    info,
  );
  for await (const frame of stream) {
    batch.push(frame);
    if (batch.length === batchSize) await flush();
  }
  if (batch.length > 0) await flush();
  if (options.sceneThreshold !== undefined)
    meta.scene_changes = (await sceneChanges(path, options.sceneThreshold)).join(',');
  return { frames: times.length, times, meta };
}

/** What encodeVideoToNpy wrote. */
export interface StreamedVideo {
  frames: number;
  perFrame: number;
  d: number;
  times: number[];
  meta: Record<string, string>;
}

/**
 * Encodes a video straight into a .npy [frames, tokens, d] (a one-frame
 * video: [tokens, d], as saveTokens writes it), a batch of frames at a time:
 * the file equals saveTokens(out, await encodeVideo(…)) byte for byte, and
 * memory stays bounded by the batch. Written atomically (temp + rename); a
 * failure (truncated video without `partial`, encoder error) leaves no file.
 *
 * @example
 * const { frames } = await encodeVideoToNpy('hour.mp4', 'hour.npy', { encoder, maxFrames: 3600 });
 */
export async function encodeVideoToNpy(
  path: string,
  out: string,
  options: EncodeVideoOptions & { dtype?: 'float32' | 'float16' },
): Promise<StreamedVideo> {
  let writer: NpyStreamWriter | undefined;
  let grid: { perFrame: number; d: number } | undefined;
  try {
    const result = await encodeVideoBlocks(path, options, async (tiles, times) => {
      for (const [k, tile] of tiles.entries()) {
        const perFrame = tile.rows * tile.cols;
        grid ??= { perFrame, d: tile.dim };
        if (perFrame !== grid.perFrame || tile.dim !== grid.d)
          throw new ShapeError(
            `${path}: frame at ${times[k]}s has ${perFrame}×${tile.dim} tokens, the first frame ${grid.perFrame}×${grid.d}; a .npy [frames, tokens, d] needs one shape (write .safetensors)`,
          );
      }
      writer ??= await createNpyStream(out, {
        trailing: [grid!.perFrame, grid!.d],
        dtype: options.dtype ?? 'float32',
        collapseSingle: true,
      });
      for (const tile of tiles) await writer.append(tile.features);
    });
    if (!writer || !grid) throw new ShapeError(`${path}: no frames decoded`);
    await writer.close();
    return { frames: result.frames, perFrame: grid.perFrame, d: grid.d, times: result.times, meta: result.meta };
  } catch (error) {
    await writer?.abort();
    throw error;
  }
}

/**
 * Encodes a video straight into a token-set .safetensors, a batch of frames
 * at a time: the file equals saveTokens(out, await encodeVideo(…)) byte for
 * byte (tokens, sizes, source, grid_pos, scores, positions, frame sources
 * with times, metadata). Memory: one batch of features, each frame's grid
 * and scores (4 bytes a token) and O(frames) objects; the per-token
 * metadata tensors are built and written at close a run of frames at a time
 * ({@link FRAMES_PER_METADATA_RUN}). The header, written last, depends on
 * every frame's time, so the rows are moved once at close by its length
 * (createTokenStream). Atomic; a failure leaves no file.
 *
 * @example
 * await encodeVideoToSafetensors('hour.mp4', 'hour.safetensors', { encoder, maxFrames: 3600 });
 */
export async function encodeVideoToSafetensors(
  path: string,
  out: string,
  options: EncodeVideoOptions & { dtype?: 'float32' | 'float16' },
): Promise<StreamedVideo> {
  let writer: TokenStreamWriter | undefined;
  let d: number | undefined;
  // Each frame's grid and scores, without its features (those went to the file).
  const shells: FrameShell[] = [];
  try {
    const result = await encodeVideoBlocks(path, options, async (tiles, times) => {
      for (const [k, tile] of tiles.entries()) {
        d ??= tile.dim;
        if (tile.dim !== d)
          throw new ShapeError(`${path}: frame at ${times[k]}s has dim ${tile.dim}, the first frame ${d}`);
        const count = tile.rows * tile.cols;
        if (tile.features.length !== count * d)
          throw new ShapeError(
            `${path}: frame at ${times[k]}s has ${tile.features.length} values, expected ${count}*${d}`,
          );
        // A view into a larger output would keep that whole buffer alive: copy it.
        const { scores } = tile;
        shells.push({
          rows: tile.rows,
          cols: tile.cols,
          scores: scores.byteLength === scores.buffer.byteLength ? scores : scores.slice(),
        });
      }
      writer ??= await createTokenStream(out, { d: d!, dtype: options.dtype ?? 'float32' });
      for (const tile of tiles) await writer.append(tile.features);
    });
    if (!writer || d === undefined) throw new ShapeError(`${path}: no frames decoded`);
    await writer.close(frameShellRuns(shells, result.times, result.meta));
    const perFrame = shells[0]!.rows * shells[0]!.cols;
    return { frames: result.frames, perFrame, d, times: result.times, meta: result.meta };
  } catch (error) {
    await writer?.abort();
    throw error;
  }
}

/** A frame whose features went to a file: its grid and its tokens' scores. */
interface FrameShell {
  rows: number;
  cols: number;
  scores: Float32Array;
}

/** Frames per run of metadata the .safetensors writer builds at a time (≈ 64 × 196 tokens × 40 bytes = 0.5 MB). */
export const FRAMES_PER_METADATA_RUN = 64;

/**
 * The metadata tilesToFrameTokens gives frames whose features went to a file
 * (sources with times, grid cells, scores, positions, meta), as token sets of
 * `runFrames` frames at a time sharing one sources list (TokenChunks): d = 1
 * with zero features and `origin` empty — each token is its own origin,
 * which the token-file writer stores as no origin tensors.
 */
export function frameShellRuns(
  frames: FrameShell[],
  times: number[],
  meta: Record<string, string>,
  runFrames = FRAMES_PER_METADATA_RUN,
): TokenChunks {
  const sources: TokenSource[] = frames.map((frame, f) => ({
    kind: 'frame',
    index: f,
    rows: frame.rows,
    cols: frame.cols,
    time: times[f]!,
  }));
  const n = frames.reduce((sum, f) => sum + f.rows * f.cols, 0);
  function* chunks(): Generator<TokenSet> {
    for (let first = 0; first < frames.length; first += runFrames) {
      const run = frames.slice(first, first + runFrames);
      const count = run.reduce((sum, f) => sum + f.rows * f.cols, 0);
      const source = new Int32Array(count);
      const row = new Int32Array(count);
      const col = new Int32Array(count);
      const score = new Float32Array(count);
      let offset = 0;
      for (const [k, frame] of run.entries()) {
        const tokens = frame.rows * frame.cols;
        score.set(frame.scores, offset);
        for (let i = 0; i < tokens; i++) {
          source[offset + i] = first + k;
          row[offset + i] = Math.floor(i / frame.cols);
          col[offset + i] = i % frame.cols;
        }
        offset += tokens;
      }
      const tokens: TokenSet = {
        n: count,
        d: 1,
        data: new Float32Array(count),
        source,
        row,
        col,
        size: new Float64Array(count).fill(1),
        origin: [],
        score,
        sources,
        meta,
      };
      tokens.positions = gridPositions(tokens);
      yield tokens;
    }
  }
  return { n, chunks };
}

/**
 * Streams a video into `out` by its extension: .npy ([frames, tokens, d],
 * encodeVideoToNpy) or .safetensors (encodeVideoToSafetensors). Memory is
 * bounded by a batch of frames whatever the video's length.
 *
 * @example
 * await encodeVideoToFile('hour.mp4', 'hour.safetensors', { encoder, maxFrames: 3600, partial: true });
 */
export async function encodeVideoToFile(
  path: string,
  out: string,
  options: EncodeVideoOptions & { dtype?: 'float32' | 'float16' },
): Promise<StreamedVideo> {
  const ext = extname(out).toLowerCase();
  if (ext === '.npy') return encodeVideoToNpy(path, out, options);
  if (ext === '.safetensors') return encodeVideoToSafetensors(path, out, options);
  throw new UsageError(
    `${out}: unsupported output extension ${JSON.stringify(ext)} (expected .npy or .safetensors)`,
    'E_FORMAT',
  );
}

/**
 * Like encodeVideo, also returning the decoded frames and the probe (the video pipeline needs the pixels).
 * With `maxSide`, frames are decoded at that size (for sending) and resized to the encoder's input.
 *
 * @example
 * const { frames, tokens } = await encodeVideoFrames('clip.mp4', { encoder, fps: 2, maxSide: 448 });
 */
export async function encodeVideoFrames(
  path: string,
  options: EncodeVideoOptions & { maxSide?: number },
): Promise<{ info: VideoInfo; frames: VideoFrame[]; tokens: TokenSet }> {
  const { encoder } = options;
  // Without a separate send size, a squashing encoder gets frames decoded straight at its input (no second resize).
  const squash = (encoder.preferredResize ?? 'squash') === 'squash';
  const size =
    options.maxSide === undefined && squash
      ? { width: encoder.inputSize, height: encoder.inputSize }
      : { maxSide: options.maxSide ?? 2 * encoder.inputSize };
  const { info, frames } = await readFrames(path, {
    fps: options.fps ?? 1,
    maxFrames: options.maxFrames ?? 64,
    ...size,
  });
  const tiles = await encodeFrames(
    frames.map((f) => f.image),
    encoder,
    options.batchSize ?? 8,
    (done) => options.onFrame?.(done, frames.length),
  );
  const meta: Record<string, string> = { video: path, encoder: encoder.name };
  if (options.sceneThreshold !== undefined)
    meta.scene_changes = (await sceneChanges(path, options.sceneThreshold)).join(',');
  const tokens = tilesToFrameTokens(
    tiles,
    frames.map((f) => f.time),
    meta,
  );
  return { info, frames, tokens };
}
