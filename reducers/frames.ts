import { ShapeError } from '../core/errors.js';
import type { TokenSet } from '../core/tokenset.js';

/** A video token set seen as [frames, tokensPerFrame, d]: token p of frame f is index f·perFrame + p. */
export interface FrameLayout {
  frames: number;
  perFrame: number;
}

/**
 * Checks that `tokens` is a video token set the frame methods (evs, fastvid)
 * can read as [frames, tokens, d]: every source a 'frame', tokens stored
 * frame after frame in temporal order, the same number per frame, and token p
 * of every frame at the same grid position (so "the same spatial token of the
 * previous frame" is well defined). A 3-D .npy [F, T, d] and encodeVideo give
 * exactly this; a token set already reduced per frame does not.
 *
 * @example
 * frameLayout(loadedVideo, 'evs'); // { frames: 32, perFrame: 196 }
 */
export function frameLayout(tokens: TokenSet, method: string): FrameLayout {
  const { n } = tokens;
  if (n === 0) throw new ShapeError(`${method}: input has no tokens`);
  for (let i = 0; i < n; i++) {
    const kind = tokens.sources[tokens.source[i]!]!.kind;
    if (kind !== 'frame') {
      throw new ShapeError(
        `${method}: needs a video token set [frames, tokens, d] (sources of kind 'frame'); token ${i} comes from a source of kind '${kind}' — give a 3-D .npy or an encoded video`,
      );
    }
  }
  let perFrame = 1;
  while (perFrame < n && tokens.source[perFrame] === tokens.source[0]) perFrame++;
  if (n % perFrame !== 0)
    throw new ShapeError(
      `${method}: frame 0 has ${perFrame} tokens but the input has ${n}, not a multiple (every frame needs the same number of tokens)`,
    );
  const frames = n / perFrame;
  for (let f = 0; f < frames; f++) {
    const base = f * perFrame;
    const s = tokens.source[base]!;
    if (f > 0 && s <= tokens.source[base - 1]!)
      throw new ShapeError(
        `${method}: frame ${f} (token ${base}) does not follow frame ${f - 1}; frames must be stored in temporal order`,
      );
    for (let p = 0; p < perFrame; p++) {
      if (tokens.source[base + p] !== s)
        throw new ShapeError(
          `${method}: token ${base + p} belongs to another frame than token ${base}; expected ${perFrame} tokens per frame (as frame 0)`,
        );
    }
    for (let p = 0; p < perFrame; p++) {
      const i = base + p;
      if (f > 0 && (tokens.row[i] !== tokens.row[p] || tokens.col[i] !== tokens.col[p])) {
        throw new ShapeError(
          `${method}: token ${p} of frame ${f} is at (${tokens.row[i]}, ${tokens.col[i]}) but at (${tokens.row[p]}, ${tokens.col[p]}) in frame 0; frames must share one token grid`,
        );
      }
    }
  }
  return { frames, perFrame };
}
