#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { benchCommand } from './commands/bench.js';
import { renderCommand } from './commands/render.js';
import { evalCommand } from './commands/eval.js';
import { reduceCommand } from './commands/reduce.js';
import { demoCommand } from './commands/demo.js';
import { videoQaCommand } from './commands/video-qa.js';
import { encodeCommand } from './commands/encode.js';
import { compressCommand } from './commands/compress.js';
import { modelsCommand } from './commands/models.js';
import { configureCommand, reportError } from './run.js';

/** The `vtc` command: a thin layer over the library (see README). */
export function buildProgram(): Command {
  const pkg = readPackageJson();
  const program = configureCommand(new Command('vtc'))
    .description('vtc — visual and multimodal token compression for vision-language models')
    .version(pkg.version, '-V, --version')
    .option('--verbose', 'print stack traces on errors');
  program.addCommand(demoCommand());
  program.addCommand(reduceCommand());
  program.addCommand(benchCommand());
  program.addCommand(renderCommand());
  program.addCommand(evalCommand());
  program.addCommand(videoQaCommand());
  program.addCommand(encodeCommand());
  program.addCommand(compressCommand());
  program.addCommand(modelsCommand());
  for (const sub of program.commands) configureCommand(sub);
  return program;
}

/** The package's own package.json, found from src (cli/) or build (dist/cli/) alike. */
function readPackageJson(): { version: string } {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'vtc-toolkit') return pkg;
    } catch {
      // not at this level; try the next
    }
  }
  return { version: 'unknown' };
}

export async function main(argv = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    return reportError(error);
  }
}

const code = await main();
process.exitCode = code;
