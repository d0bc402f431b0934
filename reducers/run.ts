import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { UsageError } from '../core/errors.js';
import { checkFeatureSize } from '../core/linalg.js';
import { mustBe } from '../core/validate.js';
import { anyresUnpadLayout } from './anyres-unpad.js';
import { reducePerFrame } from './per-frame.js';
import type { AnyReducer, BaseReduceOptions } from './types.js';

/** Options of a run: the method's own, plus how to apply it. */
export type RunOptions = BaseReduceOptions &
  Record<string, unknown> & {
    /**
     * Reduce each frame of a video token set on its own (budget split over
     * frames, at least one token each; reducers/per-frame.ts). Required for
     * merges on Qwen3-VL videos, whose frames are separate blocks. Default false.
     */
    perFrame?: boolean;
  };

/**
 * One reduction with the counts every front end reports (`vtc reduce`,
 * `vtc compress`, the demo, `reduce()`), computed here once so they agree.
 */
export interface ReductionRun {
  /** keep/assign/representative index the input tokens; assign is −1 for AnyRes padding left out. */
  reduction: Reduction;
  ratio: number;
  /**
   * Tokens the method aims to keep: the method's own total when it budgets
   * per tile (Σ max(1, round(n_t·R))), else max(1, round(n_in·R)).
   */
  budget: number;
  /** Tokens the method worked on: for an AnyRes bundle the thumbnail plus the unpadded crop tokens. */
  n_in: number;
  /** AnyRes crop tokens that are padding (0 for anything else); never given to a method. */
  n_padding: number;
  n_out: number;
  /** Said on stderr by the CLI and kept in the JSON: e.g. an output larger than the budget. */
  warnings: string[];
}

/**
 * Runs a reducer the way LLaVA-NeXT feeds its LLM: on an AnyRes bundle the
 * padding rows/columns of the crop canvas (unpad_image) are removed first, so
 * every method works on valid tokens only — except methods whose rule is
 * defined on the whole bundle (scope 'anyres', GlobalCom²), which read the
 * padding layout themselves. The ratio applies to the valid count; outputs
 * above the budget are reported in `warnings`, never silently.
 *
 * @example
 * const run = await runReducer(getReducer('random'), bundle, { ratio: 0.25 });
 * run.n_in;      // 576 + unpadded crop tokens
 * run.n_padding; // crop tokens in the padding band
 */
export async function runReducer(reducer: AnyReducer, tokens: TokenSet, runOptions: RunOptions): Promise<ReductionRun> {
  const { perFrame, ...options } = runOptions;
  if (perFrame !== undefined && typeof perFrame !== 'boolean')
    throw new UsageError(`${reducer.name}: perFrame must be true or false, got ${JSON.stringify(perFrame)}`);
  // Checked before any work: a bad callback would otherwise fail mid-run, at the first report.
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new UsageError(
      `${reducer.name}: onProgress ${mustBe('a function ({ stage, done, total }) => void', options.onProgress)}`,
    );
  const validIndices = unpaddedIndices(tokens);
  const nPadding = validIndices ? tokens.n - validIndices.length : 0;
  const nIn = tokens.n - nPadding;
  const spec =
    options.budget !== undefined
      ? { budget: options.budget }
      : options.ratio !== undefined
        ? { ratio: options.ratio }
        : {};
  const { budget: resolved, ratio } = resolveBudget(nIn, spec, reducer.name);
  // Every method holds the features plus working memory of their size or more: refuse beyond the limit up front.
  checkFeatureSize(nIn, tokens.d, reducer.name);
  let reduction: Reduction;
  if (perFrame) {
    if (validIndices)
      throw new UsageError(`${reducer.name}: per-frame reduction applies to videos, not AnyRes bundles`);
    reduction = await reducePerFrame(reducer, tokens, options);
  } else if (!validIndices) {
    reduction = await reducer.run(tokens, options);
    assertFrameBlocksKept(reducer, tokens, reduction);
  } else if (reducer.scope === 'anyres') {
    // The method skips padding itself; a budget is a share of the valid tokens, as for every other method.
    const { budget: _budget, ...rest } = options;
    reduction = await reducer.run(tokens, { ...rest, ratio });
  } else {
    reduction = liftToInput(await reducer.run(selectTokens(tokens, validIndices), options), validIndices, tokens.n);
  }
  const budget = typeof reduction.stats.budget === 'number' ? reduction.stats.budget : resolved;
  const warnings = budgetWarnings(reducer, resolved, budget, reduction.tokens.n, options.kernel);
  const empty = emptyQwen3Frames(tokens, reduction);
  if (empty.length > 0) {
    warnings.push(
      `${reducer.name}: frames ${empty.join(', ')} kept no tokens; the qwen3-vl prompt plan drops their timestamp and vision block (keepEmptyFrames keeps them; per-frame reduction keeps a token in every frame)`,
    );
  }
  return { reduction, ratio, budget, n_in: nIn, n_padding: nPadding, n_out: reduction.tokens.n, warnings };
}

