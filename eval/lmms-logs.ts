import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { z } from 'zod';
import { InputError, UsageError } from '../core/errors.js';
import { analyzeTask, BASELINE_METHOD, factorForKept, type RunCorrectness, type TaskAnalysis } from './groups.js';
import { isCorrect, type LmmsSample } from './lmms-correctness.js';
import { formatZodError } from '../core/schema.js';

/**
 * Reads lmms-eval `--log_samples` output laid out as VTC-Bench runs it: one
 * folder per run, named `<method>_IR<k>_RR<r>` (method at input downsample k
 * with reduction ratio r) or `NATIVE_IR<k>` (plain downsampling by k; IR1 =
 * uncompressed), or described by a manifest.json. Each folder holds (at any
 * depth, as lmms-eval nests them under a model folder) `samples_<task>.jsonl`
 * or `<timestamp>_samples_<task>.jsonl`; the newest file per task wins.
 * VTC-Bench's reorganised `Data/<model>/` layout (Downsample/<K>/,
 * <Method>/<budget>/, <task>.jsonl) is read too.
 */

export interface RunSpec {
  method: string;
  /** Downsample-equivalent factor (kept budget 1/K²). */
  k: number;
}

/**
 * Parses VTC-Bench run folder names. The effective kept budget of
 * `<m>_IR<i>_RR<r>` is (1 − r) / i² (i = 1 in VTC-Bench's own runs, where it
 * is just 1 − r), mapped to K by 1/K².
 *
 * @example
 * parseRunFolderName('fastv_IR1_RR0.75'); // { method: 'fastv', k: 2 }
 * parseRunFolderName('NATIVE_IR3');       // { method: 'downsample', k: 3 }
 * parseRunFolderName('notes');            // undefined
 */
export function parseRunFolderName(name: string): RunSpec | undefined {
  const withReduction = /^(.+)_IR(\d+(?:\.\d+)?)_RR(\d*\.?\d+)$/i.exec(name);
  if (withReduction) {
    const [, method, ir, rr] = withReduction as unknown as [string, string, string, string];
    const kept = (1 - Number(rr)) / Number(ir) ** 2;
    if (!(kept > 0 && kept <= 1)) return undefined;
    return { method: canonicalMethod(method), k: factorForKept(kept) };
  }
  const inputOnly = /^(.+)_IR(\d+(?:\.\d+)?)$/i.exec(name);
  if (inputOnly) {
    const [, method, ir] = inputOnly as unknown as [string, string, string];
    const k = Number(ir);
    if (!(k >= 1)) return undefined;
    return { method: canonicalMethod(method), k };
  }
  return undefined;
}

function canonicalMethod(name: string): string {
  const lower = name.toLowerCase();
  return lower === 'native' || lower === 'downsample' ? BASELINE_METHOD : name;
}

const manifestEntry = z
  .object({
    method: z.string().min(1),
    /** K (≥ 1) like `--ratios`, or a kept fraction in (0, 1). */
    ratio: z.number().positive(),
  })
  .strict();
const manifestSchema = z.record(z.string(), manifestEntry);

/** Reads `<dir>/manifest.json` when present: folder → {method, K}. */
export async function readManifest(dir: string): Promise<Map<string, RunSpec> | undefined> {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  // Either {"<folder>": {...}} or {"runs": {"<folder>": {...}}}.
  const body = json && typeof json === 'object' && 'runs' in json ? (json as { runs: unknown }).runs : json;
  const parsed = manifestSchema.safeParse(body);
  if (!parsed.success) {
    throw new InputError(
      formatZodError(parsed.error, `${path}: expected {"<folder>": {"method": string, "ratio": number}}`, {
        label: (key) => `at ${key}`,
        input: body,
      }),
    );
  }
  const entries = parsed.data;
  const specs = new Map<string, RunSpec>();
  for (const [folder, entry] of Object.entries(entries)) {
    const k = entry.ratio >= 1 ? entry.ratio : factorForKept(entry.ratio);
    specs.set(folder, { method: canonicalMethod(entry.method), k });
  }
  return specs;
}

