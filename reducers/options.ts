import { UsageError } from '../core/errors.js';
import type { BaseReduceOptions } from './types.js';

/**
 * The seed of a reduction: an integer (default 0); anything else is a usage
 * error naming the method, so a fractional seed never silently truncates.
 *
 * @example
 * seedOf({ ratio: 0.25, seed: 7 }, 'random'); // 7
 */
export function seedOf(options: BaseReduceOptions, method: string): number {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new UsageError(`${method}: seed must be an integer, got ${seed}`);
  return seed;
}
