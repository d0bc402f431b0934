import { createTokenSet, mergeTokens, type Reduction, resolveBudget, type TokenSet } from '../core/tokenset.js';
import { attentionScores } from '../reducers/attention.js';
import { evsBlocks } from '../reducers/evs.js';
import { type FrameHints, fastvidBlocks } from '../reducers/fastvid.js';
import { blockFrames, gatherRows } from '../reducers/frame-blocks.js';
import { temporalMergeBlocks } from '../reducers/temporal-merge.js';
import { budgetWarnings, type ReductionRun } from '../reducers/run.js';
import type { AnyReducer } from '../reducers/types.js';
import { frameSelection, frameSkeleton, type NpyFrameFile, npyFrameSources, openNpyFrames } from './tokenstream.js';

/**
 * Temporal methods on a 3-D .npy [frames, tokens, d] read a block of frames
 * at a time (the file is never loaded whole): the method's block rule gives
 * the kept (or merged) rows, which alone are read again and returned as a
 * TokenSet equal to the in-memory method's output on the loaded file.
 * Memory: one block (BLOCK_BYTES of features) + O(frames·tokens) scalars +
 * the output.
 */

type BlockRule = (file: NpyFrameFile, options: Record<string, unknown>, block: number) => Promise<Reduction>;

/** The methods with a block path, by registry name. */
const BLOCK_RULES: Record<string, BlockRule> = {
  async evs(file, options, block) {
    const { keep, stats } = await evsBlocks(file, options, block);
    return { tokens: frameSelection(file, keep, await gatherRows(file, keep, block)), keep, stats };
  },
  async fastvid(file, options, block) {
    const plan = await fastvidBlocks(file, options, meanCosineHints(file), { block });
    const { keep, stats } = plan;
    if ((stats.context as number) === 0) return { tokens: frameSelection(file, keep, plan.features), keep, stats };
    const outputOf = new Int32Array(file.frames * file.perFrame).fill(-1);
    keep.forEach((i, o) => (outputOf[i] = o));
    const assign = Int32Array.from(plan.assign, (target) => outputOf[target]!);
    const tokens = mergeTokens(frameSkeleton(file), assign, keep.length, {
      features: plan.features,
      representative: keep,
    });
    return { tokens, keep, assign, representative: keep, stats };
  },
  async 'temporal-merge'(file, options, block) {
    const { features, assign, representative, stats } = await temporalMergeBlocks(file, options, block);
    const tokens = mergeTokens(frameSkeleton(file), assign, representative.length, { features, representative });
    return { tokens, assign, representative, stats };
  },
};

/**
 * Scores of a .npy's tokens block by block, as attentionScores gives them for
 * the loaded file (no scores, no CLS: cosine to the mean of the token's frame).
 */
export function meanCosineHints(file: NpyFrameFile): FrameHints {
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
    const reduction = await rule(file, options, block ?? blockFrames(file));
    const { tokens, stats } = reduction;
    const budget = stats.budget as number;
    const n = file.frames * file.perFrame;
    const spec =
      options.budget !== undefined ? { budget: options.budget as number } : { ratio: options.ratio as number };
    const warnings = budgetWarnings(reducer, resolveBudget(n, spec, reducer.name).budget, budget, tokens.n);
    return {
      reduction,
      ratio: stats.ratio as number,
      budget,
      n_in: n,
      n_padding: 0,
      n_out: tokens.n,
      warnings,
    };
  } finally {
    await file.close();
  }
}
