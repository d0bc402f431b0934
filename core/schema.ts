import { z } from 'zod';
import { InputError, UsageError, describe } from './errors.js';
import { integerRule, mustBe, type NumberRange, numberRule, optionLabel } from './validate.js';

/**
 * zod schema helpers for options and config files: schemas built from the
 * helpers below carry their own messages, worded as core/validate.ts's
 * checks word them ("must be an integer ≥ 1, got 0"); `formatZodError` turns
 * the first issue into one line; `parseOptions` (values from code or flags →
 * UsageError) and `parseFile` (values read from a file → InputError) follow
 * validate.ts's rule. Kept apart from validate.ts so that modules needing only
 * the one-option checks (every reducer) do not load zod.
 */

type Message = (issue: { input?: unknown }) => string;
const got =
  (rule: string): Message =>
  (issue) =>
    mustBe(rule, issue.input);

/** An integer ≥ min (and ≤ max): "must be an integer ≥ 1, got 0". */
export function integer(min: number, max?: number) {
  const error = got(integerRule(min, max));
  const base = z.number({ error }).int({ error }).min(min, { error });
  return max === undefined ? base : base.max(max, { error });
}

/** A finite number in a range; open ends with gt/lt: number({ gt: 0, lt: 1 }) → "must be in (0, 1)". */
export function number(range: NumberRange) {
  const error = got(numberRule(range));
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