/** Task name from a samples file name: `…_samples_<task>.jsonl` or `samples_<task>.jsonl`. */
export function taskFromFileName(fileName: string): string | undefined {
  const match = /(?:^|_)samples_(.+)\.jsonl$/i.exec(fileName);
  return match ? match[1]!.toLowerCase() : undefined;
}

async function listSampleFiles(dir: string, depth = 0): Promise<string[]> {
  if (depth > 4) return [];
  const entries = await readdir(dir, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listSampleFiles(path, depth + 1)));
    else if (entry.isFile() && taskFromFileName(entry.name)) files.push(path);
  }
  return files;
}

/**
 * Loads one samples file into doc_id (string form) → correct. Blank lines are
 * skipped; a malformed line or a record without doc_id is an error naming the
 * file and line.
 */
export async function loadSampleCorrectness(path: string, task: string): Promise<Map<string, boolean>> {
  const text = await readFile(path, 'utf8');
  const correct = new Map<string, boolean>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let record: LmmsSample;
    try {
      record = JSON.parse(line) as LmmsSample;
    } catch (error) {
      throw new InputError(`${path}:${i + 1}: not valid JSON (${(error as Error).message})`);
    }
    if (!record || typeof record !== 'object' || Array.isArray(record))
      throw new InputError(`${path}:${i + 1}: expected a JSON object, got ${line.slice(0, 40)}`);
    if (typeof record.doc_id !== 'number' && typeof record.doc_id !== 'string') {
      throw new InputError(
        `${path}:${i + 1}: expected doc_id as a number or string, got ${JSON.stringify(record.doc_id) ?? 'nothing'}`,
      );
    }
    // doc_id may be 3 in one run and "3" in another: match on the string form.
    correct.set(String(record.doc_id), isCorrect(record, task).correct);
  }
  return correct;
}

export interface DiscoveredRun extends RunSpec {
  folder: string;
  /** Task → the samples file used. */
  files: Record<string, string>;
}

/** Fails with a usage error unless `dir` is an existing directory (the argument of `vtc eval analyze`). */
export async function assertLogDirectory(dir: string): Promise<void> {
  let info;
  try {
    info = await stat(dir);
  } catch {
    throw new UsageError(`eval analyze: ${dir} does not exist`);
  }
  if (!info.isDirectory()) throw new UsageError(`eval analyze: ${dir} is not a directory`);
}

/** Finds the run folders of `dir` and their newest samples file per task. */
export async function discoverRuns(dir: string): Promise<{ runs: DiscoveredRun[]; warnings: string[] }> {
  await assertLogDirectory(dir);
  const manifest = await readManifest(dir);
  const warnings: string[] = [];
  const runs: DiscoveredRun[] = [];
  const folders = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const reorganized = manifest ? undefined : await discoverDataLayout(dir, folders);
  if (reorganized) return reorganized;
  if (manifest)
    for (const name of manifest.keys())
      if (!folders.includes(name))
        throw new InputError(`${join(dir, 'manifest.json')}: folder ${JSON.stringify(name)} does not exist in ${dir}`);
  for (const folder of folders) {
    const spec = manifest?.get(folder) ?? parseRunFolderName(folder);
    const files = await listSampleFiles(join(dir, folder));
    if (!spec) {
      if (files.length > 0)
        warnings.push(
          `${folder}: name is not <method>_IR<k>_RR<r> or NATIVE_IR<k> and manifest.json does not list it; skipped`,
        );
      continue;
    }
    const byTask: Record<string, string> = {};
    // lmms-eval prefixes a timestamp: the lexically last file name is the newest run.
    for (const file of files.sort((a, b) => basename(a).localeCompare(basename(b))))
      byTask[taskFromFileName(basename(file))!] = file;
    if (Object.keys(byTask).length === 0) {
      warnings.push(`${folder}: no samples_<task>.jsonl files; skipped`);
      continue;
    }
    runs.push({ ...spec, folder, files: byTask });
  }
  return { runs, warnings };
}

