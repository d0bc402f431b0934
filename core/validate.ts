import { UsageError, describe } from './errors.js';

/**
 * Option validation, written once for the library and the CLI. This module
 * holds the rules' wording ("must be an integer ≥ 1, got 0") and the
 * one-option checks every reducer calls; the zod schema helpers that word
 * their failures the same way live in core/schema.ts. It imports no zod on
 * purpose: reducers and core/tokenset.ts use only these checks, and zod's
 * ~100 modules would otherwise be loaded by every `vtc reduce` (cold start).
 * The error class follows one rule:
 *
 * - a value passed in code or on the command line (an option, a flag) is a
 *   usage error: `UsageError`, exit code 2 (`checkInteger`, `checkNumber`,
 *   schema.ts's `parseOptions`);
 * - a value read from a file (a config file, a model folder's JSON, a
 *   dataset row) is bad input: `InputError`, exit code 1 (schema.ts's `parseFile`).
 *
 * Options are named as the library spells them, with the CLI flag beside
 * when it differs ("maxFrames (--max-frames)"), so both callers read the
 * same message.
 */

/** camelCase → kebab-case (the CLI flag spelling). */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** An option as messages name it: "maxFrames (--max-frames)", or "seed" when the flag is the same word. */
export function optionLabel(name: string): string {
  const flag = kebab(name);
  return flag === name ? name : `${name} (--${flag})`;
}

/** The message for a value that breaks a rule: "must be <rule>, got <value>". */
export function mustBe(rule: string, value: unknown): string {
  return `must be ${rule}, got ${describe(value)}`;
}

/** An integer range as messages word it: "an integer ≥ 1", "an integer in [1, 100]". */
export function integerRule(min: number, max?: number): string {
  return `an integer ${max === undefined ? `≥ ${min}` : `in [${min}, ${max}]`}`;
}

/** A number range as messages word it; open ends with gt/lt: { gt: 0, lt: 1 } → "in (0, 1)". */
export interface NumberRange {
  gt?: number;
  min?: number;
  max?: number;
  lt?: number;
}

export function numberRule(range: NumberRange): string {
  const low = range.gt !== undefined ? `(${range.gt}` : range.min !== undefined ? `[${range.min}` : undefined;
  const high = range.lt !== undefined ? `${range.lt})` : range.max !== undefined ? `${range.max}]` : undefined;
  return low && high
    ? `in ${low}, ${high}`
    : low
      ? range.gt !== undefined
        ? `> ${range.gt}`
        : `≥ ${range.min}`
      : high
        ? range.lt !== undefined
          ? `< ${range.lt}`
          : `≤ ${range.max}`
        : 'a finite number';
}

/** Whether `value` is a safe integer in [min, max] (zod's int: ±(2^53 − 1)). */
function isIntegerIn(value: unknown, min: number, max?: number): value is number {
  return Number.isSafeInteger(value) && (value as number) >= min && (max === undefined || (value as number) <= max);
}

/** Whether `value` is a finite number within the range (NaN and ±Infinity never are). */
function isNumberIn(value: unknown, range: NumberRange): value is number {
  return (
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (range.gt === undefined || value > range.gt) &&
    (range.min === undefined || value >= range.min) &&
    (range.max === undefined || value <= range.max) &&
    (range.lt === undefined || value < range.lt)
  );
}

/**
 * Checks one integer option: throws UsageError "where: name must be an integer ≥ min, got value"
 * (name is printed as given: "maxFrames (--max-frames)" where a flag differs).
 *
 * @example
 * checkInteger(0, 'frames', { min: 1, where: 'video-qa' }); // throws 'video-qa: frames must be an integer ≥ 1, got 0'
 */
export function checkInteger(
  value: unknown,
  name: string,
  rule: { min: number; max?: number; where?: string; code?: string },
): number {
  if (!isIntegerIn(value, rule.min, rule.max))
    throw new UsageError(
      `${rule.where ? `${rule.where}: ` : ''}${name} ${mustBe(integerRule(rule.min, rule.max), value)}`,
      rule.code ?? 'E_OPTION',
    );
  return value;
}

/**
 * Checks one number option, the counterpart of checkInteger: throws UsageError
 * "where: name must be in [0, 1], got value" (ranges as `numberRule` words them;
 * NaN and ±Infinity are refused).
 *
 * @example
 * checkNumber(2, 'contextShare (--context-share)', { min: 0, max: 1, where: 'fastvid' });
 * // throws 'fastvid: contextShare (--context-share) must be in [0, 1], got 2'
 */
export function checkNumber(
  value: unknown,
  name: string,
  rule: NumberRange & { where?: string; code?: string },
): number {
  const { where, code, ...range } = rule;
  if (!isNumberIn(value, range))
    throw new UsageError(`${where ? `${where}: ` : ''}${name} ${mustBe(numberRule(range), value)}`, code ?? 'E_OPTION');
  return value;
}
