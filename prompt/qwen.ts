import { InputError, ShapeError, UsageError } from '../core/errors.js';
import type { TokenSet } from '../core/tokenset.js';
import type { GridThw } from '../encoders/qwen-preprocess.js';
import { checkInteger, checkNumber } from '../core/validate.js';

/**
 * Qwen2.5-VL / Qwen3-VL prompt plans: for a conversation of text and (reduced)
 * image / video token sets, the token layout the language model sees, the
 * 3-D M-RoPE position ids of every token and the rope delta — the values
 * transformers' `get_rope_index` computes from `input_ids` and the grids,
 * extended to pruned and merged visual blocks. docs/qwen.md gives the rules
 * and their sources.
 *
 * With every visual token kept the plan equals the reference exactly:
 * - text is numbered 0, 1, 2, … continuing from the previous position;
 * - a visual block starts after its `<|vision_start|>`: base = position of
 *   vision_start + 1, and a merged token at grid cell (t, h, w) gets
 *   (base + time(t), base + h, base + w);
 * - time(t): Qwen2.5-VL images 0; Qwen2.5-VL videos
 *   floor(t · seconds_per_grid · tokens_per_second) computed on the product
 *   (in float32, as torch multiplies an int64 range by a float32 scalar);
 *   Qwen3-VL 0 (one block per temporal patch, each preceded by its
 *   "<t seconds>" text);
 * - the text after a block restarts at the block's largest position + 1
 *   (the transformers 4.x rule).
 * Pruned blocks: kept tokens keep their offsets from the block's base; the
 * text after restarts at the largest kept position + 1; a block with nothing
 * kept continues from vision_start + 1.
 */

export type QwenPromptFamily = 'qwen2.5-vl' | 'qwen3-vl';
export const QWEN_PROMPT_FAMILIES: readonly QwenPromptFamily[] = ['qwen2.5-vl', 'qwen3-vl'];

/** Special token ids shared by Qwen2-VL, Qwen2.5-VL and Qwen3-VL. */
export const QWEN_TOKEN_IDS = { visionStart: 151652, visionEnd: 151653, imagePad: 151655, videoPad: 151656 } as const;

/** Grid of a visual input in patches before the 2×2 merge, as `image_grid_thw` / `video_grid_thw` (encoders/qwen-preprocess). */
export type { GridThw };

/** Anything that turns text into token ids (the Qwen tokenizer for real prompts). */
export interface TextTokenEncoder {
  encode(text: string): number[];
}

export type PromptSegment =
  | { type: 'text'; text: string }
  | { type: 'ids'; ids: number[] }
  | { type: 'image'; tokens: TokenSet; grid?: GridThw }
  | {
      type: 'video';
      tokens: TokenSet;
      grid?: GridThw;
      /** Qwen2.5-VL: seconds per temporal patch (default temporalPatch / fps). */
      secondsPerGrid?: number;
      /** Sampling rate the frames were taken at (default options.fps). */
      fps?: number;
      /** Qwen3-VL: time of each temporal patch in seconds (default: the frame sources' `time`). */
      timestamps?: number[];
    };

export interface QwenPromptOptions {
  family: QwenPromptFamily;
  /** Encodes text segments and Qwen3-VL's timestamps; not needed when every text is given as ids. */
  tokenizer?: TextTokenEncoder;
  /** Qwen2.5-VL `vision_config.tokens_per_second` (2 in the released checkpoints). */
  tokensPerSecond?: number;
  /** Patches merged per side (2). */
  spatialMerge?: number;
  /** Frames per temporal patch (2). */
  temporalPatch?: number;
  /** Default sampling rate of videos, frames per second (2, the processors' default). */
  fps?: number;
  /**
   * Qwen3-VL: keep the timestamp and vision markers of a frame whose tokens
   * were all dropped (default false: the whole frame block goes, so no frame
   * is announced without tokens).
   */
  keepEmptyFrames?: boolean;
}

