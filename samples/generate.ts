/**
 * Regenerates every sample the demo and tests use:
 *   samples/images/*.png  scenes drawn with @napi-rs/canvas
 *   samples/video/scenes.mp4  six seconds, four distinct scenes, ffmpeg/libx264
 * and then runs the other areas' generators when present
 * (samples/text/generate.ts, samples/bench/generate.ts).
 *
 * Run: node --import tsx samples/generate.ts   (deterministic: same bytes for
 * the images; the video depends only on the ffmpeg build).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';
import { ffmpegPath } from '../encoders/ffmpeg.js';
import { familyPath, loadFont } from '../render/fonts.js';
import { samplesRoot } from './paths.js';

const root = samplesRoot;

type Draw = (ctx: SKRSContext2D, w: number, h: number, t: number) => void;

function sky(ctx: SKRSContext2D, w: number, h: number, top: string, bottom: string): void {
  const g = ctx.createLinearGradient(0, 0, 0, h);
  g.addColorStop(0, top);
  g.addColorStop(1, bottom);
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, w, h);
}

function label(ctx: SKRSContext2D, text: string, x: number, y: number, size: number, colour = '#ffffff'): void {
  ctx.font = `${size}px "${loadFont(familyPath('DejaVu Sans Bold')).alias}"`;
  ctx.fillStyle = colour;
  ctx.fillText(text, x, y);
}

/** Sunset over hills with a setting sun (t moves the sun down). */
const sunset: Draw = (ctx, w, h, t) => {
  sky(ctx, w, h, '#ff5e3a', '#ffb347');
  ctx.fillStyle = '#ffe066';
  ctx.beginPath();
  ctx.arc(w * 0.7, h * (0.35 + 0.15 * t), h * 0.14, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#7a1f1f';
  ctx.beginPath();
  ctx.moveTo(0, h);
  for (let x = 0; x <= w; x += w / 8) ctx.lineTo(x, h * 0.72 + Math.sin((x / w) * 7) * h * 0.06);
  ctx.lineTo(w, h);
  ctx.fill();
};

/** Blue sea with a sailing boat moving right. */
const ocean: Draw = (ctx, w, h, t) => {
  sky(ctx, w, h, '#4aa3ff', '#bfe3ff');
  ctx.fillStyle = '#0b4f8a';
  ctx.fillRect(0, h * 0.55, w, h * 0.45);
  ctx.strokeStyle = '#9fd0ff';
  ctx.lineWidth = Math.max(1, h / 90);
  for (let y = h * 0.62; y < h; y += h * 0.08) {
    ctx.beginPath();
    for (let x = 0; x <= w; x += w / 32) ctx.lineTo(x, y + Math.sin(x / 9 + t * 6) * h * 0.01);
    ctx.stroke();
  }
  const bx = w * (0.15 + 0.6 * t);
  ctx.fillStyle = '#ffffff';
  ctx.beginPath();
  ctx.moveTo(bx, h * 0.25);
  ctx.lineTo(bx, h * 0.52);
  ctx.lineTo(bx + w * 0.12, h * 0.52);
  ctx.fill();
  ctx.fillStyle = '#6b3b12';
  ctx.fillRect(bx - w * 0.05, h * 0.53, w * 0.2, h * 0.05);
};

/** Green meadow with trees and a red ball bouncing. */
const meadow: Draw = (ctx, w, h, t) => {
  sky(ctx, w, h, '#a8e6ff', '#e8fbff');
  ctx.fillStyle = '#2e9e3a';
  ctx.fillRect(0, h * 0.5, w, h * 0.5);
  for (const x of [0.1, 0.3, 0.85]) {
    ctx.fillStyle = '#6b4a2b';
    ctx.fillRect(w * x - w * 0.012, h * 0.38, w * 0.024, h * 0.16);
    ctx.fillStyle = '#1d6b25';
    ctx.beginPath();
    ctx.arc(w * x, h * 0.34, h * 0.1, 0, Math.PI * 2);
    ctx.fill();
  }
  ctx.fillStyle = '#e02020';
  ctx.beginPath();
  ctx.arc(w * (0.4 + 0.3 * t), h * (0.85 - 0.3 * Math.abs(Math.sin(t * Math.PI * 2))), h * 0.07, 0, Math.PI * 2);
  ctx.fill();
};

/** Night city: dark sky, moon, lit windows, a sign. */
const night: Draw = (ctx, w, h, t) => {
  sky(ctx, w, h, '#05051a', '#1b1b4a');
  ctx.fillStyle = '#f5f0c8';
  ctx.beginPath();
  ctx.arc(w * 0.18, h * 0.2, h * 0.08, 0, Math.PI * 2);
  ctx.fill();
  const buildings = [0.3, 0.45, 0.6, 0.75, 0.9];
  for (const [i, x] of buildings.entries()) {
    const top = h * (0.35 + 0.08 * (i % 3));
    ctx.fillStyle = '#2a2a3a';
    ctx.fillRect(w * x - w * 0.06, top, w * 0.12, h - top);
    ctx.fillStyle = '#ffd84a';
    for (let y = top + h * 0.05; y < h - h * 0.05; y += h * 0.09) {
      for (let c = 0; c < 3; c++)
        if ((i + c + Math.round(y) + Math.floor(t * 3)) % 3 !== 0)
          ctx.fillRect(w * x - w * 0.045 + c * w * 0.035, y, w * 0.02, h * 0.04);
    }
  }
  label(ctx, 'OPEN 24H', w * 0.04, h * 0.9, Math.round(h * 0.09), '#ff4fd8');
};

/** A bar chart "document" image: text-heavy sample with fine detail. */
const chart: Draw = (ctx, w, h) => {
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, w, h);
  label(ctx, 'Quarterly sales (units)', w * 0.06, h * 0.1, Math.round(h * 0.05), '#222222');
  const values = [42, 65, 30, 88];
  const colours = ['#3b82f6', '#10b981', '#f59e0b', '#ef4444'];
  for (const [i, v] of values.entries()) {
    const x = w * (0.12 + i * 0.2);
    const barH = (h * 0.6 * v) / 100;
    ctx.fillStyle = colours[i]!;
    ctx.fillRect(x, h * 0.85 - barH, w * 0.12, barH);
    label(ctx, `Q${i + 1}`, x + w * 0.03, h * 0.93, Math.round(h * 0.04), '#222222');
    label(ctx, String(v), x + w * 0.03, h * 0.83 - barH, Math.round(h * 0.04), '#222222');
  }
  ctx.strokeStyle = '#222222';
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(w * 0.08, h * 0.15);
  ctx.lineTo(w * 0.08, h * 0.85);
  ctx.lineTo(w * 0.95, h * 0.85);
  ctx.stroke();
};

