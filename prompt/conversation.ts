import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { describe, InputError, UsageError } from '../core/errors.js';
import { loadTokens } from '../encoders/tokenfile.js';
import {
  planQwenPrompt,
  QWEN_PROMPT_FAMILIES,
  type GridThw,
  type PromptSegment,
  type QwenPromptFamily,
  type QwenPromptOptions,
  type QwenPromptPlan,
} from './qwen.js';

/**
 * Conversation files for `vtc prompt`: JSON, either an array of segments or
 * `{ "family"?: "qwen2.5-vl" | "qwen3-vl", "segments": [...] }`, each segment
 * exactly one of
 *
 *   { "text": "<|im_start|>user\n" }                 text, tokenized with the tokenizer
 *   { "ids": [151644, 872, 198] }                     token ids as given
 *   { "image": "kept.safetensors", "grid"?: [1, 28, 28] }
 *   { "video": "clip.safetensors", "grid"?: [t, h, w], "fps"?: 2,
 *     "secondsPerGrid"?: 1.0, "timestamps"?: [0.25, 1.25] }
 *
 * Token-file paths are relative to the conversation file. The grid defaults
 * to the file's `image_grid_thw` / `video_grid_thw` metadata.
 */
export interface Conversation {
  family?: QwenPromptFamily;
  segments: PromptSegment[];
}

const SEGMENT_KEYS = ['text', 'ids', 'image', 'video'] as const;
const VIDEO_OPTIONS = new Set(['grid', 'fps', 'secondsPerGrid', 'timestamps']);

/**
 * Reads a conversation file and the token files it names.
 *
 * @example
 * const { segments } = await loadConversation('conv.json');
 */
