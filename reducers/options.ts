import type { BaseReduceOptions } from './types.js';
import { checkInteger } from '../core/validate.js';

/** Largest seed: the Rng keeps 32 bits, so larger (or negative) seeds would alias smaller ones. */
export const MAX_SEED = 0xffffffff;

/**
 * The seed of a reduction: an integer in [0, 2³² − 1] (default 0); anything
 * else is a usage error naming the method, so a fractional seed never
 * silently truncates and no two accepted seeds share a random stream.
 *
 * @example
 * seedOf({ ratio: 0.25, seed: 7 }, 'random'); // 7
 */
export function seedOf(options: BaseReduceOptions, method: string): number {
  const seed = options.seed ?? 0;
  return checkInteger(seed, 'seed', { min: 0, max: MAX_SEED, where: method });
}
