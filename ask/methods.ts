/**
 * The planners `planImage` chooses between (ask/plan.ts documents each). Kept
 * in a module of their own, with no imports, so that `vtc ask --help` can list
 * them without loading the planners (sharp, the renderer, OCR, tokenizers).
 */
export type PlanMethod = 'downsample' | 'focus' | 'glyph' | 'keyframes';
export const PLAN_METHODS: readonly PlanMethod[] = ['downsample', 'focus', 'glyph', 'keyframes'];
