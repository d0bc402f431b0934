import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { InputError, VtcError } from '../core/errors.js';
import { checkPixelBudget } from '../core/pixels.js';
import type { RgbImage } from './types.js';
import { checkInteger, checkNumber } from '../core/validate.js';

/**
 * ffmpeg as a subprocess: probing, uniform frame sampling and scene-change
 * detection. Frames come back as raw RGB through stdout (no temp files); their
 * timestamps come from the `showinfo` filter on stderr, so they are the real
 * presentation times after sampling, not index/fps guesses.
 *
 * Works with the static 2018 build shipped by @ffmpeg-installer/ffmpeg, hence
 * `-vsync vfr` (not `-fps_mode`) and `select='gt(scene,T)'` (not `scdet`).
 *
 * Results must not depend on which ffmpeg runs (the bundled 2018 build or a
 * system one such as Debian's 5.1), so behaviour that changed between
 * versions is pinned:
 * - scene scores: newer `select` scores YUV planes while the 2018 build
 *   converts to RGB first (a hard cut scored 0.29 vs 1.0); `format=rgb24`
 *   before `select` gives both the same scores;
 * - rotation: the rotate tag (2018) became a display matrix (5.x) and
 *   auto-rotation changed with it; vtc reads the rotation itself
 *   ({@link parseProbe}), decodes with `-noautorotate` and applies its own
 *   transpose/flip ({@link rotationFilter}).
 * `.ci/run` runs the video tests with both binaries (VTC_FFMPEG selects one).
 */

/** Basic facts about a video file, parsed from `ffmpeg -i`. */
export interface VideoInfo {
  path: string;
  width: number;
  height: number;
  /** Seconds; NaN when the container does not say. */
  duration: number;
  /** Frames per second of the video stream; NaN when unknown. */
  fps: number;
  /** Codec name, e.g. 'h264'. */
  codec: string;
  /** Clockwise turn that makes the stored frames upright (rotate tag / display matrix); width and height are already the upright ones. */
  rotation?: 0 | 90 | 180 | 270;
}

/** One decoded frame with its presentation time in seconds. */
export interface VideoFrame {
  /** Position in the sampled sequence (0-based). */
  index: number;
  time: number;
  image: RgbImage;
}

export interface ReadFramesOptions {
  /** Uniform sampling rate in frames per second (default 1). */
  fps?: number;
  /**
   * At most this many frames (default 64). When the video is longer than
   * maxFrames / fps seconds, the rate is lowered so the frames still span the
   * whole video uniformly.
   */
  maxFrames?: number;
  /** Output size; give both, or `maxSide` to keep the aspect ratio. */
  width?: number;
  height?: number;
  /** Longest output side in pixels when width/height are not given (default: the video's own size). */
  maxSide?: number;
  /** Called after each frame arrives (progress). */
  onFrame?: (frame: VideoFrame) => void;
}

let cachedBinary: string | undefined;

/**
 * The ffmpeg executable: $VTC_FFMPEG, else `ffmpeg` on PATH, else the static
 * binary from @ffmpeg-installer/ffmpeg.
 *
 * @example
 * ffmpegPath(); // '/usr/bin/ffmpeg' or '.../node_modules/@ffmpeg-installer/linux-x64/ffmpeg'
 */
export function ffmpegPath(): string {
  if (process.env.VTC_FFMPEG) return process.env.VTC_FFMPEG;
  if (cachedBinary) return cachedBinary;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'ffmpeg');
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return (cachedBinary = candidate);
    } catch {
      // not here; keep looking
    }
  }
  try {
    const require = createRequire(import.meta.url);
    const installer = require('@ffmpeg-installer/ffmpeg') as { path: string };
    accessSync(installer.path, constants.X_OK);
    return (cachedBinary = installer.path);
  } catch {
    throw new VtcError(
      'ffmpeg not found: install ffmpeg on PATH, set VTC_FFMPEG, or reinstall @ffmpeg-installer/ffmpeg',
      'E_FFMPEG_MISSING',
    );
  }
}

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs ffmpeg; stdout chunks go to `onStdout` when given (else are collected). */
function runFfmpeg(args: string[], onStdout?: (chunk: Buffer) => void): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-nostdin', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (onStdout ? onStdout(chunk) : chunks.push(chunk)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => (stderr += text));
    child.on('error', (error) =>
      reject(new VtcError(`cannot start ffmpeg (${ffmpegPath()}): ${error.message}`, 'E_FFMPEG_SPAWN')),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(chunks), stderr }));
  });
}

