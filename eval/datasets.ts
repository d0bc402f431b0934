import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { z } from 'zod';
import { InputError, UsageError } from '../core/errors.js';
import { readTextFile } from '../io/text.js';
import { METRICS, type Metric } from './scoring.js';
import { formatZodError } from '../core/schema.js';

/**
 * Evaluation datasets: JSONL rows, VLMEvalKit TSV files (base64 images), or a
 * folder of images with a questions file. Rows are validated with zod and
 * errors name the file and line.
 */

/** An image of a sample: a file on disk or bytes (decoded from a TSV). */
export type ImageRef = { path: string } | { bytes: Uint8Array };

export interface EvalSample {
  /** Unique within the dataset (string form). */
  id: string;
  question: string;
  /** Multiple-choice options in letter order (A, B, …). */
  options?: string[];
  answer: string;
  images: ImageRef[];
  video?: string;
  /** Long text input (for Glyph rendering / text-only tasks). */
  text?: string;
  /** Per-row metric override. */
  metric?: Metric;
  category?: string;
  /** Where the row came from, for messages ("file:line"). */
  where: string;
}

export interface EvalDataset {
  /** Name used in the results cache key (file or folder name without extension). */
  name: string;
  path: string;
  samples: EvalSample[];
}

const scalar = z.union([z.string(), z.number()]);
const rowSchema = z
  .object({
    id: scalar,
    image: z.string().min(1).optional(),
    images: z.array(z.string().min(1)).min(1).optional(),
    video: z.string().min(1).optional(),
    text: z.string().min(1).optional(),
    question: z.string().min(1),
    options: z.union([z.array(scalar).min(2), z.record(z.string().regex(/^[A-Z]$/), scalar)]).optional(),
    answer: z.union([scalar, z.array(scalar).min(1)]),
    metric: z.enum(METRICS).optional(),
    category: z.string().optional(),
  })
  .passthrough()
  .refine(
    (row) => row.image !== undefined || row.images !== undefined || row.video !== undefined || row.text !== undefined,
    {
      message: 'needs one of image, images, video or text',
    },
  );

/** Options as an array in letter order (a record {A: …, B: …} must not skip letters). */
function optionList(options: unknown, where: string): string[] | undefined {
  if (options === undefined) return undefined;
  if (Array.isArray(options)) return options.map(String);
  const record = options as Record<string, string | number>;
  const letters = Object.keys(record).sort();
  letters.forEach((letter, i) => {
    if (letter !== String.fromCharCode(65 + i))
      throw new InputError(`${where}: options must be lettered A, B, C… without gaps, got ${letters.join(', ')}`);
  });
  return letters.map((l) => String(record[l]));
}

/**
 * Validates one JSONL row; image/video paths are resolved against `baseDir`.
 *
 * @example
 * parseRow({ id: 1, image: 'a.png', question: 'Q?', answer: 'x' }, '/data', 'd.jsonl:1').images; // [{ path: '/data/a.png' }]
 */
export function parseRow(raw: unknown, baseDir: string, where: string): EvalSample {
  const parsed = rowSchema.safeParse(raw);
  if (!parsed.success) throw new InputError(formatZodError(parsed.error, where, { label: (key) => `field ${key}:` }));
  const row = parsed.data;
  const imagePaths = row.images ?? (row.image !== undefined ? [row.image] : []);
  const answer = Array.isArray(row.answer) ? row.answer.map(String).join('|') : String(row.answer);
  return {
    id: String(row.id),
    question: row.question,
    options: optionList(row.options, where),
    answer,
    images: imagePaths.map((p) => ({ path: resolve(baseDir, p) })),
    ...(row.video !== undefined ? { video: resolve(baseDir, row.video) } : {}),
    ...(row.text !== undefined ? { text: row.text } : {}),
    ...(row.metric !== undefined ? { metric: row.metric } : {}),
    ...(row.category !== undefined ? { category: row.category } : {}),
    where,
  };
}

function checkUniqueIds(samples: EvalSample[]): void {
  const seen = new Map<string, string>();
  for (const s of samples) {
    const previous = seen.get(s.id);
    if (previous) throw new InputError(`${s.where}: duplicate id ${JSON.stringify(s.id)} (first at ${previous})`);
    seen.set(s.id, s.where);
  }
}

/**
 * Checks that every image and video file a sample names exists, so a wrong
 * path fails at load time naming its line instead of failing every job later.
 */
async function assertInputFilesExist(samples: EvalSample[]): Promise<void> {
  for (const sample of samples) {
    const files = [
      ...sample.images.flatMap((ref) => ('path' in ref ? [{ kind: 'image', path: ref.path }] : [])),
      ...(sample.video !== undefined ? [{ kind: 'video', path: sample.video }] : []),
    ];
    for (const { kind, path } of files) {
      const info = await stat(path).catch(() => undefined);
      if (!info) throw new InputError(`${sample.where}: ${kind} file ${path} not found`);
      if (!info.isFile()) throw new InputError(`${sample.where}: ${kind} ${path} is not a file`);
    }
  }
}

