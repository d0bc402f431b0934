/**
 * Per-task correctness of one lmms-eval `--log_samples` record, following
 * VTC-Bench's analysis rules: a task-specific metric when the record carries
 * it, otherwise the fallback "stringified filtered_resps contains doc.answer".
 * Pure functions: no I/O.
 */

/** One line of an lmms-eval samples_<task>.jsonl file (only the fields we read). */
export interface LmmsSample {
  doc_id: number | string;
  doc?: Record<string, unknown>;
  target?: unknown;
  filtered_resps?: unknown;
  [metric: string]: unknown;
}

/** Which rule decided a record (for reports and debugging). */
export type CorrectnessRule =
  | 'chartqa.relaxed_overall'
  | 'pope.pope_accuracy'
  | 'ocrbench.ocrbench_accuracy'
  | 'gqa.exact_match'
  | 'mme.perception'
  | 'mme.cognition'
  | 'mmstar.average'
  | 'mmbench.gpt_eval_score'
  | 'fallback.substring';

function scoreOf(value: unknown): number | undefined {
  if (value && typeof value === 'object' && 'score' in value) {
    const score = (value as { score: unknown }).score;
    if (typeof score === 'number') return score;
    if (typeof score === 'boolean') return score ? 1 : 0;
  }
  return undefined;
}

/** Python truthiness for JSON values (VTC-Bench calls bool() on the metric). */
function truthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

/**
 * Python's str() of a JSON value, so the substring fallback sees exactly the
 * text VTC-Bench's Python sees (e.g. ['Paris'] → "['Paris']").
 *
 * @example
 * pythonStr(['a', 1.5, true, null]); // "['a', 1.5, True, None]"
 */
export function pythonStr(value: unknown): string {
  if (typeof value === 'string') return value;
  return pythonRepr(value);
}

function pythonRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number')
    return Number.isInteger(value) && !Object.is(value, -0) ? String(value) : pythonFloat(value);
  if (typeof value === 'string') return pythonStringRepr(value);
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${pythonStringRepr(k)}: ${pythonRepr(v)}`)
      .join(', ')}}`;
  }
  return String(value);
}

function pythonFloat(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  const text = String(value);
  return /[.e]/.test(text) ? text.replace(/e([+-])(\d)$/, 'e$10$2') : `${text}.0`;
}

function pythonStringRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escaped = text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
  return quote + (quote === "'" ? escaped.replace(/'/g, "\\'") : escaped) + quote;
}

/** VTC-Bench's normalisation: drop periods, trim, lower-case. */
export function vtcNormalize(text: string): string {
  return text.replace(/\./g, '').trim().toLowerCase();
}

/**
 * Whether the record counts as answered correctly for the task, and by which rule.
 * The task name is matched by substring, in VTC-Bench's order (chartqa, pope,
 * ocrbench, gqa, mme, mmstar, mmbench); a task rule whose metric is absent
 * falls through to the substring fallback, as in VTC-Bench.
 *
 * @example
 * isCorrect({ doc_id: 0, relaxed_overall: 1 }, 'chartqa'); // { correct: true, rule: 'chartqa.relaxed_overall' }
 * isCorrect({ doc_id: 1, doc: { answer: 'Paris' }, filtered_resps: ['It is Paris.'] }, 'my_task').correct; // true
 */
export function isCorrect(sample: LmmsSample, task: string): { correct: boolean; rule: CorrectnessRule } {
  const name = task.toLowerCase();
  if (name.includes('chartqa')) {
    if (sample.relaxed_overall !== undefined && sample.relaxed_overall !== null)
      return { correct: truthy(sample.relaxed_overall), rule: 'chartqa.relaxed_overall' };
  } else if (name.includes('pope')) {
    const score = scoreOf(sample.pope_accuracy);
    if (score !== undefined) return { correct: score >= 0.5, rule: 'pope.pope_accuracy' };
  } else if (name.includes('ocrbench')) {
    const score = scoreOf(sample.ocrbench_accuracy);
    if (score !== undefined) return { correct: score >= 0.5, rule: 'ocrbench.ocrbench_accuracy' };
  } else if (name.includes('gqa')) {
    if (sample.exact_match !== undefined && sample.exact_match !== null)
      return { correct: truthy(sample.exact_match), rule: 'gqa.exact_match' };
  } else if (name.includes('mme')) {
    // lmms-eval spells the perception key "mme_percetion_score"; accept the correct spelling too.
    const perception = scoreOf(sample.mme_percetion_score) ?? scoreOf(sample.mme_perception_score);
    if (perception !== undefined) return { correct: perception >= 0.5, rule: 'mme.perception' };
    const cognition = scoreOf(sample.mme_cognition_score);
    if (cognition !== undefined) return { correct: cognition >= 0.5, rule: 'mme.cognition' };
  } else if (name.includes('mmstar')) {
    const score = scoreOf(sample.average);
    if (score !== undefined) return { correct: score >= 0.5, rule: 'mmstar.average' };
  } else if (name.includes('mmbench')) {
    const gpt = sample.gpt_eval_score as { answer?: unknown; prediction?: unknown } | undefined;
    const answer = gpt && typeof gpt === 'object' ? gpt.answer : undefined;
    const prediction = gpt && typeof gpt === 'object' ? gpt.prediction : undefined;
    if (typeof answer === 'string' && typeof prediction === 'string' && answer !== '' && prediction !== '') {
      return { correct: vtcNormalize(answer) === vtcNormalize(prediction), rule: 'mmbench.gpt_eval_score' };
    }
  }
  return { correct: fallbackCorrect(sample), rule: 'fallback.substring' };
}

/**
 * VTC-Bench fallback: normalised str(filtered_resps) equals or contains the
 * normalised doc.answer. Deviation (on purpose): when doc.answer is missing we
 * use the record's `target`, and with neither the record is wrong (Python's
 * '' in s would count every such record as correct).
 */
function fallbackCorrect(sample: LmmsSample): boolean {
  const answer =
    sample.doc && sample.doc.answer !== undefined && sample.doc.answer !== null ? sample.doc.answer : sample.target;
  if (answer === undefined || answer === null) return false;
  const target = vtcNormalize(pythonStr(answer));
  if (target === '') return false;
  const response = vtcNormalize(pythonStr(sample.filtered_resps ?? ''));
  return response === target || response.includes(target);
}
