/**
 * Typed errors. Every user-facing failure is a VtcError carrying the exit code
 * the CLI should use: 2 for usage errors (bad flags, unknown names, values out
 * of range), 1 for everything else (bad files, bad data, failed runs).
 */
export class VtcError extends Error {
  readonly exitCode: 1 | 2;
  readonly code: string;
  constructor(message: string, code = 'E_VTC', exitCode: 1 | 2 = 1) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A flag or option value the user gave is invalid (exit code 2). */
export class UsageError extends VtcError {
  constructor(message: string, code = 'E_USAGE') {
    super(message, code, 2);
  }
}

/** Input data (a file, a tensor, a dataset row) is malformed (exit code 1). */
export class InputError extends VtcError {
  constructor(message: string, code = 'E_INPUT') {
    super(message, code, 1);
  }
}

/** Shapes or metadata of tensors do not agree (exit code 1). */
export class ShapeError extends VtcError {
  constructor(message: string) {
    super(message, 'E_SHAPE', 1);
  }
}

/** Formats a value for an error message ("expected X, got Y"). */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined)
    return String(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
