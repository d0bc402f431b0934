import type { NativeKernel } from '../core/linalg-kernels.js';
import type { Reduction, TokenSet } from '../core/tokenset.js';

/** Options every reducer accepts. Give exactly one of ratio / budget. */
export interface BaseReduceOptions {
  /** Fraction of tokens to keep, in (0, 1]; becomes budget = max(1, round(n·R)). */
  ratio?: number;
  /** Number of output tokens, in [1, n]. */
  budget?: number;
  /** Seed for any randomness (default 0). */
  seed?: number;
  /**
   * Hears how far a long reduction is: `done` of `total` units of its current
   * stage (e.g. divprune's 'nearest neighbours' then 'picks'). Called from the
   * reduction's own loop, so keep it cheap. `vtc reduce` draws it as a bar.
   */
  onProgress?: (progress: ReduceProgress) => void;
}

/** Where a reduction is: `done` of `total` units of `stage` (units are the stage's own: picks, rounds, similarities). */
export interface ReduceProgress {
  stage: string;
  done: number;
  total: number;
}

/** Describes a method-specific option so the CLI can expose it as a flag. */
export interface OptionSpec {
  /**
   * 'npy': a .npy file the CLI loads into a Matrix ([d] → 1×d) before calling the reducer (reducers never read files).
   * 'json': a .json file the CLI parses and hands over as is (the reducer validates it).
   */
  type: 'number' | 'integer' | 'string' | 'boolean' | 'integer-list' | 'npy' | 'json';
  description: string;
  default?: number | string | boolean;
}

export interface Reducer<O extends BaseReduceOptions = BaseReduceOptions> {
  /** Registry name, as used by `vtc reduce --method`. */
  name: string;
  /** One line for `--help` and the docs. */
  summary: string;
  /** 'select' returns `keep`, 'merge' returns `assign` (and `keep` when outputs are input tokens). */
  kind: 'select' | 'merge';
  /** Budget scope: all tokens together, per tile, the AnyRes bundle rule, or a video token set [frames, tokens, d] (frame sources). */
  scope: 'all' | 'tile' | 'anyres' | 'video';
  /** Method-specific options (beyond ratio/budget/seed), by camelCase name. */
  options: Record<string, OptionSpec>;
  /** Native kernels the method runs (core/linalg-kernels), so a one-shot caller can set them up while it loads the input. */
  native?: readonly NativeKernel[];
  run(tokens: TokenSet, options: O): Promise<Reduction>;
}

export type AnyReducer = Reducer<BaseReduceOptions & Record<string, unknown>>;
