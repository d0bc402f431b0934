export { InputError, ShapeError, UsageError, VtcError } from './errors.js';
export * from './tokenset.js';
export * from './rng.js';
export * from './npy.js';
export * from './safetensors.js';
export * from './bundle.js';
export {
  argmaxRows,
  cosineSimilarity,
  l2norm,
  matmulABt,
  matmulABtSync,
  matrix,
  meanRow,
  normalizeRows,
  rowSquaredNorms,
  setLinalgThreads,
  nativeTime,
  squaredDistances,
  topK,
  topKSorted,
} from './linalg.js';
export type { Matrix } from './linalg.js';
export { OnnxGraph } from './onnx-graph.js';
export { floatToHalf, halfToFloat } from './float16.js';
export {
  alternateBestMatch,
  bestCosineMatch,
  cosineGramNative,
  cosineGramSymmetric,
  cosineRows,
  meanPoolNative,
  nearestCosineNeighbours,
  SIMILARITY_TILE_VALUES,
  unitRowsNative,
} from './linalg-kernels.js';
export { levenshtein } from './edit-distance.js';
