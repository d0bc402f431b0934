/**
 * Contracts shared by encoders/, video/ and the CLI. An encoder takes RGB
 * images already resized to its input size and returns one tile per image.
 */

/** Packed 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** One encoded tile (image, thumbnail, crop or frame). */
export interface EncodedTile {
  /** rows*cols*dim features, raster order of patches, CLS token removed. */
  features: Float32Array;
  rows: number;
  cols: number;
  dim: number;
  /** The CLS token's feature vector (length dim), when the model has one. */
  clsToken?: Float32Array;
  /**
   * Per-patch importance (length rows*cols): the pre-softmax CLS attention row
   * averaged over heads for ViTs; s_i = −cos(x_i, mean) for encoders without CLS.
   */
  scores: Float32Array;
}

export interface VisionEncoder {
  /** 'patch' for the built-in encoder, else the model name. */
  readonly name: string;
  /** Square input side in pixels (336 for CLIP ViT-L/14-336). */
  readonly inputSize: number;
  readonly patchSize: number;
  readonly dim: number;
  /** True when scores come from real CLS attention. */
  readonly hasCls: boolean;
  /** Images per native run when the encoder batches (ONNX); callers may feed it that many at a time. */
  readonly batchSize?: number;
  /** How a plain (non-AnyRes) image should be fitted to inputSize; 'squash' when absent. */
  readonly preferredResize?: 'squash' | 'shortest' | 'letterbox';
  /** Encodes images of exactly inputSize×inputSize (batched internally). */
  encode(images: RgbImage[]): Promise<EncodedTile[]>;
  /** Releases native resources (ONNX sessions). */
  dispose(): Promise<void>;
}

/** How an image becomes a w×h input (here, not in image.ts, so that `vtc encode --help` does not load sharp). */
export type ResizeMode = 'squash' | 'shortest' | 'letterbox';
export const RESIZE_MODES: readonly ResizeMode[] = ['squash', 'shortest', 'letterbox'];
