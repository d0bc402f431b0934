#!/usr/bin/env node
import { runProgram } from './program.js';

/**
 * The `vtc` command: a thin layer over the library (see README). Only the
 * module of the command argv names is imported (cli/program.ts), so
 * `vtc --version`, any `--help` and `vtc reduce` do not pay for sharp, canvas,
 * OCR or tokenizers.
 */
export function main(argv = process.argv): Promise<number> {
  return runProgram(argv);
}

// A closed pipe (`vtc … | head`) is a normal way for output to end, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const code = await main();
// A command may set a failing exit code itself after printing its output; keep it.
process.exitCode = code !== 0 ? code : (process.exitCode ?? 0);
