import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyzeLogs } from '../../eval/analyze.js';
import { analyzeTask, factorForKept } from '../../eval/groups.js';
import { isCorrect, pythonStr } from '../../eval/lmms-correctness.js';
import { parseRunFolderName, taskFromFileName } from '../../eval/lmms-logs.js';
import { runCli, tempDir } from '../helpers.js';

function writeJsonl(path: string, records: unknown[]): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** A ChartQA-style record: relaxed_overall decides correctness. */
const chart = (id: number | string, ok: boolean) => ({
  doc_id: id,
  doc: { question: `q${id}`, answer: '7' },
  target: '7',
  filtered_resps: [ok ? '7' : '9'],
  relaxed_overall: ok ? 1.0 : 0.0,
});

/**
 * Hand-built lmms-eval logs. chartqa, 10 docs (0–9):
 *   NATIVE_IR1 correct 0–7 (8 of 10)           → n_correct_uncompressed 8, accuracy 80%
 *   NATIVE_IR2 correct 0–3, wrong 4–6, 7 missing → A = {4,5,6} (3), B = {0,1,2,3} (4)
 *   fastv RR0.75 (K=2) correct 0,1,4,8; 5 missing → acc_a 1/3, acc_b 2/4; accuracy 4/10 = 40%, retention 50%
 *   NATIVE_IR3 correct 0 only                   → A = {1..7} (7), B = {0} (1)
 *   fastv RR0.8889 (K=3) all correct            → 100 / 100
 *   dart RR0.9375 (K=4): no NATIVE_IR4          → warning, left out
 * mme, 4 docs: perception/cognition scores; NATIVE_IR2 answers all right → Group A empty → acc_a null.
 * my_vqa (fallback rule): answer substring of str(filtered_resps).
 */
function buildLogs(root: string): void {
  const model = 'qwen2_vl';
  // Older file: all wrong; the newer timestamp must win.
  writeJsonl(
    join(root, 'NATIVE_IR1', model, '20250101_000000_samples_chartqa.jsonl'),
    Array.from({ length: 10 }, (_, i) => chart(i, false)),
  );
  writeJsonl(
    join(root, 'NATIVE_IR1', model, '20250102_101010_samples_chartqa.jsonl'),
    Array.from({ length: 10 }, (_, i) => chart(i, i <= 7)),
  );
  writeJsonl(
    join(root, 'NATIVE_IR2', model, '20250102_111111_samples_chartqa.jsonl'),
    [0, 1, 2, 3, 4, 5, 6, 8, 9].map((i) => chart(String(i), i <= 3)),
  );
  writeJsonl(
    join(root, 'fastv_IR1_RR0.75', model, '20250103_000000_samples_chartqa.jsonl'),
    [0, 1, 2, 3, 4, 6, 7, 8, 9].map((i) => chart(i, [0, 1, 4, 8].includes(i))),
  );
  writeJsonl(
    join(root, 'NATIVE_IR3', 'samples_chartqa.jsonl'),
    Array.from({ length: 10 }, (_, i) => chart(i, i === 0)),
  );
  writeJsonl(
    join(root, 'fastv_IR1_RR0.8889', 'samples_chartqa.jsonl'),
    Array.from({ length: 10 }, (_, i) => chart(i, true)),
  );
  writeJsonl(
    join(root, 'dart_IR1_RR0.9375', 'samples_chartqa.jsonl'),
    Array.from({ length: 10 }, (_, i) => chart(i, true)),
  );

  const mme = (id: number, score: number, kind: 'p' | 'c') => ({
    doc_id: id,
    doc: { answer: 'Yes' },
    filtered_resps: ['No'],
    ...(kind === 'p'
      ? { mme_percetion_score: { question_id: id, category: 'OCR', score } }
      : { mme_cognition_score: { question_id: id, category: 'code', score } }),
  });
  writeJsonl(join(root, 'NATIVE_IR1', model, '20250102_101010_samples_mme.jsonl'), [
    mme(0, 1, 'p'),
    mme(1, 1, 'c'),
    mme(2, 0, 'p'),
    mme(3, 1, 'p'),
  ]);
  writeJsonl(join(root, 'NATIVE_IR2', model, '20250102_111111_samples_mme.jsonl'), [
    mme(0, 1, 'p'),
    mme(1, 1, 'c'),
    mme(2, 1, 'p'),
    mme(3, 1, 'p'),
  ]);
  writeJsonl(join(root, 'fastv_IR1_RR0.75', model, 'x_samples_mme.jsonl'), [
    mme(0, 0, 'p'),
    mme(1, 1, 'c'),
    mme(3, 1, 'p'),
  ]);

  const vqa = (id: number, resp: string, answer: string) => ({ doc_id: id, doc: { answer }, filtered_resps: [resp] });
  writeJsonl(join(root, 'NATIVE_IR1', 'samples_my_vqa.jsonl'), [
    vqa(0, 'The answer is Paris.', 'paris'),
    vqa(1, 'Lyon', 'Paris'),
    vqa(2, '42', '42'),
  ]);
  writeJsonl(join(root, 'NATIVE_IR2', 'samples_my_vqa.jsonl'), [
    vqa(0, 'London', 'paris'),
    vqa(1, 'Paris', 'Paris'),
    vqa(2, '42', '42'),
  ]);
  writeJsonl(join(root, 'fastv_IR1_RR0.75', 'samples_my_vqa.jsonl'), [vqa(0, 'paris', 'paris'), vqa(2, '4', '42')]);
  // Not a run folder: ignored with a warning.
  writeJsonl(join(root, 'scratch', 'samples_chartqa.jsonl'), [chart(0, true)]);
}

