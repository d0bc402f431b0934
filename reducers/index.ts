import { UsageError } from '../core/errors.js';
import { validateTokenSet, type Reduction, type TokenSet } from '../core/tokenset.js';
import { clusterReducer } from './cluster.js';
import { divpruneReducer } from './divprune.js';
import { globalcom2Reducer } from './globalcom2.js';
import { poolReducer } from './pool.js';
import { randomReducer } from './random.js';
import { tomeReducer } from './tome.js';
import { visionzipReducer } from './visionzip.js';
import { runReducer, type RunOptions } from './run.js';
import { cdprunerReducer } from './cdpruner.js';
import { visprunerReducer } from './vispruner.js';
import { dartReducer } from './dart.js';
import { evsReducer } from './evs.js';
import { fastvidReducer } from './fastvid.js';
import { temporalMergeReducer } from './temporal-merge.js';
import type { AnyReducer } from './types.js';

export type { AnyReducer, BaseReduceOptions, OptionSpec, Reducer, ReduceProgress } from './types.js';
export {
  clusterReducer,
  sphericalKMeans,
  sphericalKMeansBlocked,
  type ClusterOptions,
  type KMeansResult,
} from './cluster.js';
export { divpruneReducer, maxMinDiverse, maxMinDiverseBlocked, type DivPruneOptions } from './divprune.js';
export { globalcom2Reducer, cropRetentionRatios, type GlobalCom2Options } from './globalcom2.js';
export { anyresUnpadLayout, bilinearResize, type CropValidRegion, type UnpadLayout } from './anyres-unpad.js';
export { poolReducer, type PoolOptions } from './pool.js';
export { randomReducer, type RandomOptions } from './random.js';
export { tomeReducer, type ToMeOptions } from './tome.js';
export { visionzipReducer, type VisionZipOptions } from './visionzip.js';
export { runReducer, unpaddedIndices, type ReductionRun, type RunOptions } from './run.js';
export { cdprunerReducer, greedyDppMap, queryRelevance, type CDPrunerOptions } from './cdpruner.js';
export { visprunerReducer, type VisPrunerOptions } from './vispruner.js';
export { dartReducer, type DartOptions } from './dart.js';
export { evsReducer, frameDissimilarity, type EvsOptions } from './evs.js';
export { fastvidReducer, dynamicSegments, anchorDistribution, type FastVidOptions } from './fastvid.js';
export {
  temporalMergeReducer,
  temporalMergeBlocks,
  temporalMergeFrames,
  mergeFrameBlocks,
  frameSimilarityBlocks,
  type TemporalMergeOptions,
} from './temporal-merge.js';

/** Every reducer by registry name. One file per method in this folder. */
export const reducers: Record<string, AnyReducer> = {
  cluster: clusterReducer as AnyReducer,
  globalcom2: globalcom2Reducer as AnyReducer,
  tome: tomeReducer as AnyReducer,
  visionzip: visionzipReducer as AnyReducer,
  divprune: divpruneReducer as AnyReducer,
  pool: poolReducer as AnyReducer,
  random: randomReducer as AnyReducer,
  cdpruner: cdprunerReducer as AnyReducer,
  vispruner: visprunerReducer as AnyReducer,
  dart: dartReducer as AnyReducer,
  evs: evsReducer as AnyReducer,
  fastvid: fastvidReducer as AnyReducer,
  'temporal-merge': temporalMergeReducer as AnyReducer,
};

export function reducerNames(): string[] {
  return Object.keys(reducers);
}

export function getReducer(name: string): AnyReducer {
  const reducer = reducers[name];
  if (!reducer)
    throw new UsageError(
      `unknown method ${JSON.stringify(name)} (available: ${reducerNames().join(', ')})`,
      'E_METHOD',
    );
  return reducer;
}

/**
 * Runs a registered reducer by name, after validating the token set (shapes,
 * metadata lengths, finite features and scores; errors name the method), the
 * way `vtc reduce` does (see runReducer): an AnyRes bundle's padding is left
 * out first, and `stats` gains the shared counts `budget`, `n_in`,
 * `n_padding` and `warnings`.
 *
 * @example
 * const result = await reduce(tokens, 'pool', { ratio: 0.25 });
 * result.tokens.n; // 144 for a 24×24 grid
 * await reduce(qwen3Video, 'tome', { ratio: 0.25, perFrame: true }); // no output mixes frames
 */
export async function reduce(tokens: TokenSet, method: string, options: RunOptions): Promise<Reduction> {
  const reducer = getReducer(method);
  validateTokenSet(tokens, reducer.name);
  const run = await runReducer(reducer, tokens, options);
  return {
    ...run.reduction,
    stats: {
      ...run.reduction.stats,
      budget: run.budget,
      n_in: run.n_in,
      n_padding: run.n_padding,
      warnings: run.warnings,
    },
  };
}
