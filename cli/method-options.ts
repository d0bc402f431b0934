import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { InputError, UsageError } from '../core/errors.js';
import type { Matrix } from '../core/linalg.js';
import { decodeNpy } from '../core/npy.js';
import { reducers, type AnyReducer, type OptionSpec } from '../reducers/index.js';
import { parseInteger, parseIntegerList, parseNumber } from './run.js';

/**
 * The reducers' own options (declared in each reducer's `options`) as CLI
 * flags, shared by `vtc reduce` and `vtc compress`: camelCase name → --kebab-flag.
 */

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Every method-specific option once (methods may share names), with the methods that take it. */
export function methodOptions(): Map<string, { spec: OptionSpec; methods: string[] }> {
  const all = new Map<string, { spec: OptionSpec; methods: string[] }>();
  for (const reducer of Object.values(reducers)) {
    for (const [name, spec] of Object.entries(reducer.options)) {
      const entry = all.get(name);
      if (entry) entry.methods.push(reducer.name);
      else all.set(name, { spec, methods: [reducer.name] });
    }
  }
  return all;
}

/** Adds a flag per method option; a flag the command already has is left to the command. */
export function addMethodOptions(command: Command): Command {
  for (const [name, { spec, methods }] of methodOptions()) {
    const flag = `--${kebab(name)}`;
    if (command.options.some((o) => o.long === flag)) continue;
    const help = `${spec.description} [${methods.join(', ')}]${spec.default !== undefined ? ` (default ${spec.default})` : ''}`;
    const parser =
      spec.type === 'integer'
        ? parseInteger(flag)
        : spec.type === 'number'
          ? parseNumber(flag)
          : spec.type === 'integer-list'
            ? parseIntegerList(flag)
            : (v: string) => v;
    const value = spec.type === 'npy' ? '<file.npy>' : spec.type === 'json' ? '<file.json>' : '<value>';
    command.addOption(
      spec.type === 'boolean'
        ? new Option(flag, help)
        : new Option(`${flag} ${value}`, help).argParser<unknown>(parser),
    );
  }
  return command;
}

/** The parsed values of `reducer`'s own options that were given. */
export function methodOptionValues(reducer: AnyReducer, opts: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(reducer.options)
      .filter((name) => opts[name] !== undefined)
      .map((name) => [name, opts[name]]),
  );
}

/**
 * `methodOptionValues` with every 'npy' option (a file path on the command
 * line) loaded: a [d] array becomes a Float32Array, [m, d] a Matrix. The CLI
 * reads files so reducers never do.
 *
 * @example
 * await loadMethodOptions(cdpruner, { query: 'q.npy', theta: 0.5 }); // { query: Float32Array(1024), theta: 0.5 }
 */
export async function loadMethodOptions(
  reducer: AnyReducer,
  opts: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const values = methodOptionValues(reducer, opts);
  for (const [name, spec] of Object.entries(reducer.options)) {
    if (spec.type === 'npy' && typeof values[name] === 'string')
      values[name] = await loadNpyOption(`--${kebab(name)}`, values[name] as string);
    if (spec.type === 'json' && typeof values[name] === 'string')
      values[name] = await loadJsonOption(`--${kebab(name)}`, values[name] as string);
  }
  return values;
}

/** An option file's bytes; errors name the flag and the file. */
async function readOptionFile(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      `${flag} ${path}: ${code === 'ENOENT' ? 'file not found' : `cannot read (${(error as Error).message})`}`,
      code === 'ENOENT' ? 'E_NOENT' : 'E_READ',
    );
  }
}

/** A .json option file parsed (any JSON value; the reducer checks its shape); errors name the flag and the file. */
export async function loadJsonOption(flag: string, path: string): Promise<unknown> {
  const text = (await readOptionFile(flag, path)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(`${flag} ${path}: not valid JSON (${(error as Error).message})`, 'E_JSON');
  }
}

/** A .npy option file as a vector ([d]) or a row matrix ([m, d]); errors name the flag and the file. */
export async function loadNpyOption(flag: string, path: string): Promise<Float32Array | Matrix> {
  const bytes = await readOptionFile(flag, path);
  const { shape, data } = decodeNpy(bytes, `${flag} ${path}`);
  if (shape.length === 1) return data;
  if (shape.length === 2) return { rows: shape[0]!, cols: shape[1]!, data };
  throw new InputError(
    `${flag} ${path}: expected a [d] vector or [m, d] rows, got shape (${shape.join(', ')})`,
    'E_SHAPE',
  );
}

/** A flag of another method would otherwise be ignored silently (e.g. --kernel with tome). */
export function rejectForeignMethodOptions(reducer: AnyReducer, opts: Record<string, unknown>): void {
  for (const [name, { methods }] of methodOptions()) {
    if (opts[name] !== undefined && !(name in reducer.options))
      throw new UsageError(
        `${reducer.name}: --${kebab(name)} does not apply (it is an option of ${methods.join(', ')})`,
      );
  }
}

/** `--query-text` + `--dual-encoder`: the instruction for query-conditioned methods (cdpruner) through a dual encoder's text tower. */
export function addQueryTextOptions(command: Command): Command {
  return command
    .option(
      '--query-text <text>',
      "instruction text, embedded by --dual-encoder's text tower into the query (methods with a query option: cdpruner)",
    )
    .option(
      '--dual-encoder <dir>',
      'CLIP-style dual encoder (dual.json, vision.onnx, text.onnx, tokenizer.json) whose text tower embeds --query-text',
    );
}

/**
 * The method options with `query` filled from `--query-text` (one L2-normalised
 * text embedding from the dual encoder's text tower), when given.
 */
export async function withTextQuery(
  reducer: AnyReducer,
  opts: Record<string, unknown>,
  values: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  if (opts.queryText === undefined && opts.dualEncoder === undefined) return values;
  if (!('query' in reducer.options))
    throw new UsageError(`${reducer.name}: --query-text does not apply (the method takes no query)`);
  if (opts.queryText === undefined || opts.dualEncoder === undefined)
    throw new UsageError(`${reducer.name}: --query-text and --dual-encoder go together`);
  if (values.query !== undefined)
    throw new UsageError(`${reducer.name}: give either --query or --query-text, not both`);
  // Imported here: the dual encoder brings sharp and a tokenizer, which `vtc reduce` without --query-text never needs.
  const { loadDualEncoder } = await import('../video/dual-encoder.js');
  const dual = await loadDualEncoder(String(opts.dualEncoder));
  try {
    return { ...values, query: await dual.embedText(String(opts.queryText)) };
  } finally {
    await dual.dispose();
  }
}
