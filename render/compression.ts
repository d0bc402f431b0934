import { getProfile, type VisionProfile } from '../profiles/index.js';
import { defaultTokenizerFor, loadTextTokenizer, type TextTokenizer } from '../tokenizer/index.js';

export interface CompressionReport {
  profile: string;
  tokenizer: string;
  textTokens: number;
  visionTokens: number;
  /** text tokens / vision tokens (Glyph's ρ). */
  compression: number;
  /** Vision tokens of each page. */
  pageTokens: number[];
}

/**
 * Glyph's compression ratio for rendered pages under a VLM profile.
 *
 * @example
 * const report = await measureCompression(text, pages, { profile: 'qwen2.5-vl' });
 * report.compression; // ≈ 3 at dpi 72
 */
export async function measureCompression(
  text: string,
  pages: readonly { width: number; height: number }[],
  options: { profile?: string | VisionProfile; tokenizer?: string | TextTokenizer } = {},
): Promise<CompressionReport> {
  const profile = typeof options.profile === 'object' ? options.profile : getProfile(options.profile ?? 'qwen2.5-vl');
  const tokenizer =
    typeof options.tokenizer === 'object'
      ? options.tokenizer
      : await loadTextTokenizer(options.tokenizer ?? defaultTokenizerFor(profile.name));
  const textTokens = tokenizer.count(text);
  const pageTokens = pages.map((p) => profile.tokens(p.width, p.height));
  const visionTokens = pageTokens.reduce((a, b) => a + b, 0);
  return {
    profile: profile.name,
    tokenizer: tokenizer.name,
    textTokens,
    visionTokens,
    compression: visionTokens === 0 ? 0 : textTokens / visionTokens,
    pageTokens,
  };
}