/**
 * The budget warnings of a run: the method's own rule kept more than asked
 * (`resolved`), or the output is larger than the method's budget.
 *
 * @example
 * budgetWarnings(evsReducer, 5, 9, 9); // ['evs: the method's own budget rule keeps 9 tokens, …']
 */
export function budgetWarnings(
  reducer: AnyReducer,
  resolved: number,
  budget: number,
  kept: number,
  kernel?: unknown,
): string[] {
  const warnings: string[] = [];
  if (budget > resolved) {
    warnings.push(
      `${reducer.name}: the method's own budget rule keeps ${budget} tokens, more than the ${resolved} asked for (docs/methods.md: ${reducer.scope === 'video' ? 'at least one frame' : 'per-tile or per-frame rounding, at least one token each'})`,
    );
  }
  if (kept > budget) {
    warnings.push(
      `${reducer.name}: kept ${kept} tokens, more than the budget ${budget}${kernel !== undefined ? ` (the explicit --kernel ${kernel} decides the count)` : ''}`,
    );
  }
  return warnings;
}

/** A Qwen3-VL video: each temporal patch is its own block in the prompt (one frame source per patch). */
function isQwen3Video(tokens: TokenSet): boolean {
  return tokens.meta.family === 'qwen3-vl' && tokens.meta.video_grid_thw !== undefined;
}

/**
 * Qwen3-VL gives every frame its own block, so a merged token must not mix
 * frames: refused naming the token, its frames and the way out.
 */
function assertFrameBlocksKept(reducer: AnyReducer, tokens: TokenSet, reduction: Reduction): void {
  if (!isQwen3Video(tokens) || !reduction.assign) return;
  const frameOf = new Int32Array(reduction.tokens.n).fill(-1);
  for (let i = 0; i < tokens.n; i++) {
    const output = reduction.assign[i]!;
    if (output < 0) continue;
    const frame = tokens.source[i]!;
    if (frameOf[output] === -1) frameOf[output] = frame;
    else if (frameOf[output] !== frame) {
      const [a, b] = [tokens.sources[frameOf[output]!]!.index, tokens.sources[frame]!.index].sort((x, y) => x - y);
      throw new UsageError(
        `${reducer.name}: output token ${output} merges tokens of frames ${a} and ${b} (source), but qwen3-vl places each frame in its own block (video_grid_thw ${tokens.meta.video_grid_thw}); reduce per frame (--per-frame, library: perFrame: true) or use a selection method`,
        'E_CROSS_FRAME',
      );
    }
  }
}

/** Frame indices of a Qwen3-VL video whose tokens were all dropped. */
function emptyQwen3Frames(tokens: TokenSet, reduction: Reduction): number[] {
  if (!isQwen3Video(tokens)) return [];
  const kept = new Uint8Array(tokens.sources.length);
  for (let o = 0; o < reduction.tokens.n; o++) kept[reduction.tokens.source[o]!] = 1;
  return tokens.sources.flatMap((source, s) => (source.kind === 'frame' && !kept[s] ? [source.index] : []));
}

/**
 * Indices of the non-padding tokens of an AnyRes token set, in input order,
 * or undefined when nothing is padding (not a bundle, or an image that fills
 * its crop canvas).
 */
export function unpaddedIndices(tokens: TokenSet): Int32Array | undefined {
  if (!tokens.anyres) return undefined;
  const layout = anyresUnpadLayout(tokens.anyres);
  const valid: number[] = [];
  for (let i = 0; i < tokens.n; i++) {
    const source = tokens.sources[tokens.source[i]!]!;
    if (source.kind !== 'crop') {
      valid.push(i);
      continue;
    }
    const region = layout.crops[source.index];
    const r = tokens.row[i]!;
    const c = tokens.col[i]!;
    if (
      region &&
      r >= region.top &&
      r < region.top + region.height &&
      c >= region.left &&
      c < region.left + region.width
    )
      valid.push(i);
  }
  return valid.length === tokens.n ? undefined : Int32Array.from(valid);
}

/** Maps keep/assign/representative of a reduction of the valid tokens back to input indices (padding: assign −1). */
function liftToInput(reduction: Reduction, validIndices: Int32Array, n: number): Reduction {
  const lifted: Reduction = { tokens: reduction.tokens, stats: reduction.stats };
  if (reduction.keep) lifted.keep = reduction.keep.map((j) => validIndices[j]!);
  if (reduction.representative) lifted.representative = reduction.representative.map((j) => validIndices[j]!);
  if (reduction.assign) {
    const assign = new Int32Array(n).fill(-1);
    reduction.assign.forEach((output, j) => (assign[validIndices[j]!] = output));
    lifted.assign = assign;
  }
  return lifted;
}
