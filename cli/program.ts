import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { BENCHMARK_NAMES } from '../bench/names.js';
import { configureCommand, reportError } from './run.js';

/**
 * The `vtc` program, loaded lazily: each command module pulls in its own
 * dependencies (sharp, @napi-rs/canvas, tesseract.js, tokenizers, BullMQ,
 * onnxruntime-node, …), and importing all of them costs far more than most
 * commands' own work. So the program lists every command from the static table
 * below and imports only the module of the command argv selects; the others
 * stay stubs that carry just what the top-level help shows (name, arguments,
 * whether it has options, description). test/cli/startup.test.ts checks that
 * this help, and every command's own help, are byte-identical to a program
 * with every module loaded, so the table cannot drift from the commands.
 */

export interface CommandEntry {
  name: string;
  /** The command's arguments as its help lists them ('<input>', '[name]', '<image...>'), '' for none. */
  args: string;
  /** Whether it has options of its own (the help shows "[options]"). */
  options: boolean;
  description: string;
  /** Imports the command's module and builds the command. */
  load: () => Promise<Command>;
}

// In the order a newcomer meets them: demo, the token pipeline, then text, video, evaluation, tools.
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'demo',
    args: '',
    options: true,
    description: 'run the offline demo on the bundled samples and write an HTML/Markdown report',
    load: async () => (await import('./commands/demo.js')).demoCommand(),
  },
  {
    name: 'encode',
    args: '<input>',
    options: true,
    description:
      'encode an image (one tile or AnyRes thumbnail + crops) or a video (sampled frames) into visual tokens',
    load: async () => (await import('./commands/encode.js')).encodeCommand(),
  },
  {
    name: 'reduce',
    args: '',
    options: true,
    description: 'reduce a token file with a registered method and write the result',
    load: async () => (await import('./commands/reduce.js')).reduceCommand(),
  },
  {
    name: 'compress',
    args: '<input>',
    options: true,
    description:
      'encode an image (or the sampled frames of a video), reduce its tokens with a method, and draw which patches were kept or merged',
    load: async () => (await import('./commands/compress.js')).compressCommand(),
  },
  {
    name: 'prompt',
    args: '<conversation>',
    options: true,
    description:
      'plan a Qwen2.5-VL / Qwen3-VL prompt: token layout, 3-D M-RoPE position ids and rope delta for text + (reduced) image/video token files',
    load: async () => (await import('./commands/prompt.js')).promptCommand(),
  },
  {
    name: 'export',
    args: '<tokens>',
    options: true,
    description:
      'write the serving payload (image_embeds content part) of a token file for an embeddings-enabled server',
    load: async () => (await import('./commands/export.js')).exportCommand(),
  },
  {
    name: 'render',
    args: '<text>',
    options: true,
    description: 'render long text to compact page images (Glyph) and report text vs vision tokens',
    load: async () => (await import('./commands/render.js')).renderCommand(),
  },
  {
    name: 'video-qa',
    args: '<video>',
    options: true,
    description: 'answer a question about a video with any OpenAI-compatible VLM, sending only the frames that matter',
    load: async () => (await import('./commands/video-qa.js')).videoQaCommand(),
  },
  {
    name: 'ask',
    args: '<image...>',
    options: true,
    description:
      'ask any OpenAI-compatible VLM about images within a vision-token budget (downsample or focus on regions)',
    load: async () => (await import('./commands/ask.js')).askCommand(),
  },
  {
    name: 'tokens',
    args: '<image...>',
    options: true,
    description: 'vision tokens a provider bills for images, with the size it processes them at',
    load: async () => (await import('./commands/tokens.js')).tokensCommand(),
  },
  {
    name: 'eval',
    args: '',
    options: false,
    description: 'VTC-Bench evaluation: analyse lmms-eval logs, or run a dataset through a model for methods × ratios',
    load: async () => (await import('./commands/eval.js')).evalCommand(),
  },
  {
    name: 'models',
    args: '',
    options: false,
    description: 'manage encoder models: download from the Hugging Face hub, list presets',
    load: async () => (await import('./commands/models.js')).modelsCommand(),
  },
  {
    name: 'bench',
    args: '[name]',
    options: true,
    // The same words as cli/commands/bench.ts (bench/names.ts has no imports).
    description: `run a performance benchmark and print medians over repeated runs (${BENCHMARK_NAMES.join(', ')})`,
    load: async () => (await import('./commands/bench.js')).benchCommand(),
  },
];

/** Thrown when commander dispatches to a command that was not loaded; main() loads it and parses again. */
export class CommandNotLoaded extends Error {
  constructor(readonly command: string) {
    super(`command ${command} was not loaded`);
  }
}

/**
 * The `vtc` program with the named commands' modules loaded ('all': every
 * module) and the rest as stubs. A stub is never run: dispatching to one
 * throws CommandNotLoaded before it parses anything.
 */
export async function buildProgram(load: 'all' | readonly string[] = 'all'): Promise<Command> {
  const pkg = readPackageJson();
  const program = configureCommand(new Command('vtc'))
    .description('vtc — visual and multimodal token compression for vision-language models')
    .version(pkg.version, '-V, --version')
    .option('--verbose', 'print stack traces on errors');
  const commands = await Promise.all(
    COMMANDS.map((entry) => (load === 'all' || load.includes(entry.name) ? entry.load() : stubCommand(entry))),
  );
  const stubs = new Set(commands.filter((_, i) => !(load === 'all' || load.includes(COMMANDS[i]!.name))));
  for (const command of commands) program.addCommand(command);
  for (const sub of program.commands) configureCommand(sub);
  program.hook('preSubcommand', (_program, sub) => {
    if (stubs.has(sub)) throw new CommandNotLoaded(sub.name());
  });
  return program;
}

/** What the top-level help shows of a command, nothing more. */
function stubCommand(entry: CommandEntry): Command {
  const stub = new Command(entry.name).description(entry.description);
  if (entry.args) stub.arguments(entry.args);
  // The help shows "[options]" when a command has any option; a hidden one stands in for the real ones.
  if (entry.options) stub.addOption(new Option('--stub').hideHelp());
  return stub;
}

/**
 * The commands whose modules argv needs: the first word that is not a flag
 * (the program's own flags take no values), or for `vtc help <command>` the
 * word after it (commander prints that help without dispatching).
 */
export function commandsIn(argv: readonly string[]): string[] {
  const words = argv.slice(2).filter((arg) => !arg.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return COMMANDS.some((entry) => entry.name === name) ? [name!] : [];
}

/**
 * Parses argv and runs the command it names, with only that command's module
 * loaded (`preload`: the modules to import up front, by default the one argv
 * names); returns the exit code (errors printed as one line by reportError).
 */
export async function runProgram(argv: readonly string[], preload = commandsIn(argv)): Promise<number> {
  const load = [...preload];
  for (;;) {
    try {
      await (await buildProgram(load)).parseAsync(argv);
      return 0;
    } catch (error) {
      // commander chose a command argv's first word did not name: load it too and parse again (nothing ran yet).
      if (error instanceof CommandNotLoaded && !load.includes(error.command)) {
        load.push(error.command);
        continue;
      }
      return reportError(error);
    }
  }
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
