/**
 * Generates the offline text-centric VTC-Bench sample set: small images whose
 * answers are in the pixels (signs, receipts, labelled bar charts, document
 * snippets) at several font sizes, so downsampling by K = 2, 3, 4 destroys
 * the small text first — accuracy falls with K, and the uncompressed-correct
 * samples split into a difficult Group A and a simple Group B.
 *
 * Output: samples/bench/images/*.png and samples/bench/bench.jsonl (rows
 * {id, image, question, options?, answer, metric?, category}).
 * Run: node --import tsx samples/bench/generate.ts [--count-per-kind 60]
 * Deterministic: the same seed gives the same rows and pixels.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Canvas, createCanvas } from '@napi-rs/canvas';
import { Rng } from '../../core/rng.js';
import { samplesRoot } from '../paths.js';
import { font, loadSampleFonts, pick, savePalettePng, shuffled } from './draw.js';

const benchDir = join(samplesRoot, 'bench');

interface Row {
  id: string;
  image: string;
  question: string;
  options?: string[];
  answer: string;
  metric?: string;
  category: string;
}

const SIGN_WORDS = ['STOP', 'EXIT', 'NO PARKING', 'OPEN', 'CLOSED', 'DANGER', 'KEEP LEFT', 'ONE WAY', 'SCHOOL ZONE', 'DETOUR', 'BUS ONLY', 'SLOW', 'NO ENTRY', 'FIRE EXIT', 'PUSH', 'PULL', 'WET FLOOR', 'PRIVATE', 'TOILETS', 'PHARMACY', 'BAKERY', 'GARAGE', 'LIBRARY', 'MUSEUM'];
const ITEMS = ['Coffee', 'Bagel', 'Muffin', 'Orange Juice', 'Sandwich', 'Salad', 'Croissant', 'Tea', 'Water', 'Soup', 'Cookie', 'Yogurt', 'Banana', 'Pasta', 'Pizza', 'Lemonade'];
const STORES = ['CORNER CAFE', 'GREEN MARKET', 'CITY DELI', 'BLUE BAKERY', 'SUNRISE FOODS', 'HARBOR SHOP'];
const CATEGORIES = ['Apples', 'Pears', 'Plums', 'Grapes', 'Cherries', 'Lemons', 'Melons', 'Peaches', 'Mangoes', 'Kiwis'];
const CITIES = ['Lisbon', 'Oslo', 'Madrid', 'Vienna', 'Dublin', 'Prague', 'Berlin', 'Warsaw', 'Athens', 'Zurich', 'Helsinki', 'Bergen'];
const FILLER = 'the quarterly review covers shipping delays inventory counts staff training and the new supplier contract which takes effect next month after approval by the board'.split(' ');

async function savePng(canvas: Canvas, file: string): Promise<void> {
  await savePalettePng(canvas, join(benchDir, 'images', file), 16);
}

function money(rng: Rng, min: number, max: number): number {
  return Math.round((min + rng.float() * (max - min)) * 100) / 100;
}

/** A sign: one or two words, large to medium type, on a coloured plate. */
async function sign(rng: Rng, i: number, size: number): Promise<Row> {
  const text = pick(rng, SIGN_WORDS);
  const canvas = createCanvas(480, 240);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#d9d4c7';
  ctx.fillRect(0, 0, 480, 240);
  const plate = pick(rng, [['#b3261e', '#ffffff'], ['#1d4ed8', '#ffffff'], ['#166534', '#ffffff'], ['#facc15', '#111111'], ['#ffffff', '#111111']] as const);
  ctx.font = font(size, 'bold');
  const width = ctx.measureText(text).width;
  const w = Math.min(460, width + size * 1.2);
  const h = size * 1.9;
  const x = (480 - w) / 2 + (rng.float() - 0.5) * 20;
  const y = (240 - h) / 2 + (rng.float() - 0.5) * 20;
  ctx.fillStyle = plate[0];
  ctx.fillRect(x, y, w, h);
  ctx.fillStyle = plate[1];
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'center';
  ctx.fillText(text, x + w / 2, y + h / 2);
  const file = `sign_${String(i).padStart(3, '0')}.png`;
  await savePng(canvas, file);
  return { id: `sign-${i}`, image: `images/${file}`, question: 'What does the sign say?', answer: text, metric: 'anls', category: `sign/${size}px` };
}

