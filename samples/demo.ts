import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { InputError } from '../core/errors.js';
import type { TokenSet } from '../core/tokenset.js';
import { encodeAnyResDetailed, encodeImageDetailed } from '../encoders/encode.js';
import { encodePng } from '../encoders/codecs.js';
import { anyresLayout, drawReductionOverlay, imageLayout, type OverlayLayout } from '../encoders/overlay.js';
import { createPatchEncoder } from '../encoders/patch.js';
import { encodeVideoFrames } from '../encoders/video.js';
import { reducers } from '../reducers/index.js';
import { runReducer } from '../reducers/run.js';
import { DEFAULT_CONFIG, measureCompression, ocrPages, renderText, writePages } from '../render/index.js';
import { videoQa } from '../video/qa.js';
import { ensureDirSync, writeFileAtomicSync } from '../io/write.js';
import { samplesRoot } from './paths.js';

/**
 * `vtc demo` as a library function: runs every part of the toolkit on the
 * bundled samples, offline, and writes an HTML + Markdown report.
 *   1. each sample image → built-in patch encoder → every registered reducer
 *      at each ratio → an overlay of what was kept / merged;
 *   2. the sample long text → Glyph pages → compression ratio, CER by OCR on
 *      the first page(s);
 *   3. the sample video → video pipeline in dry-run → contact sheet + request.
 * A part that fails is recorded in `failures` (and the CLI exits 1); the
 * other parts still run.
 */

