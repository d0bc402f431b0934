import { readFileSync } from 'node:fs';
import { InputError } from '../core/errors.js';

/**
 * A minimal reader for Hugging Face `tokenizer.json` files, enough for the
 * text tower of a CLIP-style dual encoder: normalizers (Lowercase, NFC/NFKC,
 * Replace, Strip, Sequence, BertNormalizer), pre-tokenizers (Whitespace,
 * WhitespaceSplit, BertPreTokenizer, Split, ByteLevel, Sequence), models
 * (WordLevel, WordPiece, BPE with merges and end-of-word suffix) and post
 * processors (TemplateProcessing, RobertaProcessing, BertProcessing). Anything
 * else is rejected with a clear error instead of tokenizing wrongly.
 */

export interface HfTextTokenizer {
  /**
   * Token ids for a text, with the post-processor's special tokens. With
   * maxLength, the text's own tokens are cut first so the special tokens
   * (e.g. CLIP's end-of-text, whose position the text tower pools) survive,
   * as Hugging Face's truncation does.
   */
  encode(text: string, maxLength?: number): number[];
  /** Id of a token string, if in the vocabulary. */
  tokenId(token: string): number | undefined;
}

type Json = Record<string, unknown>;

/**
 * Reads a tokenizer.json file.
 *
 * @example
 * const tok = loadTokenizerJson('models/clip/tokenizer.json');
 * tok.encode('a red ball'); // [49406, 320, 736, 1579, 49407]
 */
export function loadTokenizerJson(path: string): HfTextTokenizer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(`tokenizer ${path}: cannot read JSON (${(error as Error).message})`, 'E_TOKENIZER');
  }
  return tokenizerFromJson(parsed, path);
}

/**
 * Builds a tokenizer from a parsed tokenizer.json object.
 *
 * @example
 * tokenizerFromJson({ pre_tokenizer: { type: 'Whitespace' }, model: { type: 'WordLevel', vocab: { a: 0, b: 1 } } }).encode('b a'); // [1, 0]
 */
export function tokenizerFromJson(json: unknown, where = 'tokenizer.json'): HfTextTokenizer {
  const spec = json as Json;
  if (!spec || typeof spec !== 'object' || !spec.model) throw new InputError(`${where}: no "model" section (not a tokenizer.json?)`, 'E_TOKENIZER');
  const normalize = buildNormalizer(spec.normalizer as Json | null, where);
  const preTokenize = buildPreTokenizer(spec.pre_tokenizer as Json | null, where);
  const model = buildModel(spec.model as Json, where);
  const post = buildPostProcessor(spec.post_processor as Json | null, model.vocab, where);
  const specialCount = post([]).length;
  return {
    encode(text, maxLength) {
      const pieces = preTokenize(normalize(text));
      const ids: number[] = [];
      for (const piece of pieces) ids.push(...model.tokenize(piece));
      if (maxLength === undefined) return post(ids);
      const room = maxLength - specialCount;
      if (room < 0) throw new InputError(`${where}: maxLength ${maxLength} cannot hold the ${specialCount} special tokens`, 'E_TOKENIZER');
      return post(ids.slice(0, room));
    },
    tokenId: (token) => model.vocab.get(token),
  };
}

