import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { probeVideo, sceneChanges } from '../../encoders/ffmpeg.js';
import { generateImages, generateVideo, VIDEO, videoScenes } from '../../samples/generate.js';
import { repoRoot, tempDir } from '../helpers.js';

test('samples/generate.ts redraws the committed scene images (decoded pixels, within antialiasing tolerance)', async () => {
  const files = await generateImages(tempDir());
  assert.deepEqual(files.map((f) => basename(f)).sort(), ['chart.png', 'meadow.png', 'night.png', 'ocean.png']);
  for (const file of files) {
    // PNG bytes depend on the canvas build's encoder; the pixels are what the samples mean.
    const drawn = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const committed = await sharp(join(repoRoot, 'samples', 'images', basename(file)))
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual(
      [drawn.info.width, drawn.info.height],
      [committed.info.width, committed.info.height],
      basename(file),
    );
    let sum = 0;
    let far = 0;
    for (let i = 0; i < drawn.data.length; i++) {
      const diff = Math.abs(drawn.data[i]! - committed.data[i]!);
      sum += diff;
      if (diff > 32) far++;
    }
    assert.ok(
      sum / drawn.data.length <= 1,
      `${basename(file)}: mean channel difference ${(sum / drawn.data.length).toFixed(3)} > 1`,
    );
    assert.ok(far <= drawn.data.length * 0.01, `${basename(file)}: ${far} channel values differ by more than 32`);
  }
});

test('samples/generate.ts encodes the scene video: 6 s, 320×180, cuts exactly between the four scenes, small', async () => {
  const path = await generateVideo(join(tempDir(), 'scenes.mp4'));
  const info = await probeVideo(path);
  assert.deepEqual(
    [info.width, info.height, info.duration, info.fps],
    [VIDEO.width, VIDEO.height, videoScenes.length * VIDEO.secondsPerScene, VIDEO.fps],
  );
  assert.deepEqual(await sceneChanges(path, 0.3), [1.5, 3, 4.5]);
  assert.ok(statSync(path).size < 300_000, `video is ${statSync(path).size} bytes`);
  const committed = join(repoRoot, 'samples', 'video', 'scenes.mp4');
  assert.ok(statSync(committed).size < 300_000);
});
