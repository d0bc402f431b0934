/**
 * Generates the small-detail sample set: 1024×768 pictures whose answer sits
 * in a small part of the frame, in small type, so that downsampling the whole
 * picture to a token budget loses it while a sharper crop of the right region
 * keeps it. Four kinds, built to be fair to both methods (not tuned to focus):
 *
 * - label: a mostly empty scene with large plain shapes (salient decoys) and
 *   one small sticker "Lot: 1234" somewhere;
 * - table: a 20-row table filling the page; the question names one row;
 * - charts: four small bar charts in a 2×2 grid; the question names one bar;
 * - document: a page of dense small text with one key line.
 *
 * Output: samples/bench/detail/images/*.png and samples/bench/detail/detail.jsonl
 * (rows {id, image, question, answer, metric?, category}, the bench.jsonl format).
 * Run: node --import tsx samples/bench/detail.ts [--count-per-kind 16]
 * Deterministic: the same seed gives the same rows and pixels.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Canvas, type SKRSContext2D, createCanvas } from '@napi-rs/canvas';
import { Rng } from '../../core/rng.js';
import { samplesRoot } from '../paths.js';
import { font, loadSampleFonts, pick, savePalettePng, shuffled } from './draw.js';

const detailDir = join(samplesRoot, 'bench', 'detail');
const WIDTH = 1024;
const HEIGHT = 768;

interface Row {
  id: string;
  image: string;
  question: string;
  answer: string;
  metric?: string;
  category: string;
}

const CITIES = ['Lisbon', 'Oslo', 'Madrid', 'Vienna', 'Dublin', 'Prague', 'Berlin', 'Warsaw', 'Athens', 'Zurich', 'Helsinki', 'Bergen', 'Porto', 'Krakow', 'Seville', 'Geneva', 'Tallinn', 'Riga', 'Vilnius', 'Bruges', 'Ghent', 'Lyon', 'Turin', 'Munich'];
const FRUITS = ['Apples', 'Pears', 'Plums', 'Grapes', 'Cherries', 'Lemons', 'Melons', 'Peaches', 'Mangoes', 'Kiwis', 'Limes', 'Figs', 'Dates', 'Guavas', 'Papayas', 'Quinces'];
const FILLER = 'the quarterly review covers shipping delays inventory counts staff training and the new supplier contract which takes effect next month after approval by the board members'.split(' ');

function page(background = '#ffffff'): { canvas: Canvas; ctx: SKRSContext2D } {
  const canvas = createCanvas(WIDTH, HEIGHT);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, WIDTH, HEIGHT);
  return { canvas, ctx };
}

async function save(canvas: Canvas, file: string): Promise<string> {
  await savePalettePng(canvas, join(detailDir, 'images', file), 8);
  return `images/${file}`;
}

/** A plain scene with big shapes and one small sticker carrying a lot number. */
async function label(rng: Rng, i: number, size: number): Promise<Row> {
  const { canvas, ctx } = page('#e8e4da');
  for (let s = 0; s < 5; s++) {
    ctx.fillStyle = pick(rng, ['#9bb4c8', '#c8a59b', '#a8c39b', '#c9c08f', '#8f8f8f']);
    ctx.fillRect(rng.int(WIDTH - 200), rng.int(HEIGHT - 150), 120 + rng.int(260), 80 + rng.int(200));
  }
  const lot = String(1000 + rng.int(9000));
  const text = `Lot: ${lot}`;
  ctx.font = font(size, 'bold');
  const w = ctx.measureText(text).width + size;
  const h = size * 1.8;
  const x = rng.int(Math.floor(WIDTH - w - 8)) + 4;
  const y = rng.int(Math.floor(HEIGHT - h - 8)) + 4;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(x, y, w, h);
  ctx.fillStyle = '#111111';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, x + size / 2, y + h / 2);
  return { id: `label-${i}`, image: await save(canvas, `label_${String(i).padStart(3, '0')}.png`), question: 'What is the "Lot" number on the sticker?', answer: lot, category: `label/${size}px` };
}

/** A 20-row table over the whole page; asks the first value of one row. */
async function table(rng: Rng, i: number, size: number): Promise<Row> {
  const { canvas, ctx } = page();
  const rows = shuffled(rng, CITIES).slice(0, 20);
  const values = rows.map(() => [0, 1, 2, 3].map(() => 100 + rng.int(900)));
  const rowH = (HEIGHT - 60) / (rows.length + 1);
  const colX = [30, 260, 440, 620, 800];
  ctx.fillStyle = '#111111';
  ctx.textBaseline = 'middle';
  ctx.font = font(size, 'bold');
  ['City', 'Orders', 'Returns', 'Stock', 'Staff'].forEach((h, c) => ctx.fillText(h, colX[c]!, 30 + rowH / 2));
  ctx.font = font(size);
  rows.forEach((city, r) => {
    const y = 30 + rowH * (r + 1) + rowH / 2;
    if (r % 2 === 0) {
      ctx.fillStyle = '#eef2f7';
      ctx.fillRect(20, y - rowH / 2, WIDTH - 40, rowH);
      ctx.fillStyle = '#111111';
    }
    ctx.fillText(city, colX[0]!, y);
    values[r]!.forEach((v, c) => ctx.fillText(String(v), colX[c + 1]!, y));
  });
  const r = rng.int(rows.length);
  return { id: `table-${i}`, image: await save(canvas, `table_${String(i).padStart(3, '0')}.png`), question: `What is the "Orders" value in the "${rows[r]}" row?`.replace('"Orders" value', 'value'), answer: String(values[r]![0]), category: `table/${size}px` };
}

