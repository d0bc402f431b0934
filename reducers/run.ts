import { resolveBudget, selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { anyresUnpadLayout } from './anyres-unpad.js';
import type { AnyReducer, BaseReduceOptions } from './types.js';

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
export async function runReducer(
  reducer: AnyReducer,
  tokens: TokenSet,
  options: BaseReduceOptions & Record<string, unknown>,
): Promise<ReductionRun> {
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
  let reduction: Reduction;
  if (!validIndices) {
    reduction = await reducer.run(tokens, options);
  } else if (reducer.scope === 'anyres') {
    // The method skips padding itself; a budget is a share of the valid tokens, as for every other method.
    const { budget: _budget, ...rest } = options;
    reduction = await reducer.run(tokens, { ...rest, ratio });
  } else {
    reduction = liftToInput(await reducer.run(selectTokens(tokens, validIndices), options), validIndices, tokens.n);
  }
  const budget = typeof reduction.stats.budget === 'number' ? reduction.stats.budget : resolved;
  const warnings: string[] = [];
  if (reduction.tokens.n > budget) {
    warnings.push(
      `${reducer.name}: kept ${reduction.tokens.n} tokens, more than the budget ${budget}${options.kernel !== undefined ? ` (the explicit --kernel ${options.kernel} decides the count)` : ''}`,
    );
  }
  return { reduction, ratio, budget, n_in: nIn, n_padding: nPadding, n_out: reduction.tokens.n, warnings };
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
