import type { TokenSet } from '../core/tokenset.js';
import { encodeNpy } from '../core/npy.js';
import { isQwenTokenSet, qwenServingInput } from '../prompt/serving.js';
import { encodeTorchTensor } from './torch-tensor.js';

/**
 * Token-level input as a server receives it: the embeddings of a reduced token
 * set and their `image_embeds` content part. In a module of their own (no
 * encoders, renderer or OCR, which eval/methods.ts and eval/models.ts bring),
 * so that `vtc export` loads only what it needs; both re-export them.
 */

/** Reduced embeddings of one image: a row-major [n, d] float32 array. */
export interface PreparedEmbeds {
  data: Float32Array;
  shape: [number, number];
  /** Qwen sets whose kept tokens form a full lattice: the `image_grid_thw` to send (rows in raster order). */
  grid?: [number, number, number];
  /** Pruned Qwen sets: (t, h, w) per row in the original merged grid, n×3 (docs/qwen.md). */
  positions?: Int32Array;
}

/** Embeddings of a reduced token set as sent: Qwen sets in raster order with their grid (full lattice) or positions (pruned). */
export function embedsOf(tokens: TokenSet): PreparedEmbeds {
  if (!isQwenTokenSet(tokens)) return { data: tokens.data, shape: [tokens.n, tokens.d] };
  const input = qwenServingInput(tokens);
  return input.grid
    ? { data: input.data, shape: input.shape, grid: input.grid }
    : { data: input.data, shape: input.shape, positions: input.positions };
}

export type EmbedsFormat = 'npy' | 'torch';

/** Serialises one embeddings matrix for an `image_embeds` content part (base64). */
export function encodeEmbeds(embeds: PreparedEmbeds, format: EmbedsFormat = 'npy'): string {
  const bytes =
    format === 'torch' ? encodeTorchTensor(embeds.shape, embeds.data) : encodeNpy(embeds.shape, embeds.data);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * The `image_embeds` value of a content part: the base64 embeddings, or for
 * Qwen sets vLLM's dict form `{image_embeds, image_grid_thw}` (grid as a
 * torch.save int64 [1, 3] tensor) when the kept tokens form a full lattice,
 * and `{image_embeds, image_positions}` (int64 [n, 3], (t, h, w) per row) for
 * pruned sets — a field stock vLLM does not accept (docs/qwen.md).
 */
export function embedsPart(embeds: PreparedEmbeds, format: EmbedsFormat = 'npy'): string | Record<string, string> {
  const base64 = (bytes: Uint8Array) =>
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  if (embeds.grid)
    return {
      image_embeds: encodeEmbeds(embeds, format),
      image_grid_thw: base64(encodeTorchTensor([1, 3], BigInt64Array.from(embeds.grid, BigInt))),
    };
  if (embeds.positions)
    return {
      image_embeds: encodeEmbeds(embeds, format),
      image_positions: base64(encodeTorchTensor([embeds.shape[0], 3], BigInt64Array.from(embeds.positions, BigInt))),
    };
  return encodeEmbeds(embeds, format);
}
