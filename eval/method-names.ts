import { reducerNames } from '../reducers/index.js';

/**
 * The method names `--methods` accepts, in a module that loads no encoder,
 * renderer or planner (eval/methods.ts re-exports them), so that
 * `vtc eval run --help` can list them cheaply.
 */
export const PIXEL_METHODS = ['downsample', 'glyph', 'keyframes', 'focus'] as const;

/** All method names `--methods` accepts: the pixel methods and every reducer. */
export function methodNames(): string[] {
  return [...PIXEL_METHODS, ...reducerNames()];
}
