import { UsageError } from '../core/errors.js';
import { selectTokens, type Reduction, type TokenSet } from '../core/tokenset.js';
import { tileBudgets, tokensBySource } from './tiles.js';
import type { AnyReducer, BaseReduceOptions } from './types.js';

/**
 * Runs `reducer` on each frame of a video token set separately and joins the
 * results, so no output token mixes frames and every frame keeps at least one
 * token. This is what a model that gives each frame its own block needs
 * (Qwen3-VL: one timestamp and vision block per temporal patch).
 *
 * Frames are the token set's `frame` sources, in order of first appearance.
 * Budget split (the tile rule of reducers/tiles.ts): with a ratio each frame
 * keeps max(1, round(n_f·R)); with a budget B each frame gets ⌊B/F⌋, the first
 * B mod F frames one more, and B < F is an error. `keep`, `assign` and
 * `representative` index the input; outputs are frame after frame, each
 * frame's in the method's own order.
 *
 * @example
 * const reduction = await reducePerFrame(getReducer('tome'), video, { ratio: 0.25 });
 * reduction.stats.kept_per_frame; // [49, 49, …] for 196-token frames
 */
export async function reducePerFrame(
  reducer: AnyReducer,
  tokens: TokenSet,
  options: BaseReduceOptions & Record<string, unknown>,
): Promise<Reduction> {
  const frames = tokensBySource(tokens);
  const notFrame = frames.find((f) => tokens.sources[f.sourceIndex]?.kind !== 'frame');
  if (notFrame || frames.length === 0) {
    const kind = notFrame ? tokens.sources[notFrame.sourceIndex]?.kind : 'none';
    throw new UsageError(
      `${reducer.name}: per-frame reduction needs a video token set whose sources are frames, got a source of kind ${kind}`,
      'E_PER_FRAME',
    );
  }
  checkPerFrameMethod(reducer);
  const spec = options.budget !== undefined ? { budget: options.budget } : { ratio: options.ratio };
  const budgets = tileBudgets(
    frames.map((f) => f.indices.length),
    spec,
    reducer.name,
    'frame',
  );
  // Progress is per frame here (one frame is short); the method's own stages would restart every frame.
  const { ratio: _ratio, budget: _budget, onProgress, ...methodOptions } = options;
  const parts: TokenSet[] = [];
  const keep: number[] = [];
  const representative: number[] = [];
  const assign = new Int32Array(tokens.n).fill(-1);
  let allKeep = true;
  let allAssign = true;
  let outputs = 0;
  for (const [f, frame] of frames.entries()) {
    const result = await reducer.run(selectTokens(tokens, frame.indices), { ...methodOptions, budget: budgets[f]! });
    parts.push(result.tokens);
    if (result.assign)
      result.assign.forEach((output, j) => (assign[frame.indices[j]!] = output < 0 ? -1 : outputs + output));
    else allAssign = false;
    if (result.keep) for (const j of result.keep) keep.push(frame.indices[j]!);
    else allKeep = false;
    if (result.representative) for (const j of result.representative) representative.push(frame.indices[j]!);
    outputs += result.tokens.n;
    onProgress?.({ stage: 'frames', done: f + 1, total: frames.length });
  }
  const reduction: Reduction = {
    tokens: stackFrames(parts, tokens),
    stats: {
      budget: budgets.reduce((a, b) => a + b, 0),
      ratio: options.ratio ?? budgets.reduce((a, b) => a + b, 0) / tokens.n,
      per_frame: true,
      frames: frames.length,
      kept_per_frame: parts.map((p) => p.n),
    },
  };
  if (allKeep) reduction.keep = Int32Array.from(keep);
  if (allAssign) reduction.assign = assign;
  if (representative.length === outputs) reduction.representative = Int32Array.from(representative);
  return reduction;
}

/**
 * Refuses methods whose rule spans several frames (evs, fastvid) or a whole
 * AnyRes bundle (globalcom2): run on one frame they would not be the method.
 * Front ends call it before encoding, so the refusal comes first.
 *
 * @example
 * checkPerFrameMethod(getReducer('evs')); // throws 'evs: per-frame reduction runs the method on one frame at a time, …'
 */
export function checkPerFrameMethod(reducer: AnyReducer): void {
  if (reducer.scope === 'video' || reducer.scope === 'anyres') {
    throw new UsageError(
      `${reducer.name}: per-frame reduction runs the method on one frame at a time, but ${reducer.name} works on ${reducer.scope === 'video' ? 'several frames together' : 'a whole AnyRes bundle'}`,
      'E_PER_FRAME',
    );
  }
}

/**
 * The frames' outputs one after the other. Each part came from a subset made
 * by selectTokens, so its sources, origins and positions already refer to
 * the input: nothing is re-indexed.
 */
function stackFrames(parts: TokenSet[], input: TokenSet): TokenSet {
  const n = parts.reduce((sum, p) => sum + p.n, 0);
  const { d } = input;
  const out: TokenSet = {
    n,
    d,
    data: new Float32Array(n * d),
    source: new Int32Array(n),
    row: new Int32Array(n),
    col: new Int32Array(n),
    size: new Float64Array(n),
    origin: [],
    sources: input.sources,
    meta: { ...input.meta },
  };
  const withScore = parts.every((p) => p.score);
  const withPositions = parts.every((p) => p.positions);
  if (withScore) out.score = new Float32Array(n);
  if (withPositions) out.positions = new Int32Array(3 * n);
  const extraNames = input.extra ? Object.keys(input.extra) : [];
  const extra: Record<string, Float32Array> = {};
  for (const name of extraNames) {
    const width = input.extra![name]!.length / input.n;
    extra[name] = new Float32Array(n * width);
  }
  let at = 0;
  for (const part of parts) {
    out.data.set(part.data, at * d);
    out.source.set(part.source, at);
    out.row.set(part.row, at);
    out.col.set(part.col, at);
    out.size.set(part.size, at);
    out.origin.push(...part.origin);
    if (out.score) out.score.set(part.score!, at);
    if (out.positions) out.positions.set(part.positions!, 3 * at);
    for (const name of extraNames) {
      const width = input.extra![name]!.length / input.n;
      extra[name]!.set(part.extra![name]!, at * width);
    }
    at += part.n;
  }
  if (extraNames.length > 0) out.extra = extra;
  return out;
}
