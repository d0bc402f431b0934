/**
 * Image QA at a token budget: plan the pixels to send a VLM under a provider
 * profile's token rule (planImage) and ask it (askImage). docs/ask.md.
 */
export { askImage, askPrompt, askResult } from './ask.js';
export type { AskImageOptions, AskResult, AskRun } from './ask.js';
export { aspectSize, cheapestSize, largestFit } from './fit.js';
export type { FitSize } from './fit.js';
export { PLAN_METHODS, planImage, resolveBudget } from './plan.js';
export type { ImagePlan, PlanImageOptions, PlanInput, PlanMethod, PlannedImage } from './plan.js';
export { boxScore, mergeOverlapping, topBoxes, windowGrid } from './regions.js';
export type { Box, ScoreGrid } from './regions.js';
