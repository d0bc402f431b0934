import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  bundleToTokenSet,
  EXTRA_PREFIX,
  isBundle,
  tensorsToTokenSet,
  tokenSetToBundle,
  tokenSetToTensors,
} from '../core/bundle.js';
import { InputError, UsageError } from '../core/errors.js';
import { decodeNpy, encodeNpy } from '../core/npy.js';
import { decodeSafetensors, encodeSafetensors } from '../core/safetensors.js';
import { createTokenSet, type TokenSet } from '../core/tokenset.js';
import { writeFileAtomic } from '../io/write.js';
import { npyFrameSources } from './tokenstream.js';

/**
 * Token files on disk (the only file I/O for tokens; core/ holds the pure codecs):
 * - `.npy` [n, d] → one source; a square n is taken as an s×s grid.
 *   [F, T, d] → F frames of T tokens each.
 * - `.safetensors` AnyRes bundle (thumbnail + crops) or a `tokens` [n, d] file.
 */
export async function loadTokens(path: string): Promise<TokenSet> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${path}: file not found`, 'E_NOENT');
    if (code === 'EISDIR')
      throw new InputError(`${path}: is a directory, expected a .npy or .safetensors file`, 'E_INPUT');
    throw new InputError(`${path}: cannot read (${(error as Error).message})`, 'E_READ');
  }
  return decodeTokens(bytes, path);
}

/** Decodes token-file bytes; `name` decides the format by extension. */
export function decodeTokens(bytes: Uint8Array, name: string): TokenSet {
  const ext = extname(name).toLowerCase();
  if (ext === '.npy') return npyToTokenSet(bytes, name);
  if (ext === '.safetensors') {
    const file = decodeSafetensors(bytes, name);
    return isBundle(file) ? bundleToTokenSet(file, name) : tensorsToTokenSet(file, name);
  }
  throw new UsageError(
    `${name}: unsupported token file extension ${JSON.stringify(ext)} (expected .npy or .safetensors)`,
    'E_FORMAT',
  );
}

function npyToTokenSet(bytes: Uint8Array, name: string): TokenSet {
  const { shape, data } = decodeNpy(bytes, name);
  if (shape.length === 2) {
    const [n, d] = shape as [number, number];
    if (n === 0) throw new InputError(`${name}: contains zero tokens (shape (0, ${d}))`, 'E_EMPTY');
    return withWhere(name, () => createTokenSet({ data, n, d }));
  }
  if (shape.length === 3) {
    const [frames, perFrame, d] = shape as [number, number, number];
    if (frames * perFrame === 0)
      throw new InputError(`${name}: contains zero tokens (shape (${shape.join(', ')}))`, 'E_EMPTY');
    const sources = npyFrameSources(frames, perFrame);
    const source = new Int32Array(frames * perFrame);
    for (let f = 0; f < frames; f++) source.fill(f, f * perFrame, (f + 1) * perFrame);
    return withWhere(name, () => createTokenSet({ data, n: frames * perFrame, d, sources, source }));
  }
  throw new InputError(
    `${name}: expected a 2-D [n, d] or 3-D [frames, tokens, d] array, got shape (${shape.join(', ')})`,
    'E_SHAPE',
  );
}

/** Re-throws validation errors with the file name in front. */
function withWhere<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof InputError) throw new InputError(`${name}: ${error.message}`, error.code);
    throw error;
  }
}

/** The tensors that hold token features (written as float16 when asked). */
const FEATURE_TENSORS = ['tokens', 'thumbnail', 'crops'] as const;

export interface SaveTokensOptions {
  dtype?: 'float32' | 'float16';
  /** Write an AnyRes bundle (thumbnail/crops layout) instead of a flat `tokens` file. */
  bundle?: boolean;
}

/** Encodes a token set for `name`'s extension (.npy [n, d] or .safetensors). */
export function encodeTokens(tokens: TokenSet, name: string, options: SaveTokensOptions = {}): Uint8Array {
  const ext = extname(name).toLowerCase();
  const dtype = options.dtype ?? 'float32';
  if (ext === '.npy') return encodeNpy(npyShape(tokens, name), tokens.data, dtype);
  if (ext === '.safetensors') {
    const { tensors, metadata } = options.bundle ? tokenSetToBundle(tokens) : tokenSetToTensors(tokens);
    // float16 applies to features only: sizes (counts that exceed 2048 after merging) and scores stay float32.
    if (dtype === 'float16') {
      for (const name of FEATURE_TENSORS) if (tensors[name]) tensors[name]!.dtype = 'F16';
      for (const name of Object.keys(tensors)) if (name.startsWith(EXTRA_PREFIX)) tensors[name]!.dtype = 'F16';
    }
    return encodeSafetensors(tensors, metadata);
  }
  throw new UsageError(
    `${name}: unsupported output extension ${JSON.stringify(ext)} (expected .npy or .safetensors)`,
    'E_FORMAT',
  );
}

/**
 * The .npy shape that keeps a token set's structure: [n, d] for tokens of one
 * source, [frames, tokens, d] for video frames in order with the same count
 * each. Anything else (an AnyRes bundle, a reduced bundle, frames left with
 * unequal counts) cannot be told apart again in a bare array, so it is
 * refused with a pointer to .safetensors, which stores sources and positions.
 */
export function npyShape(tokens: TokenSet, name: string): number[] {
  const { n, d } = tokens;
  const perSource = new Map<number, number>();
  let ordered = true;
  for (let i = 0; i < n; i++) {
    const s = tokens.source[i]!;
    if (i > 0 && s < tokens.source[i - 1]!) ordered = false;
    perSource.set(s, (perSource.get(s) ?? 0) + 1);
  }
  if (perSource.size <= 1) return [n, d];
  const counts = [...perSource.values()];
  const kinds = new Set([...perSource.keys()].map((s) => tokens.sources[s]!.kind));
  const frames = kinds.size === 1 && kinds.has('frame');
  if (frames && ordered && counts.every((c) => c === counts[0])) return [perSource.size, counts[0]!, d];
  const what = frames
    ? ordered
      ? `${perSource.size} frames with unequal token counts (${Math.min(...counts)}–${Math.max(...counts)})`
      : `${perSource.size} frames out of frame order`
    : `${perSource.size} sources (${[...kinds].join(', ')})`;
  throw new UsageError(
    `${name}: these ${n} tokens come from ${what}; .npy holds only [n, d] or [frames, tokens, d] and would lose which token belongs where — write .safetensors instead`,
    'E_STRUCTURE',
  );
}

/** Writes atomically (temp file + rename) so a crash never leaves half a file. */
export async function saveTokens(path: string, tokens: TokenSet, options: SaveTokensOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodeTokens(tokens, path, options));
}
