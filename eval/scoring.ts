import { UsageError } from '../core/errors.js';
import { levenshtein } from '../core/edit-distance.js';

/**
 * Answer scoring for `vtc eval run` (pure). Every metric returns a score in
 * [0, 1] and a correct flag (score ≥ 0.5, VTC-Bench's threshold for scored
 * tasks), so groups A/B work the same whatever the metric.
 */

export const METRICS = ['auto', 'exact', 'normalized', 'contains', 'mc', 'relaxed', 'anls'] as const;
export type Metric = (typeof METRICS)[number];

export function parseMetric(name: string): Metric {
  if (!(METRICS as readonly string[]).includes(name))
    throw new UsageError(`unknown metric ${JSON.stringify(name)} (available: ${METRICS.join(', ')})`, 'E_METRIC');
  return name as Metric;
}

export interface ScoreResult {
  /** The metric actually used ('auto' resolved). */
  metric: Exclude<Metric, 'auto'>;
  score: number;
  correct: boolean;
  /** What the prediction was read as (e.g. the extracted letter or number). */
  extracted?: string;
}

const ARTICLES = new Set(['a', 'an', 'the']);

/**
 * Normalises an answer for comparison: lower case, punctuation to spaces
 * (keeping decimal points and minus signs inside numbers), no articles,
 * single spaces.
 *
 * @example
 * normalizeAnswer('The  Eiffel-Tower!'); // 'eiffel tower'
 * normalizeAnswer('$1,234.50');          // '1234.50'
 */
export function normalizeAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/(\d),(?=\d{3}\b)/g, '$1')
    .replace(/(?<!\d)[.](?!\d)|[^\p{L}\p{N}.\s-]|-(?!\d)/gu, ' ')
    .split(/\s+/)
    .filter((w) => w !== '' && !ARTICLES.has(w))
    .join(' ')
    .replace(/\.$/, '');
}

/** Parses a number out of an answer ("12.5%", "$1,234", "-3"); undefined when there is none or more than one. */
export function parseNumberAnswer(text: string): number | undefined {
  const matches = text.replace(/(\d),(?=\d{3}\b)/g, '$1').match(/-?\d+(?:\.\d+)?/g);
  if (!matches || matches.length !== 1) return undefined;
  return Number(matches[0]);
}

/**
 * ChartQA's relaxed accuracy: numbers within 5% relative error (exact when the
 * target is 0), otherwise a normalised exact match.
 *
 * @example
 * relaxedMatch('104', '100'); // true
 * relaxedMatch('106', '100'); // false
 */
export function relaxedMatch(prediction: string, answer: string): boolean {
  const target = parseNumberAnswer(answer);
  const predicted = firstNumber(prediction);
  if (target !== undefined && predicted !== undefined) {
    // The bound is inclusive up to rounding: |0.95 − 1| is 0.050000000000000044 in binary floating
    // point, which a bare `<= 0.05` (as pix2struct's relaxed_correctness) would reject.
    return target === 0 ? predicted === 0 : Math.abs(predicted - target) <= 0.05 * Math.abs(target) * (1 + 1e-9);
  }
  return normalizeAnswer(prediction) === normalizeAnswer(answer);
}

function firstNumber(text: string): number | undefined {
  const match = text.replace(/(\d),(?=\d{3}\b)/g, '$1').match(/-?\d+(?:\.\d+)?/);
  return match ? Number(match[0]) : undefined;
}

/** Levenshtein distance over code points (shared with render/'s CER). */
export const editDistance = levenshtein;

/**
 * ANLS (DocVQA): 1 − normalised Levenshtein distance on lower-cased, trimmed
 * strings, 0 when that distance is ≥ 0.5; the best over the accepted answers.
 *
 * @example
 * anls('hel1o', ['hello']); // 0.8
 */
export function anls(prediction: string, answers: string[]): number {
  const p = prediction.trim().toLowerCase().replace(/\s+/g, ' ');
  let best = 0;
  for (const answer of answers) {
    const a = answer.trim().toLowerCase().replace(/\s+/g, ' ');
    const longest = Math.max(p.length, a.length);
    const nl = longest === 0 ? 0 : editDistance(p, a) / longest;
    best = Math.max(best, nl < 0.5 ? 1 - nl : 0);
  }
  return best;
}

/** Option letters A, B, C, … for n options. */
export function optionLetters(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String.fromCharCode(65 + i));
}

/**
 * Extracts the chosen option letter from a free-form reply: "(B)", "B.",
 * "Answer: B", a lone "B", or else the option whose text the reply contains
 * (the longest such text, so "red car" beats "red").
 *
 * @example
 * extractChoice('I think the answer is (C) because…', ['cat', 'dog', 'cow']); // 'C'
 * extractChoice('It is a dog.', ['cat', 'dog', 'cow']);                      // 'B'
 */