const EXPECTED_SUMMARY = {
  tasks: {
    chartqa: {
      n_correct_uncompressed: 8,
      ratios: {
        '2': { group_a: 3, group_b: 4, methods: { fastv: { acc_a: 33.33333333333333, acc_b: 50 } } },
        '3': { group_a: 7, group_b: 1, methods: { fastv: { acc_a: 100, acc_b: 100 } } },
      },
    },
    mme: {
      n_correct_uncompressed: 3,
      ratios: { '2': { group_a: 0, group_b: 3, methods: { fastv: { acc_a: null, acc_b: 66.66666666666666 } } } },
    },
    my_vqa: {
      n_correct_uncompressed: 2,
      ratios: { '2': { group_a: 1, group_b: 1, methods: { fastv: { acc_a: 100, acc_b: 0 } } } },
    },
  },
};

describe('lmms-eval correctness rules', () => {
  it('applies each task rule', () => {
    assert.equal(isCorrect({ doc_id: 0, relaxed_overall: 1 }, 'chartqa').correct, true);
    assert.equal(isCorrect({ doc_id: 0, relaxed_overall: 0.0 }, 'chartqa_lite').correct, false);
    assert.equal(isCorrect({ doc_id: 0, pope_accuracy: { score: 1 } }, 'pope_pop').correct, true);
    assert.equal(isCorrect({ doc_id: 0, pope_accuracy: { score: 0.4 } }, 'pope').correct, false);
    assert.equal(isCorrect({ doc_id: 0, ocrbench_accuracy: { score: 0.5 } }, 'ocrbench').correct, true);
    assert.equal(isCorrect({ doc_id: 0, exact_match: 0 }, 'gqa').correct, false);
    assert.equal(isCorrect({ doc_id: 0, exact_match: 1.0 }, 'gqa').correct, true);
    assert.deepEqual(isCorrect({ doc_id: 0, mme_percetion_score: { score: 1 } }, 'mme'), {
      correct: true,
      rule: 'mme.perception',
    });
    assert.deepEqual(isCorrect({ doc_id: 0, mme_cognition_score: { score: 0 } }, 'mme'), {
      correct: false,
      rule: 'mme.cognition',
    });
    assert.equal(isCorrect({ doc_id: 0, average: { score: 1, l2_category: 'x' } }, 'mmstar').correct, true);
    assert.equal(
      isCorrect({ doc_id: 0, gpt_eval_score: { answer: 'B.', prediction: ' b' } }, 'mmbench_en_dev').correct,
      true,
    );
    assert.equal(
      isCorrect({ doc_id: 0, gpt_eval_score: { answer: 'B', prediction: 'C' } }, 'mmbench_en_dev').correct,
      false,
    );
  });
  it('falls back to the substring rule when the task metric is missing', () => {
    assert.deepEqual(isCorrect({ doc_id: 0, doc: { answer: 'U.S.A' }, filtered_resps: ['the usa'] }, 'chartqa'), {
      correct: true,
      rule: 'fallback.substring',
    });
    assert.equal(isCorrect({ doc_id: 0, doc: { answer: 'cat' }, filtered_resps: ['dog'] }, 'anything').correct, false);
    // Empty answers never match (VTC-Bench's '' in s would say yes).
    assert.equal(isCorrect({ doc_id: 0, doc: { answer: '' }, filtered_resps: ['dog'] }, 'anything').correct, false);
    assert.equal(isCorrect({ doc_id: 0, target: 'dog', filtered_resps: ['Dog.'] }, 'anything').correct, true);
  });
  it('stringifies like Python str()', () => {
    assert.equal(pythonStr(['a', 1.5, 2, true, null]), "['a', 1.5, 2, True, None]");
    assert.equal(pythonStr(["it's"]), `["it's"]`);
    assert.equal(pythonStr('plain'), 'plain');
    assert.equal(pythonStr({ a: [1] }), "{'a': [1]}");
  });
});

