import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath, readFrames } from '../encoders/ffmpeg.js';
import { mergeAdjacentFrames } from '../reducers/temporal-merge.js';
import { samplesRoot } from '../samples/paths.js';
import { planVideo } from '../video/pipeline.js';
import { measure, syntheticFeatures, type Benchmark } from './harness.js';

/**
 * Video pipeline costs: temporal merging at CLIP-L size (64 frames × 576
 * tokens × 1024 dims → 8), ffmpeg frame sampling of a 60 s 640×360 clip, and
 * the whole dry-run plan on the bundled sample video.
 */
export const videoBenchmark: Benchmark = {
  description:
    'temporal merge 64×576×1024 → 8 frames; ffmpeg 1 fps sampling of a 60 s 640×360 video; planVideo on samples/video/scenes.mp4',
  async run({ runs, log }) {
    const frames = Array.from({ length: 64 }, (_, f) => syntheticFeatures(576 * 1024, f + 1));
    const merge = await measure('temporal merge 64×576×1024 → 8 frames', runs, () =>
      mergeAdjacentFrames(frames, 1024, 8),
    );
    merge.extra = { 'frames/s': +((64 / merge.medianMs) * 1000).toFixed(0) };
    log(`temporal merge: ${merge.medianMs.toFixed(1)} ms`);

    const dir = mkdtempSync(join(tmpdir(), 'vtc-bench-video-'));
    try {
      const video = join(dir, 'testsrc-60s.mp4');
      const made = spawnSync(ffmpegPath(), [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc=duration=60:size=640x360:rate=25',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-pix_fmt',
        'yuv420p',
        '-y',
        video,
      ]);
      if (made.status !== 0) throw new Error(`could not make the benchmark video: ${made.stderr.toString().trim()}`);
      const sample = await measure('ffmpeg sampling 60 s 640×360 @ 1 fps → 60 RGB frames 448×252', runs, () =>
        readFrames(video, { fps: 1, maxFrames: 64, maxSide: 448 }),
      );
      sample.extra = { 'frames/s': +((60 / sample.medianMs) * 1000).toFixed(0) };
      log(`ffmpeg sampling: ${sample.medianMs.toFixed(1)} ms`);
      const plan = await measure('planVideo scenes.mp4 (12 frames, patch encoder, 4 frames out)', runs, () =>
        planVideo(join(samplesRoot, 'video', 'scenes.mp4'), { frames: 4 }),
      );
      log(`planVideo: ${plan.medianMs.toFixed(1)} ms`);
      return [merge, sample, plan];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