/** A receipt: store, items with prices, TOTAL; asks the total or one item's price. */
async function receipt(rng: Rng, i: number, size: number): Promise<Row> {
  const count = 3 + rng.int(3);
  const names = shuffled(rng, ITEMS).slice(0, count);
  const prices = names.map(() => money(rng, 1, 19));
  const total = Math.round(prices.reduce((a, b) => a + b, 0) * 100) / 100;
  const lineHeight = Math.round(size * 1.5);
  const width = Math.round(size * 17);
  const height = lineHeight * (count + 5);
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fbfaf5';
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = '#1a1a1a';
  ctx.textBaseline = 'alphabetic';
  let y = lineHeight;
  ctx.font = font(size, 'bold');
  ctx.textAlign = 'center';
  ctx.fillText(pick(rng, STORES), width / 2, y);
  y += lineHeight * 1.5;
  ctx.font = font(size);
  names.forEach((name, j) => {
    ctx.textAlign = 'left';
    ctx.fillText(name, size * 0.8, y);
    ctx.textAlign = 'right';
    ctx.fillText(prices[j]!.toFixed(2), width - size * 0.8, y);
    y += lineHeight;
  });
  ctx.font = font(size, 'bold');
  ctx.textAlign = 'left';
  ctx.fillText('TOTAL', size * 0.8, y + lineHeight * 0.3);
  ctx.textAlign = 'right';
  ctx.fillText(total.toFixed(2), width - size * 0.8, y + lineHeight * 0.3);
  const file = `receipt_${String(i).padStart(3, '0')}.png`;
  await savePng(canvas, file);
  const askTotal = i % 2 === 0;
  const item = names[rng.int(count)]!;
  return askTotal
    ? { id: `receipt-${i}`, image: `images/${file}`, question: 'What is the "TOTAL" amount on the receipt?', answer: total.toFixed(2), category: `receipt/${size}px` }
    : { id: `receipt-${i}`, image: `images/${file}`, question: `What is the price of "${item}" on the receipt?`, answer: prices[names.indexOf(item)]!.toFixed(2), category: `receipt/${size}px` };
}

/** A horizontal bar chart: label, bar, value at the bar's end; asks one bar's value. */
async function chart(rng: Rng, i: number, size: number): Promise<Row> {
  const count = 3 + rng.int(3);
  const labels = shuffled(rng, CATEGORIES).slice(0, count);
  const values = labels.map(() => 5 + rng.int(95));
  const rowH = Math.round(size * 2.2);
  const labelW = size * 6;
  const width = 600;
  const height = rowH * count + size * 3;
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = '#111111';
  ctx.font = font(size, 'bold');
  ctx.textBaseline = 'middle';
  ctx.fillText('Fruit sold (crates)', size * 0.5, size * 1.2);
  const maxBar = width - labelW - size * 4;
  labels.forEach((label, j) => {
    const y = size * 2.6 + j * rowH + rowH / 2;
    ctx.font = font(size);
    ctx.fillStyle = '#111111';
    ctx.textAlign = 'left';
    ctx.fillText(label, size * 0.5, y);
    const w = (values[j]! / 100) * maxBar;
    ctx.fillStyle = pick(rng, ['#bfdbfe', '#c7d2fe', '#bbf7d0', '#fed7aa']);
    ctx.fillRect(labelW, y - rowH * 0.3, w, rowH * 0.6);
    ctx.fillStyle = '#111111';
    ctx.fillText(String(values[j]), labelW + w + size * 0.5, y);
  });
  const file = `chart_${String(i).padStart(3, '0')}.png`;
  await savePng(canvas, file);
  const j = rng.int(count);
  return { id: `chart-${i}`, image: `images/${file}`, question: `What is the value of the "${labels[j]}" bar?`, answer: String(values[j]), category: `chart/${size}px` };
}

