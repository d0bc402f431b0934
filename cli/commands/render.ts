import { resolve } from 'node:path';
import { Command } from 'commander';
import { UsageError, VtcError } from '../../core/errors.js';
import { checkEncoding, readTextFile } from '../../io/text.js';
import { writeFileAtomic } from '../../io/write.js';
import { getProfile, profileNames } from '../../profiles/index.js';
import type { RenderConfig } from '../../render/config.js';
import { IMAGE_FORMATS, type ImageFormat } from '../../render/formats.js';
import type { RenderedPage } from '../../render/render.js';
import type { Candidate } from '../../render/search.js';
import { checkInteger } from '../../core/validate.js';
import { createProgress } from '../progress.js';
import { configureCommand, parseInteger, parseNumber, printJson } from '../run.js';

/** Reads the text argument: a file path, or "-" for stdin (UTF-8, UTF-16 with BOM, or --encoding). */
function readText(source: string, encoding: string | undefined): Promise<string> {
  return readTextFile(source, encoding ? { encoding } : {});
}

async function baseConfig(path: string | undefined, fallbackFonts: string[] = []): Promise<RenderConfig> {
  const { DEFAULT_CONFIG, loadConfig } = await import('../../render/config.js'); // zod: when run, not for --help
  const config = path
    ? loadConfig(path)
    : { ...DEFAULT_CONFIG, pageSize: [...DEFAULT_CONFIG.pageSize] as [number, number], fallbackFonts: [] };
  // --fallback-font adds to the config's "fallback-fonts" (paths from the command line are relative to the working folder).
  return { ...config, fallbackFonts: [...config.fallbackFonts, ...fallbackFonts.map((f) => resolve(f))] };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const FALLBACK_FONT_HELP =
  'font file (.ttf/.otf/.ttc) for characters the main font lacks, e.g. CJK or emoji (repeatable; tried in order; adds to the config\'s "fallback-fonts")';

interface RenderOptions {
  config?: string;
  profile: string;
  tokenizer?: string;
  out?: string;
  format: string;
  quality: number;
  ocr?: boolean;
  ocrPages?: number;
  ocrUpscale?: number;
  encoding?: string;
  fallbackFont?: string[];
  clean?: boolean;
  json?: boolean;
}

interface SearchOpts {
  config?: string;
  profile: string;
  tokenizer?: string;
  maxCer: number;
  generations: number;
  population: number;
  seed: number;
  sampleChars: number;
  encoding?: string;
  fallbackFont?: string[];
  out?: string;
  json?: boolean;
}

/**
 * `render` and `render search` share --config, --profile, --tokenizer, --out
 * and --json; commander lets the parent consume them wherever they appear,
 * so values the user gave on the command line are taken from the parent.
 */
function withParentOptions(opts: SearchOpts, command: Command): SearchOpts {
  const parent = command.parent;
  if (!parent) return opts;
  const merged: Record<string, unknown> = { ...opts };
  for (const key of ['config', 'profile', 'tokenizer', 'encoding', 'fallbackFont', 'out', 'json']) {
    if (parent.getOptionValueSource(key) === 'cli') merged[key] = parent.getOptionValue(key);
  }
  return merged as unknown as SearchOpts;
}

function searchCommand(): Command {
  return configureCommand(new Command('search'))
    .description(
      "evolutionary search over Glyph's render settings: maximise compression subject to OCR CER ≤ --max-cer",
    )
    .argument('<text>', 'text file, or - for stdin')
    .option('--config <file>', 'base config (Glyph kebab-case JSON); its settings seed the search', undefined)
    .option('--profile <name>', `vision-token profile: ${profileNames().join(', ')}`, 'qwen2.5-vl')
    .option(
      '--tokenizer <name>',
      'text tokenizer: o200k_base, cl100k_base, qwen, or a Hugging Face tokenizer.json (default: qwen for Qwen profiles, o200k_base otherwise)',
    )
    .requiredOption('--max-cer <c>', 'largest acceptable OCR character error rate, e.g. 0.05', parseNumber('--max-cer'))
    .option('--generations <g>', 'generations', parseInteger('--generations'), 4)
    .option('--population <n>', 'candidates per generation', parseInteger('--population'), 8)
    .option('--seed <s>', 'random seed', parseInteger('--seed'), 0)
    .option(
      '--sample-chars <n>',
      'characters of the text OCR checks per candidate',
      parseInteger('--sample-chars'),
      3000,
    )
    .option('--fallback-font <file>', FALLBACK_FONT_HELP, collect)
    .option(
      '--encoding <name>',
      'text encoding when the file has no byte-order mark: utf-8 (default; invalid bytes are an error), latin1, windows-1252, utf-16le, shift_jis, …',
    )
    .option('--out <file>', 'write the best config here (Glyph kebab-case JSON)')
    .option(
      '--json',
      'print one JSON object {best, baseline, pareto: [{compression, cer, pages, vision_tokens, config}], evaluated}',
    )
    .addHelpText(
      'after',
      `
Examples:
  vtc render search samples/text/essay-35k.txt --profile qwen2.5-vl --max-cer 0.05 --out best.json
  vtc render search book.txt --profile gpt-4o --max-cer 0.03 --generations 6 --population 10 --seed 7 --json

Each candidate renders the whole text (compression) and OCRs the first
--sample-chars characters rendered the same way (CER). The base config is
candidate 0, so the best config is never worse than it when it is feasible.`,
    )
    .action(async (source: string, localOpts: SearchOpts, command: Command) => {
      const opts = withParentOptions(localOpts, command);
      if (opts.encoding) checkEncoding(opts.encoding);
      const text = await readText(source, opts.encoding);
      const base = await baseConfig(opts.config, opts.fallbackFont);
      const { searchConfig } = await import('../../render/search.js'); // canvas, OCR, tokenizers: when run
      const { toConfigFile } = await import('../../render/config.js');
      const progress = createProgress(!opts.json && Boolean(process.stderr.isTTY) && !process.env.CI);
      progress.start(opts.generations * opts.population, 'search');
      const result = await searchConfig(text, base, {
        profile: opts.profile,
        tokenizer: opts.tokenizer,
        maxCer: opts.maxCer,
        generations: opts.generations,
        population: opts.population,
        seed: opts.seed,
        sampleChars: opts.sampleChars,
        onCandidate: (c, done) =>
          progress.update(done, `ρ ${c.compression.toFixed(2)} CER ${(c.cer * 100).toFixed(1)}%`),
      });
      progress.stop();
      if (opts.out && result.best)
        await writeFileAtomic(opts.out, `${JSON.stringify(toConfigFile(result.best.config), null, 2)}\n`);
      const summary = (c: Candidate) => ({
        compression: c.compression,
        cer: c.cer,
        feasible: c.feasible,
        pages: c.pages,
        vision_tokens: c.visionTokens,
        config: toConfigFile(c.config),
      });
      if (opts.json) {
        printJson({
          best: result.best && summary(result.best),
          baseline: summary(result.baseline),
          pareto: result.pareto.map(summary),
          evaluated: result.evaluated.length,
        });
      } else {
        const line = (c: Candidate) =>
          `${c.compression.toFixed(3).padStart(8)}  ${(c.cer * 100).toFixed(2).padStart(6)}%  ${String(c.pages).padStart(5)}  dpi ${c.genome.dpi} font ${c.genome.fontSize}/${c.genome.fontSize + c.genome.lineExtra} margins ${c.genome.marginX},${c.genome.marginY} h-scale ${c.genome.horizontalScale} ${c.genome.alignment} ${c.config.pageSize.join('×')} pt`;
        process.stdout.write(
          `Pareto front (${result.evaluated.length} configs evaluated, profile ${opts.profile}):\n  compression     CER  pages  config\n`,
        );
        for (const c of result.pareto) process.stdout.write(`${c.feasible ? '*' : ' '} ${line(c)}\n`);
        process.stdout.write(`baseline: ${line(result.baseline)}\n`);
        if (result.best)
          process.stdout.write(
            `best (CER ≤ ${opts.maxCer}): ${line(result.best)}${opts.out ? ` → ${opts.out}` : ''}\n`,
          );
      }
      if (!result.best)
        throw new VtcError(
          `render search: no config met CER ≤ ${opts.maxCer} (${result.evaluated.length} evaluated)${opts.out ? `; ${opts.out} not written` : ''}`,
          'E_NO_FEASIBLE_CONFIG',
        );
    });
}

export function renderCommand(): Command {
  const command = configureCommand(new Command('render'))
    .description('render long text to compact page images (Glyph) and report text vs vision tokens')
    .argument('<text>', 'text file, or - for stdin')
    .option(
      '--config <file>',
      "render config: Glyph's kebab-case JSON (config_en.json loads as is); defaults to Glyph's best config with DejaVu Sans",
    )
    .option('--profile <name>', `vision-token profile: ${profileNames().join(', ')}`, 'qwen2.5-vl')
    .option(
      '--tokenizer <name>',
      'text tokenizer: o200k_base, cl100k_base, qwen, or a Hugging Face tokenizer.json (default: qwen for Qwen profiles, o200k_base otherwise)',
    )
    // Not requiredOption: commander checks a parent's mandatory options for its subcommands too (render search).
    .option('--out <dir>', 'output folder for page_001.png, page_002.png, … (required)')
    .option('--fallback-font <file>', FALLBACK_FONT_HELP, collect)
    .option(
      '--encoding <name>',
      'text encoding when the file has no byte-order mark: utf-8 (default; invalid bytes are an error), latin1, windows-1252, utf-16le, shift_jis, …',
    )
    .option(
      '--clean',
      'delete page files (page_NNN.png/.jpg/.webp) an earlier render left in --out; without it such a folder is refused',
    )
    .option('--format <f>', `image format: ${IMAGE_FORMATS.join(', ')}`, 'png')
    .option('--quality <q>', 'JPEG/WebP quality 1–100', parseInteger('--quality'), 90)
    .option('--ocr', 'OCR the pages (tesseract.js, offline English) and report the character error rate')
    .option('--ocr-pages <n>', 'with --ocr: only the first n pages', parseInteger('--ocr-pages'))
    .option(
      '--ocr-upscale <k>',
      'with --ocr: upscale pages k× before OCR (default: enough for ≥ 144 dpi; 1 = as rendered)',
      parseInteger('--ocr-upscale'),
    )
    .option(
      '--json',
      'print one JSON object {pages, text_tokens, vision_tokens, compression, cer?, page_sizes, files, ms} (cer only with --ocr; files: the page paths written)',
    )
    .addHelpText(
      'after',
      `
Examples:
  vtc render book.txt --out pages --json
  vtc render book.txt --config config_en.json --profile glm-4.1v --out pages --ocr
  cat notes.txt | vtc render - --profile gpt-4o --format webp --out pages
  vtc render search book.txt --profile qwen2.5-vl --max-cer 0.05 --out best.json

compression = text tokens / vision tokens; ms = layout + rasterising + encoding + writing (OCR excluded).
A folder that already holds page files from an earlier render is refused (old pages
would mix with new ones); --clean deletes those page files (and nothing else) first.
Text is UTF-8 (invalid bytes are an error, never replacement characters) or UTF-16
with a byte-order mark; other encodings need --encoding.`,
    )
    .action(async (source: string, opts: RenderOptions) => {
      if (!opts.out) throw new UsageError('render: --out <dir> is required (the folder for page_001.png, …)');
      // The renderer (canvas, sharp, OCR) is imported when run, not for --help.
      const { checkOcrOptions, checkPageOutput, measureCompression, ocrPages, planRender, writePages } = await import(
        '../../render/index.js'
      );
      // The library's checks (writePages, ocrPages), run before any page is drawn.
      checkPageOutput({ format: opts.format, quality: opts.quality });
      checkOcrOptions({ upscale: opts.ocrUpscale });
      if (opts.ocrPages !== undefined)
        checkInteger(opts.ocrPages, 'ocrPages (--ocr-pages)', { min: 1, where: 'render' });
      getProfile(opts.profile);
      if (opts.encoding) checkEncoding(opts.encoding);
      const text = await readText(source, opts.encoding);
      const config = await baseConfig(opts.config, opts.fallbackFont);
      const started = performance.now();
      const plan = planRender(text, config);
      const progress = createProgress(!opts.json && Boolean(process.stderr.isTTY) && !process.env.CI);
      progress.start(plan.pageCount, 'render');
      const sizes: [number, number][] = [];
      const pages: RenderedPage[] | null = opts.ocr ? [] : null;
      const tracked = (function* () {
        for (const page of plan.pages()) {
          sizes.push([page.width, page.height]);
          if (pages) pages.push(page);
          yield page;
        }
      })();
      const files = await writePages(tracked, opts.out!, {
        format: opts.format as ImageFormat,
        quality: opts.quality,
        existing: opts.clean ? 'clean' : 'refuse',
        onPage: (done) => progress.update(done),
      });
      const ms = performance.now() - started;
      progress.stop();
      for (const g of plan.missingGlyphs)
        process.stderr.write(
          `vtc: warning: no font has ${JSON.stringify(g.char)} ${g.codePoint} (${g.count}×); drawn from a system font or as a missing-glyph box, so these pixels depend on the machine\n`,
        );
      const compression = await measureCompression(
        text,
        sizes.map(([width, height]) => ({ width, height })),
        { profile: opts.profile, tokenizer: opts.tokenizer },
      );
      let cer: number | undefined;
      let pageCer: number[] | undefined;
      if (pages) {
        const selected = pages.slice(0, opts.ocrPages ?? pages.length);
        const ocrProgress = createProgress(!opts.json && Boolean(process.stderr.isTTY) && !process.env.CI);
        ocrProgress.start(selected.length, 'OCR');
        const fidelity = await ocrPages(selected, {
          onPage: (done) => ocrProgress.update(done),
          ...(opts.ocrUpscale ? { upscale: opts.ocrUpscale } : {}),
        });
        ocrProgress.stop();
        cer = fidelity.cer;
        pageCer = fidelity.pages.map((p) => p.cer);
      }
      if (opts.json) {
        printJson({
          pages: sizes.length,
          text_tokens: compression.textTokens,
          vision_tokens: compression.visionTokens,
          compression: compression.compression,
          ...(cer !== undefined ? { cer } : {}),
          page_sizes: sizes,
          files,
          ms,
        });
        return;
      }
      process.stdout.write(
        `${sizes.length} page${sizes.length === 1 ? '' : 's'} → ${opts.out} (${ms.toFixed(0)} ms)\n` +
          `text tokens ${compression.textTokens} (${compression.tokenizer}), vision tokens ${compression.visionTokens} (${compression.profile}), compression ${compression.compression.toFixed(2)}×\n` +
          (cer !== undefined
            ? `OCR CER ${(cer * 100).toFixed(2)}% over ${pageCer!.length} page(s): ${pageCer!.map((c, i) => `p${i + 1} ${(c * 100).toFixed(2)}%`).join(', ')}\n`
            : ''),
      );
    });
  command.addCommand(searchCommand());
  return command;
}
