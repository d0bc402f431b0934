import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTokenizerJson, tokenizerFromJson } from '../../video/tokenizer.js';
import { tempDir } from '../helpers.js';

test('WordLevel + Lowercase + Whitespace + TemplateProcessing, read from a file', () => {
  const dir = tempDir();
  const path = join(dir, 'tokenizer.json');
  writeFileSync(
    path,
    JSON.stringify({
      version: '1.0',
      normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Lowercase' }] },
      pre_tokenizer: { type: 'Whitespace' },
      model: { type: 'WordLevel', vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, where: 3, is: 4, the: 5, boat: 6 }, unk_token: '<unk>' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
      },
    }),
  );
  const tok = loadTokenizerJson(path);
  // "?" is its own piece (punctuation) and unknown → <unk>.
  assert.deepEqual(tok.encode('Where is the BOAT?'), [1, 3, 4, 5, 6, 0, 2]);
  assert.equal(tok.tokenId('boat'), 6);
  // Truncation cuts the text, never the special tokens: 5 = <s> + 3 words + </s>.
  assert.deepEqual(tok.encode('Where is the BOAT?', 5), [1, 3, 4, 5, 2]);
  assert.throws(() => tok.encode('boat', 1), /maxLength 1 cannot hold the 2 special tokens/);
});

test('BPE applies the lowest-ranked merge first and honours end_of_word_suffix (CLIP style)', () => {
  const tok = tokenizerFromJson({
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    model: {
      type: 'BPE',
      vocab: { l: 0, o: 1, w: 2, e: 3, r: 4, lo: 5, low: 6, 'er</w>': 7, 'w</w>': 8, 'r</w>': 9, 'low</w>': 10, 'e</w>': 11 },
      merges: ['l o', 'lo w', 'e r</w>', 'lo w</w>'],
      end_of_word_suffix: '</w>',
    },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 99], cls: ['<s>', 98] },
  });
  // low → l o w</w> → lo w</w> → low</w>; lower → lo w e r</w> → low e r</w> → low er</w>
  assert.deepEqual(tok.encode('low lower'), [98, 10, 6, 7, 99]);
});

test('ByteLevel pre-tokenization maps spaces to Ġ before BPE (GPT-2 style)', () => {
  const tok = tokenizerFromJson({
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
    model: {
      type: 'BPE',
      vocab: { h: 0, i: 1, 'Ġ': 2, t: 3, e: 4, hi: 5, 'Ġt': 6, 'Ġte': 7 },
      merges: [['h', 'i'], ['Ġ', 't'], ['Ġt', 'e']],
    },
    post_processor: { type: 'ByteLevel' },
  });
  assert.deepEqual(tok.encode('hi te'), [5, 7]);
  assert.deepEqual(tok.encode('hi tee'), [5, 7, 4]);
});

test('WordPiece with ## continuation; unsupported parts are clear errors', () => {
  const tok = tokenizerFromJson({
    normalizer: { type: 'BertNormalizer', lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    model: { type: 'WordPiece', vocab: { '[UNK]': 0, play: 1, '##ing': 2, '[CLS]': 3, '[SEP]': 4 }, unk_token: '[UNK]' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 4], cls: ['[CLS]', 3] },
  });
  assert.deepEqual(tok.encode('Playing xyz'), [3, 1, 2, 0, 4]);
  assert.throws(() => tokenizerFromJson({ model: { type: 'Unigram', vocab: {} } }, 't.json'), /t\.json: model type Unigram is not supported \(supported: WordLevel, WordPiece, BPE\)/);
  assert.throws(() => tokenizerFromJson({ model: { type: 'WordLevel', vocab: { a: 0 } } }).encode('b'), /token "b" is not in the vocabulary and there is no unk_token/);
  assert.throws(() => tokenizerFromJson({}), /no "model" section/);
});

test("CLIP's tokenizer.json structure: NFC + Replace + Lowercase, Split(invert) + ByteLevel, BPE </w>, RobertaProcessing", () => {
  const chars = ['a', 'p', 'h', 'o', 't', 'f', 'c', '.', 'a</w>', 'o</w>', 'f</w>', 't</w>', '.</w>'];
  const words = ['ph', 'pho', 'phot', 'photo</w>', 'of</w>', 'ca', 'cat</w>'];
  const vocab = Object.fromEntries([...chars, ...words, '<|startoftext|>', '<|endoftext|>'].map((t, i) => [t, i]));
  const tok = tokenizerFromJson({
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    model: { type: 'BPE', vocab, merges: ['p h', 'ph o', 'pho t', 'phot o</w>', 'o f</w>', 'c a', 'ca t</w>'], end_of_word_suffix: '</w>', continuing_subword_prefix: '', unk_token: '<|endoftext|>' },
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', vocab['<|endoftext|>']], cls: ['<|startoftext|>', vocab['<|startoftext|>']] },
  });
  const id = (t: string) => vocab[t]!;
  assert.deepEqual(tok.encode('A  Photo of\ta CAT.'), [id('<|startoftext|>'), id('a</w>'), id('photo</w>'), id('of</w>'), id('a</w>'), id('cat</w>'), id('.</w>'), id('<|endoftext|>')]);
});

test('BPE options: continuing_subword_prefix merges, byte_fallback, ignore_merges', () => {
  const prefixed = tokenizerFromJson({
    pre_tokenizer: { type: 'WhitespaceSplit' },
    model: { type: 'BPE', vocab: { a: 0, '##b': 1, '##c': 2, ab: 3, abc: 4, '##bc': 5, b: 6 }, merges: ['##b ##c', 'a ##bc'], continuing_subword_prefix: '##' },
  });
  // abc → a ##b ##c → a ##bc → abc; bc → b ##c (no merge "b ##c").
  assert.deepEqual(prefixed.encode('abc bc'), [4, 6, 2]);
  const bytes = tokenizerFromJson({ model: { type: 'BPE', vocab: { '<0xC3>': 0, '<0xA9>': 1, a: 2 }, merges: [], byte_fallback: true } });
  assert.deepEqual(bytes.encode('aé'), [2, 0, 1]);
  const vocab = { hello: 0, h: 1, e: 2, l: 3, o: 4 };
  assert.deepEqual(tokenizerFromJson({ model: { type: 'BPE', vocab, merges: [], ignore_merges: true } }).encode('hello'), [0]);
  assert.deepEqual(tokenizerFromJson({ model: { type: 'BPE', vocab, merges: [] } }).encode('hello'), [1, 2, 3, 3, 4]);
});
