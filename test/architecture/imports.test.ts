import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layering rules of docs/architecture.md, checked on the compiled
 * sources (dist/, without dist/test): type-only imports are gone there, so
 * every edge is one that runs. Static imports, re-exports and dynamic
 * import('…') with a literal specifier all count.
 *
 * 1. No import cycle, between files or between top-level folders (the
 *    package root index.js, which re-exports every folder, is left out of
 *    the folder graph).
 * 2. core/ imports only core/; reducers/ imports only core/ and reducers/;
 *    client/ imports only core/ and client/ (it sits below every caller).
 * 3. core/ and reducers/ import no Node built-in and no package, except the
 *    in-memory native layer: `onnxruntime-node` from core/ort.ts (telemetry off), core/linalg.ts and
 *    core/linalg-*.ts (sessions built from graph bytes, never from files; core/onnx-graph.ts
 *    writes those bytes itself), and `zod` from core/schema.ts (option schemas, pure).
 */

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ImportGraph {
  /** Relative path of each module (posix separators) → its imports. */
  files: Map<string, { local: string[]; external: string[] }>;
}

export function readImportGraph(root: string, skip: (path: string) => boolean): ImportGraph {
  const files: ImportGraph['files'] = new Map();
  (function walk(dir: string): void {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path).split(sep).join('/');
      if (skip(rel)) continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.js')) {
        const local: string[] = [];
        const external: string[] = [];
        for (const { fileName } of ts.preProcessFile(readFileSync(path, 'utf8'), true, true).importedFiles) {
          if (fileName.startsWith('.'))
            local.push(
              relative(root, resolve(dirname(path), fileName))
                .split(sep)
                .join('/'),
            );
          else external.push(fileName);
        }
        files.set(rel, { local, external });
      }
    }
  })(root);
  return { files };
}

/** Every elementary cycle found by a depth-first search (one per back edge), as paths a → … → a. */
export function findCycles(graph: ImportGraph): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.files.get(file)?.local ?? []) {
      if (!graph.files.has(next)) continue;
      const s = state.get(next);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.files.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

/** The folder graph: an edge a → b when a file under a/ imports one under b/ (a ≠ b), remembering one such file import. */
export function folderGraph(graph: ImportGraph): ImportGraph & { witness: Map<string, string> } {
  const files: ImportGraph['files'] = new Map();
  const witness = new Map<string, string>();
  for (const [file, { local }] of graph.files) {
    if (!file.includes('/')) continue;
    const from = file.split('/')[0]!;
    const entry = files.get(from) ?? { local: [], external: [] };
    files.set(from, entry);
    for (const target of local) {
      if (!target.includes('/')) continue;
      const to = target.split('/')[0]!;
      if (to === from || entry.local.includes(to)) continue;
      entry.local.push(to);
      witness.set(`${from} → ${to}`, `${file} → ${target}`);
    }
  }
  for (const entry of files.values()) entry.local.sort();
  return { files, witness };
}

const LOCAL_LAYERS: Record<string, readonly string[]> = {
  core: ['core'],
  reducers: ['core', 'reducers'],
  client: ['core', 'client'],
};

function allowedExternal(file: string, specifier: string): boolean {
  const folder = file.split('/')[0];
  if (folder === 'client') return true;
  if (specifier === 'onnxruntime-node') return /^core\/(linalg(-[\w-]+)?|ort)\.js$/.test(file);
  if (specifier === 'zod') return file === 'core/schema.js';
  return false;
}

/** Violations of rules 2 and 3 as readable lines. */
export function layerViolations(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [file, { local, external }] of graph.files) {
    const folder = file.split('/')[0]!;
    const allowed = LOCAL_LAYERS[folder];
    if (!allowed) continue;
    for (const target of local) {
      const targetFolder = target.split('/')[0]!;
      if (!allowed.includes(targetFolder))
        out.push(`${file} imports ${target} (${folder}/ may import only ${allowed.map((f) => `${f}/`).join(', ')})`);
    }
    for (const specifier of external)
      if (!allowedExternal(file, specifier)) out.push(`${file} imports ${specifier} (${folder}/ does no I/O)`);
  }
  return out.sort();
}

const graph = readImportGraph(distRoot, (rel) => rel === 'test' || rel.endsWith('.d.ts') || rel.endsWith('.map'));

test('the compiled sources are found (dist/ without dist/test)', () => {
  for (const file of ['index.js', 'core/tokenset.js', 'cli/main.js', 'client/openai.js'])
    assert.ok(graph.files.has(file), `${file} missing from ${distRoot}`);
  assert.ok(![...graph.files.keys()].some((f) => f.startsWith('test/')));
});

test('no file-level import cycle', () => {
  const cycles = findCycles(graph).map((c) => c.join(' → '));
  assert.deepEqual(cycles, []);
});

test('no import cycle between folders', () => {
  const folders = folderGraph(graph);
  const cycles = findCycles(folders).map((c) =>
    c.map((f, i) => (i === 0 ? f : `${folders.witness.get(`${c[i - 1]} → ${f}`)}`)).join(' → '),
  );
  assert.deepEqual(cycles, []);
});

test('core/, reducers/ and client/ import only the layers below them, and core/ and reducers/ do no I/O', () => {
  assert.deepEqual(layerViolations(graph), []);
});

test('no shipped module imports test code', () => {
  const offenders = [...graph.files]
    .filter(([, { local }]) => local.some((t) => t.startsWith('test/')))
    .map(([f]) => f);
  assert.deepEqual(offenders, []);
});

test('the checks catch a cycle and an I/O import (synthetic graph)', () => {
  const synthetic: ImportGraph = {
    files: new Map([
      ['render/index.js', { local: ['render/search.js'], external: [] }],
      ['render/search.js', { local: ['render/index.js', 'core/rng.js'], external: [] }],
      ['core/rng.js', { local: [], external: [] }],
      ['core/linalg.js', { local: [], external: ['onnxruntime-node'] }],
      ['core/npy.js', { local: ['encoders/image.js'], external: ['node:fs'] }],
      ['reducers/tome.js', { local: ['core/linalg.js'], external: ['onnxruntime-node', 'sharp'] }],
    ]),
  };
  assert.deepEqual(findCycles(synthetic), [['render/index.js', 'render/search.js', 'render/index.js']]);
  const folders = folderGraph({
    files: new Map([
      ['video/qa.js', { local: ['eval/openai.js', 'core/rng.js'], external: [] }],
      ['eval/methods.js', { local: ['video/pipeline.js'], external: [] }],
      ['index.js', { local: ['video/qa.js'], external: [] }],
    ]),
  });
  assert.deepEqual(findCycles(folders), [['eval', 'video', 'eval']]);
  assert.equal(folders.witness.get('video → eval'), 'video/qa.js → eval/openai.js');
  assert.deepEqual(layerViolations(synthetic), [
    'core/npy.js imports encoders/image.js (core/ may import only core/)',
    'core/npy.js imports node:fs (core/ does no I/O)',
    'reducers/tome.js imports onnxruntime-node (reducers/ does no I/O)',
    'reducers/tome.js imports sharp (reducers/ does no I/O)',
  ]);
});
