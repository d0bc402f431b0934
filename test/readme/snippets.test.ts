import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import ts from 'typescript';
import { encodeNpy } from '../../core/npy.js';
import { Rng } from '../../core/rng.js';
import { repoRoot, tempDir } from '../helpers.js';

/**
 * Every ```ts block of README.md runs as written against the built package
 * (`import … from 'vtc-toolkit'` resolves to this checkout's package.json,
 * i.e. dist/index.js), in a temp folder holding the files the snippets name.
 */

const dir = tempDir('vtc-readme-');
after(() => rmSync(dir, { recursive: true, force: true }));

export function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

test('README has ts snippets, and the extractor finds exactly the fenced ts blocks', () => {
  assert.deepEqual(tsBlocks('a\n```ts\nconst x = 1;\n```\n```sh\nls\n```\n```ts\nf();\n```\n'), [
    'const x = 1;\n',
    'f();\n',
  ]);
  assert.ok(tsBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8')).length >= 1);
});

test('every README ts snippet runs as written against the built package', async () => {
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(repoRoot, join(dir, 'node_modules', 'vtc-toolkit'), 'dir');
  // The files the snippets read: a LLaVA-1.5-sized token matrix and a photo.
  const rng = new Rng(1);
  const values = Float32Array.from({ length: 576 * 1024 }, () => rng.float() * 2 - 1);
  writeFileSync(join(dir, 'tokens.npy'), encodeNpy([576, 1024], values));
  await sharp(join(repoRoot, 'samples', 'images', 'ocean.png'))
    .jpeg()
    .toFile(join(dir, 'photo.jpg'));
  const blocks = tsBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
  const outputs = blocks.map((source, i) => {
    const js = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const file = join(dir, `snippet-${i + 1}.mjs`);
    writeFileSync(file, js);
    const run = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, `README snippet ${i + 1} failed:\n${source}\n${run.stderr}`);
    return run.stdout;
  });
  // The library block prints the pooled size and the assignment length first: 576 → 144 at ratio 0.25.
  assert.ok(
    outputs.some((out) => out.split('\n')[0] === '144 576'),
    outputs.join('\n---\n'),
  );
});