/** One visual block of the layout (a whole image or Qwen2.5-VL video, or one Qwen3-VL frame). */
export interface PromptBlock {
  /** Index of the conversation segment it comes from. */
  segment: number;
  kind: 'image' | 'video';
  /** Qwen3-VL video: the temporal patch this block holds. */
  frame?: number;
  /** Qwen3-VL video: the timestamp text before the block, e.g. "<1.2 seconds>". */
  timestamp?: string;
  /** Sequence index of the block's vision_start and vision_end tokens. */
  start: number;
  end: number;
  /** Position of vision_start + 1: kept tokens sit at base + their (time, h, w) offsets. */
  base: number;
  /** Rows of the segment's token set in pad order (raster: t, h, w); feed embeddings in this order. */
  rows: Int32Array;
  /** The grid of the whole input (patches before merging). */
  grid: GridThw;
}

export interface QwenPromptPlan {
  family: QwenPromptFamily;
  /** Token ids of the whole sequence (one pad per kept visual token). */
  ids: Int32Array;
  /** Position ids [temporal, height, width], each of the sequence's length (transformers' position_ids[:, 0, :]). */
  positionIds: [Int32Array, Int32Array, Int32Array];
  /** max position + 1 − sequence length (transformers' mrope_position_deltas). */
  ropeDelta: number;
  blocks: PromptBlock[];
}

interface Resolved {
  family: QwenPromptFamily;
  tokenizer: TextTokenEncoder | undefined;
  tokensPerSecond: number;
  spatialMerge: number;
  temporalPatch: number;
  fps: number;
  keepEmptyFrames: boolean;
}

/**
 * Plans a Qwen prompt: token ids, 3-D position ids and rope delta.
 *
 * @example
 * const plan = planQwenPrompt(
 *   [{ type: 'ids', ids: [9707] }, { type: 'image', tokens: kept }, { type: 'text', text: 'What is it?' }],
 *   { family: 'qwen2.5-vl', tokenizer },
 * );
 * plan.positionIds[1]; // heights: text 0, vision_start 1, pads 2 + h, …
 */
export function planQwenPrompt(segments: PromptSegment[], options: QwenPromptOptions): QwenPromptPlan {
  const o = resolveOptions(options);
  const ids: number[] = [];
  const tPos: number[] = [];
  const hPos: number[] = [];
  const wPos: number[] = [];
  const blocks: PromptBlock[] = [];
  let next = 0;
  const pushText = (tokenIds: ArrayLike<number>) => {
    for (let k = 0; k < tokenIds.length; k++) {
      ids.push(tokenIds[k]!);
      tPos.push(next);
      hPos.push(next);
      wPos.push(next);
      next++;
    }
  };
  const pushBlock = (
    block: Omit<PromptBlock, 'start' | 'end' | 'base'>,
    pad: number,
    time: (t: number) => number,
    positions: Int32Array,
  ) => {
    const start = ids.length;
    pushText([QWEN_TOKEN_IDS.visionStart]);
    const base = next;
    let largest = -1;
    for (const row of block.rows) {
      const t = base + time(positions[3 * row]!);
      const h = base + positions[3 * row + 1]!;
      const w = base + positions[3 * row + 2]!;
      ids.push(pad);
      tPos.push(t);
      hPos.push(h);
      wPos.push(w);
      largest = Math.max(largest, t, h, w);
    }
    // Text after the block restarts at its largest position + 1; an empty block continues from vision_start + 1.
    next = largest >= 0 ? largest + 1 : base;
    const end = ids.length;
    pushText([QWEN_TOKEN_IDS.visionEnd]);
    blocks.push({ ...block, start, end, base });
  };

  segments.forEach((segment, s) => {
    const where = `segment ${s}`;
    if (segment.type === 'text') pushText(encodeText(segment.text, o, `${where} (text)`));
    else if (segment.type === 'ids') pushText(checkIds(segment.ids, `${where} (ids)`));
    else if (segment.type === 'image') {
      const { grid, positions } = visualInput(segment.tokens, segment.grid, 'image', o, where);
      const rows = rasterRows(positions, allRows(segment.tokens.n));
      // Images: Qwen2.5-VL multiplies the time index by 0; Qwen3-VL uses it as is (0 for one temporal patch).
      pushBlock(
        { segment: s, kind: 'image', rows, grid },
        QWEN_TOKEN_IDS.imagePad,
        o.family === 'qwen2.5-vl' ? () => 0 : (t) => t,
        positions,
      );
    } else if (segment.type === 'video') {
      const { grid, positions } = visualInput(segment.tokens, segment.grid, 'video', o, where);
      if (o.family === 'qwen2.5-vl') {
        const secondsPerGrid = videoSecondsPerGrid(segment, o, where);
        const rows = rasterRows(positions, allRows(segment.tokens.n));
        pushBlock(
          { segment: s, kind: 'video', rows, grid },
          QWEN_TOKEN_IDS.videoPad,
          (t) => temporalIndex(t, secondsPerGrid, o.tokensPerSecond),
          positions,
        );
      } else {
        assertNoCrossFrameMerge(segment.tokens, positions, grid, o.spatialMerge, where);
        const byFrame = framesOf(positions, segment.tokens.n, grid[0]);
        for (let f = 0; f < grid[0]; f++) {
          const frameRows = byFrame[f]!;
          if (frameRows.length === 0 && !o.keepEmptyFrames) continue;
          const timestamp = `<${formatOneDecimal(frameTime(segment, f, where))} seconds>`;
          pushText(encodeText(timestamp, o, `${where} (frame ${f} timestamp)`));
          const rows = rasterRows(positions, Int32Array.from(frameRows));
          // One block per temporal patch, time index 0 (the reference splits video_grid_thw into t blocks of t = 1).
          pushBlock(
            { segment: s, kind: 'video', frame: f, timestamp, rows, grid },
            QWEN_TOKEN_IDS.videoPad,
            () => 0,
            positions,
          );
        }
      }
    } else {
      throw new UsageError(
        `${where}: unknown segment type ${JSON.stringify((segment as { type?: unknown }).type)} (text, ids, image or video)`,
      );
    }
  });

  let maxPosition = -1;
  for (let k = 0; k < ids.length; k++) maxPosition = Math.max(maxPosition, tPos[k]!, hPos[k]!, wPos[k]!);
  return {
    family: o.family,
    ids: Int32Array.from(ids),
    positionIds: [Int32Array.from(tPos), Int32Array.from(hPos), Int32Array.from(wPos)],
    ropeDelta: maxPosition + 1 - ids.length,
    blocks,
  };
}