/** ffmpeg's closing lines that say only that something failed earlier. */
const GENERIC_FAILURE =
  /^(Conversion failed!|Error marking filters as finished|Cannot determine format of input stream|Error while decoding stream|Nothing was written into output file|Output file is empty|At least one output file must be specified)/;
/** Causes, most telling first: a line matching an earlier pattern wins. */
const CAUSES = [
  /partial file/i,
  /invalid data|corrupt/i,
  /moov atom not found/i,
  /no such file|permission denied/i,
  /not supported|unsupported|could not find codec|unknown (encoder|decoder|format)/i,
];

/**
 * The one stderr line that says what went wrong: the most telling cause
 * (truncation, corrupt data, missing moov atom, unsupported codec), else the
 * last line that is not banner, stream listing, showinfo output or a generic
 * "Conversion failed!". Demuxer prefixes like "[mov,mp4 @ 0x…] " are dropped.
 *
 * @example
 * summariseFfmpegError('x.mp4: Invalid data found when processing input\nConversion failed!\n'); // 'x.mp4: Invalid data found when processing input'
 */
export function summariseFfmpegError(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim().replace(/^\[[^\]]* @ 0x[0-9a-f]+\]\s*/i, ''))
    .filter((l) => l.length > 0)
    .filter(
      (l) =>
        !/^(Input #|Output #|Stream |Metadata:|Duration:|Side data:|handler_name|encoder|major_brand|minor_version|compatible_brands|creation_time|\[Parsed_|n:\s*\d+ pts:|color_range|config (in|out)|frame=|Stream mapping|Press \[q\])/.test(
          l,
        ),
    )
    .filter((l) => !GENERIC_FAILURE.test(l));
  for (const cause of CAUSES) {
    const line = lines.find((l) => cause.test(l));
    if (line) return line;
  }
  return lines.at(-1) ?? 'ffmpeg failed without a message';
}

/** Existence, type and size checks before ffmpeg sees the file (clear messages for the common cases). */
function checkVideoFile(path: string): void {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new InputError(`video not found: ${path}`, 'E_NOT_FOUND');
  }
  if (!stats.isFile()) throw new InputError(`video ${path} is not a regular file`, 'E_NOT_FILE');
  if (stats.size === 0) throw new InputError(`video ${path} is empty (0 bytes)`, 'E_EMPTY_FILE');
}

/**
 * Parses `ffmpeg -i` stderr into VideoInfo (a ±90° rotate tag swaps the sides).
 *
 * @example
 * parseProbe('v.mp4', '  Duration: 00:00:06.00, …\n    Stream #0:0: Video: h264 (High), yuv420p, 320x180, 10 fps'); // { width: 320, height: 180, duration: 6, fps: 10, codec: 'h264', … }
 */
export function parseProbe(path: string, stderr: string): VideoInfo {
  const stream = /Stream #\d+:\d+.*?: Video: ([^\s,]+)[^\n]*?, (\d{2,5})x(\d{2,5})/.exec(stderr);
  if (!stream) {
    if (/Input #0/.test(stderr)) throw new InputError(`video ${path} has no video stream`, 'E_NO_VIDEO_STREAM');
    throw new InputError(`video ${path} cannot be read: ${summariseFfmpegError(stderr)}`, 'E_VIDEO_CORRUPT');
  }
  const durationMatch = /Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)/.exec(stderr);
  const duration = durationMatch
    ? Number(durationMatch[1]) * 3600 + Number(durationMatch[2]) * 60 + Number(durationMatch[3])
    : Number.NaN;
  const streamLine = stderr.slice(stream.index).split('\n')[0]!;
  const fpsMatch = /, ([\d.]+) fps/.exec(streamLine) ?? /, ([\d.]+) tbr/.exec(streamLine);
  // Phones store portrait video as landscape + a rotation; vtc turns the decoded
  // frames upright itself, so the frame size has the sides swapped.
  const rotation = probeRotation(stderr.slice(stream.index));
  const quarterTurn = rotation % 180 === 90;
  return {
    path,
    codec: stream[1]!,
    width: Number(quarterTurn ? stream[3] : stream[2]),
    height: Number(quarterTurn ? stream[2] : stream[3]),
    duration,
    fps: fpsMatch ? Number(fpsMatch[1]) : Number.NaN,
    rotation,
  };
}

