/**
 * Video: ffmpeg frames → tokens → event clips → retrieval → temporal merging
 * → keyframes, and question answering against OpenAI-compatible VLMs.
 */
export {
  effectiveFps,
  ffmpegPath,
  frameSize,
  probeVideo,
  readFrames,
  sceneChanges,
  summariseFfmpegError,
} from '../encoders/ffmpeg.js';
export type { ReadFramesOptions, VideoFrame, VideoInfo } from '../encoders/ffmpeg.js';
export { encodeFrames, encodeVideo, encodeVideoFrames, tilesToFrameTokens } from '../encoders/video.js';
export type { EncodeVideoOptions } from '../encoders/video.js';
export {
  framePatchSimilarity,
  frameSimilarityBlocks,
  mergeAdjacentFrames,
  mergeFrameBlocks,
  temporalMerge,
} from '../reducers/temporal-merge.js';
export type { FrameBlockMerge, FrameFeatures, TemporalMergeResult } from '../reducers/temporal-merge.js';
export { adjacentSimilarities, segmentBySimilarity, segmentFrameBlocks } from './segment.js';
export type { FrameRange, SegmentOptions } from './segment.js';
export { clipEmbedding, noveltyCoverageScores, textClipScores, topClips } from './retrieve.js';
export { loadDualEncoder } from './dual-encoder.js';
export type { DualEncoder, DualEncoderConfig } from './dual-encoder.js';
export { frameBudget, planVideo, uniformFrameCount } from './pipeline.js';
export type { Keyframe, PlannedClip, VideoPlan, VideoPlanOptions } from './pipeline.js';
export { contactSheet } from './contact-sheet.js';
export type { ContactSheetOptions, SheetFrame } from './contact-sheet.js';
export { checkVideoQaOptions, qaResult, videoPrompt, videoQa } from './qa.js';
export type { VideoQaOptions, VideoQaResult, VideoQaRun } from './qa.js';
