import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { InputError, UsageError } from '../../core/errors.js';
import { checkInteger, checkNumber, kebab, optionLabel } from '../../core/validate.js';
import { formatZodError, integer, number, oneOf, parseFile, parseOptions } from '../../core/schema.js';

test('schema helpers carry their own messages, with the value given', () => {
  const schema = z
    .object({
      quality: integer(1, 100).optional(),
      frames: integer(1).optional(),
      scenes: number({ gt: 0, lt: 1 }).optional(),
      rate: number({ gt: 0 }).optional(),
      format: oneOf(['npy', 'torch']).optional(),
    })
    .strict();
  const message = (input: unknown) => formatZodError(schema.safeParse(input).error!, 'where');
  assert.equal(message({ quality: 0 }), 'where: quality must be an integer in [1, 100], got 0');
  assert.equal(message({ quality: 2.5 }), 'where: quality must be an integer in [1, 100], got 2.5');
  assert.equal(message({ frames: 0 }), 'where: frames must be an integer ≥ 1, got 0');
  assert.equal(message({ frames: 'x' }), 'where: frames must be an integer ≥ 1, got "x"');
  assert.equal(message({ scenes: 1 }), 'where: scenes must be in (0, 1), got 1');
  assert.equal(message({ rate: 0 }), 'where: rate must be > 0, got 0');
  assert.equal(message({ rate: Number.POSITIVE_INFINITY }), 'where: rate must be > 0, got Infinity');
  assert.equal(message({ format: 'f16' }), 'where: format must be one of npy, torch, got "f16"');
  assert.equal(message({ colour: 1, size: 2 }), 'where: unknown keys "colour", "size"');
});

test('options are named as the library spells them, with the CLI flag when it differs', () => {
  assert.equal(kebab('maxFrames'), 'max-frames');
  assert.equal(optionLabel('maxFrames'), 'maxFrames (--max-frames)');
  assert.equal(optionLabel('seed'), 'seed');
  const schema = z.object({ maxFrames: integer(1) });
  assert.equal(
    formatZodError(schema.safeParse({ maxFrames: 0 }).error!, 'encode'),
    'encode: maxFrames (--max-frames) must be an integer ≥ 1, got 0',
  );
});

test('one rule for the error class: options and flags → UsageError (exit 2), file contents → InputError (exit 1)', () => {
  const schema = z.object({ size: integer(1) });
  assert.throws(
    () => parseOptions(schema, { size: 0 }, 'thing'),
    (e: unknown) =>
      e instanceof UsageError && e.exitCode === 2 && e.message === 'thing: size must be an integer ≥ 1, got 0',
  );
  assert.throws(
    () => parseFile(schema, { size: 0 }, 'cfg.json'),
    (e: unknown) =>
      e instanceof InputError && e.exitCode === 1 && e.message === 'cfg.json: size: must be an integer ≥ 1, got 0',
  );
  assert.deepEqual(parseOptions(schema, { size: 3 }, 'thing'), { size: 3 });
  // zod's own messages get the value appended when they lack one.
  assert.throws(
    () => parseFile(z.object({ name: z.string() }), { name: 7 }, 'cfg.json'),
    /cfg\.json: name: Invalid input: expected string, received number, got 7$/,
  );
  assert.equal(
    formatZodError(z.object({ a: z.array(z.number()) }).safeParse({ a: [1, 'x'] }).error!, 'w', {
      label: (k) => `field ${k}:`,
    }),
    'w: field a.1: Invalid input: expected number, received string',
  );
});