/**
 * The clockwise rotation of the first video stream: ffmpeg ≥ 5 prints only the
 * display matrix ("displaymatrix: rotation of -90.00 degrees", counter-
 * clockwise), the 2018 build also a `rotate` tag (clockwise). Rounded to a
 * quarter turn.
 */
function probeRotation(streamSection: string): 0 | 90 | 180 | 270 {
  // Only this stream's own lines: stop at the next stream or input.
  const section = streamSection.split(/\n\s*Stream #|\nInput #|\nOutput #/)[0]!;
  const matrix = /displaymatrix: rotation of (-?[\d.]+) degrees/.exec(section);
  const tag = /^\s*rotate\s*:\s*(-?\d+)/m.exec(section);
  const clockwise = matrix ? -Number(matrix[1]) : tag ? Number(tag[1]) : 0;
  const quarter = ((Math.round(clockwise / 90) % 4) + 4) % 4;
  return (quarter * 90) as 0 | 90 | 180 | 270;
}

/**
 * Filters that turn frames stored with a rotation upright (what ffmpeg's
 * auto-rotation does, applied explicitly so every ffmpeg version agrees).
 *
 * @example
 * rotationFilter(90); // 'transpose=clock'
 */
export function rotationFilter(rotation: number | undefined): string {
  if (rotation === 90) return 'transpose=clock';
  if (rotation === 270) return 'transpose=cclock';
  if (rotation === 180) return 'hflip,vflip';
  return '';
}

/**
 * Reads a video's size, duration, frame rate and codec.
 *
 * @example
 * const info = await probeVideo('samples/video/scenes.mp4'); // { width: 320, height: 180, duration: 6, fps: 10, ... }
 */
export async function probeVideo(path: string): Promise<VideoInfo> {
  checkVideoFile(path);
  const { stderr } = await runFfmpeg(['-i', path]);
  return parseProbe(path, stderr);
}

/**
 * Output size for frames: explicit, or the video's size scaled so the long side ≤ maxSide (even sides, never upscaled).
 *
 * @example
 * frameSize({ width: 1920, height: 1080 }, { maxSide: 448 }); // { width: 448, height: 252 }
 */
export function frameSize(
  info: Pick<VideoInfo, 'width' | 'height'>,
  options: Pick<ReadFramesOptions, 'width' | 'height' | 'maxSide'>,
): { width: number; height: number } {
  if (options.width !== undefined || options.height !== undefined) {
    const { width, height } = options;
    checkInteger(width, 'width', { min: 2, where: 'frame size' });
    checkInteger(height, 'height', { min: 2, where: 'frame size' });
    checkPixelBudget(width!, height!, 'frame size');
    return { width: width!, height: height! };
  }
  const maxSide = options.maxSide ?? Math.max(info.width, info.height);
  checkInteger(maxSide, 'maxSide (--max-side)', { min: 2 });
  const scale = Math.min(1, maxSide / Math.max(info.width, info.height));
  const even = (v: number) => Math.max(2, 2 * Math.round((v * scale) / 2));
  return { width: even(info.width), height: even(info.height) };
}

/**
 * Sampling rate that spreads at most maxFrames over the whole duration.
 *
 * @example
 * effectiveFps(6, 10, 8); // 1.333… (8 frames over 6 s instead of 60)
 */
export function effectiveFps(duration: number, fps: number, maxFrames: number): number {
  checkNumber(fps, 'fps', { gt: 0 });
  checkInteger(maxFrames, 'maxFrames (--max-frames)', { min: 1 });
  if (!(duration > 0) || !Number.isFinite(duration)) return fps;
  return Math.min(fps, maxFrames / duration);
}

const SHOWINFO = /\[Parsed_showinfo[^\]]*\]\s+n:\s*(\d+)\s+pts:\s*-?\d+\s+pts_time:\s*(-?[\d.e+-]+)/;

