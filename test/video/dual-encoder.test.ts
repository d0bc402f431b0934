import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadDualEncoder } from '../../video/dual-encoder.js';
import { planVideo } from '../../video/pipeline.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';
import { writeTinyDualEncoder } from './tiny-dual.js';

const sample = join(repoRoot, 'samples', 'video', 'scenes.mp4');

test('tiny dual encoder: text and image embeddings are L2-normalised and match by hand', async () => {
  const dual = await loadDualEncoder(writeTinyDualEncoder(join(tempDir(), 'dual')));
  try {
    // <s> red boat </s> + 12 pads → mean of (1,0,0) and (0,0,1) → normalised (1,0,1)/√2.
    const text = await dual.embedText('Red boat');
    assert.ok(
      Math.abs(text[0]! - Math.SQRT1_2) < 1e-6 && Math.abs(text[1]!) < 1e-7 && Math.abs(text[2]! - Math.SQRT1_2) < 1e-6,
      `${Array.from(text)}`,
    );
    // A flat image of (255, 127.5→128, 0): normalised (1, 0.0039, −1) → direction ≈ (1, 0, −1)/√2.
    const side = 8;
    const data = new Uint8Array(side * side * 3);
    for (let p = 0; p < side * side; p++) data.set([255, 128, 0], p * 3);
    const [image] = await dual.embedImages([{ data, width: side, height: side }]);
    const g = (128 / 255 - 0.5) / 0.5;
    const norm = Math.sqrt(2 + g * g);
    assert.ok(
      Math.abs(image![0]! - 1 / norm) < 1e-5 &&
        Math.abs(image![1]! - g / norm) < 1e-5 &&
        Math.abs(image![2]! + 1 / norm) < 1e-5,
      `${Array.from(image!)}`,
    );
  } finally {
    await dual.dispose();
  }
});

test('dual-encoder retrieval ranks the clip that matches the question first', async () => {
  const dual = await loadDualEncoder(writeTinyDualEncoder(join(tempDir(), 'dual')));
  try {
    const expectations: [string, number, number][] = [
      ['Where is the boat on the sea?', 1.5, 3],
      ['what colour is the meadow', 3, 4.5],
      ['the red sunset', 0, 1.5],
    ];
    for (const [question, start, end] of expectations) {
      const plan = await planVideo(sample, { question, dualEncoder: dual, clips: 1, frames: 2 });
      assert.equal(plan.retrieval, 'dual-encoder');
      assert.equal(plan.clips.length, 4, 'four scenes → four event clips');
      const best = [...plan.clips].sort((a, b) => b.score - a.score)[0]!;
      assert.deepEqual([best.startTime, best.endTime, best.selected], [start, end, true], question);
      assert.equal(plan.clips.filter((c) => c.selected).length, 1);
      for (const k of plan.keyframes) assert.ok(k.time >= start && k.time < end, `${question}: frame at ${k.time}`);
    }
    // Without a dual encoder the same question falls back to query-free scoring, which prefers another clip.
    const free = await planVideo(sample, { question: 'Where is the boat on the sea?', clips: 1, frames: 2 });
    assert.equal(free.retrieval, 'query-free');
    assert.notEqual(free.clips.find((c) => c.selected)!.startTime, 1.5);
  } finally {
    await dual.dispose();
  }
});

test('vtc video-qa --dual-encoder --dry-run --json reports the matching clip', async () => {
  const dir = tempDir();
  const dualDir = writeTinyDualEncoder(join(dir, 'dual'));
  const result = await runCli([
    'video-qa',
    sample,
    '-q',
    'what colour is the meadow',
    '--dual-encoder',
    dualDir,
    '--clips',
    '1',
    '--frames',
    '2',
    '--dry-run',
    '--out',
    join(dir, 'out'),
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout) as {
    answer: null;
    clips: { start: number; end: number; score: number }[];
    frames: { t: number }[];
  };
  assert.equal(json.answer, null);
  assert.deepEqual(
    json.clips.map((c) => [c.start, c.end]),
    [[3, 4.5]],
  );
  assert.equal(json.frames.length, 2);
});

test('bad dual encoder directories are clear errors', async () => {
  const dir = tempDir();
  await assert.rejects(loadDualEncoder(dir), /missing dual\.json/);
  writeFileSync(join(dir, 'dual.json'), JSON.stringify({ image_size: -1 }));
  await assert.rejects(loadDualEncoder(dir), /invalid config: image_size: /);
  writeFileSync(join(dir, 'dual.json'), JSON.stringify({ image_size: 32 }));
  await assert.rejects(loadDualEncoder(dir), /missing vision\.onnx/);
});

test('dual encoder towers with the wrong output shape are named in the error', async () => {
  const dir = writeTinyDualEncoder(join(tempDir(), 'dual'));
  // A vision tower that returns per-patch features [N, 3, 32, 32] instead of [N, D].
  const { OnnxGraph } = await import('../../core/onnx-graph.js');
  const g = new OnnxGraph('hidden');
  g.input('pixel_values', ['n', 3, 32, 32]);
  g.node('Identity', ['pixel_values'], ['last_hidden_state']);
  g.output('last_hidden_state', ['n', 3, 32, 32]);
  writeFileSync(join(dir, 'vision.onnx'), g.toBytes());
  const dual = await loadDualEncoder(dir);
  try {
    const image = { data: new Uint8Array(32 * 32 * 3), width: 32, height: 32 };
    await assert.rejects(
      dual.embedImages([image]),
      /vision output "last_hidden_state" is float32 \[1, 3, 32, 32\], expected float32 \[1, D\] \(set "vision_output" in dual\.json\)/,
    );
  } finally {
    await dual.dispose();
  }
});
