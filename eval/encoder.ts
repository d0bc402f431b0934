import { loadEncoder } from '../encoders/encode.js';
import { isQwenModel, loadQwenEncoder } from '../encoders/qwen.js';
import type { MethodContext } from './methods.js';

/** The encoder a token-level eval method uses, and how to release it. */
export type TokenEncoder = Pick<MethodContext, 'encoder' | 'qwenEncoder'> & { dispose(): Promise<void> };

/**
 * Opens the `--encoder` of an eval run: a model directory or .json whose
 * vtc-encoder.json names a Qwen family is a Qwen2.5-VL / Qwen3-VL tower
 * (images at dynamic resolution, sent with image_grid_thw or positions);
 * anything else ("patch", an ONNX ViT folder) a ViT-style encoder.
 *
 * @example
 * const { qwenEncoder, dispose } = await openTokenEncoder('models/qwen25-vl'); // qwenEncoder set
 */
export async function openTokenEncoder(spec: string): Promise<TokenEncoder> {
  if (await isQwenModel(spec)) {
    const qwenEncoder = await loadQwenEncoder({ model: spec });
    return { qwenEncoder, dispose: () => qwenEncoder.dispose() };
  }
  const encoder = await loadEncoder(spec);
  return { encoder, dispose: () => encoder.dispose() };
}