/**
 * pts_time of every frame `showinfo` reported, in order.
 *
 * @example
 * parseShowinfoTimes('[Parsed_showinfo_2 @ 0x1] n:   0 pts:      0 pts_time:0 pos: 1\n[Parsed_showinfo_2 @ 0x1] n:   1 pts:   512 pts_time:0.5 pos: 2'); // [0, 0.5]
 */
export function parseShowinfoTimes(stderr: string): number[] {
  const times: number[] = [];
  for (const line of stderr.split('\n')) {
    const m = SHOWINFO.exec(line);
    if (m) times[Number(m[1])] = Number(m[2]);
  }
  return times;
}

/**
 * ffmpeg `select` expression keeping the first frame at or after each k/rate
 * (k = 0, 1, …); the epsilon absorbs the rounding of rate.toFixed(9).
 *
 * @example
 * uniformSelect(2); // "select='isnan(prev_selected_t)+gte(floor(t*2.000000000+1e-6),floor(prev_selected_t*2.000000000+1e-6)+1)'"
 */
export function uniformSelect(rate: number): string {
  const bin = (t: string) => `floor(${t}*${rate.toFixed(9)}+1e-6)`;
  return `select='isnan(prev_selected_t)+gte(${bin('t')},${bin('prev_selected_t')}+1)'`;
}

/**
 * Decodes frames sampled uniformly in time as packed RGB, with timestamps.
 *
 * @example
 * const frames = await readFrames('clip.mp4', { fps: 1, maxFrames: 32, maxSide: 448 });
 * frames[3].time; // 3 (seconds)
 */
export async function readFrames(
  path: string,
  options: ReadFramesOptions = {},
): Promise<{ info: VideoInfo; frames: VideoFrame[] }> {
  const info = await probeVideo(path);
  const frames: VideoFrame[] = [];
  for await (const frame of streamFrames(path, options, info)) {
    frames.push(frame);
    options.onFrame?.(frame);
  }
  return { info, frames };
}

/** Options of streamFrames: readFrames' plus what to do with a truncated file. */
export interface StreamFramesOptions extends ReadFramesOptions {
  /**
   * A file cut short (ffmpeg reports a partial file) ends the stream with the
   * frames decoded so far instead of an error (default false).
   */
  partial?: boolean;
  /** With `partial`, told what was cut when the file turns out truncated. */
  onTruncated?: (message: string) => void;
  /** Frames decoded ahead of the consumer before ffmpeg's pipe is paused (default 8). */
  readAhead?: number;
}

/**
 * Frames sampled uniformly in time, yielded as ffmpeg decodes them (raw RGB
 * over a pipe; ffmpeg is paused while `readAhead` frames wait), so a long
 * video never sits in memory as pixels. Each frame carries its presentation
 * time from ffmpeg's showinfo line. A truncated file ends in an InputError
 * after the frames before the cut, unless `partial` is set.
 *
 * @example
 * for await (const frame of streamFrames('long.mp4', { fps: 1, maxFrames: 3600, width: 336, height: 336 })) encode(frame);
 */