describe('run folder names', () => {
  it('parses VTC-Bench folder names', () => {
    assert.deepEqual(parseRunFolderName('fastv_IR1_RR0.75'), { method: 'fastv', k: 2 });
    assert.deepEqual(parseRunFolderName('prumerge+_IR1_RR0.8889'), { method: 'prumerge+', k: 3 });
    assert.deepEqual(parseRunFolderName('DART_IR1_RR0.99'), { method: 'DART', k: 10 });
    assert.deepEqual(parseRunFolderName('NATIVE_IR1'), { method: 'downsample', k: 1 });
    assert.deepEqual(parseRunFolderName('native_ir5'), { method: 'downsample', k: 5 });
    assert.equal(parseRunFolderName('fastv'), undefined);
    assert.equal(factorForKept(0.0625), 4);
    assert.equal(factorForKept(0.04), 5);
    assert.ok(Math.abs(factorForKept(0.5) - Math.SQRT2) < 1e-12);
  });
  it('finds the task in a samples file name', () => {
    assert.equal(taskFromFileName('20250102_101010_samples_chartqa.jsonl'), 'chartqa');
    assert.equal(taskFromFileName('samples_mmbench_en_dev.jsonl'), 'mmbench_en_dev');
    assert.equal(taskFromFileName('results.json'), undefined);
  });
});

describe('analyzeTask', () => {
  it('rejects a task without an uncompressed run', () => {
    assert.throws(() => analyzeTask('t', [{ method: 'downsample', k: 2, correct: new Map() }]), /no uncompressed run/);
  });
});

