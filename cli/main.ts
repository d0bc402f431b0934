#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { askCommand } from './commands/ask.js';
import { benchCommand } from './commands/bench.js';
import { compressCommand } from './commands/compress.js';
import { demoCommand } from './commands/demo.js';
import { encodeCommand } from './commands/encode.js';
import { evalCommand } from './commands/eval.js';
import { modelsCommand } from './commands/models.js';
import { promptCommand } from './commands/prompt.js';
import { reduceCommand } from './commands/reduce.js';
import { renderCommand } from './commands/render.js';
import { tokensCommand } from './commands/tokens.js';
import { exportCommand } from './commands/export.js';
import { videoQaCommand } from './commands/video-qa.js';
import { configureCommand, reportError } from './run.js';

/** The `vtc` command: a thin layer over the library (see README). */
export function buildProgram(): Command {
  const pkg = readPackageJson();
  const program = configureCommand(new Command('vtc'))
    .description('vtc — visual and multimodal token compression for vision-language models')
    .version(pkg.version, '-V, --version')
    .option('--verbose', 'print stack traces on errors');
  // In the order a newcomer meets them: demo, the token pipeline, then text, video, evaluation, tools.
  for (const command of [
    demoCommand(),
    encodeCommand(),
    reduceCommand(),
    compressCommand(),
    promptCommand(),
    exportCommand(),
    renderCommand(),
    videoQaCommand(),
    askCommand(),
    tokensCommand(),
    evalCommand(),
    modelsCommand(),
    benchCommand(),
  ]) {
    program.addCommand(command);
  }
  for (const sub of program.commands) configureCommand(sub);
  return program;
}

/** The package's own package.json, found from src (cli/) or build (dist/cli/) alike. */
function readPackageJson(): { version: string } {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as {
        name?: string;
        version: string;
      };
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
