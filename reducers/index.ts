import { UsageError } from '../core/errors.js';
import type { Reduction, TokenSet } from '../core/tokenset.js';
import { poolReducer } from './pool.js';
import { randomReducer } from './random.js';
import type { AnyReducer, BaseReduceOptions } from './types.js';

export type { AnyReducer, BaseReduceOptions, OptionSpec, Reducer } from './types.js';
export { poolReducer } from './pool.js';
export { randomReducer } from './random.js';

/** Every reducer by registry name. One file per method in this folder. */
export const reducers: Record<string, AnyReducer> = {
  random: randomReducer as AnyReducer,
  pool: poolReducer as AnyReducer,
};

export function reducerNames(): string[] {
  return Object.keys(reducers);
}

export function getReducer(name: string): AnyReducer {
  const reducer = reducers[name];
  if (!reducer) throw new UsageError(`unknown method ${JSON.stringify(name)} (available: ${reducerNames().join(', ')})`, 'E_METHOD');
  return reducer;
}

/**
 * Runs a registered reducer by name.
 *
 * @example
 * const result = await reduce(tokens, 'pool', { ratio: 0.25 });
 * result.tokens.n; // 144 for a 24×24 grid
 */
export async function reduce(tokens: TokenSet, method: string, options: BaseReduceOptions & Record<string, unknown>): Promise<Reduction> {
  return getReducer(method).run(tokens, options);
}
