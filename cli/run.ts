import { type Command, CommanderError, InvalidArgumentError } from 'commander';
import { VtcError } from '../core/errors.js';

/**
 * Shared CLI plumbing: number parsers that reject junk with a usage error,
 * JSON/human output, and the error handler that maps failures to exit codes
 * (0 ok, 1 failure, 2 usage) with one clear line (stack only with --verbose).
 */

export function parseNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} expects a number, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function parseInteger(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n))
      throw new InvalidArgumentError(`${flag} expects an integer, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function parseIntegerList(flag: string) {
  return (value: string): number[] => {
    const parts = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    const numbers = parts.map(Number);
    if (parts.length === 0 || numbers.some((n) => !Number.isInteger(n)))
      throw new InvalidArgumentError(`${flag} expects comma-separated integers, got ${JSON.stringify(value)}`);
    return numbers;
  };
}

export function parseNumberList(flag: string) {
  return (value: string): number[] => {
    const parts = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    const numbers = parts.map(Number);
    if (parts.length === 0 || numbers.some((n) => !Number.isFinite(n)))
      throw new InvalidArgumentError(`${flag} expects comma-separated numbers, got ${JSON.stringify(value)}`);
    return numbers;
  };
}

/** Prints one JSON object on stdout (machine-readable mode). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer)}\n`);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView))
    return Array.from(value as unknown as ArrayLike<number>);
  return value;
}

export function isVerbose(): boolean {
  return process.argv.includes('--verbose');
}

/** Turns any thrown value into one stderr line and an exit code. */
export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // commander already printed its message; help/version exit 0.
    if (
      error.code === 'commander.helpDisplayed' ||
      error.code === 'commander.version' ||
      error.code === 'commander.help'
    )
      return 0;
    return 2;
  }
  const verbose = isVerbose();
  if (error instanceof VtcError) {
    process.stderr.write(`vtc: error: ${error.message}\n`);
    if (verbose && error.stack) process.stderr.write(`${error.stack}\n`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`vtc: error: ${message}\n`);
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return 1;
}

/** Applies exitOverride + consistent error output to a command and its subcommands. */
export function configureCommand(command: Command): Command {
  command.exitOverride();
  command.configureOutput({
    outputError: (text, write) => write(`vtc: ${text.replace(/^error: /, 'error: ').trimEnd()}\n`),
  });
  command.showSuggestionAfterError(true);
  return command;
}
