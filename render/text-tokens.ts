import { readFileSync } from 'node:fs';
import { InputError, UsageError, describe } from '../core/errors.js';

/**
 * Text-token counts for the compression ratio ρ = text tokens / vision tokens.
 * Offline only: OpenAI encodings through gpt-tokenizer (o200k_base by
 * default), or any Hugging Face `tokenizer.json` whose model is BPE
 * (byte-level like GPT-2/Qwen/Llama-3, or SentencePiece-style with `▁` and
 * byte fallback like Llama-2/Mistral), implemented here.
 *
 * Counts are of the text's own tokens: no BOS/EOS or chat template
 * (post_processor is ignored), and special-token strings inside the text are
 * counted as plain text for the OpenAI encodings, as added tokens for HF files.
 */
export interface TextTokenizer {
  /** "o200k_base", "cl100k_base", or the tokenizer.json path. */
  name: string;
  count(text: string): number;
}

const OPENAI_ENCODINGS = ['o200k_base', 'cl100k_base'] as const;

/**
 * Loads a tokenizer by name: an OpenAI encoding name, or a path to a
 * Hugging Face tokenizer.json (anything ending in .json).
 *
 * @example
 * const tok = await loadTextTokenizer('o200k_base');
 * tok.count('hello world'); // 2
 */
export async function loadTextTokenizer(spec = 'o200k_base'): Promise<TextTokenizer> {
  if (spec === 'o200k' || spec === 'o200k_base') return openAiTokenizer('o200k_base');
  if (spec === 'cl100k' || spec === 'cl100k_base') return openAiTokenizer('cl100k_base');
  if (spec.endsWith('.json')) return loadHfTokenizer(spec);
  throw new UsageError(`unknown tokenizer ${describe(spec)} (expected ${OPENAI_ENCODINGS.join(', ')} or a path to a Hugging Face tokenizer.json)`, 'E_TOKENIZER');
}

async function openAiTokenizer(name: (typeof OPENAI_ENCODINGS)[number]): Promise<TextTokenizer> {
  const mod = name === 'o200k_base' ? await import('gpt-tokenizer/encoding/o200k_base') : await import('gpt-tokenizer/encoding/cl100k_base');
  const options = { disallowedSpecial: new Set<string>() };
  return { name, count: (text) => mod.countTokens(text, options) };
}

/**
 * Reads and parses a tokenizer.json file (InputError on unreadable/malformed files).
 *
 * @example
 * loadHfTokenizer('models/qwen2.5/tokenizer.json').count('hello world');
 */
export function loadHfTokenizer(path: string): TextTokenizer {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(`cannot read tokenizer ${path}: ${(error as Error).message}`, 'E_TOKENIZER');
  }
  return hfTokenizerFromJson(json, path);
}

// ---------------------------------------------------------------- HF tokenizer.json

interface HfJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; unk_token?: string | null; byte_fallback?: boolean; ignore_merges?: boolean; fuse_unk?: boolean };
  normalizer?: HfNode | null;
  pre_tokenizer?: HfNode | null;
  added_tokens?: { content: string; id: number }[];
}
interface HfNode {
  type: string;
  [key: string]: unknown;
}

type Normalize = (text: string) => string;
type PreTokenize = (pieces: string[]) => string[];

const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * Builds a counter from a parsed tokenizer.json object.
 *
 * @example
 * const tok = hfTokenizerFromJson({ model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] } }, 'tiny');
 * tok.count('abab'); // 2
 */
export function hfTokenizerFromJson(json: unknown, name: string): TextTokenizer {
  const spec = json as HfJson;
  const model = spec?.model;
  if (!model || typeof model !== 'object') throw new InputError(`tokenizer ${name}: missing "model" object`, 'E_TOKENIZER');
  if ((model.type ?? 'BPE') !== 'BPE') throw new InputError(`tokenizer ${name}: model type ${describe(model.type)} is not supported (expected "BPE")`, 'E_TOKENIZER');
  if (!model.vocab || typeof model.vocab !== 'object') throw new InputError(`tokenizer ${name}: model.vocab missing`, 'E_TOKENIZER');
  const vocab = new Map(Object.entries(model.vocab));
  const ranks = new Map<string, number>();
  (model.merges ?? []).forEach((merge, rank) => {
    const pair = Array.isArray(merge) ? merge : merge.split(' ');
    if (pair.length !== 2) throw new InputError(`tokenizer ${name}: merge ${rank} is malformed: ${describe(merge)}`, 'E_TOKENIZER');
    ranks.set(`${pair[0]} ${pair[1]}`, rank);
  });
  const normalize = buildNormalizer(spec.normalizer ?? null, name);
  const preTokenize = buildPreTokenizer(spec.pre_tokenizer ?? null, name);
  const byteLevel = usesByteLevel(spec.pre_tokenizer ?? null);
  const added = (spec.added_tokens ?? []).map((t) => t.content).filter((c) => c.length > 0);
  const addedPattern = added.length ? new RegExp(`(${added.sort((a, b) => b.length - a.length).map(escapeRegex).join('|')})`, 'u') : null;
  const bpe = new BpeModel(vocab, ranks, { byteFallback: model.byte_fallback === true, ignoreMerges: model.ignore_merges === true, hasUnk: model.unk_token != null, fuseUnk: model.fuse_unk === true });

  const countSegment = (segment: string): number => {
    let pieces = [normalize(segment)];
    pieces = preTokenize(pieces);
    let total = 0;
    for (const piece of pieces) if (piece.length) total += bpe.count(piece, byteLevel);
    return total;
  };
  return {
    name,
    count(text) {
      if (!addedPattern) return countSegment(text);
      let total = 0;
      for (const [i, part] of text.split(addedPattern).entries()) {
        if (i % 2 === 1) total += 1;
        else if (part.length) total += countSegment(part);
      }
      return total;
    },
  };
}

