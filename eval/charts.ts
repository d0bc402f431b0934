import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Canvas, createCanvas, GlobalFonts, type SKRSContext2D } from '@napi-rs/canvas';

/**
 * PNG charts for evaluation reports, drawn with @napi-rs/canvas and the
 * DejaVu Sans font from the dejavu-fonts-ttf package (registered explicitly
 * so the output is identical on every machine).
 */

export const CHART_FONT = 'DejaVu Sans';
let fontRegistered = false;

/** Path of a DejaVu TTF file shipped by the dejavu-fonts-ttf package. */
export function dejavuFontPath(file = 'DejaVuSans.ttf'): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf', file);
}

export function ensureChartFont(): void {
  if (fontRegistered) return;
  GlobalFonts.registerFromPath(dejavuFontPath(), CHART_FONT);
  fontRegistered = true;
}

/** A colour-blind-friendly palette (Okabe–Ito), cycled by series index. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export interface ChartSeries {
  name: string;
  /** One value per x category; null draws nothing there. */
  values: (number | null)[];
  color?: string;
  /** Draw dashed (lines) or lighter (bars). */
  secondary?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  series: ChartSeries[];
  /** y range; defaults to [0, 100] (percentages). */
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}

interface Frame {
  ctx: SKRSContext2D;
  left: number;
  top: number;
  plotW: number;
  plotH: number;
  y: (v: number) => number;
}

function drawFrame(spec: ChartSpec, legendRows: number): { canvas: Canvas; frame: Frame } {
  ensureChartFont();
  const width = spec.width ?? 900;
  const height = spec.height ?? 520;
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  const left = 70;
  const top = 50;
  const right = 20;
  const bottom = 70 + legendRows * 20;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const yMin = spec.yMin ?? 0;
  const yMax = spec.yMax ?? 100;
  const y = (v: number) => top + plotH - ((v - yMin) / (yMax - yMin)) * plotH;

  ctx.fillStyle = '#111111';
  ctx.font = `bold 16px "${CHART_FONT}"`;
  ctx.textAlign = 'center';
  ctx.fillText(spec.title, width / 2, 28);

  ctx.font = `12px "${CHART_FONT}"`;
  ctx.strokeStyle = '#dddddd';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 5; i++) {
    const value = yMin + ((yMax - yMin) * i) / 5;
    ctx.beginPath();
    ctx.moveTo(left, y(value));
    ctx.lineTo(left + plotW, y(value));
    ctx.stroke();
    ctx.fillStyle = '#333333';
    ctx.textAlign = 'right';
    ctx.fillText(String(Math.round(value * 10) / 10), left - 6, y(value) + 4);
  }
  ctx.strokeStyle = '#333333';
  ctx.strokeRect(left, top, plotW, plotH);

  ctx.save();
  ctx.translate(18, top + plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center';
  ctx.fillText(spec.yLabel, 0, 0);
  ctx.restore();
  ctx.textAlign = 'center';
  ctx.fillText(spec.xLabel, left + plotW / 2, top + plotH + 42);
  return { canvas, frame: { ctx, left, top, plotW, plotH, y } };
}

/** Legend entries flowed left to right, wrapping at the plot width: [x offset, row] per series. */
function legendLayout(spec: ChartSpec, plotW: number): { at: [number, number][]; rows: number } {
  ensureChartFont();
  const ctx = createCanvas(8, 8).getContext('2d');
  ctx.font = `12px "${CHART_FONT}"`;
  const at: [number, number][] = [];
  let x = 0;
  let row = 0;
  for (const s of spec.series) {
    const w = 20 + ctx.measureText(s.name).width + 24;
    if (x > 0 && x + w > plotW) {
      x = 0;
      row++;
    }
    at.push([x, row]);
    x += w;
  }
  return { at, rows: spec.series.length ? row + 1 : 0 };
}

