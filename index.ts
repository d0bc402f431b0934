/**
 * vtc-toolkit — public API. Kept small and typed: core data model and codecs,
 * the reducer registry, and the I/O entry points of each area.
 */
export * from './core/index.js';
export { reduce, reducers, reducerNames, getReducer } from './reducers/index.js';
export type {
  AnyReducer,
  BaseReduceOptions,
  OptionSpec,
  Reducer,
  ReduceProgress,
  RunOptions,
} from './reducers/index.js';
export {
  clusterReducer,
  globalcom2Reducer,
  tomeReducer,
  visionzipReducer,
  divpruneReducer,
  poolReducer,
  randomReducer,
  sphericalKMeans,
  maxMinDiverse,
  cropRetentionRatios,
  anyresUnpadLayout,
  bilinearResize,
} from './reducers/index.js';
export type {
  ClusterOptions,
  GlobalCom2Options,
  ToMeOptions,
  VisionZipOptions,
  DivPruneOptions,
  PoolOptions,
  RandomOptions,
  KMeansResult,
  UnpadLayout,
  CropValidRegion,
} from './reducers/index.js';
export { cdprunerReducer, visprunerReducer, dartReducer, evsReducer, fastvidReducer } from './reducers/index.js';
export type { CDPrunerOptions, VisPrunerOptions, DartOptions, EvsOptions, FastVidOptions } from './reducers/index.js';
export { temporalMergeReducer, temporalMergeBlocks, temporalMergeFrames } from './reducers/index.js';
export type { TemporalMergeOptions } from './reducers/index.js';
export { loadTokens, saveTokens, decodeTokens, encodeTokens } from './encoders/tokenfile.js';
export type { SaveTokensOptions } from './encoders/tokenfile.js';
export {
  createNpyStream,
  createTokenStream,
  isFrameFile,
  openFrameFile,
  openNpyFrames,
} from './encoders/tokenstream.js';
export type { FrameFile, TokenChunks, TokenStreamWriter, NpyStreamWriter } from './encoders/tokenstream.js';
export { reduceFramesFile, reduceFramesFileTo } from './encoders/frame-reduce.js';
export type { FramesFileRun } from './encoders/frame-reduce.js';
export { encodeVideoToFile, encodeVideoToNpy, encodeVideoToSafetensors } from './encoders/video.js';
export * from './encoders/index.js';
export * from './video/index.js';
export * from './eval/index.js';
export { apiKeyFromEnv, chatCompletion, EndpointError, imageDataUrl, userMessage } from './client/index.js';
export type { ChatCompletionOptions, ChatCompletionResult, ChatMessage, ContentPart } from './client/index.js';
export {
  renderText,
  planRender,
  writePages,
  encodePage,
  measureCompression,
  ocrPages,
  createOcr,
  characterErrorRate,
  parseConfig as parseRenderConfig,
  loadConfig as loadRenderConfig,
  toConfigFile as toRenderConfigFile,
  DEFAULT_CONFIG as DEFAULT_RENDER_CONFIG,
  searchConfig as searchRenderConfig,
} from './render/index.js';
export {
  visionTokens,
  processedImage,
  getProfile as getVisionProfile,
  profileNames as visionProfileNames,
} from './profiles/index.js';
export type { VisionProfile, ProcessedImage } from './profiles/index.js';
export type {
  RenderConfig,
  RenderedPage,
  RenderResult,
  RenderPlan,
  CompressionReport,
  FidelityReport,
  SearchResult as RenderSearchResult,
  ImageFormat,
} from './render/index.js';
export { defaultTokenizerFor, hfTokenizerFromJson, loadHfTokenizer, loadTextTokenizer } from './tokenizer/index.js';
export type { HfTokenizer, TextTokenizer } from './tokenizer/index.js';
export { askImage, planImage, PLAN_METHODS as PLAN_IMAGE_METHODS } from './ask/index.js';
export type {
  AskImageOptions,
  AskResult,
  AskRun,
  ImagePlan,
  PlanImageOptions,
  PlanInput,
  PlanMethod,
  PlannedImage,
} from './ask/index.js';
export * from './prompt/index.js';
export { runDemo, summaryText } from './samples/demo.js';
export type { DemoOptions, DemoSummary } from './samples/demo.js';
