import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { summariseTasks, type TaskAnalysis } from './groups.js';
import { analyzeLmmsLogs, assertLogDirectory, type DiscoveredRun } from './lmms-logs.js';
import { writeReport } from './report.js';
import { readResults, resultKey, type ResultRow } from './results.js';
import { analyzeResults } from './runner.js';

export interface AnalyzeOptions {
  /** Report folder (default `<dir>/vtc-report`). */
  out?: string;
  /** Skip writing files (library use). */
  noReport?: boolean;
}

export interface AnalyzeResult {
  tasks: TaskAnalysis[];
  runs: DiscoveredRun[];
  warnings: string[];
  /** The `--json` summary object. */
  summary: ReturnType<typeof summariseTasks>;
  reportFiles: string[];
}

/**
 * `vtc eval analyze`: groups and scores lmms-eval logs and writes the report.
 *
 * @example
 * const { summary } = await analyzeLogs('logs/qwen2-vl', { out: 'report' });
 * summary.tasks.chartqa; // { n_correct_uncompressed, ratios: { '2': { group_a, group_b, methods } } }
 */
export async function analyzeLogs(dir: string, options: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const resultFiles = await findResultFiles(dir);
  const { tasks, runs, warnings } =
    resultFiles.length > 0 ? await analyzeResultFiles(resultFiles) : await analyzeLmmsLogs(dir);
  const reportFiles = options.noReport
    ? []
    : await writeReport(options.out ?? join(dir, 'vtc-report'), {
        title: 'VTC-Bench analysis',
        source: dir,
        tasks,
        warnings,
        meta:
          resultFiles.length > 0
            ? { results: resultFiles.join(', ') }
            : { runs: runs.map((r) => `${r.folder} → ${r.method} K=${r.k}`).join('; ') },
      });
  return { tasks, runs, warnings, summary: summariseTasks(tasks), reportFiles };
}

/** `results*.jsonl` files written by `vtc eval run` (e.g. shard files copied together) at the top of `dir`. */
async function findResultFiles(dir: string): Promise<string[]> {
  await assertLogDirectory(dir);
  return (await readdir(dir))
    .filter((name) => /^results.*\.jsonl$/.test(name))
    .sort()
    .map((name) => join(dir, name));
}

/**
 * Analyses `vtc eval run` result files (merged, de-duplicated): one task per
 * dataset, or per dataset@model when several models were run.
 */
async function analyzeResultFiles(
  files: string[],
): Promise<{ tasks: TaskAnalysis[]; runs: DiscoveredRun[]; warnings: string[] }> {
  const rows = new Map<string, ResultRow>();
  for (const file of files)
    for (const row of (await readResults(file)).rows) if (!rows.has(resultKey(row))) rows.set(resultKey(row), row);
  const all = [...rows.values()];
  const pairs = [...new Set(all.map((r) => JSON.stringify([r.dataset, r.model])))]
    .map((p) => JSON.parse(p) as [string, string])
    .sort();
  const models = new Set(pairs.map(([, model]) => model));
  const tasks = pairs.map(([dataset, model]) => {
    const analysis = analyzeResults(all, dataset, model);
    return models.size > 1 ? { ...analysis, task: `${dataset}@${model}` } : analysis;
  });
  return { tasks, runs: [], warnings: tasks.flatMap((t) => t.warnings) };
}
