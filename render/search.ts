import { Rng } from '../core/rng.js';
import { ALIGNMENTS, PAGE_SIZES, type Alignment, type RenderConfig } from './config.js';
import { measureCompression } from './compression.js';
import { renderText } from './pages.js';
import { createOcr, ocrPages, type OcrEngine } from './ocr.js';
import { getProfile } from '../profiles/index.js';
import { defaultTokenizerFor, loadTextTokenizer } from '../tokenizer/index.js';
import { checkInteger, checkNumber, optionLabel } from '../core/validate.js';

/**
 * Glyph's config search, as a seeded evolutionary search: maximise the
 * compression ratio under a VLM profile subject to OCR CER ≤ maxCer.
 * Compression is measured on the whole text; CER on an excerpt of the text
 * (the first `sampleChars` characters, cut at a line end) rendered with the
 * same config, so each candidate costs one or two OCR'd pages.
 *
 * Genes and their ranges (Glyph's search space): dpi 45–144, font size
 * 7–14 pt (half points), line height = font size + 0…3 pt, margins 10–40 pt,
 * horizontal scale 0.75–1.0, alignment, page size (A4, Letter, Legal, A5, B5,
 * A3, B4, Tabloid). The other fields stay as in the base config.
 */
export interface Genome {
  dpi: number;
  fontSize: number;
  lineExtra: number;
  marginX: number;
  marginY: number;
  horizontalScale: number;
  alignment: Alignment;
  /** A named page size, or "base" for the base config's own size. */
  pageSize: string;
}

export interface Candidate {
  genome: Genome;
  config: RenderConfig;
  compression: number;
  cer: number;
  feasible: boolean;
  pages: number;
  visionTokens: number;
}

export interface SearchOptions {
  profile?: string;
  tokenizer?: string;
  maxCer: number;
  generations?: number;
  population?: number;
  seed?: number;
  sampleChars?: number;
  onCandidate?: (candidate: Candidate, evaluated: number, total: number) => void;
}

export interface SearchResult {
  best: Candidate | null;
  /** The base config's own score (the starting point). */
  baseline: Candidate;
  /** Non-dominated candidates (higher compression, lower CER), by compression descending. */
  pareto: Candidate[];
  evaluated: Candidate[];
}

const PAGE_NAMES = Object.keys(PAGE_SIZES);
const DPI_RANGE = [45, 144] as const;

/** The genome of a config (its page size kept as "base"). */
export function genomeOf(config: RenderConfig): Genome {
  return {
    dpi: config.dpi,
    fontSize: config.fontSize,
    lineExtra: Math.max(0, Math.min(3, config.lineHeight - config.fontSize)),
    marginX: config.marginX,
    marginY: config.marginY,
    horizontalScale: config.horizontalScale,
    alignment: config.alignment,
    pageSize: 'base',
  };
}

/** Applies a genome to a base config. */
export function configOf(genome: Genome, base: RenderConfig): RenderConfig {
  return {
    ...base,
    dpi: genome.dpi,
    fontSize: genome.fontSize,
    lineHeight: genome.fontSize + genome.lineExtra,
    marginX: genome.marginX,
    marginY: genome.marginY,
    horizontalScale: genome.horizontalScale,
    alignment: genome.alignment,
    pageSize: genome.pageSize === 'base' ? [...base.pageSize] : ([...PAGE_SIZES[genome.pageSize]!] as [number, number]),
  };
}

