import { ensureDir, writeFileAtomic } from '../io/write.js';
import { join } from 'node:path';
import { barChart, lineChart, paletteColor } from './charts.js';
import { BASELINE_METHOD, type TaskAnalysis } from './groups.js';

/**
 * Writes a VTC-Bench report: summary.csv (one row per task × K × method),
 * report.json (everything), report.md (tables + charts) and two PNG charts per
 * task (accuracy vs reduction per method; Group A vs Group B accuracy).
 */

export interface ReportInput {
  title: string;
  /** What was analysed (a log folder, a dataset + model), shown in the Markdown. */
  source: string;
  tasks: TaskAnalysis[];
  warnings: string[];
  /** Extra facts for report.json / the Markdown header (model, dataset, timing…). */
  meta?: Record<string, unknown>;
}

export interface CsvRow {
  task: string;
  k: number;
  kept: number;
  reduction_pct: number;
  method: string;
  group_a: number;
  group_b: number;
  correct_a: number;
  correct_b: number;
  acc_a: number | null;
  acc_b: number | null;
  accuracy: number | null;
  retention: number | null;
}

/** One row per task × K × method, the downsample baseline first (acc_a is 0 and acc_b 100 by construction). */
export function reportRows(tasks: TaskAnalysis[]): CsvRow[] {
  const rows: CsvRow[] = [];
  for (const task of tasks) {
    for (const ratio of Object.values(task.ratios)) {
      const base = {
        task: task.task,
        k: ratio.k,
        kept: ratio.kept,
        reduction_pct: ratio.reduction_pct,
        group_a: ratio.group_a,
        group_b: ratio.group_b,
      };
      rows.push({
        ...base,
        method: BASELINE_METHOD,
        correct_a: 0,
        correct_b: ratio.group_b,
        acc_a: ratio.group_a === 0 ? null : 0,
        acc_b: ratio.group_b === 0 ? null : 100,
        accuracy: ratio.downsample.accuracy,
        retention: ratio.downsample.retention,
      });
      for (const [method, m] of Object.entries(ratio.methods)) {
        rows.push({
          ...base,
          method,
          correct_a: m.correct_a,
          correct_b: m.correct_b,
          acc_a: m.acc_a,
          acc_b: m.acc_b,
          accuracy: m.accuracy,
          retention: m.retention,
        });
      }
    }
  }
  return rows;
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV text with a header row (null → empty cell, full precision numbers). */
export function toCsv(rows: CsvRow[]): string {
  const header: (keyof CsvRow)[] = [
    'task',
    'k',
    'kept',
    'reduction_pct',
    'method',
    'group_a',
    'group_b',
    'correct_a',
    'correct_b',
    'acc_a',
    'acc_b',
    'accuracy',
    'retention',
  ];
  return [header.join(','), ...rows.map((r) => header.map((h) => csvCell(r[h])).join(','))].join('\n') + '\n';
}

function pct(value: number | null, digits = 1): string {
  return value === null ? '—' : value.toFixed(digits);
}

function safeName(task: string): string {
  return task.replace(/[^A-Za-z0-9_.-]+/g, '_');
}

function methodsOf(task: TaskAnalysis): string[] {
  return [...new Set(Object.values(task.ratios).flatMap((r) => Object.keys(r.methods)))].sort();
}

function share(count: number, total: number): number | null {
  return total === 0 ? null : (100 * count) / total;
}

/** PNG bytes of the two charts for one task. */
export function taskCharts(task: TaskAnalysis): { accuracy: Buffer; groups: Buffer } {
  const ratios = Object.values(task.ratios);
  const methods = [BASELINE_METHOD, ...methodsOf(task)];
  const categories = [
    'K=1 (0%)',
    ...ratios.map((r) => `K=${r.k} (${r.reduction_pct.toFixed(r.reduction_pct % 1 === 0 ? 0 : 1)}%)`),
  ];
  const accuracy = lineChart({
    title: `${task.task}: accuracy vs reduction`,
    xLabel: 'downsample factor K (visual tokens removed)',
    yLabel: 'accuracy (%)',
    categories,
    series: methods.map((method, i) => ({
      name: method,
      color: paletteColor(i),
      secondary: method === BASELINE_METHOD,
      values: [
        task.accuracy_uncompressed,
        ...ratios.map((r) =>
          method === BASELINE_METHOD ? r.downsample.accuracy : (r.methods[method]?.accuracy ?? null),
        ),
      ],
    })),
  });
  const others = methodsOf(task);
  const groupCategories = ratios.map((r) => `K=${r.k} (${r.group_a} / ${r.group_b})`);
  // With only the baseline there is nothing to score on A and B: show how the groups split instead.
  const groups =
    others.length > 0
      ? barChart({
          title: `${task.task}: accuracy on Group A (difficult) vs Group B (simple)`,
          xLabel: 'downsample factor K (group sizes A / B)',
          yLabel: 'accuracy (%)',
          categories: groupCategories,
          series: others.flatMap((method, i) => [
            {
              name: `${method} A`,
              color: paletteColor(i + 1),
              values: ratios.map((r) => r.methods[method]?.acc_a ?? null),
            },
            {
              name: `${method} B`,
              color: paletteColor(i + 1),
              secondary: true,
              values: ratios.map((r) => r.methods[method]?.acc_b ?? null),
            },
          ]),
        })
      : barChart({
          title: `${task.task}: Group A (difficult) vs Group B (simple), % of the ${task.n_correct_uncompressed} samples right uncompressed`,
          xLabel: 'downsample factor K (group sizes A / B)',
          yLabel: 'share of samples (%)',
          categories: groupCategories,
          series: [
            {
              name: 'Group A (downsampled wrong)',
              color: paletteColor(1),
              values: ratios.map((r) => share(r.group_a, task.n_correct_uncompressed)),
            },
            {
              name: 'Group B (downsampled right)',
              color: paletteColor(1),
              secondary: true,
              values: ratios.map((r) => share(r.group_b, task.n_correct_uncompressed)),
            },
          ],
        });
  return { accuracy, groups };
}

/** The Markdown report (tables per task; charts referenced by file name). */
export function toMarkdown(
  input: ReportInput,
  chartFiles: Record<string, { accuracy: string; groups: string }>,
): string {
  const lines: string[] = [`# ${input.title}`, '', `Source: ${input.source}`, ''];
  for (const [key, value] of Object.entries(input.meta ?? {}))
    lines.push(`- ${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  if (input.meta && Object.keys(input.meta).length) lines.push('');
  lines.push(
    'Samples the uncompressed model answers correctly are split at each downsample factor K (budget 1/K²) into',
    'Group A (difficult: the downsampled model fails) and Group B (simple: it succeeds). Accuracies in %;',
    'a method missing an answer counts as wrong; — marks an empty group. Retention = accuracy / uncompressed accuracy.',
    '',
  );
  for (const task of input.tasks) {
    lines.push(`## ${task.task}`, '');
    lines.push(
      `Uncompressed: ${task.n_correct_uncompressed} / ${task.n_uncompressed} correct (${pct(task.accuracy_uncompressed, 2)}%).`,
      '',
    );
    lines.push(
      '| K | kept | reduction | method | Group A (n) | acc A | Group B (n) | acc B | accuracy | retention |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const row of reportRows([task])) {
      lines.push(
        `| ${row.k} | ${row.kept.toFixed(4)} | ${row.reduction_pct.toFixed(2)}% | ${row.method} | ${row.group_a} | ${pct(row.acc_a)} | ${row.group_b} | ${pct(row.acc_b)} | ${pct(row.accuracy)} | ${pct(row.retention)} |`,
      );
    }
    const charts = chartFiles[task.task];
    if (charts)
      lines.push(
        '',
        `![${task.task} accuracy vs reduction](${charts.accuracy})`,
        '',
        `![${task.task} group A vs B](${charts.groups})`,
      );
    lines.push('');
  }
  if (input.warnings.length) {
    lines.push('## Warnings', '');
    for (const w of input.warnings) lines.push(`- ${w}`);
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * Writes the whole report into `outDir` and returns the paths written.
 *
 * @example
 * const files = await writeReport('report', { title: 'VTC-Bench', source: 'logs/', tasks, warnings: [] });
 */
export async function writeReport(outDir: string, input: ReportInput): Promise<string[]> {
  await ensureDir(outDir);
  const written: string[] = [];
  const put = async (name: string, data: string | Buffer) => {
    const path = join(outDir, name);
    await writeFileAtomic(path, data);
    written.push(path);
  };
  const chartFiles: Record<string, { accuracy: string; groups: string }> = {};
  for (const task of input.tasks) {
    const charts = taskCharts(task);
    const names = {
      accuracy: `${safeName(task.task)}_accuracy_vs_reduction.png`,
      groups: `${safeName(task.task)}_groups_a_b.png`,
    };
    await put(names.accuracy, charts.accuracy);
    await put(names.groups, charts.groups);
    chartFiles[task.task] = names;
  }
  await put('summary.csv', toCsv(reportRows(input.tasks)));
  await put(
    'report.json',
    `${JSON.stringify({ title: input.title, source: input.source, meta: input.meta ?? {}, tasks: input.tasks, warnings: input.warnings }, null, 2)}\n`,
  );
  await put('report.md', toMarkdown(input, chartFiles));
  return written;
}
