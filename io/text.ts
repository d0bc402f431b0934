import { readFile } from 'node:fs/promises';
import { InputError, UsageError } from '../core/errors.js';

/**
 * Text files as users have them: UTF-8 (with or without BOM), UTF-16 LE/BE
 * with a BOM, or a legacy encoding named by the user. Invalid bytes are never
 * turned silently into U+FFFD: without an explicit encoding they are an error
 * that says where the first bad byte is and which flag decodes the file.
 */

export interface DecodeTextOptions {
  /**
   * A WHATWG encoding label (utf-8, utf-16le, utf-16be, latin1 / iso-8859-1
   * (decoded as windows-1252, as browsers do), windows-1251, shift_jis, gbk,
   * …). Default: UTF-8, or UTF-16 when the text starts with its BOM.
   */
  encoding?: string;
  /** Names the text in error messages (a path, "stdin"). */
  source?: string;
}

/**
 * Checks an encoding label early (a usage error lists a few valid ones).
 *
 * @example
 * checkEncoding('latin1'); // 'latin1'
 */
export function checkEncoding(label: string): string {
  try {
    new TextDecoder(label);
  } catch {
    throw new UsageError(
      `unknown text encoding ${JSON.stringify(label)} (examples: utf-8, utf-16le, utf-16be, latin1, windows-1252, shift_jis, gbk)`,
      'E_ENCODING',
    );
  }
  return label;
}

/**
 * Decodes text bytes: a BOM picks UTF-8 / UTF-16LE / UTF-16BE (and is
 * dropped); otherwise `encoding`, else strict UTF-8.
 *
 * @example
 * decodeText(new Uint8Array([0xff, 0xfe, 0x68, 0x00, 0x69, 0x00])); // 'hi'
 * decodeText(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), { encoding: 'latin1' }); // 'café'
 */
export function decodeText(bytes: Uint8Array, options: DecodeTextOptions = {}): string {
  const source = options.source ?? 'text';
  const bom = bomEncoding(bytes);
  const encoding = bom?.encoding ?? (options.encoding ? checkEncoding(options.encoding) : 'utf-8');
  const body = bom ? bytes.subarray(bom.length) : bytes;
  let text: string;
  try {
    text = new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    const bad = firstInvalidUtf8(body);
    if (!options.encoding && !bom && bad !== undefined) {
      const line = countLines(body, bad);
      throw new InputError(
        `${source} is not valid UTF-8: byte 0x${body[bad]!.toString(16).padStart(2, '0')} at offset ${bad} (line ${line}); if it is Latin-1 or another legacy encoding, name it with --encoding (e.g. --encoding latin1)`,
        'E_ENCODING',
      );
    }
    throw new InputError(
      `${source} is not valid ${encoding} text${bom ? ' (after its byte-order mark)' : ''}`,
      'E_ENCODING',
    );
  }
  if (!options.encoding && !bom && text.includes('\u0000')) {
    // UTF-16 without a BOM is valid UTF-8 full of NULs; rendering it would show boxes between letters.
    throw new InputError(
      `${source} contains NUL bytes: probably UTF-16 without a byte-order mark; name it with --encoding utf-16le (or utf-16be)`,
      'E_ENCODING',
    );
  }
  return text;
}

function bomEncoding(bytes: Uint8Array): { encoding: string; length: number } | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { encoding: 'utf-8', length: 3 };
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: 'utf-16le', length: 2 };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { encoding: 'utf-16be', length: 2 };
  return undefined;
}

/** Offset of the first byte that breaks UTF-8, or undefined when the bytes are valid UTF-8. */
export function firstInvalidUtf8(bytes: Uint8Array): number | undefined {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const need = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
    }
    // Overlongs, surrogates and code points past U+10FFFF.
    const c1 = bytes[i + 1]!;
    if (
      (b === 0xe0 && c1 < 0xa0) ||
      (b === 0xed && c1 > 0x9f) ||
      (b === 0xf0 && c1 < 0x90) ||
      (b === 0xf4 && c1 > 0x8f)
    )
      return i;
    i += need + 1;
  }
  return undefined;
}

function countLines(bytes: Uint8Array, end: number): number {
  let line = 1;
  for (let i = 0; i < end; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/**
 * Reads a text file with {@link decodeText}; "-" reads stdin.
 *
 * @example
 * const text = await readTextFile('book.txt', { encoding: 'latin1' });
 */
export async function readTextFile(path: string, options: Omit<DecodeTextOptions, 'source'> = {}): Promise<string> {
  let bytes: Uint8Array;
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    bytes = Buffer.concat(chunks);
  } else {
    try {
      bytes = await readFile(path);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EISDIR'
            ? 'it is a folder'
            : code === 'EACCES' || code === 'EPERM'
              ? 'permission denied'
              : (error as Error).message;
      throw new InputError(`cannot read text ${path}: ${why}`, 'E_READ');
    }
  }
  return decodeText(bytes, { ...options, source: path === '-' ? 'stdin' : path });
}
