import { extname } from 'node:path';
import {
  createTokenSet,
  mergeTokens,
  type Reduction,
  resolveBudget,
  selectTokens,
  type TokenSet,
} from '../core/tokenset.js';
import { attentionScores } from '../reducers/attention.js';
import { evsBlocks } from '../reducers/evs.js';
import { type FrameHints, fastvidBlocks } from '../reducers/fastvid.js';
import { blockFrames, forEachGathered, gatherRows } from '../reducers/frame-blocks.js';
import { temporalMergeBlocks } from '../reducers/temporal-merge.js';
import { budgetWarnings, type ReductionRun } from '../reducers/run.js';
import type { AnyReducer } from '../reducers/types.js';
import { npyShape, saveTokens } from './tokenfile.js';
import {
  createNpyStream,
  createTokenStream,
  type FrameFile,
  frameGrid,
  frameSelection,
  isFrameFile,
  npyFrameSources,
  openFrameFile,
} from './tokenstream.js';

/**
 * Temporal methods on a video token file — a 3-D .npy [frames, tokens, d] or
 * a video .safetensors (vtc encode's layout) — read a block of frames at a
 * time (the file is never loaded whole): the method's block rule gives the
 * kept (or merged) rows, which alone are read again. reduceFramesFile
 * returns them as a TokenSet equal to the in-memory method's output on the
 * loaded file; reduceFramesFileTo writes them to the output file as they are
 * produced (the CLI's path), so memory holds one block + O(frames·tokens)
 * scalars, not the output.
 */

type BlockRule = (file: FrameFile, options: Record<string, unknown>, block: number) => Promise<Reduction>;

/** The methods with a block path, by registry name. */
const BLOCK_RULES: Record<string, BlockRule> = {
  async evs(file, options, block) {
    const { keep, stats } = await evsBlocks(file, options, block);
    return { tokens: selectionOf(file, keep, await gatherRows(file, keep, block)), keep, stats };
  },
  async fastvid(file, options, block) {
    const plan = await fastvidBlocks(file, options, frameFileHints(file), { block });
    const { keep, stats } = plan;
    if ((stats.context as number) === 0) return { tokens: selectionOf(file, keep, plan.features), keep, stats };
    const { tokens: skeleton, assign } = fastvidSkeleton(file, keep, plan.assign);
    const tokens = { ...skeleton, d: file.d, data: plan.features };
    return { tokens, keep, assign, representative: keep, stats };
  },
  async 'temporal-merge'(file, options, block) {
    const { features, assign, representative, stats } = await temporalMergeBlocks(file, options, block);
    const skeleton = framesMergedSkeleton(file, assign, representative, stats.groups as number[][]);
    return { tokens: { ...skeleton, d: file.d, data: features }, assign, representative, stats };
  },
};

/** What a streamed rule gives: the output's metadata (d = 1 skeleton) and the reduction without tokens. */
interface StreamedReduction extends Omit<Reduction, 'tokens'> {
  skeleton: TokenSet;
}

/**
 * Block rules that write their rows as they are produced: `open` is called
 * with the output's metadata when it is known before the rows (evs: the kept
 * tokens come first; the writer then reserves the header exactly) or without
 * it (fastvid: rows come a segment at a time, before the merge sizes).
 */
type StreamRule = (
  file: FrameFile,
  options: Record<string, unknown>,
  block: number,
  open: (expect?: TokenSet) => Promise<(rows: Float32Array) => Promise<void>>,
) => Promise<StreamedReduction>;

const STREAM_RULES: Record<string, StreamRule> = {
  async evs(file, options, block, open) {
    const { keep, stats } = await evsBlocks(file, options, block);
    const skeleton = selectionOf(file, keep);
    await forEachGathered(file, keep, block, await open(skeleton));
    return { skeleton, keep, stats };
  },
  async fastvid(file, options, block, open) {
    const append = await open();
    const plan = await fastvidBlocks(file, options, frameFileHints(file), { block, onRows: append });
    const { keep, stats } = plan;
    if ((stats.context as number) === 0) return { skeleton: selectionOf(file, keep), keep, stats };
    const { tokens: skeleton, assign } = fastvidSkeleton(file, keep, plan.assign);
    return { skeleton, keep, assign, representative: keep, stats };
  },
  async 'temporal-merge'(file, options, block, open) {
    let skeleton: TokenSet | undefined;
    const { assign, representative, stats } = await temporalMergeBlocks(
      file,
      options,
      block,
      async (assign, representative, stats) =>
        open((skeleton = framesMergedSkeleton(file, assign, representative, stats.groups as number[][]))),
    );
    return { skeleton: skeleton!, assign, representative, stats };
  },
};

/** A merge's metadata (sizes, origins, positions from `representative`) on the file's skeleton: d = 1, zeros. */
function mergedSkeleton(file: FrameFile, assign: Int32Array, representative: Int32Array): TokenSet {
  return mergeTokens(file.skeleton(), assign, representative.length, {
    features: new Float32Array(representative.length),
    representative,
  });
}