/** Reads a JSONL dataset (blank lines skipped). */
export async function loadJsonlDataset(path: string): Promise<EvalDataset> {
  const text = await readTextFile(path);
  const samples: EvalSample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${path}:${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (error) {
      throw new InputError(`${where}: not valid JSON (${(error as Error).message})`);
    }
    samples.push(parseRow(raw, dirname(path), where));
  }
  if (samples.length === 0) throw new InputError(`${path}: no rows`);
  checkUniqueIds(samples);
  await assertInputFilesExist(samples);
  return { name: basename(path, extname(path)), path, samples };
}

/**
 * Splits delimited text (TSV/CSV as pandas writes it: fields with the
 * delimiter, quotes or newlines are double-quoted, quotes doubled).
 *
 * @example
 * parseDelimited('a\tb\n"x\ty"\t2\n', '\t'); // [{ line: 1, cells: ['a','b'] }, { line: 2, cells: ['x\ty','2'] }]
 */
export function parseDelimited(text: string, delimiter: string): { line: number; cells: string[] }[] {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowStart = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === delimiter) {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      cells.push(cell);
      if (cells.length > 1 || cells[0] !== '') rows.push({ line: rowStart, cells });
      cells = [];
      cell = '';
      line++;
      rowStart = line;
    } else cell += c;
  }
  if (cell !== '' || cells.length > 0) {
    cells.push(cell);
    rows.push({ line: rowStart, cells });
  }
  return rows;
}

/**
 * A Python list literal of strings, as VLMEvalKit's VQA TSVs store a row's
 * accepted answers (and its evaluators eval()); undefined for anything else.
 *
 * @example
 * parsePythonStringList(`['two', "it's", '2']`); // ['two', "it's", '2']
 * parsePythonStringList('two');                  // undefined
 */
export function parsePythonStringList(text: string): string[] | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('[') || !trimmed.endsWith(']')) return undefined;
  const body = trimmed.slice(1, -1);
  const item = /\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*(,|$)/y;
  const items: string[] = [];
  for (let at = 0; body.slice(at).trim() !== ''; ) {
    item.lastIndex = at;
    const match = item.exec(body);
    if (!match) return undefined;
    items.push((match[1] ?? match[2]!).replace(/\\(.)/g, '$1'));
    at = item.lastIndex;
    if (match[3] === '') break;
  }
  return items.length > 0 ? items : undefined;
}

const isMissing = (v: string | undefined) => v === undefined || v === '' || v.toLowerCase() === 'nan';

/**
 * Reads a VLMEvalKit TSV: columns index, image (base64, or the index of the
 * row holding the image, as VLMEvalKit de-duplicates), question, A–Z options,
 * answer (a letter, a string, or a Python list of accepted answers), optional
 * hint and category. A hint is prepended to the question.
 */
export async function loadTsvDataset(path: string): Promise<EvalDataset> {
  const rows = parseDelimited(await readTextFile(path), '\t');
  if (rows.length < 2) throw new InputError(`${path}: expected a header row and at least one data row`);
  const header = rows[0]!.cells.map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  for (const required of ['index', 'question', 'answer'])
    if (col(required) < 0)
      throw new InputError(`${path}:1: missing column ${JSON.stringify(required)} (columns: ${header.join(', ')})`);
  if (col('image') < 0 && col('image_path') < 0)
    throw new InputError(`${path}:1: missing column "image" (base64) or "image_path"`);
  const optionCols = optionLetterColumns(header);
  const imageByIndex = new Map<string, string>();
  for (const row of rows.slice(1))
    if (col('image') >= 0) imageByIndex.set(row.cells[col('index')] ?? '', row.cells[col('image')] ?? '');
  const samples: EvalSample[] = [];
  for (const row of rows.slice(1)) {
    const where = `${path}:${row.line}`;
    if (row.cells.length !== header.length)
      throw new InputError(`${where}: expected ${header.length} tab-separated fields, got ${row.cells.length}`);
    const get = (name: string) => (col(name) >= 0 ? row.cells[col(name)] : undefined);
    const id = get('index')!;
    const question = get('question')!;
    const answer = get('answer')!;
    if (isMissing(id)) throw new InputError(`${where}: empty index`);
    if (isMissing(question)) throw new InputError(`${where}: empty question`);
    if (isMissing(answer)) throw new InputError(`${where}: empty answer`);
    let images: ImageRef[];
    const imagePath = get('image_path');
    if (col('image') >= 0 && !isMissing(get('image'))) {
      let encoded = get('image')!;
      // VLMEvalKit stores repeated images once; other rows hold that row's index.
      if (encoded.length <= 64 && imageByIndex.has(encoded)) encoded = imageByIndex.get(encoded)!;
      images = decodeTsvImages(encoded, where);
    } else if (!isMissing(imagePath)) {
      images = [{ path: resolve(dirname(path), imagePath!) }];
    } else throw new InputError(`${where}: no image (empty image and image_path)`);
    const options: string[] = [];
    // Options are the consecutive non-empty A, B, C… cells (VLMEvalKit writes nan for unused letters).
    for (const index of optionCols) {
      const value = row.cells[index];
      if (isMissing(value)) break;
      options.push(value!);
    }
    const hint = get('hint');
    samples.push({
      id,
      question: isMissing(hint) ? question : `${hint}\n${question}`,
      ...(options.length >= 2 ? { options } : {}),
      // VQA TSVs hold "['a', 'b']": any of them is accepted (joined with '|' like a JSONL answer list).
      answer: parsePythonStringList(answer)?.join('|') ?? answer,
      images,
      ...(isMissing(get('category')) ? {} : { category: get('category') }),
      where,
    });
  }
  checkUniqueIds(samples);
  await assertInputFilesExist(samples);
  return { name: basename(path, extname(path)), path, samples };
}

