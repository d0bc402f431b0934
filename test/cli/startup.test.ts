import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import type { Command } from 'commander';
import { encodeNpy } from '../../core/npy.js';
import { Rng } from '../../core/rng.js';
import { buildProgram, COMMANDS, CommandNotLoaded, commandsIn } from '../../cli/program.js';
import { repoRoot, tempDir } from '../helpers.js';

/**
 * The CLI's cold start: `vtc <command>` imports only that command's module
 * (cli/program.ts). A child process runs the CLI with a module hook (written
 * here) that logs every module it resolves or requires; the packages behind
 * them are what a command paid for. The help texts of the lazy program are
 * compared byte for byte with a program that loaded every command module.
 */

const dir = tempDir('vtc-startup-');
after(() => rmSync(dir, { recursive: true, force: true }));

const fromDist = import.meta.url.endsWith('.js');
const cliArgs = fromDist
  ? [join(repoRoot, 'dist', 'cli', 'main.js')]
  : ['--import', 'tsx', join(repoRoot, 'cli', 'main.ts')];

// The resolve hook runs on loader threads; CJS requires made inside CommonJS packages (sharp's native
// binding, …) do not pass through it, so the exit handler also lists require.cache.
const hooks = join(dir, 'hooks.mjs');
writeFileSync(
  hooks,
  `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(log, resolved.url + '\\n');
  return resolved;
}
`,
);
const register = join(dir, 'register.mjs');
writeFileSync(
  register,
  `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
const log = process.env.VTC_STARTUP_LOG;
register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { log } });
const require = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(log, Object.keys(require.cache).join('\\n') + '\\n'));
`,
);

const FORBIDDEN = ['sharp', '@napi-rs/canvas', 'tesseract.js', '@huggingface/tokenizers'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: repoRoot,
      env: { ...process.env, CI: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

let traces = 0;
/** Runs `vtc args` under the hook; the set of npm packages it loaded, by name. */
async function packagesLoaded(args: string[]): Promise<{ run: Run; packages: Set<string> }> {
  const log = join(dir, `trace-${traces++}.log`);
  writeFileSync(log, '');
  const run = await runNode(['--import', pathToFileURL(register).href, ...cliArgs, ...args], {
    VTC_STARTUP_LOG: log,
  });
  const packages = new Set<string>();
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line);
    if (match) packages.add(match[1]!);
  }
  return { run, packages };
}

function assertNoneOf(packages: Set<string>, what: string): void {
  const loaded = FORBIDDEN.filter((name) => packages.has(name));
  assert.deepEqual(loaded, [], `${what} loaded ${loaded.join(', ')}`);
}

/**
 * What `vtc reduce` needs: commander and onnxruntime. Not zod (core/validate.ts's checks are written without
 * it), not onnx-proto/protobufjs (core/onnx-graph.ts writes the graph bytes itself), not cli-progress
 * (required only when a bar is drawn). A package added to the reduce path shows up here: load it lazily,
 * or add it if reduce really needs it.
 */
const REDUCE_PACKAGES = new Set(['commander', 'onnxruntime-node', 'onnxruntime-common']);

function assertOnlyReducePackages(packages: Set<string>, what: string): void {
  const extra = [...packages].filter((name) => !REDUCE_PACKAGES.has(name));
  assert.deepEqual(extra, [], `${what} loaded ${extra.join(', ')}`);
}

test('the trace sees a package a command really loads (vtc tokens <image> loads sharp)', async () => {
  // Without this, a hook that logged nothing would pass every test below.
  const { run, packages } = await packagesLoaded(['tokens', join(repoRoot, 'samples', 'images', 'chart.png')]);
  assert.equal(run.code, 0, run.stderr);
  assert.ok(packages.has('sharp'), [...packages].join(', '));
});

test('vtc --version and vtc --help load commander and nothing else', async () => {
  for (const args of [['--version'], ['--help']]) {
    const { run, packages } = await packagesLoaded(args);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual([...packages], ['commander'], `vtc ${args.join(' ')}`);
  }
});

test('vtc reduce --help loads no image, canvas, OCR or tokenizer package', async () => {
  const { run, packages } = await packagesLoaded(['reduce', '--help']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^Usage: vtc reduce \[options\]/);
  assertNoneOf(packages, 'vtc reduce --help');
  assertOnlyReducePackages(packages, 'vtc reduce --help');
});

test('vtc reduce on a small .npy token file loads none of them and still reduces (tome, 64 → 16)', async () => {
  const rng = new Rng(3);
  const input = join(dir, 'x.npy');
  writeFileSync(
    input,
    encodeNpy(
      [64, 16],
      Float32Array.from({ length: 64 * 16 }, () => rng.float() - 0.5),
    ),
  );
  const out = join(dir, 'y.safetensors');
  const { run, packages } = await packagesLoaded([
    'reduce',
    '--in',
    input,
    '--method',
    'tome',
    '--ratio',
    '0.25',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout) as { method: string; n_in: number; n_out: number; d: number };
  assert.deepEqual([json.method, json.n_in, json.n_out, json.d], ['tome', 64, 16, 16]);
  assertNoneOf(packages, 'vtc reduce --method tome');
  assertOnlyReducePackages(packages, 'vtc reduce --method tome');
  // The method's own kernels do load (the trace is not empty for what reduce needs).
  assert.ok(packages.has('onnxruntime-node'), [...packages].join(', '));
});

test('vtc export on a token file loads commander and nothing else (the payload code is in eval/embeds.ts)', async () => {
  const input = join(dir, 'export.npy');
  writeFileSync(input, encodeNpy([4, 2], Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8)));
  const out = join(dir, 'part.json');
  const { run, packages } = await packagesLoaded(['export', input, '--out', out, '--embeds-format', 'npy']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(readFileSync(out, 'utf8')).type, 'image_embeds');
  assert.deepEqual([...packages], ['commander']);
});