export async function* streamFrames(
  path: string,
  options: StreamFramesOptions = {},
  probed?: VideoInfo,
): AsyncGenerator<VideoFrame> {
  const info = probed ?? (await probeVideo(path));
  const maxFrames = options.maxFrames ?? 64;
  const rate = effectiveFps(info.duration, options.fps ?? 1, maxFrames);
  const { width, height } = frameSize(info, options);
  const frameBytes = width * height * 3;
  const readAhead = Math.max(1, options.readAhead ?? 8);
  // Sample before scaling (cheaper), then scale with area averaging. `select`
  // keeps the first decoded frame of each 1/rate interval, so showinfo reports
  // the frame's own pts; the fps filter would stamp the slot time on the last
  // frame that rounds into the slot (up to half an interval later).
  const filter = [uniformSelect(rate), rotationFilter(info.rotation), `scale=${width}:${height}:flags=area`, 'showinfo']
    .filter((f) => f !== '')
    .join(',');
  const args = [
    '-hide_banner',
    '-nostdin',
    '-noautorotate',
    '-i',
    path,
    '-an',
    '-sn',
    '-vf',
    filter,
    '-vsync',
    'vfr',
    '-frames:v',
    String(maxFrames),
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
  const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ready: Uint8Array[] = [];
  const times: number[] = [];
  let stderr = '';
  let stderrTail = '';
  let pending: Buffer = Buffer.alloc(0);
  let exitCode: number | undefined;
  let spawnError: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  child.stdout.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= frameBytes) {
      ready.push(Uint8Array.from(pending.subarray(0, frameBytes)));
      pending = pending.subarray(frameBytes);
    }
    if (ready.length >= readAhead) child.stdout.pause();
    notify();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    // showinfo lines are parsed as they come; only the text kept for the error summary grows.
    const lines = (stderrTail + text).split('\n');
    stderrTail = lines.pop()!;
    for (const line of lines) {
      const m = SHOWINFO.exec(line);
      if (m) times[Number(m[1])] = Number(m[2]);
      else stderr += `${line}\n`;
    }
    notify();
  });
  child.on('error', (error) => {
    spawnError = error;
    notify();
  });
  child.on('close', (code) => {
    exitCode = code ?? 1;
    notify();
  });
  let index = 0;
  try {
    for (;;) {
      if (spawnError)
        throw new VtcError(`cannot start ffmpeg (${ffmpegPath()}): ${spawnError.message}`, 'E_FFMPEG_SPAWN');
      // A frame is handed out once its showinfo time is known (or ffmpeg has finished).
      if (ready.length > 0 && (times[index] !== undefined || exitCode !== undefined)) {
        const data = ready.shift()!;
        if (ready.length < readAhead) child.stdout.resume();
        const t = times[index];
        // showinfo always reports each output frame; the fallback keeps a sane time if a line was lost.
        yield { index, time: t !== undefined && Number.isFinite(t) ? t : index / rate, image: { data, width, height } };
        index++;
        continue;
      }
      if (exitCode !== undefined && ready.length === 0) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    stderr += stderrTail;
    if (exitCode !== 0)
      throw new InputError(
        `video ${path}: ffmpeg failed (exit ${exitCode}): ${summariseFfmpegError(stderr)}`,
        'E_VIDEO_DECODE',
      );
    if (index === 0)
      throw new InputError(
        `video ${path}: no frames could be decoded (${summariseFfmpegError(stderr)})`,
        'E_VIDEO_EMPTY',
      );
    // ffmpeg exits 0 on a file cut short after some decodable frames; half a video must not pass silently.
    if (/partial file/i.test(stderr)) {
      const last = times.filter(Number.isFinite).at(-1) ?? 0;
      if (options.partial) {
        options.onTruncated?.(`${summariseFfmpegError(stderr)}: frames stop at ${last} s of ${info.duration} s`);
        return;
      }
      throw new InputError(
        `video ${path} is truncated (${summariseFfmpegError(stderr)}): frames stop at ${last} s of ${info.duration} s`,
        'E_VIDEO_DECODE',
      );
    }
  } finally {
    if (exitCode === undefined) child.kill('SIGKILL');
  }
}

/**
 * Timestamps (seconds) where the scene changes: frames whose ffmpeg scene
 * score exceeds `threshold` (0..1; 0.3–0.4 is typical for hard cuts).
 *
 * @example
 * await sceneChanges('samples/video/scenes.mp4', 0.3); // [1.5, 3, 4.5]
 */
export async function sceneChanges(path: string, threshold = 0.3): Promise<number[]> {
  checkNumber(threshold, 'scene threshold', { gt: 0, lt: 1 });
  checkVideoFile(path);
  const result = await runFfmpeg([
    '-noautorotate',
    '-i',
    path,
    '-an',
    '-sn',
    '-vf',
    `format=rgb24,select='gt(scene,${threshold})',showinfo`,
    '-vsync',
    'vfr',
    '-f',
    'null',
    '-',
  ]);
  if (result.code !== 0)
    throw new InputError(
      `video ${path}: ffmpeg failed (exit ${result.code}): ${summariseFfmpegError(result.stderr)}`,
      'E_VIDEO_DECODE',
    );
  return parseShowinfoTimes(result.stderr).filter((t) => t !== undefined);
}
