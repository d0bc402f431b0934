import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxGraph } from '../../core/onnx-graph.js';

/**
 * Writes a tiny CLIP-style dual encoder the tests can run:
 *   vision: mean colour of the normalised image ((x/255 − 0.5)/0.5 per channel) → [N, 3]
 *   text:   embedding lookup of the token ids, averaged over the (padded) sequence → [1, 3]
 * Colour words embed as their colour axis ("red" → R, "sea"/"boat"/"blue" → B, …),
 * so a question about the boat on the sea points at the blue ocean scene.
 */
export const TINY_VOCAB = [
  '<pad>',
  '<s>',
  '</s>',
  '<unk>',
  'red',
  'sunset',
  'green',
  'meadow',
  'blue',
  'sea',
  'boat',
  'the',
  'a',
  'on',
  'where',
  'is',
  'what',
  'colour',
];

const AXIS: Record<string, [number, number, number]> = {
  red: [1, 0, 0],
  sunset: [1, 0, 0],
  green: [0, 1, 0],
  meadow: [0, 1, 0],
  blue: [0, 0, 1],
  sea: [0, 0, 1],
  boat: [0, 0, 1],
};

export function writeTinyDualEncoder(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const vision = new OnnxGraph('tiny_vision');
  vision.input('pixel_values', ['n', 3, 32, 32]);
  vision.node('ReduceMean', ['pixel_values'], ['image_embeds'], { axes: [2, 3], keepdims: 0 });
  vision.output('image_embeds', ['n', 3]);
  writeFileSync(join(dir, 'vision.onnx'), vision.toBytes());

  const table = TINY_VOCAB.flatMap((word) => AXIS[word] ?? [0, 0, 0]);
  const text = new OnnxGraph('tiny_text');
  text.input('input_ids', [1, 'len'], 7 /* INT64 */);
  text.initializer('token_embedding', [TINY_VOCAB.length, 3], table);
  text.node('Gather', ['token_embedding', 'input_ids'], ['tokens'], { axis: 0 });
  text.node('ReduceMean', ['tokens'], ['text_embeds'], { axes: [1], keepdims: 0 });
  text.output('text_embeds', [1, 3]);
  writeFileSync(join(dir, 'text.onnx'), text.toBytes());

  const vocab = Object.fromEntries(TINY_VOCAB.map((w, i) => [w, i]));
  writeFileSync(
    join(dir, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      normalizer: { type: 'Lowercase' },
      pre_tokenizer: { type: 'Whitespace' },
      model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
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
  writeFileSync(
    join(dir, 'dual.json'),
    JSON.stringify({ image_size: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], context_length: 16, pad_id: 0 }),
  );
  return dir;
}
