import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UsageError } from '../../core/errors.js';
import { createEndpointModel, type EvalModel } from '../../eval/models.js';
import { runEval } from '../../eval/runner.js';
import { encodePage, writePages } from '../../render/pages.js';
import { ocrPages } from '../../render/ocr.js';
import { DEFAULT_CONFIG } from '../../render/config.js';
import { renderText } from '../../render/pages.js';
import { videoQa } from '../../video/qa.js';
import { runCli, tempDir } from '../helpers.js';

/**
 * Every option limit the CLI enforces is the library's: a library caller
 * gets the same UsageError, word for word, that `vtc` prints (after
 * "vtc: error: ") with exit code 2.
 */

const dir = tempDir('vtc-options-');
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'in.txt'), 'hello world');

async function libraryMessage(run: () => unknown): Promise<string> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('the library accepted an option the CLI rejects');
}

async function cliMessage(args: string[]): Promise<string> {
  const run = await runCli(args);
  assert.equal(run.code, 2, run.stderr);
  const match = /^vtc: error: (.*)\n$/.exec(run.stderr);
  assert.ok(match, `one error line expected, got ${JSON.stringify(run.stderr)}`);
  return match[1]!;
}

const page = renderText('hello', DEFAULT_CONFIG).pages[0]!;
const ocrModel: EvalModel = { name: 'ocr', answer: async () => ({ text: '' }) as never, close: async () => {} };

const cases: { name: string; library: () => unknown; cli: string[]; expected: string }[] = [
  {
    name: 'render quality',
    library: () => encodePage(page, 'jpeg', 0),
    cli: ['render', join(dir, 'in.txt'), '--out', join(dir, 'q'), '--format', 'jpeg', '--quality', '0'],
    expected: 'render: quality must be an integer in [1, 100], got 0',
  },
  {
    name: 'render format',
    library: () => writePages([page], join(dir, 'f'), { format: 'gif' as never }),
    cli: ['render', join(dir, 'in.txt'), '--out', join(dir, 'f'), '--format', 'gif'],
    expected: 'render: format must be one of png, jpeg, webp, got "gif"',
  },
  {
    name: 'OCR upscale',
    library: () => ocrPages([page], { upscale: 9 }),
    cli: ['render', join(dir, 'in.txt'), '--out', join(dir, 'u'), '--ocr', '--ocr-upscale', '9'],
    expected: 'render: upscale (--ocr-upscale) must be an integer in [1, 8], got 9',
  },
  {
    name: 'embeds format',
    library: () =>
      createEndpointModel({ endpoint: 'http://127.0.0.1:9/v1', model: 'm', embedsFormat: 'pickle' as never }),
    cli: [
      'eval',
      'run',
      '--dataset',
      join(dir, 'none.jsonl'),
      '--model',
      'm',
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--embeds-format',
      'pickle',
      '--out',
      join(dir, 'e'),
    ],
    expected: 'eval run: embedsFormat (--embeds-format) must be one of npy, torch, got "pickle"',
  },
  {
    name: 'OCR model with token-level methods',
    library: () =>
      runEval({
        dataset: join(dir, 'none.jsonl'),
        model: ocrModel,
        methods: ['pool'],
        ratios: [2],
        results: join(dir, 'r.jsonl'),
        context: { encoder: {} as never },
      }),
    cli: [
      'eval',
      'run',
      '--dataset',
      join(dir, 'none.jsonl'),
      '--model',
      'ocr',
      '--methods',
      'pool',
      '--encoder',
      'patch',
      '--out',
      join(dir, 'e'),
    ],
    expected:
      'eval run: token-level methods (pool) need an endpoint model served by vLLM with --enable-mm-embeds, not the ocr reader',
  },
  {
    name: 'eval concurrency',
    library: () =>
      runEval({
        dataset: join(dir, 'none.jsonl'),
        model: ocrModel,
        methods: [],
        ratios: [2],
        results: join(dir, 'r.jsonl'),
        concurrency: 0,
      }),
    cli: [
      'eval',
      'run',
      '--dataset',
      join(dir, 'none.jsonl'),
      '--model',
      'ocr',
      '--concurrency',
      '0',
      '--out',
      join(dir, 'e'),
    ],
    expected: 'eval run: concurrency must be an integer ≥ 1, got 0',
  },
  {
    name: 'video-qa frames and token budget',
    library: () => videoQa(join(dir, 'none.mp4'), { question: 'q', dryRun: true, frames: 2, tokenBudget: 500 }),
    cli: ['video-qa', join(dir, 'none.mp4'), '-q', 'q', '--dry-run', '--frames', '2', '--token-budget', '500'],
    expected: 'video-qa: give either frames (--frames) or tokenBudget (--token-budget), not both',
  },
  {
    name: 'video-qa max tokens',
    library: () => videoQa(join(dir, 'none.mp4'), { question: 'q', dryRun: true, maxTokens: 0 }),
    cli: ['video-qa', join(dir, 'none.mp4'), '-q', 'q', '--dry-run', '--max-tokens', '0'],
    expected: 'video-qa: maxTokens (--max-tokens) must be an integer ≥ 1, got 0',
  },
];

for (const c of cases) {
  test(`library and CLI reject the same way: ${c.name}`, async () => {
    assert.equal(await libraryMessage(c.library), c.expected);
    assert.equal(await cliMessage(c.cli), c.expected);
  });
}

test('vtc bench: --runs and --threads below 1 and unknown benchmarks are usage errors (exit 2), before anything runs', async () => {
  const runs = await runCli(['bench', 'gemm', '--runs', '0']);
  assert.equal(runs.code, 2);
  assert.equal(runs.stderr.trim(), 'vtc: error: bench: --runs must be an integer ≥ 1, got 0');
  const threads = await runCli(['bench', 'gemm', '--threads', '0']);
  assert.equal(threads.code, 2);
  assert.equal(threads.stderr.trim(), 'vtc: error: bench: --threads must be an integer ≥ 1, got 0');
  const unknown = await runCli(['bench', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /bench: unknown benchmark "nope" \(available: gemm, .*\bscale\b.*\)/);
  assert.match(unknown.stderr, /\bpytorch\b/);
});
