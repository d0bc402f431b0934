import { z } from 'zod';
import { InputError, UsageError, describe } from './errors.js';

/**
 * Option and config validation, written once for the library and the CLI:
 * zod schemas built from the helpers below carry their own messages
 * ("must be an integer ≥ 1, got 0"), `formatZodError` turns the first issue
 * into one line, and the error class follows one rule:
 *
 * - a value passed in code or on the command line (an option, a flag) is a
 *   usage error: `UsageError`, exit code 2 (`parseOptions`);
 * - a value read from a file (a config file, a model folder's JSON, a
 *   dataset row) is bad input: `InputError`, exit code 1 (`parseFile`).
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

type Message = (issue: { input?: unknown }) => string;
const got =
  (rule: string): Message =>
  (issue) =>
    `must be ${rule}, got ${describe(issue.input)}`;

function rangeText(min: number, max: number | undefined): string {
  return max === undefined ? `≥ ${min}` : `in [${min}, ${max}]`;
}

/** An integer ≥ min (and ≤ max): "must be an integer ≥ 1, got 0". */
export function integer(min: number, max?: number) {
  const error = got(`an integer ${rangeText(min, max)}`);
  const base = z.number({ error }).int({ error }).min(min, { error });
  return max === undefined ? base : base.max(max, { error });
}

/** A finite number in a range; open ends with gt/lt: number({ gt: 0, lt: 1 }) → "must be in (0, 1)". */
export function number(range: { gt?: number; min?: number; max?: number; lt?: number }) {
  const low = range.gt !== undefined ? `(${range.gt}` : range.min !== undefined ? `[${range.min}` : undefined;
  const high = range.lt !== undefined ? `${range.lt})` : range.max !== undefined ? `${range.max}]` : undefined;
  const rule =
    low && high
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
  const error = got(rule);
  let schema = z.number({ error }).finite({ error });
  if (range.gt !== undefined) schema = schema.gt(range.gt, { error });
  if (range.min !== undefined) schema = schema.min(range.min, { error });
  if (range.max !== undefined) schema = schema.max(range.max, { error });
  if (range.lt !== undefined) schema = schema.lt(range.lt, { error });
  return schema;
}

/** One of a fixed list: "must be one of npy, torch, got "x"". */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: got(`one of ${values.join(', ')}`) });
}

/** How formatZodError names keys and what it may add. */
export interface ZodMessageOptions {
  /** How the key path ("a.0.b") is named (default optionLabel: "maxFrames (--max-frames)"). */
  label?: (key: string) => string;
  /** The validated value: messages without "got" get ", got <value at the path>". */
  input?: unknown;
  /** Listed after an unknown key. */
  knownKeys?: readonly string[];
}

/**
 * The one line for a zod failure: where, the option or key (first issue),
 * and the schema's message.
 *
 * @example
 * formatZodError(z.object({ quality: integer(1, 100) }).safeParse({ quality: 0 }).error!, 'render');
 * // 'render: quality must be an integer in [1, 100], got 0'
 */
export function formatZodError(error: z.ZodError, where: string, options: ZodMessageOptions = {}): string {
  const issue = error.issues[0];
  if (!issue) return `${where}: invalid`;
  const label = options.label ?? optionLabel;
  if (issue.code === 'unrecognized_keys') {
    const known = options.knownKeys ? ` (known keys: ${options.knownKeys.join(', ')})` : '';
    return `${where}: unknown ${issue.keys.length > 1 ? 'keys' : 'key'} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${known}`;
  }
  const path = issue.path.map(String);
  const key = path.length === 0 ? '' : `${label(path.join('.'))} `;
  let value: unknown = options.input;
  for (const p of path)
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[p] : undefined;
  const got = 'input' in options && !/\bgot\b/.test(issue.message) ? `, got ${describe(value)}` : '';
  return `${where}: ${key}${issue.message}${got}`;
}

/** Validates options passed in code or from flags (UsageError, exit 2). */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: string,
  code = 'E_OPTION',
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new UsageError(formatZodError(parsed.error, where, { input }), code);
  return parsed.data;
}

/** Validates values read from a file (InputError, exit 1); keys are named as written in the file ("where: key: message"). */
export function parseFile<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: string,
  code = 'E_CONFIG',
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success)
    throw new InputError(formatZodError(parsed.error, where, { input, label: (key) => `${key}:` }), code);
  return parsed.data;
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
  const parsed = integer(rule.min, rule.max).safeParse(value);
  if (!parsed.success)
    throw new UsageError(
      `${rule.where ? `${rule.where}: ` : ''}${name} ${parsed.error.issues[0]!.message}`,
      rule.code ?? 'E_OPTION',
    );
  return parsed.data;
}

/**
 * Checks one number option, the counterpart of checkInteger: throws UsageError
 * "where: name must be in [0, 1], got value" (ranges as `number` words them;
 * NaN and ±Infinity are refused).
 *
 * @example
 * checkNumber(2, 'contextShare (--context-share)', { min: 0, max: 1, where: 'fastvid' });
 * // throws 'fastvid: contextShare (--context-share) must be in [0, 1], got 2'
 */
export function checkNumber(
  value: unknown,
  name: string,
  rule: { gt?: number; min?: number; max?: number; lt?: number; where?: string; code?: string },
): number {
  const { where, code, ...range } = rule;
  const parsed = number(range).safeParse(value);
  if (!parsed.success)
    throw new UsageError(`${where ? `${where}: ` : ''}${name} ${parsed.error.issues[0]!.message}`, code ?? 'E_OPTION');
  return parsed.data;
}