function resolveOptions(options: QwenPromptOptions): Resolved {
  if (!QWEN_PROMPT_FAMILIES.includes(options.family)) {
    throw new UsageError(
      `prompt: family must be one of ${QWEN_PROMPT_FAMILIES.join(', ')}, got ${JSON.stringify(options.family)}`,
    );
  }
  const positive = (name: string, value: number | undefined, fallback: number, integer: boolean): number => {
    const v = value ?? fallback;
    return integer
      ? checkInteger(v, name, { min: 1, where: 'prompt' })
      : checkNumber(v, name, { gt: 0, where: 'prompt' });
  };
  return {
    family: options.family,
    tokenizer: options.tokenizer,
    tokensPerSecond: positive('tokensPerSecond', options.tokensPerSecond, 2, false),
    spatialMerge: positive('spatialMerge', options.spatialMerge, 2, true),
    temporalPatch: positive('temporalPatch', options.temporalPatch, 2, true),
    fps: positive('fps', options.fps, 2, false),
    keepEmptyFrames: options.keepEmptyFrames ?? false,
  };
}

function encodeText(text: string, o: Resolved, where: string): number[] {
  if (!o.tokenizer)
    throw new UsageError(
      `prompt: ${where} needs a tokenizer to become token ids (give a tokenizer, or the ids themselves)`,
    );
  return checkIds(o.tokenizer.encode(text), where);
}

function checkIds(ids: number[], where: string): number[] {
  if (!Array.isArray(ids)) throw new InputError(`prompt: ${where} must be an array of token ids`, 'E_PROMPT');
  ids.forEach((id, k) => {
    if (!(Number.isInteger(id) && id >= 0))
      throw new InputError(`prompt: ${where}: id ${k} is ${JSON.stringify(id)}, expected an integer ≥ 0`, 'E_PROMPT');
  });
  return ids;
}