test('checkInteger: one message for every integer option', () => {
  assert.equal(checkInteger(3, 'clips', { min: 1 }), 3);
  assert.throws(
    () => checkInteger(0, 'clips', { min: 1 }),
    (e: unknown) => e instanceof UsageError && e.message === 'clips must be an integer ≥ 1, got 0',
  );
  assert.throws(
    () => checkInteger(1.5, 'columns', { min: 1, where: 'contact sheet' }),
    /contact sheet: columns must be an integer ≥ 1, got 1\.5$/,
  );
  assert.throws(
    () => checkInteger(9, 'upscale (--ocr-upscale)', { min: 1, max: 8, where: 'render', code: 'E_RANGE' }),
    (e: unknown) =>
      e instanceof UsageError &&
      e.code === 'E_RANGE' &&
      e.message === 'render: upscale (--ocr-upscale) must be an integer in [1, 8], got 9',
  );
});

const message = (text: string) => (e: unknown) => e instanceof UsageError && e.message === text;

test('checkNumber: one message for every number option, ranges open or closed', () => {
  assert.equal(checkNumber(0.5, 'share', { min: 0, max: 1 }), 0.5);
  assert.throws(
    () => checkNumber(2, 'contextShare (--context-share)', { min: 0, max: 1, where: 'fastvid', code: 'E_RANGE' }),
    (e: unknown) =>
      e instanceof UsageError &&
      e.code === 'E_RANGE' &&
      e.message === 'fastvid: contextShare (--context-share) must be in [0, 1], got 2',
  );
  assert.throws(
    () => checkNumber(1, 'theta', { min: 0, lt: 1, where: 'cdpruner' }),
    (e: unknown) => e instanceof UsageError && e.message === 'cdpruner: theta must be in [0, 1), got 1',
  );
  assert.throws(() => checkNumber(0, 'fps', { gt: 0 }), message('fps must be > 0, got 0'));
  // NaN and infinities never pass, and a string is named as a string.
  assert.throws(() => checkNumber(Number.NaN, 'fps', { gt: 0 }), message('fps must be > 0, got NaN'));
  assert.throws(
    () => checkNumber(Number.POSITIVE_INFINITY, 'x', {}),
    message('x must be a finite number, got Infinity'),
  );
  assert.throws(() => checkNumber('3', 'ratio', { gt: 0, max: 1 }), message('ratio must be in (0, 1], got "3"'));
});

test('checkInteger and checkNumber (no zod) accept, refuse and word values exactly as the zod schemas do', () => {
  const values: unknown[] = [
    0,
    -0,
    1,
    -1,
    2.5,
    100,
    101,
    2 ** 53 - 1,
    2 ** 53,
    -(2 ** 53),
    1e300,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    '1',
    '',
    null,
    undefined,
    true,
    3n,
    [1],
    { n: 1 },
  ];
  /** The check's outcome: the value it returned, or the message after "name ". */
  const outcome = (check: () => number): { ok: boolean; value?: number; message?: string } => {
    try {
      return { ok: true, value: check() };
    } catch (error) {
      assert.ok(error instanceof UsageError);
      return { ok: false, message: error.message.replace(/^x /, '') };
    }
  };
  const schemaOutcome = (schema: z.ZodType<number>, value: unknown) => {
    const parsed = schema.safeParse(value);
    return parsed.success ? { ok: true, value: parsed.data } : { ok: false, message: parsed.error.issues[0]!.message };
  };
  for (const [min, max] of [
    [0, undefined],
    [1, undefined],
    [1, 100],
    [-5, 5],
  ] as const)
    for (const value of values)
      assert.deepEqual(
        outcome(() => checkInteger(value, 'x', { min, ...(max === undefined ? {} : { max }) })),
        schemaOutcome(integer(min, max), value),
        `integer(${min}, ${max}) on ${String(value)}`,
      );
  for (const range of [{}, { gt: 0 }, { min: 0, max: 1 }, { gt: 0, lt: 1 }, { min: 1 }, { max: 100 }, { lt: 0 }])
    for (const value of values)
      assert.deepEqual(
        outcome(() => checkNumber(value, 'x', range)),
        schemaOutcome(number(range), value),
        `number(${JSON.stringify(range)}) on ${String(value)}`,
      );
});
