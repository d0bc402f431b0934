/**
 * Encoders: pixels → TokenSets. Preprocessing (sharp), LLaVA-NeXT AnyRes and
 * Qwen2-VL resolution arithmetic, the built-in weight-free `patch` encoder,
 * ONNX ViT towers with CLS scores, Hugging Face hub downloads, overlays.
 * (Video frames live in encoders/video.ts and encoders/ffmpeg.ts.)
 */
export * from './anyres.js';
export { createPatchEncoder, encodePatchTile, negativeCosineToMean, PATCH_DESCRIPTOR_DIM } from './patch.js';
export type { PatchEncoderOptions } from './patch.js';
export {
  cropImage,
  DEFAULT_MAX_PIXELS,
  NORMALIZATION_PRESETS,
  padImage,
  readImage,
  resizeExact,
  resizeImage,
  resolveNormalization,
  RESIZE_MODES,
  shortestSideSize,
  toNchw,
} from './image.js';
export type {
  DecodedImage,
  Normalization,
  NormalizationPreset,
  ReadImageOptions,
  ResizeMode,
  ResizeOptions,
} from './image.js';
export { encodeJpeg, encodePng, encodeWebp } from './codecs.js';
export type { RawPixels } from './codecs.js';
export {
  createOnnxEncoder,
  ENCODER_CONFIG_FILE,
  ONNX_ENCODER_PRESETS,
  readOnnxConfig,
  resolveOnnxConfig,
} from './onnx.js';
export type { OnnxEncoderConfig, OnnxEncoderConfigInput, OnnxEncoderOptions, OnnxEncoderPreset } from './onnx.js';
export {
  checkGrid,
  inversePermutation,
  patchifyFrames,
  preprocessQwenImage,
  preprocessQwenVideo,
  qwenFamilySpec,
  qwenImageSize,
  qwenVideoSize,
  qwenWindowIndex,
  QWEN_FAMILIES,
  QWEN_FAMILY_SPECS,
} from './qwen-preprocess.js';
export type {
  GridThw,
  QwenFamily,
  QwenFamilySpec,
  QwenPatches,
  QwenPixelLimits,
  QwenPreprocessed,
  QwenPreprocessOptions,
} from './qwen-preprocess.js';
export {
  encodeQwenImage,
  encodeQwenVideo,
  isQwenModel,
  loadQwenEncoder,
  readQwenConfig,
  resolveQwenConfig,
} from './qwen.js';
export type {
  EncodeQwenImageOptions,
  EncodeQwenVideoOptions,
  QwenEncoder,
  QwenEncoderConfig,
  QwenEncoderConfigInput,
  QwenEncoderOptions,
  QwenEncoderSource,
  QwenTowerOutput,
} from './qwen.js';
export { encodeAnyRes, encodeAnyResDetailed, encodeImage, encodeImageDetailed, loadEncoder } from './encode.js';
export type {
  EncodeAnyResOptions,
  EncodedAnyRes,
  EncodedImage,
  EncodeImageOptions,
  ImageInput,
  LoadEncoderOptions,
} from './encode.js';
export { compressImage, compressVideo } from './compress.js';
export type { CompressImageOptions, CompressImageResult, CompressVideoOptions } from './compress.js';
export {
  anyresLayout,
  drawReductionOverlay,
  framesLayout,
  groupColour,
  imageLayout,
  outputOfInput,
} from './overlay.js';
export type { OverlayLayout, OverlayStats } from './overlay.js';
export {
  DEFAULT_HF_ENDPOINT,
  defaultModelDir,
  defaultPullFiles,
  hubEndpoint,
  listRepoFiles,
  NetworkError,
  parseLfsPointer,
  pullFile,
  pullModel,
  remoteFileInfo,
} from './hub.js';
export type { PulledFile, PullOptions, PullProgress, PullResult, RemoteFileInfo } from './hub.js';
export type { EncodedTile, RgbImage, VisionEncoder } from './types.js';
