import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeLogs } from '../eval/analyze.js';
import { loadDataset } from '../eval/datasets.js';
import { getMethod } from '../eval/methods.js';
import { createOcrModel } from '../eval/models.js';
import { ResultsStore, type ResultRow } from '../eval/results.js';
import { samplesRoot } from '../samples/paths.js';
import { measure, type Benchmark } from './harness.js';

/**
 * Evaluation throughput: analysing lmms-eval logs (groups + report with
 * charts), the results cache (append + fsync per row), and the offline OCR
 * reader on one benchmark image, uncompressed and downsampled.
 */

/** Six runs × `docs` ChartQA-style records (uncompressed, downsample ×2/×3, two methods ×2, one ×3). */
function writeSyntheticLogs(dir: string, docs: number): void {
  const runs: [string, (i: number) => boolean][] = [
    ['NATIVE_IR1', (i) => i % 10 !== 0],
    ['NATIVE_IR2', (i) => i % 4 !== 0],
    ['NATIVE_IR3', (i) => i % 3 === 0],
    ['fastv_IR1_RR0.75', (i) => i % 5 !== 0],
    ['dart_IR1_RR0.75', (i) => i % 7 !== 0],
    ['dart_IR1_RR0.8889', (i) => i % 2 === 0],
  ];
  for (const [folder, right] of runs) {
    mkdirSync(join(dir, folder, 'model'), { recursive: true });
    const lines = Array.from({ length: docs }, (_, i) =>
      JSON.stringify({
        doc_id: i,
        doc: { question: `q${i}`, answer: String(i % 97) },
        target: String(i % 97),
        filtered_resps: [right(i) ? String(i % 97) : 'x'],
        relaxed_overall: right(i) ? 1 : 0,
      }),
    );
    writeFileSync(join(dir, folder, 'model', `20250101_000000_samples_chartqa.jsonl`), `${lines.join('\n')}\n`);
  }
}

export const evalBenchmark: Benchmark = {
  description: 'lmms-eval log analysis + report, results cache appends, offline OCR reader per answer',
  async run({ runs, log }) {
    const dir = mkdtempSync(join(tmpdir(), 'vtc-bench-eval-'));
    try {
      const docs = 5000;
      writeSyntheticLogs(join(dir, 'logs'), docs);
      const analyze = await measure(`analyze 6 runs × ${docs} docs + report (CSV, JSON, MD, 2 PNG)`, runs, () =>
        analyzeLogs(join(dir, 'logs'), { out: join(dir, 'report') }),
      );
      analyze.extra = { 'records/s': Math.round((6 * docs) / (analyze.medianMs / 1000)) };
      log(`analyze: ${analyze.medianMs.toFixed(1)} ms`);

      const rowsPerRun = 200;
      let round = 0;
      const cache = await measure(`results cache: ${rowsPerRun} appends (fsync each)`, runs, async () => {
        const store = await ResultsStore.open(join(dir, `results-${round++}.jsonl`));
        for (let i = 0; i < rowsPerRun; i++) {
          const row: ResultRow = {
            dataset: 'd',
            sample: String(i),
            model: 'm',
            method: 'downsample',
            ratio: 2,
            question: 'q',
            answer: 'a',
            prediction: 'a',
            metric: 'exact',
            score: 1,
            correct: true,
            pixels: 1,
            tokens: 0,
            ms: 1,
            at: '2026-01-01T00:00:00.000Z',
          };
          await store.append(row);
        }
        await store.close();
      });
      cache.extra = { 'rows/s': Math.round(rowsPerRun / (cache.medianMs / 1000)) };
      log(`cache: ${cache.medianMs.toFixed(1)} ms`);

      const dataset = await loadDataset(join(samplesRoot, 'bench', 'bench.jsonl'));
      const sample = dataset.samples.find((s) => s.id === 'receipt-2')!;
      const model = await createOcrModel({ workers: 1 });
      const results = [analyze, cache];
      try {
        for (const k of [1, 4]) {
          const input = await getMethod('downsample').prepare(sample, k, {});
          const r = await measure(
            `ocr reader, receipt ${input.images[0]!.width}×${input.images[0]!.height} (downsample K=${k})`,
            Math.min(runs, 5),
            () => model.answer(sample, input),
          );
          log(`ocr K=${k}: ${r.medianMs.toFixed(1)} ms`);
          results.push(r);
        }
      } finally {
        await model.close();
      }
      return results;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
