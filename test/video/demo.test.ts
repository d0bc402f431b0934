import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { reducers } from '../../reducers/index.js';
import type { DemoSummary } from '../../samples/demo.js';
import { runCli, tempDir } from '../helpers.js';

test('vtc demo writes a consistent offline report: overlays, Glyph pages, contact sheet, index.html, summary.md', {
  timeout: 120_000,
}, async () => {
  const out = join(tempDir(), 'demo');
  const result = await runCli(['demo', '--out', out]);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as DemoSummary;
  assert.deepEqual(summary.failures, []);

  // Every sample image × every image reducer × {25%, 10%}; the video reducers on the sample video's frames.
  const methods = Object.values(reducers)
    .filter((m) => m.scope !== 'video')
    .map((m) => m.name);
  const videoMethods = Object.values(reducers)
    .filter((m) => m.scope === 'video')
    .map((m) => m.name);
  const images = [...new Set(summary.images.map((r) => r.image))];
  assert.deepEqual(images, ['chart.png', 'meadow.png', 'night.png', 'ocean.png', 'scenes.mp4']);
  assert.equal(summary.images.length, (4 * methods.length + videoMethods.length) * 2);
  for (const method of [...methods, ...videoMethods])
    assert.ok(
      summary.images.some((r) => r.method === method),
      `no rows for ${method}`,
    );
  // evs on 6 frames × 576 tokens: max(one frame, round(3456·R)) → 864 at 25%, 576 at 10%.
  const evsRows = summary.images.filter((r) => r.method === 'evs');
  assert.deepEqual(
    evsRows.map((r) => [r.image, r.tokensIn, r.tokensOut]),
    [
      ['scenes.mp4', 3456, 864],
      ['scenes.mp4', 3456, 576],
    ],
  );
  for (const row of summary.images) {
    assert.ok(
      row.tokensOut >= 1 && row.tokensOut <= row.tokensIn,
      `${row.method}: ${row.tokensOut} of ${row.tokensIn}`,
    );
    if (['random', 'divprune', 'cluster', 'tome', 'visionzip'].includes(row.method)) {
      // One 24×24 tile: budget = round(576·R).
      assert.equal(row.tokensIn, 576);
      assert.equal(row.tokensOut, Math.round(576 * row.ratio), `${row.method} @ ${row.ratio}`);
    }
    if (row.method === 'globalcom2') {
      // Thumbnail 576 + unpadded crop tokens (640×480 → 672² canvas, 36 of 48 rows; 800×450 → 28 rows); one floor per tile.
      const expectedIn = {
        'chart.png': 576 + 48 * 48,
        'meadow.png': 576 + 36 * 48,
        'night.png': 576 + 28 * 48,
        'ocean.png': 576 + 36 * 48,
      }[row.image];
      assert.equal(row.tokensIn, expectedIn, row.image);
      assert.ok(
        row.tokensOut <= row.ratio * row.tokensIn && row.tokensOut > row.ratio * row.tokensIn - 5,
        `globalcom2 ${row.image} @ ${row.ratio}: ${row.tokensOut} of ${row.tokensIn}`,
      );
    }
    const meta = await sharp(join(out, row.overlay)).metadata();
    assert.equal(meta.format, 'png');
    if (row.tokensIn === 576) assert.deepEqual([meta.width, meta.height], [336, 336]);
  }

  // Glyph: compression is text tokens / vision tokens; page files exist; OCR fidelity is high on clean pages.
  const g = summary.glyph!;
  assert.equal(g.source, 'samples/text/essay-35k.txt');
  assert.ok(g.pages >= 1 && g.pageFiles.length === g.pages);
  for (const f of g.pageFiles) assert.ok(existsSync(join(out, f)), f);
  assert.ok(Math.abs(g.compression - g.textTokens / g.visionTokens) < 1e-9);
  assert.ok(g.compression > 1, `compression ${g.compression}`);
  assert.ok(g.cer >= 0 && g.cer < 0.1, `CER ${g.cer}`);

  // Video: 4 frames of 320×180 under qwen2.5-vl = 66 tokens each; uniform 1 fps over 6 s = 6 frames.
  const v = summary.video!;
  assert.equal(v.frames.length, 4);
  assert.equal(v.tokensSent, 4 * 66);
  assert.equal(v.tokensUniform, 6 * 66);
  assert.equal((await sharp(join(out, v.contactSheet)).metadata()).format, 'png');
  const request = JSON.parse(readFileSync(join(out, v.request), 'utf8')) as {
    messages: { content: { type: string }[] }[];
  };
  assert.equal(request.messages[0]!.content.filter((p) => p.type === 'image_url').length, v.frames.length);
  for (const f of v.frames) assert.ok(v.clips.some((c) => f.t >= c.start && f.t < c.end));

  // index.html: only relative links, each to a file that exists; no remote resources.
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  const links = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(links.length >= summary.images.length + g.pages + 2);
  for (const link of links) {
    assert.ok(!/^[a-z]+:|^\/\//i.test(link) && !link.startsWith('/'), `non-relative link ${link}`);
    assert.ok(existsSync(join(out, link)), `broken link ${link}`);
  }
  // summary.md carries the same numbers.
  const md = readFileSync(join(out, 'summary.md'), 'utf8');
  assert.ok(md.includes(`| ${g.textTokens} | ${g.visionTokens} | ${g.compression.toFixed(2)}x |`));
  assert.ok(md.includes(`${v.tokensSent} vision tokens vs ${v.tokensUniform}`));
  assert.ok(md.includes('| ocean.png | random | 576 | 144 | 58 |'));
  assert.ok(
    md.includes('one call each') && html.includes('one call each'),
    'the ms columns say they are single calls, not medians',
  );
  // The printed table and lines carry the same numbers.
  assert.match(result.stdout, /^image\s+method\s+tokens in\s+kept @ 25%\s+kept @ 10%/);
  assert.match(result.stdout, /ocean\.png\s+random\s+576\s+144\s+58/);
  assert.ok(
    result.stdout.includes(
      `${g.textTokens} text tokens vs ${g.visionTokens} vision tokens (qwen2.5-vl) = ${g.compression.toFixed(2)}x`,
    ),
  );
  assert.ok(result.stdout.includes(`${v.tokensSent} vision tokens vs ${v.tokensUniform} for uniform 1 fps`));
  assert.ok(result.stdout.includes(`report: ${join(out, 'index.html')}`));
});

test('a demo part that fails is reported, never silent: exit 1, one line, failures in the report', async () => {
  const dir = tempDir();
  const out = join(dir, 'demo');
  const result = await runCli(['demo', '--samples', join(dir, 'no-samples'), '--out', out]);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    `vtc: error: demo: 3 part(s) failed: images, glyph, video (details in ${out}/summary.md)\n`,
  );
  assert.match(result.stdout, /FAILED images: sample images missing: .*no-samples\/images/);
  assert.match(result.stdout, /FAILED glyph: no sample text: expected a \.txt file in .*no-samples\/text/);
  assert.match(result.stdout, /FAILED video: video not found: .*no-samples\/video\/scenes\.mp4/);
  const md = readFileSync(join(out, 'summary.md'), 'utf8');
  assert.match(md, /## Failures\n\n- \*\*images\*\*: sample images missing/);
  assert.ok(readFileSync(join(out, 'index.html'), 'utf8').includes('<h2 class="fail">Failures</h2>'));
});
