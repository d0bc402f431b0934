export * from './errors.js';
export * from './tokenset.js';
export * from './rng.js';
export * from './npy.js';
export * from './safetensors.js';
export * from './bundle.js';
export * from './linalg.js';
export { OnnxGraph } from './onnx-graph.js';
export { floatToHalf, halfToFloat } from './float16.js';
