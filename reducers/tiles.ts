import { resolveBudget, type TokenSet } from '../core/tokenset.js';
import { UsageError } from '../core/errors.js';
import type { BaseReduceOptions } from './types.js';

/**
 * Per-tile budgets: a ratio applies to each tile (max(1, round(n_t·R))); a
 * budget N is split evenly over tiles with the remainder to the first ones
 * in bundle order (issue #3: "remainder to the first").
 *
 * @example
 * tileBudgets([576, 576, 576, 576, 576], { budget: 322 }, 'pool'); // [65, 65, 64, 64, 64]
 */
export function tileBudgets(
  tileSizes: number[],
  spec: BaseReduceOptions,
  method: string,
  unit: 'tile' | 'frame' = 'tile',
): number[] {
  const total = tileSizes.reduce((a, b) => a + b, 0);
  const { budget } = resolveBudget(total, spec, method);
  if (spec.budget === undefined) return tileSizes.map((n) => resolveBudget(n, { ratio: spec.ratio! }, method).budget);
  if (budget < tileSizes.length) {
    throw new UsageError(
      `${method}: budget ${budget} is smaller than the number of ${unit}s (${tileSizes.length}); each ${unit} keeps at least one token`,
    );
  }
  const base = Math.floor(budget / tileSizes.length);
  const remainder = budget - base * tileSizes.length;
  return tileSizes.map((n, t) => Math.min(n, base + (t < remainder ? 1 : 0)));
}

/**
 * Token indices per source (tile/frame), in order of first appearance, without
 * copying features (splitBySource copies each tile).
 *
 * @example
 * tokensBySource(bundle).map((t) => t.indices.length); // [576, 576, 576, 576, 576]
 */
export function tokensBySource(tokens: TokenSet): { sourceIndex: number; indices: Int32Array }[] {
  const sourceCount = tokens.sources.length;
  const counts = new Int32Array(sourceCount);
  const firstSeen = new Int32Array(sourceCount).fill(-1);
  for (let i = 0; i < tokens.n; i++) {
    const s = tokens.source[i]!;
    if (counts[s]!++ === 0) firstSeen[s] = i;
  }
  const order = Array.from({ length: sourceCount }, (_, s) => s)
    .filter((s) => counts[s]! > 0)
    .sort((a, b) => firstSeen[a]! - firstSeen[b]!);
  const groups = new Array<Int32Array | undefined>(sourceCount);
  for (const s of order) groups[s] = new Int32Array(counts[s]!);
  const filled = new Int32Array(sourceCount);
  for (let i = 0; i < tokens.n; i++) {
    const s = tokens.source[i]!;
    groups[s]![filled[s]!++] = i;
  }
  return order.map((s) => ({ sourceIndex: s, indices: groups[s]! }));
}