/** Every command path below the program: ['reduce'], ['eval', 'run'], … */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((sub) => [[...prefix, sub.name()], ...commandPaths(sub, [...prefix, sub.name()])]);
}

/** What `--help` prints for the command at `path` (or the program), at the 80 columns a pipe gets. */
function helpText(program: Command, path: string[]): string {
  let command = program;
  for (const name of path) command = command.commands.find((c) => c.name() === name)!;
  let text = '';
  command.configureOutput({ writeOut: (s) => (text += s), getOutHelpWidth: () => 80 });
  command.outputHelp();
  return text;
}

test('every help text of the lazy CLI is byte-identical to the full program, and loads no image, canvas, OCR or tokenizer package', async () => {
  const full = await buildProgram('all');
  const paths = commandPaths(full);
  // The static table lists the commands in the order of the full program.
  assert.deepEqual(
    COMMANDS.map((c) => c.name),
    full.commands.map((c) => c.name()),
  );
  assert.ok(paths.some((p) => p.join(' ') === 'eval run'));
  const all = [[], ...paths];
  // Two children at a time (the suite runs on 2 cores).
  for (let i = 0; i < all.length; i += 2) {
    const pair = all.slice(i, i + 2);
    const runs = await Promise.all(pair.map((path) => packagesLoaded([...path, '--help'])));
    pair.forEach((path, j) => {
      const { run, packages } = runs[j]!;
      assert.equal(run.code, 0, `vtc ${path.join(' ')} --help: ${run.stderr}`);
      assert.equal(run.stdout, helpText(full, path), `vtc ${path.join(' ')} --help differs from the full program's`);
      assertNoneOf(packages, `vtc ${path.join(' ')} --help`);
    });
  }
  // `vtc help <command>` prints without dispatching: argv's second word is loaded too.
  const viaHelp = await runNode([...cliArgs, '--verbose', 'help', 'reduce']);
  assert.equal(viaHelp.stdout, helpText(full, ['reduce']));
});

test('an unknown command gets the same suggestion as before (exit 2)', async () => {
  const run = await runNode([...cliArgs, 'redcue', '--in', 'x.npy']);
  assert.equal(run.code, 2);
  assert.equal(run.stderr, "vtc: error: unknown command 'redcue'\n(Did you mean reduce?)\n");
});

test('commandsIn picks the command argv names: the first word that is not a flag, or the one after help', () => {
  assert.deepEqual(commandsIn(['node', 'vtc', 'reduce', '--in', 'x.npy']), ['reduce']);
  assert.deepEqual(commandsIn(['node', 'vtc', '--verbose', 'eval', 'run']), ['eval']);
  assert.deepEqual(commandsIn(['node', 'vtc', 'help', 'video-qa']), ['video-qa']);
  assert.deepEqual(commandsIn(['node', 'vtc', '--version']), []);
  assert.deepEqual(commandsIn(['node', 'vtc', 'redcue']), []);
});

test('a stub is never run: dispatching to a command that was not loaded throws CommandNotLoaded', async () => {
  const lazy = await buildProgram([]);
  lazy.exitOverride();
  await assert.rejects(lazy.parseAsync(['node', 'vtc', 'reduce', '--in', 'x.npy']), (error: unknown) => {
    assert.ok(error instanceof CommandNotLoaded);
    assert.equal(error.command, 'reduce');
    return true;
  });
});

test('runProgram loads a command argv did not name up front and parses again', async () => {
  // runProgram(argv, []) starts with no command module, as when argv's first word is not the command.
  const script = `const { runProgram } = await import(${JSON.stringify(pathToFileURL(join(repoRoot, fromDist ? 'dist/cli/program.js' : 'cli/program.ts')).href)});
process.exitCode = await runProgram(['node', 'vtc', 'models', 'presets', '--json'], []);`;
  const run = await runNode([...(fromDist ? [] : ['--import', 'tsx']), '--input-type=module', '-e', script]);
  assert.equal(run.code, 0, run.stderr);
  const direct = await runNode([...cliArgs, 'models', 'presets', '--json']);
  assert.equal(run.stdout, direct.stdout);
  assert.ok(run.stdout.length > 2);
});

test('bench/names.ts lists bench/index.ts benchmarks, in order (vtc bench --help reads the list without loading them)', async () => {
  const { benchmarks } = await import('../../bench/index.js');
  const { BENCHMARK_NAMES } = await import('../../bench/names.js');
  assert.deepEqual([...BENCHMARK_NAMES], Object.keys(benchmarks));
});
