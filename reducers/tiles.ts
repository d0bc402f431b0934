import { concatTokenSets, resolveBudget, splitBySource, type Reduction, type TokenSet } from '../core/tokenset.js';
import { UsageError } from '../core/errors.js';
import type { BaseReduceOptions } from './types.js';

/**
 * Per-tile budgets: a ratio applies to each tile (max(1, round(n_t·R))); a
 * budget N is split evenly over tiles with the remainder to the first ones
 * in bundle order (issue #3: "remainder to the first").
 */
export function tileBudgets(tileSizes: number[], spec: BaseReduceOptions, method: string): number[] {
  const total = tileSizes.reduce((a, b) => a + b, 0);
  const { budget } = resolveBudget(total, spec, method);
  if (spec.budget === undefined) return tileSizes.map((n) => resolveBudget(n, { ratio: spec.ratio! }, method).budget);
  if (budget < tileSizes.length) {
    throw new UsageError(`${method}: budget ${budget} is smaller than the number of tiles (${tileSizes.length}); each tile keeps at least one token`);
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
  const counts = new Map<number, number>();
  for (let i = 0; i < tokens.n; i++) counts.set(tokens.source[i]!, (counts.get(tokens.source[i]!) ?? 0) + 1);
  const groups = new Map<number, { sourceIndex: number; indices: Int32Array; filled: number }>();
  for (const [sourceIndex, count] of counts) groups.set(sourceIndex, { sourceIndex, indices: new Int32Array(count), filled: 0 });
  for (let i = 0; i < tokens.n; i++) {
    const g = groups.get(tokens.source[i]!)!;
    g.indices[g.filled++] = i;
  }
  return [...groups.values()].map(({ sourceIndex, indices }) => ({ sourceIndex, indices }));
}

/**
 * Runs `reduceTile` on each source (tile/frame) separately and stitches the
 * results: `keep` indices and `assign` targets are offset back into the
 * whole input, outputs are concatenated in tile order.
 */
export async function reducePerTile(
  tokens: TokenSet,
  budgets: number[],
  reduceTile: (tile: TokenSet, budget: number, tileIndex: number) => Promise<Reduction> | Reduction,
): Promise<{ reduction: Reduction; perTile: Reduction[] }> {
  const tiles = splitBySource(tokens);
  const outputs: TokenSet[] = [];
  const perTile: Reduction[] = [];
  let keep: number[] | undefined = [];
  let assign: Int32Array | undefined = new Int32Array(tokens.n);
  let outputOffset = 0;
  for (const [t, tile] of tiles.entries()) {
    const result = await reduceTile(tile.tokens, budgets[t]!, t);
    perTile.push(result);
    outputs.push(result.tokens);
    if (keep && result.keep) for (const k of result.keep) keep.push(tile.indices[k]!);
    else keep = undefined;
    if (assign && result.assign) for (let i = 0; i < tile.indices.length; i++) assign[tile.indices[i]!] = result.assign[i]! + outputOffset;
    else assign = undefined;
    outputOffset += result.tokens.n;
  }
  const merged = concatTokenSetsKeepingOrigin(outputs, tokens);
  const reduction: Reduction = { tokens: merged, stats: {} };
  if (keep) reduction.keep = Int32Array.from(keep);
  if (assign) reduction.assign = assign;
  return { reduction, perTile };
}

/**
 * Concatenates per-tile outputs whose origins already index the whole input
 * (splitBySource keeps the original origins), so no re-offsetting is done.
 */
function concatTokenSetsKeepingOrigin(parts: TokenSet[], input: TokenSet): TokenSet {
  const out = concatTokenSets(parts.map((p) => ({ ...p, sources: [] as TokenSet['sources'] })));
  let p = 0;
  for (const part of parts) {
    for (let i = 0; i < part.n; i++) {
      out.origin[p] = part.origin[i]!;
      out.source[p] = part.source[i]!;
      p++;
    }
  }
  out.sources = input.sources;
  out.meta = { ...input.meta };
  if (input.anyres) out.anyres = input.anyres;
  else delete out.anyres;
  return out;
}