/** The video's scenes in order, with what each shows (used by docs and tests). */
export const videoScenes: { name: string; description: string; draw: Draw }[] = [
  { name: 'sunset', description: 'red-orange sunset over dark red hills', draw: sunset },
  { name: 'ocean', description: 'blue sea with a white sailing boat', draw: ocean },
  { name: 'meadow', description: 'green meadow with trees and a red ball', draw: meadow },
  { name: 'night', description: 'night city with a moon and an OPEN 24H sign', draw: night },
];

/** Seconds per scene and frame rate of samples/video/scenes.mp4. */
export const VIDEO = { width: 320, height: 180, fps: 10, secondsPerScene: 1.5 } as const;

function renderRgb(draw: Draw, w: number, h: number, t: number): Uint8Array {
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');
  draw(ctx, w, h, t);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const rgb = new Uint8Array(w * h * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    rgb[q] = rgba[p]!;
    rgb[q + 1] = rgba[p + 1]!;
    rgb[q + 2] = rgba[p + 2]!;
  }
  return rgb;
}

/**
 * Writes the scene PNGs; returns their paths.
 *
 * @example
 * await generateImages('/tmp/scenes'); // ['/tmp/scenes/ocean.png', …]
 */
export async function generateImages(dir = join(root, 'images')): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const scenes: [string, Draw, number, number][] = [
    ['ocean.png', ocean, 640, 480],
    ['meadow.png', meadow, 640, 480],
    ['night.png', night, 800, 450],
    ['chart.png', chart, 600, 600],
  ];
  const paths: string[] = [];
  for (const [name, draw, w, h] of scenes) {
    const canvas = createCanvas(w, h);
    draw(canvas.getContext('2d'), w, h, 0.5);
    const path = join(dir, name);
    writeFileSync(path, await canvas.encode('png'));
    paths.push(path);
  }
  return paths;
}

/**
 * Encodes the scene video by piping canvas frames into ffmpeg (libx264, yuv420p).
 *
 * @example
 * await generateVideo('/tmp/scenes.mp4');
 */
export async function generateVideo(path = join(root, 'video', 'scenes.mp4')): Promise<string> {
  mkdirSync(dirname(path), { recursive: true });
  const { width, height, fps, secondsPerScene } = VIDEO;
  const perScene = Math.round(secondsPerScene * fps);
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    '-s',
    `${width}x${height}`,
    '-r',
    String(fps),
    '-i',
    'pipe:0',
    '-c:v',
    'libx264',
    '-preset',
    'slow',
    '-crf',
    '30',
    '-threads',
    '1',
    '-pix_fmt',
    'yuv420p',
    '-g',
    String(perScene),
    '-movflags',
    '+faststart',
    '-y',
    path,
  ];
  const child = spawn(ffmpegPath(), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${stderr.trim()}`)),
    );
  });
  for (const scene of videoScenes) {
    for (let i = 0; i < perScene; i++) {
      const frame = renderRgb(scene.draw, width, height, i / perScene);
      if (!child.stdin.write(frame)) await new Promise((r) => child.stdin.once('drain', r));
    }
  }
  child.stdin.end();
  await done;
  return path;
}

/**
 * Runs another area's generator (samples/<area>/generate.ts) when it exists,
 * as its own process so it behaves exactly as when run by hand.
 */
async function runOptional(area: string): Promise<string | undefined> {
  const file = join(root, area, 'generate.ts');
  if (!existsSync(file)) return undefined;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit', cwd: join(root, '..') });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} exited with code ${code}`))));
  });
  return file;
}

/** Regenerates every sample (this area's, then samples/text and samples/bench when they have generators). */
export async function generateAll(): Promise<void> {
  const images = await generateImages();
  process.stdout.write(`images: ${images.length} written to ${join(root, 'images')}\n`);
  const video = await generateVideo();
  process.stdout.write(`video: ${video}\n`);
  for (const area of ['text', 'bench']) {
    const ran = await runOptional(area);
    process.stdout.write(
      ran ? `${area}: regenerated by ${ran}\n` : `${area}: no generator (samples/${area}/generate.ts) found\n`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await generateAll();
}