export interface LogAnalysis {
  tasks: TaskAnalysis[];
  runs: DiscoveredRun[];
  warnings: string[];
}

/**
 * Analyses a folder of lmms-eval runs VTC-Bench style.
 *
 * @example
 * const { tasks } = await analyzeLmmsLogs('logs/qwen2-vl');
 * tasks[0].ratios['2'].methods.fastv.acc_a; // accuracy (%) on Group A at K = 2
 */
export async function analyzeLmmsLogs(dir: string): Promise<LogAnalysis> {
  const { runs, warnings } = await discoverRuns(dir);
  if (runs.length === 0)
    throw new InputError(
      `${dir}: no run folders with lmms-eval samples files (expected e.g. NATIVE_IR1/, NATIVE_IR2/, fastv_IR1_RR0.75/ or a manifest.json)`,
    );
  const taskNames = [...new Set(runs.flatMap((r) => Object.keys(r.files)))].sort();
  const tasks: TaskAnalysis[] = [];
  for (const task of taskNames) {
    const taskRuns: RunCorrectness[] = [];
    for (const run of runs) {
      const file = run.files[task];
      if (!file) continue;
      taskRuns.push({
        method: run.method,
        k: run.k,
        correct: await loadSampleCorrectness(file, task),
        label: relative(dir, file) || file,
      });
    }
    if (!taskRuns.some((r) => r.method === BASELINE_METHOD && r.k === 1)) {
      warnings.push(`task ${task}: no uncompressed run (NATIVE_IR1) has it; skipped`);
      continue;
    }
    const analysis = analyzeTask(task, taskRuns);
    warnings.push(...analysis.warnings);
    tasks.push(analysis);
  }
  if (tasks.length === 0)
    throw new InputError(
      `${dir}: no task has an uncompressed run (a NATIVE_IR1 folder or a manifest entry {"method": "downsample", "ratio": 1})`,
    );
  return { tasks, runs, warnings };
}

/** Sub-folder names that are numbers (K under Downsample/, kept budgets under a method). */
async function numericSubfolders(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && /^\d*\.?\d+$/.test(e.name))
    .map((e) => e.name)
    .sort();
}

/**
 * VTC-Bench's reorganised layout (tools/reorganize_data.py → Data/<model>/):
 * `Downsample/<K>/<task>.jsonl` (K = 1 uncompressed) and
 * `<Method>/<kept budget>/<task>.jsonl` (0.25 ↔ K 2, 0.1111 ↔ K 3, …).
 * Returns undefined when `dir` is not laid out that way.
 */
async function discoverDataLayout(
  dir: string,
  folders: string[],
): Promise<{ runs: DiscoveredRun[]; warnings: string[] } | undefined> {
  const downsample = folders.find((f) => f.toLowerCase() === 'downsample');
  if (!downsample || (await numericSubfolders(join(dir, downsample))).length === 0) return undefined;
  const runs: DiscoveredRun[] = [];
  const warnings: string[] = [];
  for (const folder of folders) {
    const isBaseline = folder === downsample;
    for (const value of await numericSubfolders(join(dir, folder))) {
      const number = Number(value);
      // Under Downsample/ the folder is K; under a method it is the kept budget (VTC-Bench's BUDGET_TO_DOWNSAMPLE).
      if (!isBaseline && !(number > 0 && number <= 1)) {
        warnings.push(`${folder}/${value}: expected a kept budget in (0, 1]; skipped`);
        continue;
      }
      const k = isBaseline ? number : factorForKept(number);
      const files: Record<string, string> = {};
      for (const name of (await readdir(join(dir, folder, value))).sort()) {
        if (!name.endsWith('.jsonl')) continue;
        files[taskFromFileName(name) ?? name.slice(0, -'.jsonl'.length).toLowerCase()] = join(dir, folder, value, name);
      }
      if (Object.keys(files).length > 0)
        runs.push({ method: isBaseline ? BASELINE_METHOD : folder, k, folder: `${folder}/${value}`, files });
    }
  }
  return { runs, warnings };
}
