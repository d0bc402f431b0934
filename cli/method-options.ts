import { Option, type Command } from 'commander';
import { UsageError } from '../core/errors.js';
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
    const parser = spec.type === 'integer' ? parseInteger(flag) : spec.type === 'number' ? parseNumber(flag) : spec.type === 'integer-list' ? parseIntegerList(flag) : (v: string) => v;
    command.addOption(spec.type === 'boolean' ? new Option(flag, help) : new Option(`${flag} <value>`, help).argParser<unknown>(parser));
  }
  return command;
}

/** The parsed values of `reducer`'s own options that were given. */
export function methodOptionValues(reducer: AnyReducer, opts: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(reducer.options).filter((name) => opts[name] !== undefined).map((name) => [name, opts[name]]));
}

/** A flag of another method would otherwise be ignored silently (e.g. --kernel with tome). */
export function rejectForeignMethodOptions(reducer: AnyReducer, opts: Record<string, unknown>): void {
  for (const [name, { methods }] of methodOptions()) {
    if (opts[name] !== undefined && !(name in reducer.options)) throw new UsageError(`${reducer.name}: --${kebab(name)} does not apply (it is an option of ${methods.join(', ')})`);
  }
}
