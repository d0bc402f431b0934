import { editDistance, optionLetters } from './scoring.js';

/**
 * How the offline `ocr` model turns recognised text into an answer (pure):
 *
 * - multiple choice: the option whose text best appears in the OCR text
 *   (fuzzy, per word window), answered as its letter;
 * - a question naming a label in quotes ("TOTAL", "Invoice No."): the text
 *   after that label on the line where it appears — its first number when the
 *   question asks for a value, amount, count, price, year, percentage…;
 * - otherwise (e.g. "What does the sign say?"): all the text, on one line.
 */

const NUMERIC_QUESTION =
  /\b(value|amount|total|price|cost|how many|how much|number|count|percent|percentage|year|quantity|score|sum|rate)\b/i;

function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}.%$-]+/gu, ' ')
    .split(/\s+/)
    .map((w) => w.replace(/^[.-]+|[.-]+$/g, ''))
    .filter((w) => w !== '');
}

function similarity(a: string, b: string): number {
  const longest = Math.max(a.length, b.length);
  return longest === 0 ? 1 : 1 - editDistance(a, b) / longest;
}

/** Best fuzzy match of `phrase` among word windows of `line`: similarity and the word index just after the window. */
export function findPhrase(line: string, phrase: string): { similarity: number; end: number } {
  const lineWords = words(line);
  const target = words(phrase).join(' ');
  const n = Math.max(1, words(phrase).length);
  let best = { similarity: 0, end: 0 };
  for (let size = Math.max(1, n - 1); size <= n + 1; size++) {
    for (let start = 0; start + size <= lineWords.length; start++) {
      const s = similarity(lineWords.slice(start, start + size).join(' '), target);
      if (s > best.similarity) best = { similarity: s, end: start + size };
    }
  }
  return best;
}

/**
 * The line's text after its first `end` words, keeping the original casing
 * when the raw whitespace tokens line up with the normalised words (no
 * punctuation-only tokens), else the normalised words.
 */
function wordsAfter(line: string, end: number): string {
  const raw = line.split(/\s+/).filter((t) => t !== '');
  const normalised = words(line);
  return (raw.length === normalised.length ? raw : normalised).slice(end).join(' ');
}

/** The first number in a text ("$1,234.50" → "1234.50"), undefined when there is none. */
export function firstNumberText(text: string): string | undefined {
  const match = text.replace(/(\d)[,](?=\d{3}\b)/g, '$1').match(/-?\d+(?:\.\d+)?/);
  return match?.[0];
}

/**
 * Answers a question from OCR text.
 *
 * @example
 * answerFromText('STORE 12\nTOTAL 23.40\nTHANK YOU', 'What is the "TOTAL" amount on the receipt?'); // '23.40'
 * answerFromText('NO PARKING', 'What does the sign say?');                                       // 'NO PARKING'
 * answerFromText('Colour: green', 'Which colour is named?', ['red', 'green']);                     // 'B'
 */
export function answerFromText(ocrText: string, question: string, options?: string[]): string {
  const lines = ocrText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (options && options.length > 0) {
    const letters = optionLetters(options.length);
    let best = { letter: '', score: 0 };
    options.forEach((option, i) => {
      for (const line of lines) {
        const { similarity: s } = findPhrase(line, option);
        // Longer options are more specific: prefer them on ties.
        const score = s + option.length * 1e-6;
        if (score > best.score) best = { letter: letters[i]!, score };
      }
    });
    return best.score >= 0.6 ? best.letter : '';
  }
  const label = /["“]([^"”]+)["”]/.exec(question)?.[1];
  if (label) {
    let best = { similarity: 0, rest: '' };
    for (const line of lines) {
      const found = findPhrase(line, label);
      if (found.similarity > best.similarity)
        best = { similarity: found.similarity, rest: wordsAfter(line, found.end) };
    }
    if (best.similarity < 0.7) return '';
    const rest = best.rest.replace(/^[\s:=#.-]+/, '').trim();
    if (NUMERIC_QUESTION.test(question)) return firstNumberText(rest) ?? '';
    return rest;
  }
  return lines.join(' ');
}