class BpeModel {
  private cache = new Map<string, number>();
  constructor(
    private vocab: Map<string, number>,
    private ranks: Map<string, number>,
    private options: { byteFallback: boolean; ignoreMerges: boolean; hasUnk: boolean; fuseUnk: boolean },
  ) {}

  /** Tokens for one pre-token (byte-level pieces are already mapped to GPT-2's byte alphabet). */
  count(word: string, byteLevel: boolean): number {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const n = this.countUncached(word, byteLevel);
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(word, n);
    return n;
  }

  private countUncached(word: string, byteLevel: boolean): number {
    if (this.options.ignoreMerges && this.vocab.has(word)) return 1;
    // Start from single characters (code points), then apply the lowest-rank merge until none applies.
    let symbols = Array.from(word);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const left = symbols[best]!;
      const right = symbols[best + 1]!;
      const next: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        // Merge every non-overlapping occurrence of the best pair, left to right, as HF does.
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          next.push(left + right);
          i++;
        } else next.push(symbols[i]!);
      }
      symbols = next;
    }
    let total = 0;
    let previousUnk = false;
    for (const symbol of symbols) {
      if (this.vocab.has(symbol)) {
        total += 1;
        previousUnk = false;
      } else if (!byteLevel && this.options.byteFallback) {
        total += Buffer.byteLength(symbol, 'utf8');
        previousUnk = false;
      } else {
        // An unknown symbol is one <unk> token (fused with a preceding <unk> when fuse_unk).
        if (!(this.options.fuseUnk && previousUnk)) total += 1;
        previousUnk = true;
      }
    }
    return total;
  }
}

function buildNormalizer(node: HfNode | null, name: string): Normalize {
  if (!node) return (s) => s;
  switch (node.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = node.type;
      return (s) => s.normalize(form);
    }
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'Prepend': {
      const prefix = String(node.prepend ?? '');
      return (s) => (s.length ? prefix + s : s);
    }
    case 'Replace': {
      const pattern = node.pattern as { String?: string; Regex?: string };
      const content = String(node.content ?? '');
      if (pattern?.String !== undefined) return (s) => s.split(pattern.String!).join(content);
      if (pattern?.Regex !== undefined) {
        const re = compilePattern(pattern.Regex, name);
        return (s) => s.replace(new RegExp(re.source, 'gu'), content);
      }
      throw new InputError(`tokenizer ${name}: Replace normalizer without pattern`, 'E_TOKENIZER');
    }
    case 'Sequence': {
      const steps = ((node.normalizers as HfNode[]) ?? []).map((n) => buildNormalizer(n, name));
      return (s) => steps.reduce((acc, step) => step(acc), s);
    }
    default:
      throw new InputError(`tokenizer ${name}: normalizer ${describe(node.type)} is not supported (NFC/NFD/NFKC/NFKD, Lowercase, Prepend, Replace, Sequence are)`, 'E_TOKENIZER');
  }
}

function usesByteLevel(node: HfNode | null): boolean {
  if (!node) return false;
  if (node.type === 'ByteLevel') return true;
  if (node.type === 'Sequence') return ((node.pretokenizers as HfNode[]) ?? []).some(usesByteLevel);
  return false;
}

