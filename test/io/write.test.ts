import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createTokenSet } from '../../core/tokenset.js';
import { saveTokens } from '../../encoders/tokenfile.js';
import { OutputError, writeFileAtomic, writeFileAtomicSync } from '../../io/write.js';

// Tests run as root in CI, where permissions do not stop a write; these use failures root hits too.
const dir = mkdtempSync(join(tmpdir(), 'vtc-write-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every entry under a folder, recursively (temp files are hidden dot-files). */
function tree(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: false }).map(String).sort();
}

test('a folder in the way: the write fails naming the path, and no temp file stays behind', async () => {
  const target = join(dir, 'a', 'tokens.npy');
  mkdirSync(target, { recursive: true }); // a folder where the file should go: rename fails after the temp file is complete
  const tokens = createTokenSet({ n: 2, d: 2, data: new Float32Array([1, 2, 3, 4]) });
  await assert.rejects(saveTokens(target, tokens), (e: unknown) => {
    assert.ok(e instanceof OutputError);
    assert.equal(e.message, `cannot write ${target}: a folder with that name is in the way`);
    assert.equal(e.exitCode, 1);
    return true;
  });
  assert.deepEqual(tree(join(dir, 'a')), ['tokens.npy']);
});

test('a parent that is a file: one line in words, no raw ENOTDIR or temp name', async () => {
  writeFileSync(join(dir, 'plain'), 'x');
  const target = join(dir, 'plain', 'out.json');
  await assert.rejects(
    writeFileAtomic(target, '{}'),
    (e: unknown) =>
      e instanceof OutputError &&
      e.message === `cannot write ${target}: a part of ${join(dir, 'plain')} is a file, not a folder`,
  );
  assert.throws(
    () => writeFileAtomicSync(target, '{}'),
    (e: unknown) => e instanceof OutputError && !/ENOTDIR|tmp-/.test(e.message),
  );
  const missing = join(dir, 'gone', 'out.json');
  await assert.rejects(
    writeFileAtomic(missing, '{}'),
    (e: unknown) =>
      e instanceof OutputError &&
      e.message ===
        `cannot write ${missing}: the folder ${join(dir, 'gone')} does not exist (or vanished while writing)`,
  );
});

test('a successful write replaces the file whole and leaves only it', async () => {
  const target = join(dir, 'b', 'report.json');
  mkdirSync(join(dir, 'b'));
  await writeFileAtomic(target, 'old');
  await writeFileAtomic(target, 'new');
  assert.deepEqual(tree(join(dir, 'b')), ['report.json']);
});
