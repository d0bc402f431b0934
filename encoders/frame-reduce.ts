import type { Reduction } from '../core/tokenset.js';
import { evsBlocks } from '../reducers/evs.js';
import { blockFrames, type FrameBlockSource, gatherRows } from '../reducers/frame-blocks.js';
import type { ReductionRun } from '../reducers/run.js';
import type { AnyReducer } from '../reducers/types.js';
import { frameSelection, type NpyFrameFile, openNpyFrames } from './tokenstream.js';

/**
 * Temporal methods on a 3-D .npy [frames, tokens, d] read a block of frames
 * at a time (the file is never loaded whole): the method's block rule gives
 * the kept (or merged) rows, which alone are read again and returned as a
 * TokenSet equal to the in-memory method's output on the loaded file.
 * Memory: one block (BLOCK_BYTES of features) + O(frames·tokens) scalars +
 * the output.
 */

type BlockRule = (
  source: FrameBlockSource,
  options: Record<string, unknown>,
  block: number,
) => Promise<{ keep: Int32Array; stats: Record<string, unknown> }>;

/** The methods with a block path, by registry name. */
const BLOCK_RULES: Record<string, BlockRule> = {
  evs: (source, options, block) => evsBlocks(source, options, block),
};

/**
 * Whether `method` runs on frame blocks (vtc reduce uses that path for every 3-D .npy input).
 *
 * @example
 * hasBlockPath('evs'); // true
 */
export function hasBlockPath(method: string): boolean {
  return Object.hasOwn(BLOCK_RULES, method);
}

/**
 * Runs a block method on a 3-D .npy file; the result has runReducer's shape.
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
  const file: NpyFrameFile = await openNpyFrames(path);
  try {
    const frames = block ?? blockFrames(file);
    const { keep, stats } = await rule(file, options, frames);
    const tokens = frameSelection(file, keep, await gatherRows(file, keep, frames));
    const reduction: Reduction = { tokens, keep, stats };
    const budget = stats.budget as number;
    const warnings =
      tokens.n > budget ? [`${reducer.name}: kept ${tokens.n} tokens, more than the budget ${budget}`] : [];
    return {
      reduction,
      ratio: stats.ratio as number,
      budget,
      n_in: file.frames * file.perFrame,
      n_padding: 0,
      n_out: tokens.n,
      warnings,
    };
  } finally {
    await file.close();
  }
}