/**
 * temporal-merge's output metadata: mergedSkeleton, but for a .npy built from
 * the groups of whole frames alone (like frameSelection), without the input's
 * per-token skeleton (an origin array per input token: ~190 MB for an hour).
 * Output g·P + p merges token p of every frame of group g: size |g|, origins
 * those tokens in order, source and grid cell those of the group's first
 * frame (its representative) — what mergeTokens gives on the loaded file.
 */
function framesMergedSkeleton(
  file: FrameFile,
  assign: Int32Array,
  representative: Int32Array,
  groups: number[][],
): TokenSet {
  if (extname(file.path).toLowerCase() !== '.npy') return mergedSkeleton(file, assign, representative);
  const { frames, perFrame } = file;
  const { cols } = frameGrid(perFrame);
  const n = groups.length * perFrame;
  const source = new Int32Array(n);
  const row = new Int32Array(n);
  const col = new Int32Array(n);
  const size = new Float64Array(n);
  const origin: Int32Array[] = new Array(n);
  groups.forEach((members, g) => {
    for (let p = 0; p < perFrame; p++) {
      const o = g * perFrame + p;
      source[o] = members[0]!;
      row[o] = Math.floor(p / cols);
      col[o] = p % cols;
      size[o] = members.length;
      origin[o] = Int32Array.from(members, (f) => f * perFrame + p);
    }
  });
  return {
    n,
    d: 1,
    data: new Float32Array(n),
    source,
    row,
    col,
    size,
    origin,
    sources: npyFrameSources(frames, perFrame),
    meta: {},
  };
}

/** selectTokens(loaded file, keep) with `rows` as its features; without rows, the d = 1 skeleton. */
function selectionOf(file: FrameFile, keep: Int32Array, rows?: Float32Array): TokenSet {
  const npy = extname(file.path).toLowerCase() === '.npy';
  const features = rows ?? new Float32Array(keep.length);
  const d = rows ? file.d : 1;
  // A .npy's selection is built from the kept indices alone (no per-token arrays of the whole input).
  if (npy) return frameSelection({ frames: file.frames, perFrame: file.perFrame, d }, keep, features);
  return { ...selectTokens(file.skeleton(), keep), d, data: features };
}

/** fastvid's merge metadata (sizes, origins, representatives) on the file's skeleton: d = 1, zeros. */
function fastvidSkeleton(file: FrameFile, keep: Int32Array, primary: Int32Array) {
  const outputOf = new Int32Array(file.frames * file.perFrame).fill(-1);
  keep.forEach((i, o) => (outputOf[i] = o));
  const assign = Int32Array.from(primary, (target) => outputOf[target]!);
  const tokens = mergeTokens(file.skeleton(), assign, keep.length, {
    features: new Float32Array(keep.length),
    representative: keep,
  });
  return { tokens, assign };
}

/**
 * fastvid's scores for a frame file as attentionScores gives them for the
 * loaded file: the stored `scores` tensor when the file has one (a video
 * .safetensors from vtc encode), else cosine to the mean of the token's frame
 * (a .npy has no scores and no CLS), block by block.
 */
function frameFileHints(file: FrameFile): FrameHints {
  if (extname(file.path).toLowerCase() !== '.npy') {
    const { score } = file.skeleton();
    if (score)
      return {
        scores: async (_features, start, end) => ({
          scores: score.subarray(start * file.perFrame, end * file.perFrame),
          from: 'score',
        }),
      };
  }
  return meanCosineHints(file);
}

/**
 * Scores of a frame file's tokens block by block, as attentionScores gives
 * them for a loaded file without scores or CLS: cosine to the mean of the
 * token's frame.
 */
export function meanCosineHints(file: Pick<FrameFile, 'perFrame' | 'd'>): FrameHints {
  return {
    async scores(features, start, end) {
      const frames = end - start;
      const source = new Int32Array(frames * file.perFrame);
      for (let f = 0; f < frames; f++) source.fill(f, f * file.perFrame, (f + 1) * file.perFrame);
      const block: TokenSet = createTokenSet({
        data: features,
        n: frames * file.perFrame,
        d: file.d,
        sources: npyFrameSources(frames, file.perFrame),
        source,
      });
      return attentionScores(block);
    },
  };
}

/**
 * Whether `method` runs on frame blocks of a 3-D .npy (vtc reduce uses that path for every such input).
 *
 * @example
 * hasBlockPath('evs'); // true
 */
export function hasBlockPath(method: string): boolean {
  return Object.hasOwn(BLOCK_RULES, method);
}

/**
 * Whether `vtc reduce --method <method> --in <path>` takes the block path:
 * a block method on a 3-D .npy, or a streamed one (evs, fastvid) on a video
 * .safetensors (frame sources, float tokens, no extra tensors). Reads headers only.
 *
 * @example
 * await usesBlockPath('fastvid', 'hour.safetensors'); // true
 */
