import { InputError } from '../core/errors.js';
import type { TokenSet } from '../core/tokenset.js';
import { cosineGramNative } from '../core/linalg-kernels.js';

/**
 * Largest n for which a reducer materialises the n×n cosine matrix
 * (16384² float32 = 1 GiB). Beyond it the methods that need all pairwise
 * similarities fail with a clear error instead of exhausting memory.
 */
export const MAX_GRAM_TOKENS = 16384;

/**
 * The n×n cosine-similarity (Gram) matrix of L2-normalised token features and
 * each token's largest similarity to another token, in one native graph.
 * Zero-norm tokens get similarity 0 to all.
 *
 * @example
 * const { gram, nearest } = await cosineGram(tokens, 'divprune'); // gram[i * n + j] = cos(x_i, x_j)
 */
export async function cosineGram(tokens: TokenSet, method: string): Promise<{ gram: Float32Array; nearest: Float32Array }> {
  if (tokens.n > MAX_GRAM_TOKENS) {
    const gib = ((tokens.n * tokens.n * 4) / 2 ** 30).toFixed(1);
    throw new InputError(
      `${method}: n = ${tokens.n} tokens needs a ${tokens.n}x${tokens.n} similarity matrix (${gib} GiB); at most ${MAX_GRAM_TOKENS} tokens are supported — reduce per frame/tile first`,
      'E_TOO_LARGE',
    );
  }
  return cosineGramNative(tokens.data, tokens.n, tokens.d);
}
