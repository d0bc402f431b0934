/**
 * Drawing helpers shared by the sample-set generators (generate.ts, detail.ts):
 * the DejaVu fonts registered once, seeded picks and shuffles, and palette PNG
 * output. Deterministic: the same Rng state gives the same picks.
 */
import { writeFileSync } from 'node:fs';
import type { Canvas } from '@napi-rs/canvas';
import sharp from 'sharp';
import type { Rng } from '../../core/rng.js';
import { familyPath, loadFont } from '../../render/fonts.js';

let regular = '';
let bold = '';

/** Registers DejaVu Sans and DejaVu Sans Bold with the canvas (once per generator run). */
export function loadSampleFonts(): void {
  regular = loadFont(familyPath('DejaVu Sans')).alias;
  bold = loadFont(familyPath('DejaVu Sans Bold')).alias;
}

/** A canvas font string for the registered fonts, e.g. `font(14, 'bold')`. */
export function font(size: number, weight: 'regular' | 'bold' = 'regular'): string {
  if (!regular) throw new Error('samples: loadSampleFonts() must run before font()');
  return `${size}px "${weight === 'bold' ? bold : regular}"`;
}

export function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(list.length)]!;
}

/** Fisher–Yates shuffle driven by the seeded generator. */
export function shuffled<T>(rng: Rng, list: readonly T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Writes the canvas as a palette PNG of `colours` colours: text and flat shapes need few, and the committed sets stay small. */
export async function savePalettePng(canvas: Canvas, path: string, colours: number): Promise<void> {
  const png = await sharp(canvas.toBuffer('image/png')).png({ palette: true, colours, compressionLevel: 9 }).toBuffer();
  writeFileSync(path, png);
}