/** Column indices of the option letters A, B, C… present in the header, in letter order. */
function optionLetterColumns(header: string[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < 26; i++) {
    const index = header.indexOf(String.fromCharCode(65 + i));
    if (index < 0) break;
    out.push(index);
  }
  return out;
}

/** A base64 image cell, or a JSON list of base64 strings (multi-image rows). */
function decodeTsvImages(cell: string, where: string): ImageRef[] {
  const trimmed = cell.trim();
  const encoded: string[] = trimmed.startsWith('[') ? parseImageList(trimmed, where) : [trimmed];
  return encoded.map((b64, i) => {
    if (!/^[A-Za-z0-9+/=\s]+$/.test(b64)) throw new InputError(`${where}: image ${i} is not base64`);
    const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
    if (bytes.length < 8) throw new InputError(`${where}: image ${i} decodes to ${bytes.length} bytes`);
    return { bytes };
  });
}

function parseImageList(text: string, where: string): string[] {
  try {
    const list = JSON.parse(text.replace(/'/g, '"')) as unknown;
    if (Array.isArray(list) && list.every((x) => typeof x === 'string')) return list as string[];
  } catch {
    // fall through
  }
  throw new InputError(`${where}: image cell starts with "[" but is not a list of base64 strings`);
}

const QUESTION_FILES = ['questions.jsonl', 'questions.json', 'questions.tsv', 'questions.csv'];

/**
 * Reads a folder of images with a questions file (questions.jsonl / .json
 * array / .tsv / .csv with columns id, image, question, answer[, options as
 * "a|b|c"]). Image paths are relative to the folder.
 */
export async function loadFolderDataset(dir: string): Promise<EvalDataset> {
  const names = await readdir(dir);
  const file = QUESTION_FILES.find((f) => names.includes(f));
  if (!file) throw new InputError(`${dir}: no questions file (expected one of ${QUESTION_FILES.join(', ')})`);
  const path = join(dir, file);
  let samples: EvalSample[];
  if (file.endsWith('.jsonl')) samples = (await loadJsonlDataset(path)).samples;
  else if (file.endsWith('.json')) {
    let list: unknown;
    try {
      list = JSON.parse(await readTextFile(path));
    } catch (error) {
      throw new InputError(`${path}: not valid JSON (${(error as Error).message})`);
    }
    if (!Array.isArray(list)) throw new InputError(`${path}: expected a JSON array of rows`);
    samples = list.map((raw, i) => parseRow(raw, dir, `${path}[${i}]`));
  } else {
    const rows = parseDelimited(await readTextFile(path), file.endsWith('.tsv') ? '\t' : ',');
    const header = rows[0]?.cells.map((h) => h.trim()) ?? [];
    samples = rows.slice(1).map((row) => {
      const raw: Record<string, unknown> = {};
      header.forEach((h, i) => {
        const value = row.cells[i];
        if (value !== undefined && value !== '') raw[h] = h === 'options' ? value.split('|') : value;
      });
      return parseRow(raw, dir, `${path}:${row.line}`);
    });
  }
  if (samples.length === 0) throw new InputError(`${path}: no rows`);
  checkUniqueIds(samples);
  // questions.jsonl was checked by loadJsonlDataset.
  if (!file.endsWith('.jsonl')) await assertInputFilesExist(samples);
  return { name: basename(resolve(dir)), path: dir, samples };
}

/**
 * Loads a dataset by path: a folder, a .tsv (VLMEvalKit) or a .jsonl file.
 *
 * @example
 * const dataset = await loadDataset('samples/bench/bench.jsonl');
 * dataset.samples.length;
 */
export async function loadDataset(path: string): Promise<EvalDataset> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new UsageError(`dataset ${path} does not exist`);
  }
  if (info.isDirectory()) return loadFolderDataset(path);
  const ext = extname(path).toLowerCase();
  if (ext === '.tsv') return loadTsvDataset(path);
  if (ext === '.jsonl') return loadJsonlDataset(path);
  throw new UsageError(
    `dataset ${path}: expected a .jsonl file, a VLMEvalKit .tsv file or a folder with a questions file, got ${ext || 'no extension'}`,
  );
}