describe('vtc eval analyze', () => {
  it('reproduces hand-computed groups and accuracies (library)', async () => {
    const root = tempDir('vtc-analyze-');
    buildLogs(root);
    const result = await analyzeLogs(root, { out: join(root, 'rep') });
    assert.deepEqual(result.summary, EXPECTED_SUMMARY);
    const chartqa = result.tasks.find((t) => t.task === 'chartqa')!;
    assert.equal(chartqa.accuracy_uncompressed, 80);
    assert.equal(chartqa.ratios['2']!.methods.fastv!.accuracy, 40);
    assert.equal(chartqa.ratios['2']!.methods.fastv!.retention, 50);
    assert.equal(chartqa.ratios['2']!.downsample.accuracy, 40); // 0,1,2,3 of 10
    assert.equal(chartqa.ratios['3']!.kept, 1 / 9);
    assert.ok(result.warnings.some((w) => /dart at K=4 has no downsample run/.test(w)));
    assert.ok(
      result.warnings.some((w) => /1 uncompressed-correct docs are missing from the downsample K=2 run/.test(w)),
    );
    assert.ok(result.warnings.some((w) => /^scratch: name is not/.test(w)));

    const csv = readFileSync(join(root, 'rep', 'summary.csv'), 'utf8')
      .trim()
      .split('\n');
    assert.equal(
      csv[0],
      'task,k,kept,reduction_pct,method,group_a,group_b,correct_a,correct_b,acc_a,acc_b,accuracy,retention',
    );
    assert.ok(csv.includes(`chartqa,2,0.25,75,fastv,3,4,1,2,33.33333333333333,50,40,50`));
    assert.ok(csv.includes(`mme,2,0.25,75,fastv,0,3,0,2,,66.66666666666666,50,${(100 * 50) / 75}`));
    const md = readFileSync(join(root, 'rep', 'report.md'), 'utf8');
    assert.match(md, /\| 2 \| 0\.2500 \| 75\.00% \| fastv \| 3 \| 33\.3 \| 4 \| 50\.0 \| 40\.0 \| 50\.0 \|/);
    assert.match(md, /!\[chartqa accuracy vs reduction\]\(chartqa_accuracy_vs_reduction\.png\)/);
    for (const png of ['chartqa_accuracy_vs_reduction.png', 'chartqa_groups_a_b.png', 'mme_groups_a_b.png']) {
      const bytes = readFileSync(join(root, 'rep', png));
      assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], png);
      assert.equal(bytes.readUInt32BE(16), 900); // IHDR width
    }
    const json = JSON.parse(readFileSync(join(root, 'rep', 'report.json'), 'utf8'));
    assert.equal(json.tasks[0].ratios['2'].methods.fastv.correct_a, 1);
  });

  it('prints the exact --json object from the CLI', async () => {
    const root = tempDir('vtc-analyze-cli-');
    buildLogs(root);
    const { code, stdout, stderr } = await runCli(['eval', 'analyze', root, '--json']);
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), EXPECTED_SUMMARY);
    assert.ok(existsSync(join(root, 'vtc-report', 'report.md')));
    assert.match(stderr, /vtc: warning: task chartqa: dart at K=4/);
  });

  it('scores POPE, MMBench and OCRBench records as lmms-eval logs them; an empty Group B is null', async () => {
    const root = tempDir('vtc-analyze-rules-');
    const pope = (id: number | string, score: number) => ({
      doc_id: id,
      doc: { answer: 'yes' },
      filtered_resps: ['no'],
      pope_accuracy: { question_id: id, score, prediction: 'no', ground_truth: 'yes' },
    });
    // Uncompressed right on 0–6 (7 of 8); K=2 (string ids) right on 0–2, wrong on 3–5, 6 missing → A = {3,4,5}, B = {0,1,2}.
    writeJsonl(
      join(root, 'NATIVE_IR1', 'm', '20240601_101010_samples_pope.jsonl'),
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => pope(i, i <= 6 ? 1 : 0)),
    );
    writeJsonl(
      join(root, 'NATIVE_IR2', 'm', '20240601_111111_samples_pope.jsonl'),
      [0, 1, 2, 3, 4, 5, 7].map((i) => pope(String(i), i <= 2 ? 1 : 0)),
    );
    // tome: right on 0, 3, 4; 2 and 5 missing (wrong) → acc_a 2/3, acc_b 1/3.
    writeJsonl(
      join(root, 'tome_IR1_RR0.75', 'm', '20240601_121212_samples_pope.jsonl'),
      [0, 1, 3, 4, 6, 7].map((i) => pope(i, [0, 3, 4].includes(i) ? 1 : 0)),
    );
    // MMBench: answer letter vs raw prediction after dropping periods, trimming, lower-casing.
    const mmb = (id: number, answer: string, prediction: string) => ({
      doc_id: id,
      doc: { answer },
      filtered_resps: [prediction],
      gpt_eval_score: { index: id, answer, prediction },
    });
    writeJsonl(join(root, 'NATIVE_IR1', 'm', 'samples_mmbench_en_dev.jsonl'), [
      mmb(0, 'A', 'A'),
      mmb(1, 'B', 'B.'),
      mmb(2, 'C', ' c'),
      mmb(3, 'D', 'A'),
    ]);
    writeJsonl(join(root, 'NATIVE_IR4', 'm', 'samples_mmbench_en_dev.jsonl'), [
      mmb(0, 'A', 'A'),
      mmb(1, 'B', 'The answer is B'),
      mmb(2, 'C', 'C'),
      mmb(3, 'D', 'D'),
    ]);
    writeJsonl(join(root, 'vz_IR1_RR0.9375', 'm', 'samples_mmbench_en_dev.jsonl'), [
      mmb(0, 'A', 'B'),
      mmb(1, 'B', 'b'),
      mmb(2, 'C', 'C'),
    ]);
    // OCRBench: the downsampled run gets nothing right → Group B empty → acc_b null.
    const ocr = (id: number | string, score: number) => ({
      doc_id: id,
      ocrbench_accuracy: { question_type: 'Regular Text Recognition', score, prediction: 'x', ground_truth: ['y'] },
    });
    writeJsonl(join(root, 'NATIVE_IR1', 'samples_ocrbench.jsonl'), [ocr(0, 1), ocr(1, 1), ocr(2, 0)]);
    writeJsonl(join(root, 'NATIVE_IR2', 'samples_ocrbench.jsonl'), [ocr(0, 0), ocr(1, 0), ocr(2, 0)]);
    writeJsonl(join(root, 'tome_IR1_RR0.75', 'samples_ocrbench.jsonl'), [ocr('0', 0), ocr('1', 1)]);
    const result = await analyzeLogs(root, { noReport: true });
    assert.deepEqual(result.summary, {
      tasks: {
        mmbench_en_dev: {
          n_correct_uncompressed: 3,
          ratios: { '4': { group_a: 1, group_b: 2, methods: { vz: { acc_a: 100, acc_b: 50 } } } },
        },
        ocrbench: {
          n_correct_uncompressed: 2,
          ratios: { '2': { group_a: 2, group_b: 0, methods: { tome: { acc_a: 50, acc_b: null } } } },
        },
        pope: {
          n_correct_uncompressed: 7,
          ratios: {
            '2': { group_a: 3, group_b: 3, methods: { tome: { acc_a: 66.66666666666666, acc_b: 33.33333333333333 } } },
          },
        },
      },
    });
    const pope2 = result.tasks.find((t) => t.task === 'pope')!.ratios['2']!;
    assert.equal(pope2.downsample.accuracy, 37.5); // 3 of the 8 uncompressed docs
    assert.equal(pope2.methods.tome!.retention, (100 * 37.5) / 87.5);
  });

  it('reads a manifest.json instead of folder names', async () => {
    const root = tempDir('vtc-analyze-manifest-');
    writeJsonl(
      join(root, 'full', 'samples_gqa.jsonl'),
      [0, 1, 2, 3].map((i) => ({ doc_id: i, exact_match: 1 })),
    );
    writeJsonl(
      join(root, 'small', 'samples_gqa.jsonl'),
      [0, 1, 2, 3].map((i) => ({ doc_id: i, exact_match: i < 2 ? 1 : 0 })),
    );
    writeJsonl(
      join(root, 'mine', 'samples_gqa.jsonl'),
      [0, 1, 2, 3].map((i) => ({ doc_id: i, exact_match: i === 3 ? 1 : 0 })),
    );
    writeFileSync(
      join(root, 'manifest.json'),
      JSON.stringify({
        full: { method: 'downsample', ratio: 1 },
        small: { method: 'downsample', ratio: 2 },
        mine: { method: 'cluster', ratio: 0.25 },
      }),
    );
    const { summary } = await analyzeLogs(root, { noReport: true });
    assert.deepEqual(summary, {
      tasks: {
        gqa: {
          n_correct_uncompressed: 4,
          ratios: { '2': { group_a: 2, group_b: 2, methods: { cluster: { acc_a: 50, acc_b: 0 } } } },
        },
      },
    });
  });

  it("reads VTC-Bench's reorganised Data/<model>/ layout", async () => {
    const root = tempDir('vtc-analyze-data-');
    const gqa = (ok: (i: number) => boolean) => [0, 1, 2, 3, 4].map((i) => ({ doc_id: i, exact_match: ok(i) ? 1 : 0 }));
    writeJsonl(
      join(root, 'Downsample', '1', 'gqa.jsonl'),
      gqa((i) => i < 4),
    ); // 4 right
    writeJsonl(
      join(root, 'Downsample', '2', 'gqa.jsonl'),
      gqa((i) => i < 1),
    ); // A = {1,2,3}, B = {0}
    writeJsonl(
      join(root, 'FastV', '0.25', 'gqa.jsonl'),
      gqa((i) => i === 0 || i === 2),
    );
    writeJsonl(
      join(root, 'DART', '0.1111', 'gqa.jsonl'),
      gqa(() => true),
    );
    const result = await analyzeLogs(root, { noReport: true });
    assert.deepEqual(result.summary, {
      tasks: {
        gqa: {
          n_correct_uncompressed: 4,
          ratios: { '2': { group_a: 3, group_b: 1, methods: { FastV: { acc_a: 33.33333333333333, acc_b: 100 } } } },
        },
      },
    });
    assert.ok(result.warnings.some((w) => /DART at K=3 has no downsample run/.test(w)));
  });

  it('fails clearly on bad input', async () => {
    const root = tempDir('vtc-analyze-bad-');
    writeJsonl(join(root, 'NATIVE_IR1', 'samples_gqa.jsonl'), [{ doc_id: 0, exact_match: 1 }]);
    writeFileSync(
      join(root, 'NATIVE_IR1', 'samples_gqa.jsonl'),
      '{"doc_id": 0, "exact_match": 1}\n{"doc_id": 1, "exa\n',
    );
    let r = await runCli(['eval', 'analyze', root]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^vtc: error: .*NATIVE_IR1\/samples_gqa\.jsonl:2: not valid JSON/);
    assert.equal(r.stderr.trim().split('\n').length, 1);

    writeFileSync(join(root, 'NATIVE_IR1', 'samples_gqa.jsonl'), '{"exact_match": 1}\n');
    r = await runCli(['eval', 'analyze', root]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /samples_gqa\.jsonl:1: expected doc_id as a number or string, got nothing/);

    r = await runCli(['eval', 'analyze', join(root, 'nope')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /does not exist/);

    writeFileSync(join(root, 'manifest.json'), '{"NATIVE_IR1": {"method": "downsample", "ratio": -1}}');
    r = await runCli(['eval', 'analyze', root]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /manifest\.json: expected .*at NATIVE_IR1\.ratio/);
  });
});
