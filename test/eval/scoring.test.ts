import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { answerFromText, findPhrase } from '../../eval/ocr-reader.js';
import {
  anls,
  autoMetric,
  editDistance,
  extractChoice,
  normalizeAnswer,
  parseMetric,
  relaxedMatch,
  scoreAnswer,
} from '../../eval/scoring.js';

describe('scoring', () => {
  it('normalises answers', () => {
    assert.equal(normalizeAnswer('The  Eiffel-Tower!'), 'eiffel tower');
    assert.equal(normalizeAnswer('$1,234.50'), '1234.50');
    assert.equal(normalizeAnswer('An apple.'), 'apple');
    assert.equal(normalizeAnswer('XK-4821'), 'xk-4821');
    assert.equal(normalizeAnswer('-3.5'), '-3.5');
  });
  it('exact and normalized match', () => {
    assert.deepEqual(scoreAnswer(' Paris ', 'Paris', { metric: 'exact' }), {
      metric: 'exact',
      score: 1,
      correct: true,
    });
    assert.equal(scoreAnswer('paris', 'Paris', { metric: 'exact' }).correct, false);
    assert.equal(scoreAnswer('The Paris.', 'paris', { metric: 'normalized' }).correct, true);
    assert.equal(scoreAnswer('in Paris', 'paris', { metric: 'normalized' }).correct, false);
    assert.equal(scoreAnswer('in Paris today', 'paris', { metric: 'contains' }).correct, true);
    assert.equal(scoreAnswer('Parisian', 'paris', { metric: 'contains' }).correct, false);
  });
  it('relaxed numeric within 5%', () => {
    assert.equal(relaxedMatch('104', '100'), true);
    assert.equal(relaxedMatch('105', '100'), true);
    assert.equal(relaxedMatch('105.1', '100'), false);
    assert.equal(relaxedMatch('95', '100'), true);
    // Exactly 5% away in decimal is inside the bound despite binary rounding (|0.95 − 1| = 0.050000000000000044).
    assert.equal(relaxedMatch('0.95', '1'), true);
    assert.equal(relaxedMatch('1.05', '1'), true);
    assert.equal(relaxedMatch('1.0501', '1'), false);
    assert.equal(relaxedMatch('-104', '-100'), true);
    assert.equal(relaxedMatch('0', '0'), true);
    assert.equal(relaxedMatch('0.1', '0'), false);
    assert.equal(relaxedMatch('about 1,020 units', '1000'), true);
    assert.equal(relaxedMatch('Yes', 'yes'), true);
    assert.deepEqual(scoreAnswer('Total: $23.40', '23.4', { metric: 'relaxed' }), {
      metric: 'relaxed',
      score: 1,
      correct: true,
      extracted: '23.4',
    });
  });
  it('ANLS', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(anls('hel1o', ['hello']), 0.8);
    assert.equal(anls('abc', ['xyz']), 0);
    assert.equal(anls('Hello ', ['nope', 'hello']), 1);
    // NL = 2/4 = 0.5 → 0 (threshold is strict)
    assert.equal(anls('abzz', ['abcd']), 0);
    const s = scoreAnswer('NO PARKlNG', 'NO PARKING', { metric: 'anls' });
    assert.equal(s.score, 0.9);
    assert.equal(s.correct, true);
    assert.equal(scoreAnswer('b', 'a|b', { metric: 'anls' }).score, 1);
  });
  it('multiple-choice letter extraction', () => {
    const options = ['cat', 'dog', 'cow', 'red car'];
    assert.equal(extractChoice('B', options), 'B');
    assert.equal(extractChoice('(C)', options), 'C');
    assert.equal(extractChoice('C. cow', options), 'C');
    assert.equal(extractChoice('The answer is D', options), 'D');
    assert.equal(extractChoice('I think (A) fits', options), 'A');
    assert.equal(extractChoice('it is a dog', options), 'B');
    assert.equal(extractChoice('a red car', options), 'D');
    assert.equal(extractChoice('E', options), undefined);
    assert.equal(extractChoice('no idea', options), undefined);
    assert.equal(scoreAnswer('(B)', 'B', { options }).correct, true);
    assert.equal(scoreAnswer('B', 'dog', { options }).correct, true);
    assert.deepEqual(scoreAnswer('A', 'B', { options }), { metric: 'mc', score: 0, correct: false, extracted: 'A' });
  });
  it('accepts any answer of a list (stored joined with |) under every metric but mc', () => {
    for (const metric of ['exact', 'normalized', 'contains', 'anls'] as const) {
      assert.equal(scoreAnswer('Paris', 'Lyon|Paris', { metric }).correct, true, metric);
      assert.equal(scoreAnswer('Nice', 'Lyon|Paris', { metric }).correct, false, metric);
    }
    assert.equal(scoreAnswer('It is 20', '12|20', { metric: 'relaxed' }).correct, true);
    assert.equal(scoreAnswer('It is 16', '12|20', { metric: 'relaxed' }).correct, false);
    assert.equal(autoMetric('12|20'), 'relaxed');
    assert.equal(autoMetric('12|twelve'), 'normalized');
    assert.deepEqual(scoreAnswer('twelve', '12|twelve'), { metric: 'normalized', score: 1, correct: true });
  });
  it('auto picks a metric', () => {
    assert.equal(autoMetric('B', ['x', 'y']), 'mc');
    assert.equal(autoMetric('23.40'), 'relaxed');
    assert.equal(autoMetric('12%'), 'relaxed');
    assert.equal(autoMetric('XK-4821'), 'normalized');
    assert.equal(autoMetric('2 apples'), 'normalized');
    assert.throws(() => parseMetric('bleu'), /unknown metric "bleu" \(available: auto, exact/);
  });
});

describe('ocr reader', () => {
  it('finds labels fuzzily', () => {
    assert.deepEqual(findPhrase('TOTAL 23.40', 'total'), { similarity: 1, end: 1 });
    assert.equal(findPhrase('T0TAL 23.40', 'TOTAL').similarity, 0.8);
  });
  it('answers from OCR text', () => {
    assert.equal(
      answerFromText('STORE 12\nTOTAL 23.40\nTHANK YOU', 'What is the "TOTAL" amount on the receipt?'),
      '23.40',
    );
    assert.equal(answerFromText('Coffee 3.10\nOrange Juice 4.25', 'What is the price of "Orange Juice"?'), '4.25');
    assert.equal(
      answerFromText('memo text\nReference: GJ-9172\nmore', 'What is the "Reference" in the document?'),
      'GJ-9172',
    );
    assert.equal(answerFromText('Invoice No. 37969', 'What is the "Invoice No." in the document?'), '37969');
    assert.equal(answerFromText('NO\nPARKING\n', 'What does the sign say?'), 'NO PARKING');
    assert.equal(answerFromText('Ship to: Prague', 'Which city?', ['Warsaw', 'Vienna', 'Zurich', 'Prague']), 'D');
    assert.equal(answerFromText('Ship to: Pra', 'Which city?', ['Warsaw', 'Vienna']), '');
    assert.equal(answerFromText('nothing here', 'What is the "TOTAL"?'), '');
  });
});
