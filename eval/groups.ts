import { InputError } from '../core/errors.js';

/**
 * VTC-Bench grouping (pure): keep the samples the uncompressed model answers
 * correctly; at each downsample factor K the downsampled run splits them into
 * Group A (difficult: downsampled answer wrong) and Group B (simple: right);
 * every method at the same K is scored on A and B. Used by `vtc eval analyze`
 * (lmms-eval logs) and `vtc eval run` (our own results) alike.
 */

/** The baseline method name: downsampling by K (K = 1 is the uncompressed run). */
export const BASELINE_METHOD = 'downsample';

/** Correctness of one run (one method at one K) for one task, keyed by the string form of the doc id. */
export interface RunCorrectness {
  method: string;
  /** Downsample-equivalent factor: the run keeps 1/K² of the visual budget. K = 1 is uncompressed. */
  k: number;
  correct: Map<string, boolean>;
  /** Where the run came from (a folder, a results file), for messages. */
  label?: string;
}

export interface MethodGroupResult {
  /** Accuracy (%) on Group A; null when the group is empty. */
  acc_a: number | null;
  acc_b: number | null;
  correct_a: number;
  correct_b: number;
  /** Accuracy (%) over every sample of the uncompressed run (missing answers wrong). */
  accuracy: number | null;
  /** accuracy / uncompressed accuracy × 100; null when the uncompressed accuracy is 0. */
  retention: number | null;
}

export interface RatioAnalysis {
  k: number;
  /** Kept fraction of the visual budget, 1/K². */
  kept: number;
  /** 100 · (1 − 1/K²). */
  reduction_pct: number;
  group_a: number;
  group_b: number;
  downsample: { accuracy: number | null; retention: number | null };
  methods: Record<string, MethodGroupResult>;
}

export interface TaskAnalysis {
  task: string;
  n_uncompressed: number;
  n_correct_uncompressed: number;
  accuracy_uncompressed: number | null;
  /** By K, as a decimal string ("2", "3", …), in increasing K. */
  ratios: Record<string, RatioAnalysis>;
  warnings: string[];
}

/** Kept fraction for a downsample factor K (budget 1/K²). */
export function keptFraction(k: number): number {
  return 1 / (k * k);
}

/**
 * The downsample factor whose budget 1/K² equals a kept fraction, when it is
 * (within 2%) an integer; otherwise the exact real K.
 *
 * @example
 * factorForKept(0.25);   // 2
 * factorForKept(0.1111); // 3
 */
export function factorForKept(kept: number): number {
  if (!(kept > 0 && kept <= 1)) throw new InputError(`kept fraction must be in (0, 1], got ${kept}`);
  const k = 1 / Math.sqrt(kept);
  const rounded = Math.round(k);
  return Math.abs(k - rounded) <= 0.02 * rounded ? rounded : k;
}

/**
 * Percent as VTC-Bench's analyze_results.py computes it, (correct / total) * 100,
 * so unrounded values match its CSV bit for bit (100 * 1 / 3 would differ in the last digit).
 */
function percent(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : (numerator / denominator) * 100;
}

function countCorrect(ids: Iterable<string>, correct: Map<string, boolean>): number {
  let n = 0;
  for (const id of ids) if (correct.get(id) === true) n++;
  return n;
}

/**
 * Groups and scores one task's runs.
 *
 * @example
 * const runs = [
 *   { method: 'downsample', k: 1, correct: new Map([['0', true], ['1', true]]) },
 *   { method: 'downsample', k: 2, correct: new Map([['0', false], ['1', true]]) },
 *   { method: 'fastv', k: 2, correct: new Map([['0', true]]) },
 * ];
 * analyzeTask('chartqa', runs).ratios['2'].methods.fastv; // acc_a 100, acc_b 0 (doc 1 missing counts as wrong)
 */
