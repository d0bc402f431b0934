import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EvalSample } from '../../eval/datasets.js';
import type { PreparedInput } from '../../eval/methods.js';
import { createOcrModel, OCR_WORKER_BYTES, ocrWorkersAllowed } from '../../eval/models.js';
import { repoRoot } from '../helpers.js';

test('the OCR pool is sized by what runs at once and by memory, not by --concurrency alone', async () => {
  assert.equal(OCR_WORKER_BYTES, 100 * 1024 * 1024);
  assert.equal(ocrWorkersAllowed(1024 * 1024 * 1024), 5); // half of 1 GiB at 100 MiB each
  assert.equal(ocrWorkersAllowed(0), 1);

  const model = await createOcrModel({ workers: 8 });
  try {
    assert.equal(model.workers!(), 1); // not 8 up front
    const bytes = new Uint8Array(readFileSync(join(repoRoot, 'samples', 'bench', 'images', 'chart_000.png')));
    const sample = { id: 's', question: 'What does it say?', answer: 'x', images: [] } as unknown as EvalSample;
    const input = {
      images: [{ bytes, mime: 'image/png', width: 1, height: 1 }],
      embeds: [],
      pixels: 1,
      tokens: 0,
    } as unknown as PreparedInput;
    await model.answer(sample, input);
    await model.answer(sample, input);
    assert.equal(model.workers!(), 1); // two jobs one after the other share one worker
    await Promise.all([model.answer(sample, input), model.answer(sample, input)]);
    assert.equal(model.workers!(), 2); // two at once: two workers, still not 8
  } finally {
    await model.close();
  }
});
