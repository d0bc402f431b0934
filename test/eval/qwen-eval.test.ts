import { strict as assert } from 'node:assert';
import { rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { runCli, tempDir } from '../helpers.js';
import { closeAll, listenOn } from '../servers.js';
import { writeTinyQwen } from '../encoders/tiny-qwen.js';

/**
 * `vtc eval run --encoder <Qwen tower folder>`: token-level methods encode each
 * image with the Qwen tower at its dynamic resolution and send vLLM's dict
 * form — `image_grid_thw` for a full lattice (pool), positions for a pruned set
 * (random). A 224×224 image at 14 px is a 16×16 patch grid, 8×8 = 64 merged tokens.
 */
const dir = tempDir('vtc-qwen-eval-');
const servers: Server[] = [];
after(() => {
  closeAll(servers);
  rmSync(dir, { recursive: true, force: true });
});

/** True when the little-endian int64 run `values` occurs in `bytes` (the tensor data inside a torch.save zip). */
function containsInt64s(bytes: Uint8Array, values: bigint[]): boolean {
  const needle = new Uint8Array(BigInt64Array.from(values).buffer);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

test('vtc eval run with a Qwen tower sends image_grid_thw for pool and positions for random', async () => {
  await writeTinyQwen(join(dir, 'q25'), { family: 'qwen2.5-vl', dim: 8, heads: 2, outDim: 6, seed: 21 });
  const raw = Buffer.alloc(224 * 224 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) % 251;
  await sharp(raw, { raw: { width: 224, height: 224, channels: 3 } })
    .png()
    .toFile(join(dir, 'img.png'));
  const dataset = join(dir, 'd.jsonl');
  writeFileSync(
    dataset,
    `${JSON.stringify({ id: 's0', image: 'img.png', question: 'Say apple.', answer: 'apple' })}\n`,
  );
  const parts: Record<string, unknown>[] = [];
  const base = await listenOn(servers, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const content = JSON.parse(body).messages[0].content as { type: string; image_embeds?: unknown }[];
      for (const part of content)
        if (part.type === 'image_embeds') parts.push(part.image_embeds as Record<string, unknown>);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'apple' } }] }));
    });
  });
  const r = await runCli([
    'eval',
    'run',
    '--dataset',
    dataset,
    '--model',
    'qwen-tiny',
    '--endpoint',
    `${base}/v1`,
    '--methods',
    'pool,random',
    '--ratios',
    '2',
    '--encoder',
    join(dir, 'q25'),
    '--embeds-format',
    'torch',
    '--out',
    join(dir, 'out'),
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(parts.length, 2);
  const pooled = parts.find((p) => 'image_grid_thw' in p)!;
  const pruned = parts.find((p) => 'image_positions' in p)!;
  assert.ok(pooled && pruned, `one grid and one positions part, got ${JSON.stringify(parts.map(Object.keys))}`);
  // pool at K = 2 keeps 1/4: a 4×4 merged lattice, sent as an 8×8 patch grid.
  const grid = new Uint8Array(Buffer.from(pooled.image_grid_thw as string, 'base64'));
  assert.ok(containsInt64s(grid, [1n, 8n, 8n]), 'image_grid_thw = [1, 8, 8]');
  const embeds = new Uint8Array(Buffer.from(pooled.image_embeds as string, 'base64'));
  assert.ok(new TextDecoder('latin1').decode(embeds).includes('FloatStorage'), 'embeddings as a torch float tensor');
  // random keeps round(64 / 4) = 16 of the 64 tokens: 16 (t, h, w) rows inside the 8×8 merged grid.
  const positions = new Uint8Array(Buffer.from(pruned.image_positions as string, 'base64'));
  assert.ok(new TextDecoder('latin1').decode(positions).includes('LongStorage'), 'positions as a torch int64 tensor');
  const summary = JSON.parse(r.stdout);
  // Jobs: the uncompressed image, the downsample baseline at K = 2, pool and random.
  assert.equal(summary.done, 4);
});
