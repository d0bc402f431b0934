import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers.js';

/** Sources, docs and help text cite no note outside the repository. */

const SKIP = new Set(['node_modules', 'dist', '.git', 'vtc-demo']);

function textFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) textFiles(path, out);
    else if (/\.(ts|mjs|md|json|py)$/.test(name) || name === 'run') out.push(path);
  }
  return out;
}

test('no source, doc or help text cites a design note that is not in the repository', () => {
  const note = ['DES', 'IGN.md'].join(''); // split so this file does not cite it either
  const citing = textFiles(repoRoot)
    .filter((f) => readFileSync(f, 'utf8').includes(note))
    .map((f) => relative(repoRoot, f));
  assert.deepEqual(citing, []);
});