/** Four small bar charts in a 2×2 grid; asks one bar's value. */
async function charts(rng: Rng, i: number, size: number): Promise<Row> {
  const { canvas, ctx } = page();
  const labels = shuffled(rng, FRUITS);
  const asked = rng.int(16);
  let answer = '';
  let askedLabel = '';
  ctx.textBaseline = 'middle';
  for (let p = 0; p < 4; p++) {
    const x0 = (p % 2) * (WIDTH / 2) + 20;
    const y0 = Math.floor(p / 2) * (HEIGHT / 2) + 20;
    ctx.fillStyle = '#111111';
    ctx.font = font(size, 'bold');
    ctx.fillText(`Region ${p + 1} (crates)`, x0, y0 + size);
    for (let b = 0; b < 4; b++) {
      const name = labels[p * 4 + b]!;
      const value = 5 + rng.int(95);
      if (p * 4 + b === asked) {
        answer = String(value);
        askedLabel = name;
      }
      const y = y0 + size * 3 + b * size * 2.4;
      ctx.font = font(size);
      ctx.fillStyle = '#111111';
      ctx.fillText(name, x0, y);
      const barW = (value / 100) * (WIDTH / 2 - 200);
      ctx.fillStyle = pick(rng, ['#bfdbfe', '#c7d2fe', '#bbf7d0', '#fed7aa']);
      ctx.fillRect(x0 + size * 6, y - size * 0.7, barW, size * 1.4);
      ctx.fillStyle = '#111111';
      ctx.fillText(String(value), x0 + size * 6.5 + barW, y);
    }
  }
  return { id: `charts-${i}`, image: await save(canvas, `charts_${String(i).padStart(3, '0')}.png`), question: `What is the value of the "${askedLabel}" bar?`, answer, category: `charts/${size}px` };
}

/** A page of dense small text with one key line. */
async function document(rng: Rng, i: number, size: number): Promise<Row> {
  const { canvas, ctx } = page();
  ctx.font = font(size);
  const lineHeight = Math.round(size * 1.4);
  const count = Math.floor((HEIGHT - 40) / lineHeight);
  const lines: string[] = [];
  for (let l = 0; l < count; l++) {
    let line = pick(rng, FILLER);
    for (;;) {
      const next = `${line} ${pick(rng, FILLER)}`;
      if (ctx.measureText(next).width > WIDTH - 60) break;
      line = next;
    }
    lines.push(line);
  }
  const code = `${String.fromCharCode(65 + rng.int(26))}${String.fromCharCode(65 + rng.int(26))}-${1000 + rng.int(9000)}`;
  lines[1 + rng.int(count - 2)] = `Reference: ${code}`;
  ctx.fillStyle = '#1a1a1a';
  ctx.textBaseline = 'alphabetic';
  lines.forEach((line, l) => ctx.fillText(line, 30, 20 + lineHeight * (l + 1)));
  return { id: `document-${i}`, image: await save(canvas, `document_${String(i).padStart(3, '0')}.png`), question: 'What is the "Reference" in the document?', answer: code, metric: 'normalized', category: `document/${size}px` };
}

/** Writes the images and detail.jsonl; returns the rows. */
export async function generateDetail(perKind = 16, seed = 11): Promise<Row[]> {
  loadSampleFonts();
  rmSync(join(detailDir, 'images'), { recursive: true, force: true });
  mkdirSync(join(detailDir, 'images'), { recursive: true });
  const rng = new Rng(seed);
  const rows: Row[] = [];
  // Type sizes cycle from small (lost at K = 2) to medium (kept at K = 2, lost at K = 3).
  const kinds: [(rng: Rng, i: number, size: number) => Promise<Row>, number[]][] = [
    [label, [12, 14, 16, 20]],
    [table, [11, 13, 15, 17]],
    [charts, [11, 13, 15, 17]],
    [document, [11, 13, 15, 17]],
  ];
  for (const [make, sizes] of kinds) for (let i = 0; i < perKind; i++) rows.push(await make(rng, i, sizes[i % sizes.length]!));
  writeFileSync(join(detailDir, 'detail.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const flag = process.argv.indexOf('--count-per-kind');
  const perKind = flag > 0 ? Number(process.argv[flag + 1]) : 16;
  const rows = await generateDetail(perKind);
  process.stdout.write(`detail: ${rows.length} questions written to ${join(detailDir, 'detail.jsonl')}\n`);
}