export function extractChoice(prediction: string, options: string[]): string | undefined {
  const letters = optionLetters(options.length);
  const valid = `[${letters[0]}-${letters[letters.length - 1]}]`;
  const text = prediction.trim();
  const patterns = [
    new RegExp(`^\\(?(${valid})\\)?(?:[.:)\\s]|$)`),
    new RegExp(`(?:answer|option|choice)\\s*(?:is|:)?\\s*\\(?(${valid})\\b`, 'i'),
    new RegExp(`\\((${valid})\\)`),
    new RegExp(`\\b(${valid})[.)]\\s`),
  ];
  for (const pattern of patterns) {
    const match = pattern.exec(text);
    if (match) return match[1]!.toUpperCase();
  }
  const normalized = ` ${normalizeAnswer(text)} `;
  let best: { letter: string; length: number } | undefined;
  options.forEach((option, i) => {
    const o = normalizeAnswer(option);
    if (o !== '' && normalized.includes(` ${o} `) && (!best || o.length > best.length))
      best = { letter: letters[i]!, length: o.length };
  });
  return best?.letter;
}

/** The answer as a letter when it is one ("B", "(B)") or equals an option's text. */
function answerLetter(answer: string, options: string[]): string | undefined {
  const letters = optionLetters(options.length);
  const bare = answer
    .trim()
    .replace(/^\(|\)$|\.$/g, '')
    .toUpperCase();
  if (letters.includes(bare)) return bare;
  const index = options.findIndex((o) => normalizeAnswer(o) === normalizeAnswer(answer));
  return index >= 0 ? letters[index] : undefined;
}

/** Picks the metric for `auto`: options → mc, a numeric answer → relaxed, else normalized. */
export function autoMetric(answer: string, options?: string[]): Exclude<Metric, 'auto'> {
  if (options && options.length > 0) return 'mc';
  const numeric = (a: string) => parseNumberAnswer(a) !== undefined && /^[\s$€£-]*[\d.,]+\s*%?\s*$/.test(a);
  if (acceptedAnswers(answer).every(numeric)) return 'relaxed';
  return 'normalized';
}

/**
 * The accepted answers of a sample: datasets store a row's list of answers
 * joined with '|' (see parseRow), and every metric but mc accepts any of them.
 *
 * @example
 * acceptedAnswers('Lyon|Paris'); // ['Lyon', 'Paris']
 */
export function acceptedAnswers(answer: string): string[] {
  return answer.split('|');
}

/**
 * Scores one prediction.
 *
 * @example
 * scoreAnswer('Total: $23.40', '23.4', { metric: 'relaxed' });     // { metric: 'relaxed', score: 1, correct: true, extracted: '23.4' }
 * scoreAnswer('B', 'dog', { options: ['cat', 'dog'] }).correct;     // true
 * scoreAnswer('paris', 'Lyon|Paris').correct;                       // true (any accepted answer)
 */
export function scoreAnswer(
  prediction: string,
  answer: string,
  options: { metric?: Metric; options?: string[] } = {},
): ScoreResult {
  const metric = !options.metric || options.metric === 'auto' ? autoMetric(answer, options.options) : options.metric;
  const binary = (ok: boolean, extracted?: string): ScoreResult => ({
    metric,
    score: ok ? 1 : 0,
    correct: ok,
    ...(extracted !== undefined ? { extracted } : {}),
  });
  const accepted = acceptedAnswers(answer);
  switch (metric) {
    case 'exact':
      return binary(accepted.some((a) => prediction.trim() === a.trim()));
    case 'normalized':
      return binary(accepted.some((a) => normalizeAnswer(prediction) === normalizeAnswer(a)));
    case 'contains': {
      const reply = ` ${normalizeAnswer(prediction)} `;
      return binary(accepted.some((a) => normalizeAnswer(a) !== '' && reply.includes(` ${normalizeAnswer(a)} `)));
    }
    case 'relaxed': {
      const n = firstNumber(prediction);
      return binary(
        accepted.some((a) => relaxedMatch(prediction, a)),
        n === undefined ? undefined : String(n),
      );
    }
    case 'anls': {
      const score = anls(prediction, accepted);
      return { metric, score, correct: score >= 0.5 };
    }
    case 'mc': {
      const opts = options.options ?? [];
      if (opts.length === 0) throw new UsageError('metric mc needs options');
      const expected = answerLetter(answer, opts);
      const chosen = extractChoice(prediction, opts);
      return binary(expected !== undefined && chosen === expected, chosen);
    }
  }
}