export async function loadConversation(path: string): Promise<Conversation> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      `${path}: ${code === 'ENOENT' ? 'file not found' : `cannot read (${(error as Error).message})`}`,
      code === 'ENOENT' ? 'E_NOENT' : 'E_READ',
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${path}: not valid JSON (${(error as Error).message})`, 'E_PROMPT');
  }
  const root = Array.isArray(raw) ? { segments: raw } : (raw as Record<string, unknown>);
  if (!root || typeof root !== 'object' || !Array.isArray(root.segments))
    throw new InputError(
      `${path}: expected an array of segments or an object with "segments", got ${describe(raw)}`,
      'E_PROMPT',
    );
  let family: QwenPromptFamily | undefined;
  if (root.family !== undefined) {
    if (!QWEN_PROMPT_FAMILIES.includes(root.family as QwenPromptFamily))
      throw new InputError(
        `${path}: family must be one of ${QWEN_PROMPT_FAMILIES.join(', ')}, got ${describe(root.family)}`,
        'E_PROMPT',
      );
    family = root.family as QwenPromptFamily;
  }
  const base = dirname(path);
  const segments: PromptSegment[] = [];
  for (const [s, value] of (root.segments as unknown[]).entries())
    segments.push(await readSegment(value, `${path}: segments[${s}]`, base));
  return family ? { family, segments } : { segments };
}

async function readSegment(value: unknown, where: string, base: string): Promise<PromptSegment> {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new InputError(
      `${where}: expected an object with one of ${SEGMENT_KEYS.join(', ')}, got ${describe(value)}`,
      'E_PROMPT',
    );
  const record = value as Record<string, unknown>;
  const kinds = SEGMENT_KEYS.filter((k) => record[k] !== undefined);
  if (kinds.length !== 1)
    throw new InputError(
      `${where}: give exactly one of ${SEGMENT_KEYS.join(', ')} (got ${kinds.length ? kinds.join(' and ') : 'none'})`,
      'E_PROMPT',
    );
  const kind = kinds[0]!;
  const allowed = kind === 'video' ? VIDEO_OPTIONS : kind === 'image' ? new Set(['grid']) : new Set<string>();
  for (const key of Object.keys(record)) {
    if (key !== kind && !allowed.has(key))
      throw new InputError(`${where}: unknown field "${key}" for a ${kind} segment`, 'E_PROMPT');
  }
  if (kind === 'text') {
    if (typeof record.text !== 'string')
      throw new InputError(`${where}.text must be a string, got ${describe(record.text)}`, 'E_PROMPT');
    return { type: 'text', text: record.text };
  }
  if (kind === 'ids') {
    const ids = record.ids;
    if (!Array.isArray(ids) || ids.some((id) => !(Number.isInteger(id) && (id as number) >= 0)))
      throw new InputError(`${where}.ids must be an array of integers ≥ 0, got ${describe(ids)}`, 'E_PROMPT');
    return { type: 'ids', ids: ids as number[] };
  }
  const file = record[kind];
  if (typeof file !== 'string' || file.length === 0)
    throw new InputError(`${where}.${kind} must be a token-file path, got ${describe(file)}`, 'E_PROMPT');
  const tokens = await loadTokens(resolve(base, file));
  const grid = record.grid === undefined ? undefined : numberList(record.grid, `${where}.grid`, 3);
  if (kind === 'image') return grid ? { type: 'image', tokens, grid: grid as GridThw } : { type: 'image', tokens };
  const segment: Extract<PromptSegment, { type: 'video' }> = { type: 'video', tokens };
  if (grid) segment.grid = grid as GridThw;
  if (record.fps !== undefined) segment.fps = positiveNumber(record.fps, `${where}.fps`);
  if (record.secondsPerGrid !== undefined)
    segment.secondsPerGrid = positiveNumber(record.secondsPerGrid, `${where}.secondsPerGrid`);
  if (record.timestamps !== undefined) segment.timestamps = numberList(record.timestamps, `${where}.timestamps`);
  return segment;
}

function numberList(value: unknown, where: string, length?: number): number[] {
  if (
    !Array.isArray(value) ||
    value.some((v) => typeof v !== 'number' || !Number.isFinite(v)) ||
    (length !== undefined && value.length !== length)
  ) {
    throw new InputError(
      `${where} must be ${length !== undefined ? `${length} numbers` : 'an array of numbers'}, got ${describe(value)}`,
      'E_PROMPT',
    );
  }
  return value as number[];
}

function positiveNumber(value: unknown, where: string): number {
  if (typeof value !== 'number' || !(Number.isFinite(value) && value > 0))
    throw new InputError(`${where} must be a positive number, got ${describe(value)}`, 'E_PROMPT');
  return value;
}

/**
 * Loads a conversation file and plans it: `options.family` wins only when
 * the file names none or the same one (a mismatch is a usage error).
 *
 * @example
 * const plan = await planConversationFile('conv.json', { family: 'qwen3-vl', tokenizer });
 */
export async function planConversationFile(
  path: string,
  options: Omit<QwenPromptOptions, 'family'> & { family?: QwenPromptFamily },
): Promise<QwenPromptPlan> {
  const conversation = await loadConversation(path);
  if (options.family && conversation.family && options.family !== conversation.family) {
    throw new UsageError(`prompt: --family ${options.family} but ${path} says family ${conversation.family}`);
  }
  const family = options.family ?? conversation.family;
  if (!family)
    throw new UsageError(
      `prompt: no family: pass --family (${QWEN_PROMPT_FAMILIES.join(' or ')}) or put "family" in ${path}`,
    );
  return planQwenPrompt(conversation.segments, { ...options, family });
}

/** The plan as plain JSON (what `vtc prompt --json` prints and `--out` writes). */
export function promptPlanJson(plan: QwenPromptPlan): Record<string, unknown> {
  return {
    family: plan.family,
    length: plan.ids.length,
    visual_tokens: plan.blocks.reduce((sum, b) => sum + b.rows.length, 0),
    rope_delta: plan.ropeDelta,
    input_ids: Array.from(plan.ids),
    position_ids: plan.positionIds.map((axis) => Array.from(axis)),
    blocks: plan.blocks.map((b) => ({
      segment: b.segment,
      kind: b.kind,
      ...(b.frame !== undefined ? { frame: b.frame, timestamp: b.timestamp } : {}),
      start: b.start,
      end: b.end,
      base: b.base,
      tokens: b.rows.length,
      rows: Array.from(b.rows),
      grid: b.grid,
    })),
  };
}