function buildNormalizer(spec: Json | null | undefined, where: string): (s: string) => string {
  if (!spec) return (s) => s;
  switch (spec.type) {
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (s) => s.normalize(spec.type as 'NFC');
    case 'Strip':
      return (s) => s.trim();
    case 'Replace': {
      const pattern = spec.pattern as { String?: string; Regex?: string };
      const regex = pattern.Regex !== undefined ? new RegExp(pattern.Regex, 'gu') : new RegExp(escapeRegex(pattern.String ?? ''), 'g');
      return (s) => s.replace(regex, String(spec.content ?? ''));
    }
    case 'BertNormalizer':
      return (s) => (spec.lowercase === false ? s : s.toLowerCase()).replace(/\s/g, ' ');
    case 'Sequence': {
      const steps = (spec.normalizers as Json[]).map((n) => buildNormalizer(n, where));
      return (s) => steps.reduce((acc, step) => step(acc), s);
    }
    default:
      throw new InputError(`${where}: normalizer ${String(spec.type)} is not supported (supported: Lowercase, NFC/NFKC, Replace, Strip, BertNormalizer, Sequence)`, 'E_TOKENIZER');
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** GPT-2's byte → printable-unicode table used by ByteLevel pre-tokenization. */
function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  return table;
}

const BYTE_TABLE = bytesToUnicode();
/** GPT-2's split pattern (ByteLevel with use_regex). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function buildPreTokenizer(spec: Json | null | undefined, where: string): (s: string) => string[] {
  if (!spec) return (s) => [s];
  switch (spec.type) {
    case 'Whitespace':
    case 'BertPreTokenizer':
      return (s) => s.match(/\w+|[^\w\s]+/gu) ?? [];
    case 'WhitespaceSplit':
      return (s) => s.split(/\s+/u).filter((p) => p.length > 0);
    case 'Split': {
      const pattern = spec.pattern as { String?: string; Regex?: string };
      const regex = pattern.Regex !== undefined ? new RegExp(pattern.Regex, 'giu') : new RegExp(escapeRegex(pattern.String ?? ''), 'g');
      const behavior = String(spec.behavior ?? 'Isolated');
      const invert = spec.invert === true;
      return (s) => splitBy(s, regex, behavior, invert);
    }
    case 'ByteLevel': {
      const prefix = spec.add_prefix_space === true;
      const useRegex = spec.use_regex !== false;
      return (s) => {
        const text = prefix && !s.startsWith(' ') ? ` ${s}` : s;
        const parts = useRegex ? (text.match(GPT2_SPLIT) ?? []) : [text];
        return parts.map((p) => Array.from(new TextEncoder().encode(p), (b) => BYTE_TABLE[b]!).join(''));
      };
    }
    case 'Sequence': {
      const steps = (spec.pretokenizers as Json[]).map((p) => buildPreTokenizer(p, where));
      return (s) => steps.reduce<string[]>((pieces, step) => pieces.flatMap((p) => step(p)), [s]);
    }
    default:
      throw new InputError(`${where}: pre_tokenizer ${String(spec.type)} is not supported (supported: Whitespace, WhitespaceSplit, BertPreTokenizer, Split, ByteLevel, Sequence)`, 'E_TOKENIZER');
  }
}

/** tokenizers' Split behaviours on regex matches (Isolated keeps matches as pieces, Removed drops them). */
function splitBy(s: string, regex: RegExp, behavior: string, invert: boolean): string[] {
  const out: string[] = [];
  let last = 0;
  for (const m of s.matchAll(regex)) {
    const start = m.index!;
    const end = start + m[0].length;
    if (invert) {
      out.push(m[0]);
      continue;
    }
    if (start > last) out.push(s.slice(last, start));
    if (behavior === 'Isolated' || behavior === 'MergedWithPrevious' || behavior === 'MergedWithNext' || behavior === 'Contiguous') out.push(m[0]);
    else if (behavior !== 'Removed') throw new InputError(`tokenizer: Split behavior ${behavior} is not supported`, 'E_TOKENIZER');
    last = end;
  }
  if (!invert && last < s.length) out.push(s.slice(last));
  return out.filter((p) => p.length > 0);
}

interface Model {
  vocab: Map<string, number>;
  tokenize(piece: string): number[];
}

function vocabMap(vocab: unknown, where: string): Map<string, number> {
  if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new InputError(`${where}: model.vocab must be an object {token: id}`, 'E_TOKENIZER');
  return new Map(Object.entries(vocab as Record<string, number>));
}

function buildModel(spec: Json, where: string): Model {
  const vocab = vocabMap(spec.vocab, where);
  const unk = typeof spec.unk_token === 'string' ? vocab.get(spec.unk_token) : undefined;
  const lookup = (token: string): number[] => {
    const id = vocab.get(token);
    if (id !== undefined) return [id];
    if (unk !== undefined) return [unk];
    throw new InputError(`${where}: token ${JSON.stringify(token)} is not in the vocabulary and there is no unk_token`, 'E_TOKENIZER');
  };
  switch (spec.type) {
    case 'WordLevel':
      return { vocab, tokenize: lookup };
    case 'WordPiece': {
      const prefix = String(spec.continuing_subword_prefix ?? '##');
      return {
        vocab,
        tokenize(piece) {
          const ids: number[] = [];
          let start = 0;
          const chars = Array.from(piece);
          while (start < chars.length) {
            let end = chars.length;
            let found: number | undefined;
            for (; end > start; end--) {
              const sub = (start > 0 ? prefix : '') + chars.slice(start, end).join('');
              found = vocab.get(sub);
              if (found !== undefined) break;
            }
            if (found === undefined) return lookup(piece); // whole word unknown → unk (or a clear error)
            ids.push(found);
            start = end;
          }
          return ids;
        },
      };
    }
    case 'BPE': {
      const merges = (spec.merges as (string | [string, string])[] | undefined) ?? [];
      const rank = new Map<string, number>();
      merges.forEach((m, i) => rank.set(Array.isArray(m) ? `${m[0]} ${m[1]}` : m, i));
      const suffix = typeof spec.end_of_word_suffix === 'string' ? spec.end_of_word_suffix : '';
      const prefix = typeof spec.continuing_subword_prefix === 'string' ? spec.continuing_subword_prefix : '';
      const ignoreMerges = spec.ignore_merges === true;
      const byteFallback = spec.byte_fallback === true;
      /** Unknown symbol → its UTF-8 bytes as <0xNN> tokens (Llama/Mistral style) when byte_fallback is on. */
      const symbolIds = (symbol: string): number[] => {
        if (vocab.has(symbol) || !byteFallback) return lookup(symbol);
        const bytes = Array.from(new TextEncoder().encode(symbol), (b) => vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
        return bytes.every((id) => id !== undefined) ? (bytes as number[]) : lookup(symbol);
      };
      const cache = new Map<string, number[]>();
      return {
        vocab,
        tokenize(piece) {
          const cached = cache.get(piece);
          if (cached) return cached;
          const chars = Array.from(piece);
          if (chars.length === 0) return [];
          const whole = piece + suffix;
          if (ignoreMerges && vocab.has(whole)) return [vocab.get(whole)!];
          // Hugging Face's word split: continuation symbols carry the prefix, the last one the suffix.
          const symbols = chars.map((c, i) => (i > 0 ? prefix + c : c));
          symbols[symbols.length - 1] += suffix;
          // Standard BPE: repeatedly apply the lowest-ranked merge present.
          for (;;) {
            let bestRank = Infinity;
            let bestAt = -1;
            for (let i = 0; i + 1 < symbols.length; i++) {
              const r = rank.get(`${symbols[i]} ${symbols[i + 1]}`);
              if (r !== undefined && r < bestRank) {
                bestRank = r;
                bestAt = i;
              }
            }
            if (bestAt < 0) break;
            const right = symbols[bestAt + 1]!;
            symbols.splice(bestAt, 2, symbols[bestAt]! + (prefix && right.startsWith(prefix) ? right.slice(prefix.length) : right));
          }
          const ids = symbols.flatMap(symbolIds);
          cache.set(piece, ids);
          return ids;
        },
      };
    }
    default:
      throw new InputError(`${where}: model type ${String(spec.type)} is not supported (supported: WordLevel, WordPiece, BPE)`, 'E_TOKENIZER');
  }
}

function buildPostProcessor(spec: Json | null | undefined, vocab: Map<string, number>, where: string): (ids: number[]) => number[] {
  if (!spec) return (ids) => ids;
  const special = (entry: unknown): number => {
    if (Array.isArray(entry)) return Number(entry[1]);
    throw new InputError(`${where}: post_processor special token must be [token, id]`, 'E_TOKENIZER');
  };
  switch (spec.type) {
    case 'ByteLevel':
      return (ids) => ids;
    case 'RobertaProcessing':
    case 'BertProcessing': {
      const cls = special(spec.cls);
      const sep = special(spec.sep);
      return (ids) => [cls, ...ids, sep];
    }
    case 'TemplateProcessing': {
      const specialTokens = (spec.special_tokens ?? {}) as Record<string, { ids: number[] }>;
      const template = (spec.single ?? []) as Json[];
      return (ids) =>
        template.flatMap((item) => {
          if (item.Sequence) return ids;
          const token = (item.SpecialToken as { id: string }).id;
          const known = specialTokens[token]?.ids ?? (vocab.has(token) ? [vocab.get(token)!] : undefined);
          if (!known) throw new InputError(`${where}: template special token ${JSON.stringify(token)} has no id`, 'E_TOKENIZER');
          return known;
        });
    }
    case 'Sequence': {
      const steps = (spec.processors as Json[]).map((p) => buildPostProcessor(p, vocab, where));
      return (ids) => steps.reduce((acc, step) => step(acc), ids);
    }
    default:
      throw new InputError(`${where}: post_processor ${String(spec.type)} is not supported (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel)`, 'E_TOKENIZER');
  }
}
