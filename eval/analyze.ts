import { join } from 'node:path';
import { summarizeTasks, type TaskAnalysis } from './groups.js';
import { analyzeLmmsLogs, type DiscoveredRun } from './lmms-logs.js';
import { writeReport } from './report.js';

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
  summary: ReturnType<typeof summarizeTasks>;
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
  const { tasks, runs, warnings } = await analyzeLmmsLogs(dir);
  const reportFiles = options.noReport
    ? []
    : await writeReport(options.out ?? join(dir, 'vtc-report'), {
        title: 'VTC-Bench analysis',
        source: dir,
        tasks,
        warnings,
        meta: { runs: runs.map((r) => `${r.folder} → ${r.method} K=${r.k}`).join('; ') },
      });
  return { tasks, runs, warnings, summary: summarizeTasks(tasks), reportFiles };
}