/** A document snippet: a heading, filler lines and one key line; asks the key's value (or MC city). */
async function document(rng: Rng, i: number, size: number): Promise<Row> {
  const lineHeight = Math.round(size * 1.45);
  const width = 560;
  // Filler lines filled word by word up to the page width (measured, so nothing overflows).
  const measure = createCanvas(8, 8).getContext('2d');
  measure.font = font(size);
  const lines: string[] = [];
  for (let l = 0; l < 6; l++) {
    let line = pick(rng, FILLER);
    for (;;) {
      const next = `${line} ${pick(rng, FILLER)}`;
      if (measure.measureText(next).width > width - size * 2) break;
      line = next;
    }
    lines.push(line);
  }
  const mc = i % 3 === 2;
  const code = `${String.fromCharCode(65 + rng.int(26))}${String.fromCharCode(65 + rng.int(26))}-${1000 + rng.int(9000)}`;
  const city = pick(rng, CITIES);
  const key = mc ? `Ship to: ${city}` : pick(rng, [`Reference: ${code}`, `Invoice No. ${10000 + rng.int(90000)}`, `Order ID: ${code}`]);
  const at = 1 + rng.int(lines.length - 1);
  lines.splice(at, 0, key);
  const height = lineHeight * (lines.length + 2) + size;
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = '#202020';
  ctx.font = font(Math.round(size * 1.3), 'bold');
  ctx.fillText('Memo', size, lineHeight * 1.2);
  ctx.font = font(size);
  lines.forEach((line, l) => ctx.fillText(line, size, lineHeight * (l + 2.4)));
  const file = `doc_${String(i).padStart(3, '0')}.png`;
  await savePng(canvas, file);
  if (mc) {
    const options = shuffled(rng, [city, ...shuffled(rng, CITIES.filter((c) => c !== city)).slice(0, 3)]);
    return { id: `doc-${i}`, image: `images/${file}`, question: 'Which city is in the "Ship to" line?', options, answer: String.fromCharCode(65 + options.indexOf(city)), category: `document/${size}px` };
  }
  const label = key.slice(0, key.search(/[:]|\d/)).replace(/[:\s]+$/, '');
  const value = key.slice(key.lastIndexOf(' ') + 1);
  return { id: `doc-${i}`, image: `images/${file}`, question: `What is the "${label}" in the document?`, answer: value, metric: 'normalized', category: `document/${size}px` };
}

/** Writes the images and bench.jsonl; returns the rows. */
export async function generateBench(perKind = 60, seed = 7): Promise<Row[]> {
  loadSampleFonts();
  rmSync(join(benchDir, 'images'), { recursive: true, force: true });
  mkdirSync(join(benchDir, 'images'), { recursive: true });
  const rng = new Rng(seed);
  const rows: Row[] = [];
  // Font sizes cycle so each kind spans easy (large) to hard (small) text.
  const kinds: [(rng: Rng, i: number, size: number) => Promise<Row>, number[]][] = [
    [sign, [22, 30, 40, 56, 72]],
    [receipt, [11, 14, 18, 24, 30]],
    [chart, [10, 13, 16, 20, 26]],
    [document, [9, 11, 14, 18, 24]],
  ];
  for (const [make, sizes] of kinds) for (let i = 0; i < perKind; i++) rows.push(await make(rng, i, sizes[i % sizes.length]!));
  writeFileSync(join(benchDir, 'bench.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const flag = process.argv.indexOf('--count-per-kind');
  const perKind = flag > 0 ? Number(process.argv[flag + 1]) : 60;
  const rows = await generateBench(perKind);
  process.stdout.write(`bench: ${rows.length} questions written to ${join(benchDir, 'bench.jsonl')}\n`);
}