export interface DemoOptions {
  /** Output folder (default ./vtc-demo). */
  outDir?: string;
  /** Retention ratios for the reducers (default [0.25, 0.1]). */
  ratios?: number[];
  /** Folder with images/, text/*.txt and video/scenes.mp4 (default: the bundled samples/). */
  samplesDir?: string;
  /** Glyph pages to OCR for the CER (default 1; OCR is the slow part). */
  ocrPages?: number;
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface DemoImageRow {
  image: string;
  method: string;
  ratio: number;
  /** Tokens the ratio applies to: 576 for one tile; for AnyRes the thumbnail + the unpadded crop tokens (padding rows excluded, as LLaVA-NeXT drops them). */
  tokensIn: number;
  tokensOut: number;
  ms: number;
  /** Overlay path relative to outDir. */
  overlay: string;
}

export interface DemoGlyph {
  source: string;
  characters: number;
  pages: number;
  /** Page image paths relative to outDir. */
  pageFiles: string[];
  dpi: number;
  profile: string;
  textTokens: number;
  visionTokens: number;
  compression: number;
  ocrPages: number;
  cer: number;
}

export interface DemoVideo {
  video: string;
  clips: { start: number; end: number; score: number }[];
  frames: { t: number }[];
  tokensSent: number;
  tokensUniform: number;
  /** Relative to outDir. */
  contactSheet: string;
  request: string;
}

export interface DemoSummary {
  outDir: string;
  seconds: number;
  images: DemoImageRow[];
  glyph?: DemoGlyph;
  video?: DemoVideo;
  failures: { part: string; message: string }[];
}

const IMAGE_EXTENSIONS = /\.(png|jpe?g|webp)$/i;

function sampleImages(root: string): string[] {
  const dir = join(root, 'images');
  if (!existsSync(dir))
    throw new InputError(`sample images missing: ${dir} (run: node --import tsx samples/generate.ts)`, 'E_SAMPLES');
  const files = readdirSync(dir)
    .filter((f) => IMAGE_EXTENSIONS.test(f))
    .sort();
  if (files.length === 0) throw new InputError(`no sample images in ${dir}`, 'E_SAMPLES');
  return files.map((f) => join(dir, f));
}

/** The render area's quality-bar text (samples/text/README.md); the demo falls back to the first .txt. */
const PREFERRED_TEXT = 'essay-35k.txt';

/**
 * The long sample text: <root>/text/essay-35k.txt, else the first .txt by name.
 *
 * @example
 * sampleText(); // '/…/samples/text/essay-35k.txt'
 */
export function sampleText(root = samplesRoot): string {
  const dir = join(root, 'text');
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.txt'))
        .sort()
    : [];
  if (files.length === 0) throw new InputError(`no sample text: expected a .txt file in ${dir}`, 'E_SAMPLES');
  return join(dir, files.includes(PREFERRED_TEXT) ? PREFERRED_TEXT : files[0]!);
}

interface EncodedForOverlay {
  input: TokenSet;
  layout: OverlayLayout;
}

/** One 336² tile with the built-in patch encoder, and where its patches sit. */
/** Frames shown on the video-method overlays (1 per second: the 6 s sample's scene cuts at 1.5, 3, 4.5 s fall between frames). */
const DEMO_VIDEO_FRAMES = 6;

/** The sample video's frames, patch-encoded (one 24×24 grid each), laid out 3 per row for the overlays. */
async function encodeFramesForOverlay(video: string): Promise<EncodedForOverlay> {
  const { tokens, frames } = await encodeVideoFrames(video, {
    encoder: createPatchEncoder(),
    fps: 1,
    maxFrames: DEMO_VIDEO_FRAMES,
  });
  const side = frames[0]!.image.width;
  const perRow = 3;
  const gap = 8;
  const rows = Math.ceil(frames.length / perRow);
  const width = perRow * side + (perRow - 1) * gap;
  const height = rows * side + (rows - 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(48);
  const tiles = frames.map((_, f) => ({ x: (f % perRow) * (side + gap), y: Math.floor(f / perRow) * (side + gap) }));
  frames.forEach((frame, f) => {
    const { image } = frame;
    for (let r = 0; r < image.height; r++)
      data.set(
        image.data.subarray(r * image.width * 3, (r + 1) * image.width * 3),
        ((tiles[f]!.y + r) * width + tiles[f]!.x) * 3,
      );
  });
  return {
    input: tokens,
    layout: { canvas: { data, width, height }, tiles, patchSize: side / tokens.sources[0]!.cols },
  };
}

async function encodeTileForOverlay(image: string): Promise<EncodedForOverlay> {
  const { tokens, tile } = await encodeImageDetailed(image);
  return { input: tokens, layout: imageLayout(tile, tile.width / tokens.sources[0]!.cols) };
}

/** An AnyRes bundle (thumbnail + crops) with the built-in patch encoder, laid out thumbnail | crop canvas. */
async function encodeAnyResForOverlay(image: string): Promise<EncodedForOverlay> {
  const { tokens, thumbnail, canvas } = await encodeAnyResDetailed(image);
  const grid = tokens.anyres!;
  return {
    input: tokens,
    layout: anyresLayout(thumbnail, canvas, grid.gridRows, grid.gridCols, thumbnail.width / grid.patchCols),
  };
}

/** Paths inside the repository relative to its root (samples/…), others as given. */
function displayPath(path: string): string {
  const fromRepo = relative(join(samplesRoot, '..'), path);
  return fromRepo.startsWith('..') ? path : fromRepo;
}

/** The ms columns are one call each, not a benchmark: say so where they are shown. */
const TIMING_NOTE =
  'Times (ms) are one call each on this machine; the first call of a method includes its warm-up (e.g. onnxruntime session creation). For medians run `vtc bench reducers`.';

const percent = (ratio: number) => `${Math.round(ratio * 100)}`;

function message(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}

/**
 * Runs the demo and writes outDir/{index.html, summary.md, summary.json, images/, glyph/, video/}.
 *
 * @example
 * const summary = await runDemo({ outDir: 'vtc-demo' });
 * summary.images.length; // sample images × reducers × ratios
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const started = performance.now();
  const outDir = resolve(options.outDir ?? 'vtc-demo');
  const ratios = options.ratios ?? [0.25, 0.1];
  const root = resolve(options.samplesDir ?? samplesRoot);
  const ocrCount = options.ocrPages ?? 1;
  ensureDirSync(join(outDir, 'images'));
  const summary: DemoSummary = { outDir, seconds: 0, images: [], failures: [] };
  // Video methods (scope 'video': evs, fastvid) run on the sample video's frame tokens, the others on each image.
  const methods = Object.values(reducers).filter((m) => m.scope !== 'video');
  const videoMethods = Object.values(reducers).filter((m) => m.scope === 'video');
  let images: string[] = [];
  try {
    images = sampleImages(root);
  } catch (error) {
    summary.failures.push({ part: 'images', message: message(error) });
  }
  const total = (images.length * methods.length + videoMethods.length) * ratios.length + 3;
  let done = 0;
  const step = (label: string) => options.onProgress?.(++done, total, label);
  options.onProgress?.(0, total, 'starting');

  for (const image of images) {
    const name = basename(image).replace(IMAGE_EXTENSIONS, '');
    let plain: EncodedForOverlay | undefined;
    let anyres: EncodedForOverlay | undefined;
    for (const method of methods) {
      for (const ratio of ratios) {
        const label = `${name} · ${method.name} · ${percent(ratio)}%`;
        try {
          // GlobalCom² is defined on AnyRes bundles (thumbnail + crops); the others on one tile.
          const { input, layout } =
            method.scope === 'anyres'
              ? (anyres ??= await encodeAnyResForOverlay(image))
              : (plain ??= await encodeTileForOverlay(image));
          const t0 = performance.now();
          const { reduction, n_in: tokensIn } = await runReducer(method, input, { ratio, seed: 0 });
          const ms = performance.now() - t0;
          const file = join('images', `${name}-${method.name}-${percent(ratio)}.png`);
          writeFileAtomicSync(
            join(outDir, file),
            await encodePng(drawReductionOverlay(layout, input, reduction).image),
          );
          summary.images.push({
            image: basename(image),
            method: method.name,
            ratio,
            tokensIn,
            tokensOut: reduction.tokens.n,
            ms,
            overlay: file,
          });
        } catch (error) {
          summary.failures.push({ part: `image ${label}`, message: message(error) });
        }
        step(label);
      }
    }
  }

  const videoPath = join(root, 'video', 'scenes.mp4');
  let frames: EncodedForOverlay | undefined;
  // A missing video is reported once, by the video part below.
  if (videoMethods.length > 0 && existsSync(videoPath)) {
    try {
      frames = await encodeFramesForOverlay(videoPath);
    } catch (error) {
      summary.failures.push({ part: 'video reducers', message: message(error) });
    }
  }
  for (const method of videoMethods) {
    for (const ratio of ratios) {
      const label = `${basename(videoPath)} · ${method.name} · ${percent(ratio)}%`;
      if (frames) {
        try {
          const t0 = performance.now();
          const { reduction, n_in: tokensIn } = await runReducer(method, frames.input, { ratio, seed: 0 });
          const ms = performance.now() - t0;
          const file = join(
            'images',
            `${basename(videoPath).replace(/\.\w+$/, '')}-${method.name}-${percent(ratio)}.png`,
          );
          writeFileAtomicSync(
            join(outDir, file),
            await encodePng(drawReductionOverlay(frames.layout, frames.input, reduction).image),
          );
          summary.images.push({
            image: basename(videoPath),
            method: method.name,
            ratio,
            tokensIn,
            tokensOut: reduction.tokens.n,
            ms,
            overlay: file,
          });
        } catch (error) {
          summary.failures.push({ part: `video ${label}`, message: message(error) });
        }
      }
      step(label);
    }
  }

  try {
    summary.glyph = await glyphPart(root, outDir, ocrCount, step);
  } catch (error) {
    summary.failures.push({ part: 'glyph', message: message(error) });
  }
  while (done < total - 1) step('glyph');

  try {
    summary.video = await videoPart(join(root, 'video', 'scenes.mp4'), outDir);
  } catch (error) {
    summary.failures.push({ part: 'video', message: message(error) });
  }
  step('video');
  summary.seconds = (performance.now() - started) / 1000;
  writeFileAtomicSync(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 1)}\n`);
  writeFileAtomicSync(join(outDir, 'summary.md'), summaryMarkdown(summary));
  writeFileAtomicSync(join(outDir, 'index.html'), summaryHtml(summary));
  return summary;
}

async function glyphPart(
  root: string,
  outDir: string,
  ocrCount: number,
  step: (label: string) => void,
): Promise<DemoGlyph> {
  const source = sampleText(root);
  const text = readFileSync(source, 'utf8');
  const config = { ...DEFAULT_CONFIG };
  const { pages } = renderText(text, config);
  const files = await writePages(pages, join(outDir, 'glyph'), { existing: 'clean' });
  const report = await measureCompression(text, pages, { profile: 'qwen2.5-vl' });
  step('glyph · rendered');
  const fidelity = await ocrPages(pages.slice(0, Math.max(1, ocrCount)));
  step('glyph · OCR');
  return {
    source: displayPath(source),
    characters: text.length,
    pages: pages.length,
    pageFiles: files.map((f) => relative(outDir, f)),
    dpi: config.dpi,
    profile: report.profile,
    textTokens: report.textTokens,
    visionTokens: report.visionTokens,
    compression: report.compression,
    ocrPages: fidelity.pages.length,
    cer: fidelity.cer,
  };
}

async function videoPart(video: string, outDir: string): Promise<DemoVideo> {
  const run = await videoQa(video, {
    question: 'What happens in this video?',
    dryRun: true,
    outDir: join(outDir, 'video'),
    frames: 4,
  });
  return {
    video: displayPath(video),
    clips: run.result.clips,
    frames: run.result.frames,
    tokensSent: run.result.tokens_sent,
    tokensUniform: run.result.tokens_uniform,
    contactSheet: relative(outDir, run.files!.contactSheet),
    request: relative(outDir, run.files!.request),
  };
}

/** Kept tokens per image × method at each ratio, as rows of a table. */
function reducerTable(summary: DemoSummary): { header: string[]; rows: string[][] } {
  const ratios = [...new Set(summary.images.map((r) => r.ratio))];
  const header = [
    'image',
    'method',
    'tokens in',
    ...ratios.map((r) => `kept @ ${percent(r)}%`),
    ...ratios.map((r) => `ms @ ${percent(r)}%`),
  ];
  const keys = [...new Set(summary.images.map((r) => `${r.image}\u0000${r.method}`))];
  const rows = keys.map((key) => {
    const [image, method] = key.split('\u0000') as [string, string];
    const of = (ratio: number) =>
      summary.images.find((r) => r.image === image && r.method === method && r.ratio === ratio);
    const first = summary.images.find((r) => r.image === image && r.method === method)!;
    return [
      image,
      method,
      String(first.tokensIn),
      ...ratios.map((r) => String(of(r)?.tokensOut ?? '—')),
      ...ratios.map((r) => (of(r) ? of(r)!.ms.toFixed(1) : '—')),
    ];
  });
  return { header, rows };
}

/**
 * The plain-text summary table the CLI prints.
 *
 * @example
 * process.stdout.write(summaryText(await runDemo()));
 */
export function summaryText(summary: DemoSummary): string {
  const lines: string[] = [];
  const { header, rows } = reducerTable(summary);
  if (rows.length) {
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
    const fmt = (cells: string[]) =>
      cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
    lines.push(fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt), '');
  }
  const g = summary.glyph;
  if (g)
    lines.push(
      `glyph: ${g.source} (${g.characters} chars) → ${g.pages} pages at ${g.dpi} dpi; ${g.textTokens} text tokens vs ${g.visionTokens} vision tokens (${g.profile}) = ${g.compression.toFixed(2)}x; CER ${(g.cer * 100).toFixed(2)}% on ${g.ocrPages} OCR'd page(s)`,
    );
  const v = summary.video;
  if (v) {
    lines.push(
      `video: ${v.video} → clips ${v.clips.map((c) => `${c.start}–${c.end}s`).join(', ')}; frames sent ${v.frames.map((f) => `${f.t}s`).join(' ')}; ${v.tokensSent} vision tokens vs ${v.tokensUniform} for uniform 1 fps`,
    );
  }
  for (const f of summary.failures) lines.push(`FAILED ${f.part}: ${f.message}`);
  lines.push(`report: ${join(summary.outDir, 'index.html')} (${summary.seconds.toFixed(1)} s)`);
  return `${lines.join('\n')}\n`;
}

function summaryMarkdown(summary: DemoSummary): string {
  const out: string[] = [
    '# vtc demo',
    '',
    `Ran in ${summary.seconds.toFixed(1)} s, offline, on the bundled samples.`,
    '',
  ];
  const { header, rows } = reducerTable(summary);
  out.push(
    '## Token reduction (built-in patch encoder, 336 px tile = 24×24 tokens; GlobalCom² on the AnyRes bundle)',
    '',
  );
  out.push(
    'For GlobalCom², "tokens in" is the thumbnail plus the unpadded crop tokens (LLaVA-NeXT drops the letterbox padding rows; the bundle itself holds 576 per tile, newline tokens not counted).',
    '',
  );
  if (rows.length) {
    out.push(
      `| ${header.join(' | ')} |`,
      `|${header.map((_, c) => (c < 2 ? ' --- ' : ' ---: ')).join('|')}|`,
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
    );
    out.push(
      'Overlays: `images/<image>-<method>-<percent>.png` (kept patches clear, dropped patches dimmed, merged patches tinted per group).',
      '',
    );
    out.push(TIMING_NOTE, '');
  }
  const g = summary.glyph;
  out.push('## Glyph rendering', '');
  if (g) {
    out.push(
      `| text | chars | pages | dpi | text tokens | vision tokens (${g.profile}) | compression | CER (OCR pages) |`,
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| ${g.source} | ${g.characters} | ${g.pages} | ${g.dpi} | ${g.textTokens} | ${g.visionTokens} | ${g.compression.toFixed(2)}x | ${(g.cer * 100).toFixed(2)}% (${g.ocrPages}) |`,
      '',
    );
  } else out.push('Not run (see failures).', '');
  const v = summary.video;
  out.push('## Video (dry run)', '');
  if (v) {
    out.push(
      `${v.video}: ${v.frames.length} frames sent at ${v.frames.map((f) => `${f.t}s`).join(', ')}; ${v.tokensSent} vision tokens vs ${v.tokensUniform} for uniform 1 fps sampling. Contact sheet: \`${v.contactSheet}\`, request: \`${v.request}\`.`,
      '',
      '| clip start (s) | end (s) | score |',
      '| ---: | ---: | ---: |',
      ...v.clips.map((c) => `| ${c.start} | ${c.end} | ${c.score} |`),
      '',
    );
  } else out.push('Not run (see failures).', '');
  if (summary.failures.length) {
    out.push('## Failures', '', ...summary.failures.map((f) => `- **${f.part}**: ${f.message}`), '');
  }
  return `${out.join('\n')}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function summaryHtml(summary: DemoSummary): string {
  const h = escapeHtml;
  const parts: string[] = [
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>vtc demo</title>',
    '<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}td.n{text-align:right}figure{display:inline-block;margin:4px;text-align:center;font-size:12px}img{max-width:100%}.fail{color:#b00}</style>',
    '</head><body>',
    `<h1>vtc demo</h1><p>Ran in ${summary.seconds.toFixed(1)} s, offline, on the bundled samples.</p>`,
  ];
  if (summary.failures.length)
    parts.push(
      `<h2 class="fail">Failures</h2><ul>${summary.failures.map((f) => `<li class="fail"><b>${h(f.part)}</b>: ${h(f.message)}</li>`).join('')}</ul>`,
    );
  const { header, rows } = reducerTable(summary);
  parts.push(
    `<h2>Token reduction</h2><p>Built-in patch encoder (336 px tile, 24×24 tokens); GlobalCom² runs on the LLaVA-NeXT AnyRes bundle (thumbnail + crops, shown side by side); its “tokens in” counts the thumbnail plus the unpadded crop tokens, as LLaVA-NeXT drops the padding rows. Kept patches are clear, dropped ones dimmed, merged ones tinted by group. ${h(TIMING_NOTE)}</p>`,
  );
  if (rows.length) {
    parts.push(
      `<table><tr>${header.map((c) => `<th>${h(c)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c, i) => `<td${i > 1 ? ' class="n"' : ''}>${h(c)}</td>`).join('')}</tr>`).join('')}</table>`,
    );
    for (const image of [...new Set(summary.images.map((r) => r.image))]) {
      parts.push(`<h3>${h(image)}</h3><div>`);
      for (const row of summary.images.filter((r) => r.image === image)) {
        parts.push(
          `<figure><a href="${h(row.overlay)}"><img src="${h(row.overlay)}" width="220" alt="${h(`${row.method} ${percent(row.ratio)}%`)}"></a><figcaption>${h(row.method)} ${percent(row.ratio)}%: ${row.tokensOut}/${row.tokensIn}</figcaption></figure>`,
        );
      }
      parts.push('</div>');
    }
  }
  const g = summary.glyph;
  parts.push('<h2>Glyph rendering</h2>');
  if (g) {
    parts.push(
      `<p>${h(g.source)}: ${g.characters} characters → ${g.pages} pages at ${g.dpi} dpi. ${g.textTokens} text tokens vs ${g.visionTokens} vision tokens (${h(g.profile)}): <b>${g.compression.toFixed(2)}×</b> compression; CER ${(g.cer * 100).toFixed(2)}% on ${g.ocrPages} OCR'd page(s).</p><div>`,
      ...g.pageFiles.map(
        (f, i) =>
          `<figure><a href="${h(f)}"><img src="${h(f)}" width="220" alt="page ${i + 1}"></a><figcaption>page ${i + 1}</figcaption></figure>`,
      ),
      '</div>',
    );
  } else parts.push('<p class="fail">Not run (see failures).</p>');
  const v = summary.video;
  parts.push('<h2>Video (dry run)</h2>');
  if (v) {
    parts.push(
      `<p>${h(v.video)}: ${v.frames.length} frames sent (${v.frames.map((f) => `${f.t}s`).join(', ')}); ${v.tokensSent} vision tokens vs ${v.tokensUniform} for uniform 1 fps sampling. <a href="${h(v.request)}">request.json</a></p>`,
      `<table><tr><th>clip start (s)</th><th>end (s)</th><th>score</th></tr>${v.clips.map((c) => `<tr><td class="n">${c.start}</td><td class="n">${c.end}</td><td class="n">${c.score}</td></tr>`).join('')}</table>`,
      `<p><img src="${h(v.contactSheet)}" alt="contact sheet"></p>`,
    );
  } else parts.push('<p class="fail">Not run (see failures).</p>');
  parts.push('</body></html>\n');
  return parts.join('\n');
}