/** Legend keys drawn as the series are: a (dashed) line segment for lines, a (faded) swatch for bars. */
function drawLegend(frame: Frame, spec: ChartSpec, kind: 'line' | 'bar'): void {
  const { ctx, left, top, plotH, plotW } = frame;
  ctx.font = `12px "${CHART_FONT}"`;
  ctx.textAlign = 'left';
  const { at } = legendLayout(spec, plotW);
  spec.series.forEach((s, i) => {
    const x = left + at[i]![0];
    const yy = top + plotH + 58 + at[i]![1] * 20;
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    if (kind === 'line') {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.setLineDash(s.secondary ? [4, 3] : []);
      ctx.beginPath();
      ctx.moveTo(x - 2, yy - 4);
      ctx.lineTo(x + 16, yy - 4);
      ctx.stroke();
      ctx.setLineDash([]);
    } else {
      ctx.globalAlpha = s.secondary ? 0.45 : 1;
      ctx.fillStyle = color;
      ctx.fillRect(x, yy - 9, 14, 10);
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = '#222222';
    ctx.fillText(s.name, x + 20, yy);
  });
}

/**
 * A line chart over categorical x positions (e.g. K = 1, 2, 3, 4).
 *
 * @example
 * const png = lineChart({ title: 'chartqa', xLabel: 'reduction', yLabel: 'accuracy (%)',
 *   categories: ['0%', '75%'], series: [{ name: 'downsample', values: [80, 70] }] });
 */
export function lineChart(spec: ChartSpec): Buffer {
  const { canvas, frame } = drawFrame(spec, legendLayout(spec, (spec.width ?? 900) - 90).rows);
  const { ctx, left, top, plotW, plotH, y } = frame;
  const n = spec.categories.length;
  const x = (i: number) => left + (n === 1 ? plotW / 2 : 30 + (i * (plotW - 60)) / (n - 1));
  ctx.font = `12px "${CHART_FONT}"`;
  ctx.fillStyle = '#333333';
  ctx.textAlign = 'center';
  spec.categories.forEach((c, i) => ctx.fillText(c, x(i), top + plotH + 18));
  spec.series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length]!;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.setLineDash(s.secondary ? [6, 4] : []);
    ctx.beginPath();
    let drawing = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        drawing = false;
        return;
      }
      if (drawing) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      drawing = true;
    });
    ctx.stroke();
    ctx.setLineDash([]);
    s.values.forEach((v, i) => {
      if (v === null) return;
      ctx.beginPath();
      ctx.arc(x(i), y(v), 3.5, 0, 2 * Math.PI);
      ctx.fill();
    });
  });
  drawLegend(frame, spec, 'line');
  return canvas.toBuffer('image/png');
}

/**
 * Grouped bars: one group per category, one bar per series.
 *
 * @example
 * const png = barChart({ title: 'A vs B', xLabel: 'K', yLabel: 'accuracy (%)', categories: ['K=2'],
 *   series: [{ name: 'fastv A', values: [40] }, { name: 'fastv B', values: [90], secondary: true }] });
 */
export function barChart(spec: ChartSpec): Buffer {
  const { canvas, frame } = drawFrame(spec, legendLayout(spec, (spec.width ?? 900) - 90).rows);
  const { ctx, left, top, plotW, plotH, y } = frame;
  const groups = spec.categories.length;
  const groupW = plotW / Math.max(1, groups);
  const barW = (groupW * 0.8) / Math.max(1, spec.series.length);
  ctx.font = `12px "${CHART_FONT}"`;
  spec.categories.forEach((c, gi) => {
    ctx.fillStyle = '#333333';
    ctx.textAlign = 'center';
    ctx.fillText(c, left + gi * groupW + groupW / 2, top + plotH + 18);
    spec.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || v === undefined) return;
      const x0 = left + gi * groupW + groupW * 0.1 + si * barW;
      ctx.globalAlpha = s.secondary ? 0.45 : 1;
      ctx.fillStyle = s.color ?? PALETTE[si % PALETTE.length]!;
      ctx.fillRect(x0, y(v), Math.max(1, barW - 2), y(spec.yMin ?? 0) - y(v));
      ctx.globalAlpha = 1;
    });
  });
  drawLegend(frame, spec, 'bar');
  return canvas.toBuffer('image/png');
}

/** The palette colour for series i (so A and B bars of one method share a colour). */
export function paletteColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}
