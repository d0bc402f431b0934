import { Command } from 'commander';
import { analyzeLogs } from '../../eval/analyze.js';
import type { TaskAnalysis } from '../../eval/groups.js';
import { configureCommand, printJson } from '../run.js';

function fmt(value: number | null): string {
  return value === null ? '—' : value.toFixed(1);
}

/** A compact human table: one line per task × K × method. */
export function formatTaskTable(tasks: TaskAnalysis[]): string {
  const lines: string[] = [];
  for (const task of tasks) {
    lines.push(`${task.task}: uncompressed ${task.n_correct_uncompressed}/${task.n_uncompressed} correct (${fmt(task.accuracy_uncompressed)}%)`);
    lines.push('  K   reduction  method            A(n)  acc A   B(n)  acc B   acc    retention');
    for (const ratio of Object.values(task.ratios)) {
      const row = (method: string, accA: number | null, accB: number | null, acc: number | null, ret: number | null) =>
        `  ${String(ratio.k).padEnd(3)} ${`${ratio.reduction_pct.toFixed(2)}%`.padEnd(10)} ${method.padEnd(17)} ${String(ratio.group_a).padStart(4)}  ${fmt(accA).padStart(5)}  ${String(ratio.group_b).padStart(5)}  ${fmt(accB).padStart(5)}  ${fmt(acc).padStart(5)}  ${fmt(ret).padStart(6)}`;
      lines.push(row('downsample', ratio.group_a ? 0 : null, ratio.group_b ? 100 : null, ratio.downsample.accuracy, ratio.downsample.retention));
      for (const [method, m] of Object.entries(ratio.methods)) lines.push(row(method, m.acc_a, m.acc_b, m.accuracy, m.retention));
    }
  }
  return lines.join('\n');
}

function analyzeSubcommand(): Command {
  return configureCommand(new Command('analyze'))
    .description('analyse lmms-eval --log_samples output VTC-Bench style (Group A/B by the downsample baseline) and write a report')
    .argument('<dir>', 'folder of run folders: NATIVE_IR<k>/, <method>_IR<k>_RR<r>/ (or a manifest.json), each with [<timestamp>_]samples_<task>.jsonl')
    .option('--out <dir>', 'report folder (default <dir>/vtc-report): summary.csv, report.json, report.md, PNG charts')
    .option('--json', 'print one JSON object {tasks: {<task>: {n_correct_uncompressed, ratios: {<K>: {group_a, group_b, methods: {<m>: {acc_a, acc_b}}}}}}} (accuracies in %, unrounded; null for an empty group)')
    .addHelpText(
      'after',
      `
Examples:
  vtc eval analyze logs/qwen2-vl-7b
  vtc eval analyze logs/qwen2-vl-7b --out report --json

Folder names: NATIVE_IR1 is the uncompressed run, NATIVE_IR<k> downsampling by k
(budget 1/k²), <method>_IR1_RR<r> a method removing the fraction r of the visual
tokens (RR0.75 ↔ K=2, RR0.8889 ↔ K=3, RR0.9375 ↔ K=4, RR0.96 ↔ K=5, RR0.99 ↔ K=10).
Other layouts: manifest.json {"<folder>": {"method": "fastv", "ratio": 2}} (ratio = K,
or a kept fraction < 1; method "downsample" is the baseline).`,
    )
    .action(async (dir: string, opts: { out?: string; json?: boolean }) => {
      const result = await analyzeLogs(dir, { out: opts.out });
      for (const warning of result.warnings) process.stderr.write(`vtc: warning: ${warning}\n`);
      if (opts.json) {
        printJson(result.summary);
        return;
      }
      process.stdout.write(`${formatTaskTable(result.tasks)}\n\nreport: ${result.reportFiles.find((f) => f.endsWith('report.md'))}\n`);
    });
}

export function evalCommand(): Command {
  const command = configureCommand(new Command('eval')).description('VTC-Bench evaluation: analyse lmms-eval logs, or run a dataset through a model for methods × ratios');
  command.addCommand(analyzeSubcommand());
  for (const sub of command.commands) configureCommand(sub);
  return command;
}