export async function usesBlockPath(method: string, path: string): Promise<boolean> {
  if (!hasBlockPath(method)) return false;
  if (extname(path).toLowerCase() !== '.npy' && !Object.hasOwn(STREAM_RULES, method)) return false;
  return isFrameFile(path);
}

/** runReducer's bookkeeping (budget, warnings) for a block run. */
function runSummary(
  reducer: AnyReducer,
  file: FrameFile,
  options: Record<string, unknown>,
  stats: Record<string, unknown>,
  nOut: number,
) {
  const budget = stats.budget as number;
  const n = file.frames * file.perFrame;
  const spec = options.budget !== undefined ? { budget: options.budget as number } : { ratio: options.ratio as number };
  const warnings = budgetWarnings(reducer, resolveBudget(n, spec, reducer.name).budget, budget, nOut);
  return { ratio: stats.ratio as number, budget, n_in: n, n_padding: 0, n_out: nOut, warnings };
}

/**
 * Runs a block method on a video token file (3-D .npy or video .safetensors);
 * the result has runReducer's shape and equals it on the loaded file.
 *
 * @example
 * const run = await reduceFramesFile(evsReducer, 'hour.npy', { ratio: 0.1 });
 * await saveTokens('kept.safetensors', run.reduction.tokens);
 */
export async function reduceFramesFile(
  reducer: AnyReducer,
  path: string,
  options: Record<string, unknown>,
  block?: number,
): Promise<ReductionRun> {
  const rule = BLOCK_RULES[reducer.name];
  if (!rule) throw new Error(`${reducer.name}: no frame-block path`);
  const file = await openFrameFile(path, reducer.name);
  try {
    const reduction = await rule(file, options, block ?? blockFrames(file));
    return { reduction, ...runSummary(reducer, file, options, reduction.stats, reduction.tokens.n) };
  } finally {
    await file.close();
  }
}

/** What reduceFramesFileTo wrote: runReducer's summary without the output features (they are in the file). */
export interface FramesFileRun extends Omit<ReductionRun, 'reduction'> {
  reduction: Omit<Reduction, 'tokens'>;
  /** Feature dimension of the output rows. */
  d: number;
  out: string;
}

/**
 * reduceFramesFile writing its output to `out` (.safetensors, or .npy when
 * the frames keep equal counts) as the rows are produced: the kept rows of a
 * block (evs) or the merged rows of a segment (fastvid) go to the file and
 * are dropped, so memory holds one block + O(frames·tokens) scalars, never
 * the output. The file is byte-identical to saveTokens(out, reduceFramesFile(…)
 * .reduction.tokens); atomic (a failure leaves no file). Methods without a
 * streamed rule run reduceFramesFile and save.
 *
 * @example
 * const run = await reduceFramesFileTo(fastvidReducer, 'hour.npy', 'fv.safetensors', { ratio: 0.1 });
 * run.n_out; // kept tokens, written to fv.safetensors
 */
export async function reduceFramesFileTo(
  reducer: AnyReducer,
  path: string,
  out: string,
  options: Record<string, unknown>,
  settings: { dtype?: 'float32' | 'float16'; block?: number } = {},
): Promise<FramesFileRun> {
  const stream = STREAM_RULES[reducer.name];
  if (!stream) {
    const run = await reduceFramesFile(reducer, path, options, settings.block);
    const { tokens, ...reduction } = run.reduction;
    await saveTokens(out, tokens, { dtype: settings.dtype ?? 'float32' });
    return { ...run, reduction, d: tokens.d, out };
  }
  const file = await openFrameFile(path, reducer.name);
  let close: ((skeleton: TokenSet) => Promise<void>) | undefined;
  let abort: (() => Promise<void>) | undefined;
  try {
    const dtype = settings.dtype ?? 'float32';
    const npy = extname(out).toLowerCase() === '.npy';
    const open = async (expect?: TokenSet) => {
      if (npy) {
        if (expect) npyShape(expect, out); // refused before any row is written (frames keep unequal counts)
        const writer = await createNpyStream(out, { trailing: [file.d], dtype });
        close = (skeleton) => writer.close([...npyShape(skeleton, out).slice(0, -1), file.d]);
        abort = () => writer.abort();
        return (rows: Float32Array) => writer.append(rows);
      }
      const writer = await createTokenStream(out, { d: file.d, dtype, ...(expect ? { expect } : {}) });
      close = (skeleton) => writer.close(skeleton);
      abort = () => writer.abort();
      return (rows: Float32Array) => writer.append(rows);
    };
    const { skeleton, ...reduction } = await stream(file, options, settings.block ?? blockFrames(file), open);
    await close!(skeleton);
    return { reduction, ...runSummary(reducer, file, options, reduction.stats, skeleton.n), d: file.d, out };
  } catch (error) {
    await abort?.();
    throw error;
  } finally {
    await file.close();
  }
}
