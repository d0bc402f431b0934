import { matmulABt, matrix } from '../core/linalg.js';
import { measure, syntheticFeatures, type Benchmark } from './harness.js';

/**
 * GEMM throughput for the shape reducers hit most: all AnyRes tokens against
 * one tile, 2880×1024 · (576×1024)ᵀ, native (onnxruntime Gemm) vs plain TS.
 */
export const gemmBenchmark: Benchmark = {
  description: 'A·Bᵀ GFLOP/s for 2880×1024 · (576×1024)ᵀ, onnxruntime vs plain TS',
  async run({ runs, log }) {
    const a = matrix(2880, 1024, syntheticFeatures(2880 * 1024, 1));
    const b = matrix(576, 1024, syntheticFeatures(576 * 1024, 2));
    const flops = 2 * 2880 * 576 * 1024;
    const native = await measure('gemm 2880x1024·(576x1024)ᵀ native', runs, () => matmulABt(a, b, 'native'));
    native.extra = { 'GFLOP/s': +(flops / native.medianMs / 1e6).toFixed(1) };
    log(`native: ${native.medianMs.toFixed(1)} ms, ${native.extra['GFLOP/s']} GFLOP/s`);
    const ts = await measure('gemm 2880x1024·(576x1024)ᵀ plain TS', Math.min(runs, 3), () => matmulABt(a, b, 'ts'), 0);
    ts.extra = { 'GFLOP/s': +(flops / ts.medianMs / 1e6).toFixed(2) };
    log(`plain TS: ${ts.medianMs.toFixed(1)} ms, ${ts.extra['GFLOP/s']} GFLOP/s`);
    return [native, ts];
  },
};
