import { InputError } from '../core/errors.js';
import { matmulABt, matrix, normalizeRows, type Matrix } from '../core/linalg.js';
import type { TokenSet } from '../core/tokenset.js';

/**
 * Largest n for which a reducer materialises the n×n cosine matrix
 * (16384² float32 = 1 GiB). Beyond it the methods that need all pairwise
 * similarities fail with a clear error instead of exhausting memory.
 */
export const MAX_GRAM_TOKENS = 16384;

/**
 * The n×n cosine-similarity (Gram) matrix of L2-normalised token features,
 * computed with one native GEMM. Zero-norm tokens get similarity 0 to all.
 *
 * @example
 * const gram = await cosineGram(tokens, 'divprune'); // gram.data[i * n + j] = cos(x_i, x_j)
 */
export async function cosineGram(tokens: TokenSet, method: string): Promise<Matrix> {
  if (tokens.n > MAX_GRAM_TOKENS) {
    const gib = ((tokens.n * tokens.n * 4) / 2 ** 30).toFixed(1);
    throw new InputError(
      `${method}: n = ${tokens.n} tokens needs a ${tokens.n}x${tokens.n} similarity matrix (${gib} GiB); at most ${MAX_GRAM_TOKENS} tokens are supported — reduce per frame/tile first`,
      'E_TOO_LARGE',
    );
  }
  const normalized = normalizeRows(matrix(tokens.n, tokens.d, tokens.data));
  return matmulABt(normalized, normalized);
}
