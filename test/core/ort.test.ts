import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { repoRoot } from '../helpers.js';

test('running an onnxruntime session writes nothing under home (telemetry off) and prints no warning', () => {
  const home = mkdtempSync(join(tmpdir(), 'vtc-home-'));
  try {
    const fromDist = import.meta.url.endsWith('.js');
    const linalg = pathToFileURL(
      fromDist ? join(repoRoot, 'dist', 'core', 'linalg.js') : join(repoRoot, 'core', 'linalg.ts'),
    ).href;
    const script = `const { matmulABt, matrix } = await import(${JSON.stringify(linalg)}); const a = matrix(2, 2, new Float32Array([1, 2, 3, 4])); console.log(Array.from((await matmulABt(a, a, 'native')).data).join(','));`;
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache') };
    delete env.ORT_DISABLE_TELEMETRY;
    const run = spawnSync(
      process.execPath,
      [...(fromDist ? [] : ['--import', 'tsx']), '--input-type=module', '-e', script],
      { env, encoding: 'utf8', cwd: repoRoot },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '5,11,11,25');
    assert.equal(run.stderr, '');
    assert.deepEqual(readdirSync(home, { recursive: true }), []);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