export function analyzeTask(task: string, runs: RunCorrectness[]): TaskAnalysis {
  const seen = new Map<string, RunCorrectness>();
  for (const run of runs) {
    const key = `${run.method}@${run.k}`;
    const previous = seen.get(key);
    if (previous) {
      throw new InputError(
        `task ${task}: two runs for method ${run.method} at K=${run.k}: ${previous.label ?? '?'} and ${run.label ?? '?'}`,
      );
    }
    seen.set(key, run);
  }
  const uncompressed = seen.get(`${BASELINE_METHOD}@1`);
  if (!uncompressed)
    throw new InputError(`task ${task}: no uncompressed run (downsample K=1, e.g. a NATIVE_IR1 folder)`);
  const universe = [...uncompressed.correct.keys()];
  const correctIds = universe.filter((id) => uncompressed.correct.get(id) === true);
  const nCorrect = correctIds.length;
  const accuracyUncompressed = percent(nCorrect, universe.length);
  const accuracyOf = (run: RunCorrectness) => percent(countCorrect(universe, run.correct), universe.length);
  const retentionOf = (accuracy: number | null) =>
    accuracy === null || !accuracyUncompressed ? null : (100 * accuracy) / accuracyUncompressed;

  const warnings: string[] = [];
  const ks = [...new Set(runs.filter((r) => r.k !== 1).map((r) => r.k))].sort((a, b) => a - b);
  const ratios: Record<string, RatioAnalysis> = {};
  for (const k of ks) {
    const baseline = seen.get(`${BASELINE_METHOD}@${k}`);
    const methodRuns = runs.filter((r) => r.k === k && r.method !== BASELINE_METHOD);
    if (!baseline) {
      for (const run of methodRuns)
        warnings.push(`task ${task}: ${run.method} at K=${formatK(k)} has no downsample run at the same K; left out`);
      continue;
    }
    // Docs missing from the downsampled run are in neither group.
    const groupA = correctIds.filter((id) => baseline.correct.get(id) === false);
    const groupB = correctIds.filter((id) => baseline.correct.get(id) === true);
    const missing = nCorrect - groupA.length - groupB.length;
    if (missing > 0)
      warnings.push(
        `task ${task}: ${missing} uncompressed-correct docs are missing from the downsample K=${formatK(k)} run; left out of both groups`,
      );
    const downsampleAccuracy = accuracyOf(baseline);
    const methods: Record<string, MethodGroupResult> = {};
    for (const run of [...methodRuns].sort((a, b) => a.method.localeCompare(b.method))) {
      const correctA = countCorrect(groupA, run.correct);
      const correctB = countCorrect(groupB, run.correct);
      const accuracy = accuracyOf(run);
      methods[run.method] = {
        acc_a: percent(correctA, groupA.length),
        acc_b: percent(correctB, groupB.length),
        correct_a: correctA,
        correct_b: correctB,
        accuracy,
        retention: retentionOf(accuracy),
      };
    }
    ratios[formatK(k)] = {
      k,
      kept: keptFraction(k),
      reduction_pct: 100 * (1 - keptFraction(k)),
      group_a: groupA.length,
      group_b: groupB.length,
      downsample: { accuracy: downsampleAccuracy, retention: retentionOf(downsampleAccuracy) },
      methods,
    };
  }
  return {
    task,
    n_uncompressed: universe.length,
    n_correct_uncompressed: nCorrect,
    accuracy_uncompressed: accuracyUncompressed,
    ratios,
    warnings,
  };
}

/** K as a key: integers plainly, others with 4 decimals. */
export function formatK(k: number): string {
  return Number.isInteger(k) ? String(k) : k.toFixed(4);
}

/**
 * The compact summary `vtc eval analyze --json` prints:
 * `{tasks: {task: {n_correct_uncompressed, ratios: {K: {group_a, group_b, methods: {m: {acc_a, acc_b}}}}}}}`.
 */
export function summariseTasks(tasks: TaskAnalysis[]): { tasks: Record<string, unknown> } {
  const out: Record<string, unknown> = {};
  for (const task of tasks) {
    const ratios: Record<string, unknown> = {};
    for (const [key, ratio] of Object.entries(task.ratios)) {
      const methods: Record<string, { acc_a: number | null; acc_b: number | null }> = {};
      for (const [name, m] of Object.entries(ratio.methods)) methods[name] = { acc_a: m.acc_a, acc_b: m.acc_b };
      ratios[key] = { group_a: ratio.group_a, group_b: ratio.group_b, methods };
    }
    out[task.task] = { n_correct_uncompressed: task.n_correct_uncompressed, ratios };
  }
  return { tasks: out };
}
