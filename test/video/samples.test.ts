import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { probeVideo, sceneChanges } from '../../encoders/ffmpeg.js';
import { generateImages, generateVideo, VIDEO, videoScenes } from '../../samples/generate.js';
import { repoRoot, tempDir } from '../helpers.js';

test('samples/generate.ts redraws the committed scene images byte for byte', async () => {
  const files = await generateImages(tempDir());
  assert.deepEqual(files.map((f) => basename(f)).sort(), ['chart.png', 'meadow.png', 'night.png', 'ocean.png']);
  for (const file of files) {
    assert.ok(readFileSync(file).equals(readFileSync(join(repoRoot, 'samples', 'images', basename(file)))), `${basename(file)} differs from the committed sample`);
  }
});

test('samples/generate.ts encodes the scene video: 6 s, 320×180, cuts exactly between the four scenes, small', async () => {
  const path = await generateVideo(join(tempDir(), 'scenes.mp4'));
  const info = await probeVideo(path);
  assert.deepEqual([info.width, info.height, info.duration, info.fps], [VIDEO.width, VIDEO.height, videoScenes.length * VIDEO.secondsPerScene, VIDEO.fps]);
  assert.deepEqual(await sceneChanges(path, 0.3), [1.5, 3, 4.5]);
  assert.ok(statSync(path).size < 300_000, `video is ${statSync(path).size} bytes`);
  const committed = join(repoRoot, 'samples', 'video', 'scenes.mp4');
  assert.ok(statSync(committed).size < 300_000);
});
