import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, UsageError } from '../../core/errors.js';
import { compilePattern, hfTokenizerFromJson, loadTextTokenizer, toByteAlphabet } from '../../render/text-tokens.js';

test('o200k_base (default) and cl100k_base count offline', async () => {
  assert.equal((await loadTextTokenizer()).count('hello world'), 2);
  assert.equal((await loadTextTokenizer('cl100k_base')).count('hello world'), 2);
  // Special-token strings in the text are ordinary text, never an exception.
  assert.ok((await loadTextTokenizer()).count('<|endoftext|>') > 1);
  await assert.rejects(loadTextTokenizer('bert'), (e: unknown) => e instanceof UsageError && /unknown tokenizer "bert"/.test(e.message));
});

// GPT-2 style byte-level BPE: "hello" merges fully; " world" → Ġw, or, l, d.
const byteLevel = {
  model: {
    type: 'BPE',
    vocab: { h: 0, e: 1, l: 2, o: 3, 'Ġ': 4, w: 5, r: 6, d: 7, he: 8, ll: 9, hell: 10, hello: 11, 'Ġw': 12, or: 13 },
    merges: ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r'],
    unk_token: null,
  },
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
  added_tokens: [{ id: 14, content: '<|im_end|>' }],
};

test('byte-level BPE from tokenizer.json: hand-computed merges, added tokens', () => {
  const tok = hfTokenizerFromJson(byteLevel, 'tiny');
  assert.equal(tok.count('hello'), 1);
  assert.equal(tok.count('hello world'), 5);
  assert.equal(tok.count('hello<|im_end|>hello'), 3);
  assert.equal(tok.count('zz'), 2); // each unknown byte symbol is one <unk>
  assert.equal(toByteAlphabet(' é\n'), 'Ġ\u00c3\u00a9\u010a');
});

test('Qwen/Llama-3 style Split regex with (?i:…) groups and merges as pairs', () => {
  assert.equal(compilePattern("(?i:'s|'t)|\\p{L}+").exec("'S")?.[0], "'S");
  const qwenLike = {
    ...byteLevel,
    model: { ...byteLevel.model, merges: byteLevel.model.merges.map((m) => m.split(' ')) },
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
  };
  assert.equal(hfTokenizerFromJson(qwenLike, 'qwen-like').count('hello world'), 5);
});

test('SentencePiece-style BPE (Prepend/Replace ▁, byte fallback)', () => {
  const sp = {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    model: { type: 'BPE', vocab: { '▁': 0, a: 1, b: 2, '▁a': 3 }, merges: ['▁ a'], byte_fallback: true, unk_token: '<unk>' },
  };
  const tok = hfTokenizerFromJson(sp, 'sp');
  assert.equal(tok.count('a b'), 3); // ▁a ▁ b
  assert.equal(tok.count('aé'), 3); // ▁a + 2 UTF-8 bytes of é
});

test('tokenizer.json errors name the file and the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtc-tok-'));
  writeFileSync(join(dir, 'bad.json'), '{');
  assert.throws(() => hfTokenizerFromJson({ model: { type: 'WordPiece', vocab: {} } }, 'wp.json'), (e: unknown) => e instanceof InputError && /wp.json: model type "WordPiece" is not supported/.test(e.message));
  assert.throws(() => hfTokenizerFromJson({ model: { type: 'BPE', vocab: {}, merges: ['a b c'] } }, 'm.json'), /merge 0 is malformed/);
  return assert.rejects(loadTextTokenizer(join(dir, 'bad.json')), (e: unknown) => e instanceof InputError && /cannot read tokenizer/.test(e.message));
});