function randomGenome(rng: Rng): Genome {
  return {
    dpi: DPI_RANGE[0] + rng.int(DPI_RANGE[1] - DPI_RANGE[0] + 1),
    fontSize: 7 + rng.int(15) / 2,
    lineExtra: rng.int(7) / 2,
    marginX: 10 + rng.int(31),
    marginY: 10 + rng.int(31),
    horizontalScale: 0.75 + rng.int(6) * 0.05,
    alignment: ALIGNMENTS[rng.int(ALIGNMENTS.length)]!,
    pageSize: PAGE_NAMES[rng.int(PAGE_NAMES.length)]!,
  };
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** Uniform crossover then per-gene mutation with probability 0.3 (small steps for numbers). */
function offspring(a: Genome, b: Genome, rng: Rng): Genome {
  const pick = <K extends keyof Genome>(k: K): Genome[K] => (rng.float() < 0.5 ? a[k] : b[k]);
  const child: Genome = {
    dpi: pick('dpi'),
    fontSize: pick('fontSize'),
    lineExtra: pick('lineExtra'),
    marginX: pick('marginX'),
    marginY: pick('marginY'),
    horizontalScale: pick('horizontalScale'),
    alignment: pick('alignment'),
    pageSize: pick('pageSize'),
  };
  const step = (span: number) => rng.int(2 * span + 1) - span;
  if (rng.float() < 0.3) child.dpi = clamp(child.dpi + step(12), DPI_RANGE[0], DPI_RANGE[1]);
  if (rng.float() < 0.3) child.fontSize = clamp(child.fontSize + step(2) / 2, 7, 14);
  if (rng.float() < 0.3) child.lineExtra = clamp(child.lineExtra + step(1) / 2, 0, 3);
  if (rng.float() < 0.3) child.marginX = clamp(child.marginX + step(5), 10, 40);
  if (rng.float() < 0.3) child.marginY = clamp(child.marginY + step(5), 10, 40);
  if (rng.float() < 0.3) child.horizontalScale = +clamp(child.horizontalScale + step(1) * 0.05, 0.75, 1).toFixed(2);
  if (rng.float() < 0.15) child.alignment = ALIGNMENTS[rng.int(ALIGNMENTS.length)]!;
  if (rng.float() < 0.15) child.pageSize = PAGE_NAMES[rng.int(PAGE_NAMES.length)]!;
  return child;
}

/** Excerpt used for OCR: the first ~n characters, cut at a line end when possible. */
export function excerpt(text: string, n: number): string {
  if (text.length <= n) return text;
  const cut = text.lastIndexOf('\n', n);
  return text.slice(0, cut > n / 2 ? cut : n);
}

/** Candidates no other candidate beats on both compression (higher) and CER (lower). */
export function paretoFront(candidates: Candidate[]): Candidate[] {
  const front = candidates.filter(
    (c) =>
      !candidates.some(
        (o) =>
          o !== c &&
          o.compression >= c.compression &&
          o.cer <= c.cer &&
          (o.compression > c.compression || o.cer < c.cer),
      ),
  );
  const unique = new Map(front.map((c) => [JSON.stringify(c.genome), c]));
  return [...unique.values()].sort((a, b) => b.compression - a.compression);
}

/**
 * Runs the search from a base config (whose genome seeds the population).
 *
 * @example
 * const result = await searchConfig(text, DEFAULT_CONFIG, { profile: 'qwen2.5-vl', maxCer: 0.05, seed: 1 });
 * result.best?.compression;
 */
export async function searchConfig(text: string, base: RenderConfig, options: SearchOptions): Promise<SearchResult> {
  const generations = options.generations ?? 4;
  const population = options.population ?? 8;
  checkNumber(options.maxCer, optionLabel('maxCer'), { gt: 0, max: 1, where: 'render search' });
  checkInteger(generations, 'generations', { min: 1, where: 'render search' });
  checkInteger(population, 'population', { min: 2, where: 'render search' });
  const profile = getProfile(options.profile ?? 'qwen2.5-vl');
  const tokenizer = await loadTextTokenizer(options.tokenizer ?? defaultTokenizerFor(profile.name));
  const sample = excerpt(text, options.sampleChars ?? 3000);
  const rng = new Rng(options.seed ?? 0);
  const total = generations * population;
  const cache = new Map<string, Candidate>();
  const evaluated: Candidate[] = [];
  const engine: OcrEngine = await createOcr();

  const evaluate = async (genome: Genome): Promise<Candidate> => {
    const key = JSON.stringify(genome);
    const cached = cache.get(key);
    if (cached) return cached;
    const config = configOf(genome, base);
    const full = renderText(text, config);
    const compression = await measureCompression(text, full.pages, { profile, tokenizer });
    const fidelity = await ocrPages(renderText(sample, config).pages, { engine });
    const candidate: Candidate = {
      genome,
      config,
      compression: compression.compression,
      cer: fidelity.cer,
      feasible: fidelity.cer <= options.maxCer,
      pages: full.pages.length,
      visionTokens: compression.visionTokens,
    };
    cache.set(key, candidate);
    evaluated.push(candidate);
    options.onCandidate?.(candidate, evaluated.length, total);
    return candidate;
  };
  // Feasible first by compression; infeasible ones by how far they miss the CER limit.
  const rank = (c: Candidate) => (c.feasible ? 1e6 + c.compression : -c.cer);

  try {
    const baseline = await evaluate(genomeOf(base));
    // Initial population: the base, then alternately mutants of the base (local search) and random configs (exploration).
    let pool: Candidate[] = [baseline];
    for (let attempts = 0; pool.length < population && attempts < population * 20; attempts++) {
      const genome = pool.length % 2 === 1 ? offspring(baseline.genome, baseline.genome, rng) : randomGenome(rng);
      if (cache.has(JSON.stringify(genome))) continue;
      pool.push(await evaluate(genome));
    }
    // (μ + λ): each generation breeds `population` new configs from the better half, then the best `population` of old and new survive.
    for (let g = 1; g < generations; g++) {
      pool.sort((a, b) => rank(b) - rank(a));
      const parents = pool.slice(0, Math.max(2, Math.ceil(pool.length / 2)));
      const children: Candidate[] = [];
      for (let attempts = 0; children.length < population && attempts < population * 20; attempts++) {
        const a = parents[rng.int(parents.length)]!;
        const b = parents[rng.int(parents.length)]!;
        const genome = offspring(a.genome, b.genome, rng);
        if (cache.has(JSON.stringify(genome))) continue;
        children.push(await evaluate(genome));
      }
      pool = [...pool, ...children].sort((a, b) => rank(b) - rank(a)).slice(0, population);
    }
    const feasible = evaluated.filter((c) => c.feasible).sort((a, b) => b.compression - a.compression);
    return { best: feasible[0] ?? null, baseline, pareto: paretoFront(evaluated), evaluated };
  } finally {
    await engine.close();
  }
}
