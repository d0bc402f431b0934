import { Rng } from '../core/rng.js';
import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { seedOf } from './options.js';
import type { BaseReduceOptions, Reducer } from './types.js';

/**
 * Options of `random`: ratio R ∈ (0, 1] (budget = max(1, round(n·R))) or
 * budget ∈ [1, n], and an integer seed (default 0).
 */
export type RandomOptions = BaseReduceOptions;

/**
 * `random` — seeded uniform selection: draws `budget` distinct tokens with
 * the platform-independent Rng (partial Fisher–Yates) and keeps them in
 * original order. The baseline every other selection method must beat.
 *
 * @example
 * const { keep } = await randomReducer.run(tokens, { ratio: 0.25, seed: 7 });
 */
export const randomReducer: Reducer<RandomOptions> = {
  name: 'random',
  summary: 'seeded uniform selection of budget tokens, kept in original order',
  kind: 'select',
  scope: 'all',
  options: {},
  async run(tokens: TokenSet, options: RandomOptions): Promise<Reduction> {
    const { budget, ratio } = resolveBudget(tokens.n, options, 'random');
    const keep = new Rng(seedOf(options, 'random')).sample(tokens.n, budget).sort();
    return { tokens: selectTokens(tokens, keep), keep, stats: { budget, ratio } };
  },
};
