import { gemmBenchmark } from './gemm.js';
import { renderBenchmark } from './render.js';
import { reducersBenchmark } from './reducers.js';
import { videoBenchmark } from './video.js';
import { encodersBenchmark } from './encoders.js';
import { evalBenchmark } from './eval.js';
import { scaleBenchmark } from './scale.js';
import { queueBenchmark } from './queue.js';
import { pytorchBenchmark } from './pytorch.js';
import { cliStartBenchmark } from './cli-start.js';
import type { Benchmark } from './harness.js';

export type { Benchmark, BenchResult } from './harness.js';
export { formatTable, measure } from './harness.js';

/** Every benchmark by name, as run by `vtc bench <name>`. */
export const benchmarks: Record<string, Benchmark> = {
  gemm: gemmBenchmark,
  render: renderBenchmark,
  reducers: reducersBenchmark,
  video: videoBenchmark,
  encoders: encodersBenchmark,
  eval: evalBenchmark,
  scale: scaleBenchmark,
  queue: queueBenchmark,
  pytorch: pytorchBenchmark,
  'cli-start': cliStartBenchmark,
};
