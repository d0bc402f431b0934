import { strict as assert } from 'node:assert';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { loadDataset, parseDelimited, parsePythonStringList } from '../../eval/datasets.js';
import { scoreAnswer } from '../../eval/scoring.js';
import { readResults, ResultsStore, type ResultRow } from '../../eval/results.js';
import { tempDir } from '../helpers.js';

async function png(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 10, b: 10 } } })
    .png()
    .toBuffer();
}

describe('datasets', () => {
  it('reads JSONL rows with image, images, text and options', async () => {
    const dir = tempDir('vtc-ds-');
    writeFileSync(join(dir, 'a.png'), await png(4, 4));
    writeFileSync(
      join(dir, 'set.jsonl'),
      [
        { id: 1, image: 'a.png', question: 'Q1?', answer: 7 },
        { id: 'two', images: ['a.png', 'a.png'], question: 'Q2?', options: ['x', 'y'], answer: 'B' },
        {},
        { id: 3, text: 'long text', question: 'Q3?', options: { A: 'p', B: 'q' }, answer: ['a', 'b'], metric: 'anls' },
      ]
        .map((r, i) => (i === 2 ? '' : JSON.stringify(r)))
        .join('\n'),
    );
    const ds = await loadDataset(join(dir, 'set.jsonl'));
    assert.equal(ds.name, 'set');
    assert.equal(ds.samples.length, 3);
    assert.deepEqual(ds.samples[0]!.images, [{ path: join(dir, 'a.png') }]);
    assert.equal(ds.samples[0]!.answer, '7');
    assert.equal(ds.samples[0]!.where, `${join(dir, 'set.jsonl')}:1`);
    assert.deepEqual(ds.samples[1]!.options, ['x', 'y']);
    assert.equal(ds.samples[1]!.images.length, 2);
    assert.equal(ds.samples[2]!.text, 'long text');
    assert.deepEqual(ds.samples[2]!.options, ['p', 'q']);
    assert.equal(ds.samples[2]!.answer, 'a|b');
    assert.equal(ds.samples[2]!.metric, 'anls');
    assert.equal(ds.samples[2]!.where.endsWith(':4'), true);
  });

  it('names the line of a bad row', async () => {
    const dir = tempDir('vtc-ds-bad-');
    const path = join(dir, 'bad.jsonl');
    writeFileSync(
      path,
      '{"id": 1, "image": "a.png", "question": "Q", "answer": "x"}\n{"id": 2, "question": "Q", "answer": "x"}\n',
    );
    await assert.rejects(
      loadDataset(path),
      (e: Error) => e.message === `${path}:2: needs one of image, images, video or text`,
    );
    writeFileSync(path, '{"id": 1, "image": "a.png", "answer": "x"}\n');
    await assert.rejects(loadDataset(path), (e: Error) => e.message.startsWith(`${path}:1: field question: `));
    writeFileSync(
      path,
      '{"id": 1, "image": "a.png", "question": "Q", "answer": "x"}\n{"id": 1, "image": "b.png", "question": "Q", "answer": "y"}\n',
    );
    await assert.rejects(
      loadDataset(path),
      (e: Error) => e.message === `${path}:2: duplicate id "1" (first at ${path}:1)`,
    );
    writeFileSync(
      path,
      '{"id": 1, "image": "a.png", "question": "Q", "options": {"A": "x", "C": "y"}, "answer": "A"}\n',
    );
    await assert.rejects(loadDataset(path), /:1: options must be lettered A, B, C… without gaps, got A, C/);
    writeFileSync(path, '{"id": 1,\n');
    await assert.rejects(loadDataset(path), /bad\.jsonl:1: not valid JSON/);
    writeFileSync(
      path,
      '{"id": 1, "text": "t", "question": "Q", "answer": "x"}\n{"id": 2, "image": "gone.png", "question": "Q", "answer": "x"}\n',
    );
    await assert.rejects(
      loadDataset(path),
      (e: Error) => e.message === `${path}:2: image file ${join(dir, 'gone.png')} not found`,
    );
    writeFileSync(path, '{"id": 1, "video": ".", "question": "Q", "answer": "x"}\n');
    await assert.rejects(loadDataset(path), (e: Error) => e.message === `${path}:1: video ${dir} is not a file`);
    await assert.rejects(loadDataset(join(dir, 'none.jsonl')), /does not exist/);
    writeFileSync(join(dir, 'x.csv'), 'a');
    await assert.rejects(
      loadDataset(join(dir, 'x.csv')),
      /expected a \.jsonl file, a VLMEvalKit \.tsv file or a folder/,
    );
  });

  it('reads a VLMEvalKit TSV with base64 images, index references, options and hints', async () => {
    const dir = tempDir('vtc-ds-tsv-');
    const b64 = (await png(6, 3)).toString('base64');
    const rows = [
      ['index', 'question', 'hint', 'A', 'B', 'C', 'answer', 'category', 'image'],
      ['10', 'Which colour?', 'nan', 'red', 'green', 'nan', 'A', 'colour', b64],
      ['11', '"Say ""hi""\tnow"', 'Look closely', 'yes', 'no', 'maybe', 'C', 'nan', '10'],
    ];
    const path = join(dir, 'MMB.tsv');
    writeFileSync(path, rows.map((r) => r.join('\t')).join('\n') + '\n');
    const ds = await loadDataset(path);
    assert.equal(ds.name, 'MMB');
    assert.deepEqual(
      ds.samples.map((s) => s.id),
      ['10', '11'],
    );
    assert.deepEqual(ds.samples[0]!.options, ['red', 'green']);
    assert.equal(ds.samples[0]!.category, 'colour');
    assert.equal(ds.samples[1]!.question, 'Look closely\nSay "hi"\tnow');
    assert.deepEqual(ds.samples[1]!.options, ['yes', 'no', 'maybe']);
    const image = ds.samples[1]!.images[0] as { bytes: Uint8Array };
    assert.equal((await sharp(image.bytes).metadata()).width, 6);

    writeFileSync(path, `${rows[0]!.join('\t')}\n10\tQ\tnan\ta\tb\tnan\tA\tx\t!!!notbase64\n`);
    await assert.rejects(loadDataset(path), /MMB\.tsv:2: image 0 is not base64/);
    writeFileSync(path, 'index\tquestion\tanswer\n1\tQ\tA\n');
    await assert.rejects(loadDataset(path), /MMB\.tsv:1: missing column "image" \(base64\) or "image_path"/);
  });

  it("reads a VQA TSV's Python list of accepted answers", async () => {
    assert.deepEqual(parsePythonStringList(`['two', "it's", '2']`), ['two', "it's", '2']);
    assert.deepEqual(parsePythonStringList(`['a\\'b', 'c',]`), ["a'b", 'c']);
    for (const text of ['two', '[]', '[1, 2]', "['a' 'b']", "['a'"])
      assert.equal(parsePythonStringList(text), undefined, text);
    const dir = tempDir('vtc-ds-vqa-');
    const b64 = (await png(4, 4)).toString('base64');
    const path = join(dir, 'DocVQA.tsv');
    writeFileSync(path, `index\timage\tquestion\tanswer\n1\t${b64}\tHow many?\t['two', '2']\n2\t1\tWhich?\tleft\n`);
    const ds = await loadDataset(path);
    assert.deepEqual(
      ds.samples.map((s) => s.answer),
      ['two|2', 'left'],
    );
    assert.equal(scoreAnswer('2', ds.samples[0]!.answer).correct, true);
  });

  it('reads a folder of images with a questions file', async () => {
    const dir = tempDir('vtc-ds-dir-');
    mkdirSync(join(dir, 'pics'));
    writeFileSync(join(dir, 'pics', 'a.png'), await png(2, 2));
    writeFileSync(
      join(dir, 'questions.csv'),
      'id,image,question,answer,options\nq1,pics/a.png,"Colour, please?",B,red|blue\n',
    );
    const ds = await loadDataset(dir);
    assert.equal(ds.samples[0]!.question, 'Colour, please?');
    assert.deepEqual(ds.samples[0]!.options, ['red', 'blue']);
    assert.deepEqual(ds.samples[0]!.images, [{ path: join(dir, 'pics', 'a.png') }]);
    writeFileSync(join(dir, 'questions.csv'), 'id,image,question,answer\nq1,pics/a.png,Q,B\nq2,pics/b.png,Q,B\n');
    await assert.rejects(
      loadDataset(dir),
      (e: Error) => e.message === `${join(dir, 'questions.csv')}:3: image file ${join(dir, 'pics', 'b.png')} not found`,
    );
    const empty = tempDir('vtc-ds-empty-');
    await assert.rejects(loadDataset(empty), /no questions file \(expected one of questions\.jsonl/);
  });

  it('splits quoted delimited text', () => {
    assert.deepEqual(parseDelimited('a\tb\n"x\ty"\t2\n', '\t'), [
      { line: 1, cells: ['a', 'b'] },
      { line: 2, cells: ['x\ty', '2'] },
    ]);
    assert.deepEqual(parseDelimited('h\n"multi\nline"\nlast', ','), [
      { line: 1, cells: ['h'] },
      { line: 2, cells: ['multi\nline'] },
      { line: 4, cells: ['last'] },
    ]);
  });
});

function row(sample: string, ratio: number, correct = true): ResultRow {
  return {
    dataset: 'd',
    sample,
    model: 'm',
    method: 'downsample',
    ratio,
    question: 'q',
    answer: 'a',
    prediction: 'a',
    metric: 'exact',
    score: correct ? 1 : 0,
    correct,
    pixels: 4,
    tokens: 0,
    ms: 1,
    at: '2026-01-01T00:00:00.000Z',
  };
}

describe('results cache', () => {
  it('appends whole lines, skips known keys and survives a torn last line', async () => {
    const dir = tempDir('vtc-res-');
    const path = join(dir, 'results.jsonl');
    const store = await ResultsStore.open(path);
    await store.append(row('1', 1));
    await store.append(row('1', 2, false));
    await store.append(row('1', 1)); // same key: ignored
    assert.equal(store.has({ dataset: 'd', sample: '1', model: 'm', method: 'downsample', ratio: 2 }), true);
    await store.close();
    assert.equal(readFileSync(path, 'utf8').trim().split('\n').length, 2);

    // A kill mid-write leaves a line without its newline.
    appendFileSync(path, JSON.stringify(row('2', 1)).slice(0, 25));
    const reopened = await ResultsStore.open(path);
    assert.equal(reopened.repairedBytes, 25);
    assert.equal(reopened.rows.length, 2);
    await reopened.append(row('2', 1));
    await reopened.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines.length, 4); // 3 rows + trailing ''
    assert.deepEqual(
      lines.slice(0, 3).map((l) => JSON.parse(l).sample),
      ['1', '1', '2'],
    );
  });

  it('rejects a corrupt line in the middle and a second writer', async () => {
    const dir = tempDir('vtc-res-bad-');
    const path = join(dir, 'results.jsonl');
    writeFileSync(path, `${JSON.stringify(row('1', 1))}\n{oops\n${JSON.stringify(row('2', 1))}\n`);
    await assert.rejects(readResults(path), (e: Error) => e.message.startsWith(`${path}:2: corrupt results line`));
    writeFileSync(path, `${JSON.stringify(row('1', 1))}\n${JSON.stringify(row('1', 1))}\n`);
    assert.equal((await readResults(path)).duplicates, 1);
    const first = await ResultsStore.open(path);
    await assert.rejects(ResultsStore.open(path), /is in use by another vtc eval run/);
    await first.close();
    // A stale lock (dead pid) is taken over.
    writeFileSync(`${path}.lock`, '999999999');
    const again = await ResultsStore.open(path);
    await again.close();
  });
});
