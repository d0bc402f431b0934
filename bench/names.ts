/**
 * The benchmark names `vtc bench` takes, in bench/index.ts's order: here,
 * without the benchmarks themselves (they import sharp, canvas, OCR, BullMQ),
 * so that `vtc bench --help` lists them cheaply. test/cli/startup.test.ts
 * checks this list against bench/index.ts's `benchmarks`.
 */
export const BENCHMARK_NAMES: readonly string[] = [
  'gemm',
  'render',
  'reducers',
  'video',
  'encoders',
  'eval',
  'scale',
  'queue',
  'pytorch',
  'cli-start',
];
