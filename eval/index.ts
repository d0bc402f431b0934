/**
 * VTC-Bench evaluation: lmms-eval log analysis, offline and endpoint runs,
 * difficulty groups A/B by the downsample baseline, resumable results and
 * reports with charts.
 */
export { analyzeLogs } from './analyze.js';
export type { AnalyzeOptions, AnalyzeResult } from './analyze.js';
export { barChart, lineChart } from './charts.js';
export type { ChartSeries, ChartSpec } from './charts.js';
export {
  loadDataset,
  loadFolderDataset,
  loadJsonlDataset,
  loadTsvDataset,
  parsePythonStringList,
  parseRow,
} from './datasets.js';
export type { EvalDataset, EvalSample, ImageRef } from './datasets.js';
export { analyzeTask, BASELINE_METHOD, factorForKept, keptFraction, summariseTasks } from './groups.js';
export type { MethodGroupResult, RatioAnalysis, RunCorrectness, TaskAnalysis } from './groups.js';
export { isCorrect, pythonStr } from './lmms-correctness.js';
export type { LmmsSample } from './lmms-correctness.js';
export { analyzeLmmsLogs, discoverRuns, parseRunFolderName } from './lmms-logs.js';
export { downsampleRgb, getMethod, methodNames } from './methods.js';
export type { EvalMethod, MethodContext, PreparedInput } from './methods.js';
export { buildPrompt, createEndpointModel, createOcrModel } from './models.js';
export type { EndpointModelOptions, EvalModel, ModelAnswer, OcrModelOptions } from './models.js';
export { answerFromText } from './ocr-reader.js';
export { writeReport } from './report.js';
export { DEFAULT_QUEUE_NAME, jobIdForKey, keyForJobId, parseQueueUrl } from './queue.js';
export type { QueueRunConfig, QueueUrl } from './queue.js';
export { collectQueue, failuresPath, submitQueueRun } from './queue-run.js';
export type {
  QueueCollectOptions,
  QueueCollectSummary,
  QueueFailure,
  QueueRunSummary,
  QueueSubmitOptions,
} from './queue-run.js';
export { startQueueWorker } from './queue-worker.js';
export type { QueueWorkerEvent, QueueWorkerHandle, QueueWorkerOptions, QueueWorkerSummary } from './queue-worker.js';
export { readResults, resultKey, ResultsStore } from './results.js';
export type { ResultKey, ResultRow } from './results.js';
export { analyzeResults, parseShard, runEval } from './runner.js';
export type { EvalRunOptions, EvalRunSummary, Shard } from './runner.js';
export { acceptedAnswers, anls, extractChoice, normalizeAnswer, relaxedMatch, scoreAnswer } from './scoring.js';
export type { Metric, ScoreResult } from './scoring.js';
