/** Text tokenizers for the whole toolkit (see tokenizer.ts). */
export {
  defaultTokenizerFor,
  hfTokenizerFromJson,
  loadHfTokenizer,
  loadTextTokenizer,
  qwenTokenizer,
  TOKENIZER_NAMES,
} from './tokenizer.js';
export type { HfTokenizer, TextTokenizer } from './tokenizer.js';
