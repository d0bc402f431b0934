import { Rng } from '../core/rng.js';
import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { seedOf } from './options.js';
import type { BaseReduceOptions, Reducer } from './types.js';

/**
 * `random` — seeded uniform selection: draws `budget` distinct tokens with
 * the platform-independent Rng and keeps them in original order. The
 * baseline every other selection method must beat.
 *
 * @example
 * const { keep } = await randomReducer.run(tokens, { ratio: 0.25, seed: 7 });
 */
export type RandomOptions = BaseReduceOptions;

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