/** 0..n-1 */
function allRows(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** The rows sorted by position (t, h, w), then by row: the order the merged grid has in raster order. */
function rasterRows(positions: Int32Array, rows: Int32Array): Int32Array {
  return rows
    .slice()
    .sort(
      (a, b) =>
        positions[3 * a]! - positions[3 * b]! ||
        positions[3 * a + 1]! - positions[3 * b + 1]! ||
        positions[3 * a + 2]! - positions[3 * b + 2]! ||
        a - b,
    );
}

/**
 * The grid of a visual segment and its token positions, validated: grid
 * from the segment, else the token set's `image_grid_thw` / `video_grid_thw`
 * metadata ("t,h,w"); positions inside the merged grid, no two tokens at one
 * position, at most t·(h/m)·(w/m) tokens.
 */
export function visualInput(
  tokens: TokenSet,
  given: GridThw | undefined,
  kind: 'image' | 'video',
  o: Pick<Resolved, 'spatialMerge' | 'temporalPatch'>,
  where: string,
): { grid: GridThw; positions: Int32Array } {
  const field = `${kind}_grid_thw`;
  const grid = given ?? gridFromMeta(tokens, field, where);
  if (!grid)
    throw new InputError(
      `${where}: no ${field}: give the grid [t, h, w] (patches before the merge) or use a token file whose metadata has ${field}`,
      'E_PROMPT',
    );
  if (grid.length !== 3 || grid.some((v) => !(Number.isInteger(v) && v >= 1)))
    throw new ShapeError(`${where}: ${field} must be three integers ≥ 1, got ${JSON.stringify(grid)}`);
  const [t, h, w] = grid;
  if (h % o.spatialMerge !== 0 || w % o.spatialMerge !== 0) {
    throw new ShapeError(
      `${where}: ${field} ${grid.join(',')}: h and w must be multiples of the spatial merge ${o.spatialMerge} (got h = ${h}, w = ${w})`,
    );
  }
  if (kind === 'image' && t !== 1)
    throw new ShapeError(
      `${where}: image_grid_thw ${grid.join(',')}: an image has t = 1 (a video goes in a video segment)`,
    );
  const frames = Number(tokens.meta.frames);
  if (
    kind === 'video' &&
    tokens.meta.frames !== undefined &&
    Number.isInteger(frames) &&
    Math.ceil(frames / o.temporalPatch) !== t
  ) {
    throw new ShapeError(
      `${where}: video_grid_thw t = ${t} does not match ${frames} frames in temporal patches of ${o.temporalPatch} (expected t = ${Math.ceil(frames / o.temporalPatch)})`,
    );
  }
  const rows = h / o.spatialMerge;
  const cols = w / o.spatialMerge;
  const capacity = t * rows * cols;
  if (tokens.n > capacity)
    throw new ShapeError(
      `${where}: ${tokens.n} tokens but ${field} ${grid.join(',')} holds ${t}·${rows}·${cols} = ${capacity} merged tokens`,
    );
  const positions = tokens.positions;
  if (!positions)
    throw new InputError(
      `${where}: the ${kind} tokens have no positions (t, h, w); Qwen prompts need them (encode with a Qwen tower, or keep the positions tensor in the token file)`,
      'E_PROMPT',
    );
  if (positions.length !== 3 * tokens.n)
    throw new ShapeError(`${where}: positions has ${positions.length} values, expected 3·n = ${3 * tokens.n}`);
  const seen = new Map<number, number>();
  for (let i = 0; i < tokens.n; i++) {
    const [pt, ph, pw] = [positions[3 * i]!, positions[3 * i + 1]!, positions[3 * i + 2]!];
    if (pt < 0 || pt >= t || ph < 0 || ph >= rows || pw < 0 || pw >= cols) {
      throw new ShapeError(
        `${where}: positions of token ${i} = (${pt}, ${ph}, ${pw}) lie outside the merged grid ${t}×${rows}×${cols} of ${field} ${grid.join(',')}`,
      );
    }
    const key = (pt * rows + ph) * cols + pw;
    const other = seen.get(key);
    if (other !== undefined)
      throw new ShapeError(
        `${where}: tokens ${other} and ${i} share position (${pt}, ${ph}, ${pw}); each merged grid cell holds one token`,
      );
    seen.set(key, i);
  }
  return { grid, positions };
}

function gridFromMeta(tokens: TokenSet, field: string, where: string): GridThw | undefined {
  const text = tokens.meta[field];
  if (text === undefined) return undefined;
  const parts = text.split(',').map((v) => Number(v.trim()));
  if (parts.length !== 3 || parts.some((v) => !(Number.isInteger(v) && v >= 1)))
    throw new ShapeError(
      `${where}: metadata ${field} must be "t,h,w" (three integers ≥ 1), got ${JSON.stringify(text)}`,
    );
  return parts as GridThw;
}

function videoSecondsPerGrid(segment: Extract<PromptSegment, { type: 'video' }>, o: Resolved, where: string): number {
  if (segment.secondsPerGrid !== undefined) {
    return checkNumber(segment.secondsPerGrid, 'secondsPerGrid', { gt: 0, where });
  }
  const fps = segment.fps ?? o.fps;
  checkNumber(fps, 'fps', { gt: 0, where });
  return o.temporalPatch / fps;
}

/**
 * Qwen2.5-VL's time index of temporal patch t: floor(t · seconds_per_grid ·
 * tokens_per_second), computed on the product in float32 as torch does
 * (int64 range × float32 seconds → float32, × tokens_per_second, then
 * truncated). transformers 4.57 instead casts seconds_per_grid to int64
 * first, which differs only for fractional values.
 *
 * @example
 * temporalIndex(3, 1.0, 2); // 6
 * temporalIndex(3, 0.5, 2); // 3 (4.57's truncation would give 0)
 */
export function temporalIndex(t: number, secondsPerGrid: number, tokensPerSecond: number): number {
  return Math.floor(Math.fround(Math.fround(t * Math.fround(secondsPerGrid)) * tokensPerSecond));
}

/**
 * Qwen3-VL puts every temporal patch in its own block after its timestamp, so
 * a token merged from several frames has no block to go in: refused, naming
 * the token and the frames (origins index the unreduced set, raster order,
 * (h/m)·(w/m) tokens per temporal patch). Reduce per frame, or use a
 * selection method, for Qwen3-VL video.
 */
function assertNoCrossFrameMerge(
  tokens: TokenSet,
  positions: Int32Array,
  grid: GridThw,
  merge: number,
  where: string,
): void {
  const perFrame = (grid[1] / merge) * (grid[2] / merge);
  for (let i = 0; i < tokens.n; i++) {
    const origin = tokens.origin[i]!;
    const first = Math.floor(origin[0]! / perFrame);
    const last = Math.floor(origin[origin.length - 1]! / perFrame);
    if (first !== last || first !== positions[3 * i]) {
      throw new ShapeError(
        `${where}: token ${i} merges tokens of frames ${first}..${last} (origin), but qwen3-vl places each frame in its own block (positions t = ${positions[3 * i]}); reduce each frame separately or use a selection method`,
      );
    }
  }
}

/** Token rows per temporal patch (by positions t), in token order. */
function framesOf(positions: Int32Array, n: number, frames: number): number[][] {
  const byFrame: number[][] = Array.from({ length: frames }, () => []);
  for (let i = 0; i < n; i++) byFrame[positions[3 * i]!]!.push(i);
  return byFrame;
}

/** Time of temporal patch f: the segment's timestamps, else the frame source's `time`. */
function frameTime(segment: Extract<PromptSegment, { type: 'video' }>, f: number, where: string): number {
  if (segment.timestamps) {
    const v = segment.timestamps[f];
    if (v === undefined || !(Number.isFinite(v) && v >= 0))
      throw new InputError(
        `${where}: timestamps[${f}] is ${JSON.stringify(v)}, expected a time in seconds ≥ 0 for every temporal patch`,
        'E_PROMPT',
      );
    return v;
  }
  const source = segment.tokens.sources.find((src) => src.kind === 'frame' && src.index === f);
  if (source?.time === undefined)
    throw new InputError(
      `${where}: Qwen3-VL needs the time of temporal patch ${f} (a frame source with index ${f} and a time, or give timestamps)`,
      'E_PROMPT',
    );
  return source.time;
}

/**
 * Python's f"{x:.1f}": correctly rounded, exact ties to even (0.25 → "0.2",
 * 1.25 → "1.2", 0.75 → "0.8"), where JS toFixed rounds ties up.
 *
 * @example
 * formatOneDecimal(0.25); // "0.2"
 */
export function formatOneDecimal(x: number): string {
  // A tie at one decimal means x = j/4 with j odd (x·4 is exact in binary).
  const quarter = x * 4;
  if (Number.isInteger(quarter) && Math.abs(quarter) % 2 === 1) {
    const tenths = x * 10; // exact: x·10 = 2.5·j
    const low = Math.floor(tenths);
    const even = low % 2 === 0 ? low : low + 1;
    return (even / 10).toFixed(1);
  }
  return x.toFixed(1);
}