function buildPreTokenizer(node: HfNode | null, name: string): PreTokenize {
  if (!node) return (pieces) => pieces;
  switch (node.type) {
    case 'Sequence': {
      const steps = ((node.pretokenizers as HfNode[]) ?? []).map((n) => buildPreTokenizer(n, name));
      return (pieces) => steps.reduce((acc, step) => step(acc), pieces);
    }
    case 'Split': {
      const pattern = node.pattern as { String?: string; Regex?: string };
      const re = pattern?.Regex !== undefined ? compilePattern(pattern.Regex, name) : new RegExp(escapeRegex(String(pattern?.String ?? ' ')), 'u');
      const behavior = String(node.behavior ?? 'Isolated');
      if (node.invert === true) throw new InputError(`tokenizer ${name}: Split with invert=true is not supported`, 'E_TOKENIZER');
      if (behavior !== 'Isolated' && behavior !== 'Removed') throw new InputError(`tokenizer ${name}: Split behavior ${describe(behavior)} is not supported (Isolated, Removed are)`, 'E_TOKENIZER');
      return (pieces) => pieces.flatMap((p) => splitByPattern(p, re, behavior === 'Removed'));
    }
    case 'Digits': {
      const individual = node.individual_digits === true;
      const re = individual ? /\p{N}/u : /\p{N}+/u;
      return (pieces) => pieces.flatMap((p) => splitByPattern(p, re, false));
    }
    case 'ByteLevel': {
      const useRegex = node.use_regex !== false;
      const addPrefixSpace = node.add_prefix_space === true;
      const re = new RegExp(GPT2_PATTERN, 'u');
      return (pieces) => {
        const out: string[] = [];
        pieces.forEach((piece, i) => {
          const text = addPrefixSpace && i === 0 && !piece.startsWith(' ') ? ` ${piece}` : piece;
          for (const part of useRegex ? splitByPattern(text, re, false) : [text]) out.push(toByteAlphabet(part));
        });
        return out;
      };
    }
    case 'Metaspace': {
      const replacement = String(node.replacement ?? '▁');
      const scheme = String(node.prepend_scheme ?? (node.add_prefix_space === false ? 'never' : 'always'));
      const split = node.split !== false;
      return (pieces) =>
        pieces.flatMap((piece, i) => {
          let text = piece.split(' ').join(replacement);
          if ((scheme === 'always' || (scheme === 'first' && i === 0)) && !text.startsWith(replacement)) text = replacement + text;
          if (!split) return [text];
          return text.split(new RegExp(`(?=${escapeRegex(replacement)})`, 'u')).filter((s) => s.length > 0);
        });
    }
    case 'Whitespace':
      return (pieces) => pieces.flatMap((p) => p.match(/\w+|[^\w\s]+/gu) ?? []);
    case 'WhitespaceSplit':
      return (pieces) => pieces.flatMap((p) => p.split(/\s+/u).filter((s) => s.length > 0));
    default:
      throw new InputError(`tokenizer ${name}: pre_tokenizer ${describe(node.type)} is not supported (Sequence, Split, Digits, ByteLevel, Metaspace, Whitespace, WhitespaceSplit are)`, 'E_TOKENIZER');
  }
}

/** Splits text into matches and the gaps between them (gaps kept), or drops matches when removeMatches. */
function splitByPattern(text: string, re: RegExp, removeMatches: boolean): string[] {
  const global = new RegExp(re.source, 'gu');
  const out: string[] = [];
  let last = 0;
  for (const match of text.matchAll(global)) {
    const start = match.index!;
    if (match[0].length === 0) continue;
    if (start > last) out.push(text.slice(last, start));
    if (!removeMatches) out.push(match[0]);
    last = start + match[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/**
 * Translates an Oniguruma/Rust-regex pattern from tokenizer.json into a JS
 * unicode regex. The one construct Node 20 lacks is the scoped flag group
 * `(?i:…)` used by Qwen/Llama-3 for contractions; it is expanded into
 * explicit [xX] classes.
 *
 * @example
 * compilePattern("(?i:'s|'t)").test("'S"); // true
 */
export function compilePattern(source: string, name = 'tokenizer'): RegExp {
  let out = '';
  for (let i = 0; i < source.length; i++) {
    if (source.startsWith('(?i:', i)) {
      let depth = 1;
      let j = i + 4;
      let body = '';
      for (; j < source.length && depth > 0; j++) {
        const ch = source[j]!;
        if (ch === '\\') {
          body += ch + source[j + 1];
          j++;
          continue;
        }
        if (ch === '(') depth++;
        if (ch === ')') depth--;
        if (depth > 0) body += ch;
      }
      out += `(?:${body.replace(/[a-zA-Z]/g, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`)})`;
      i = j - 1;
    } else out += source[i];
  }
  try {
    return new RegExp(out, 'u');
  } catch (error) {
    throw new InputError(`${name}: cannot compile pre-tokenizer regex ${describe(source)}: ${(error as Error).message}`, 'E_TOKENIZER');
  }
}

let byteAlphabet: string[] | null = null;

/**
 * GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100…; applied to UTF-8 bytes.
 *
 * @example
 * toByteAlphabet(' a'); // 'Ġa'
 */
export function toByteAlphabet(text: string): string {
  if (!byteAlphabet) {
    const table: string[] = new Array(256);
    let next = 256;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      table[b] = String.fromCodePoint(printable ? b : next++);
    }
    byteAlphabet = table;
  }
  const table = byteAlphabet;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += table[byte];
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
