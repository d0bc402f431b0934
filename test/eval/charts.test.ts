import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { barChart, lineChart } from '../../eval/charts.js';

/** RGB of the pixels of one row between x0 and x1 (inclusive). */
async function row(png: Buffer, y: number, x0: number, x1: number): Promise<[number, number, number][]> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const out: [number, number, number][] = [];
  for (let x = x0; x <= x1; x++) {
    const i = (y * info.width + x) * 3;
    out.push([data[i]!, data[i + 1]!, data[i + 2]!]);
  }
  return out;
}

const same = (a: number[], b: number[]) => a.every((v, i) => v === b[i]);

describe('chart legends', () => {
  // 900×520, one legend row: plot bottom at 430, legend baseline at 488, keys start at x = 70.
  const spec = { title: 't', xLabel: 'x', yLabel: 'y', categories: ['K=1', 'K=2'] };
  const blue = [0x00, 0x72, 0xb2];

  it('keys a dashed line series with a dashed segment in its full colour', async () => {
    const png = lineChart({
      ...spec,
      series: [{ name: 'downsample', values: [80, 60], color: '#0072B2', secondary: true }],
    });
    const pixels = await row(png, 484, 68, 86);
    const first = pixels.findIndex((p) => same(p, blue));
    const last = pixels.length - 1 - [...pixels].reverse().findIndex((p) => same(p, blue));
    assert.ok(first >= 0, 'full-colour dash in the legend');
    assert.ok(
      pixels.slice(first, last).some((p) => same(p, [255, 255, 255])),
      'a gap between two dashes',
    );
  });

  it('keys a secondary bar series with a faded swatch', async () => {
    const png = barChart({ ...spec, series: [{ name: 'B', values: [50, 40], color: '#0072B2', secondary: true }] });
    const [p] = await row(png, 484, 75, 75);
    // 0.45 of the colour over white.
    assert.ok(
      Math.abs(p![0] - Math.round(255 * 0.55)) <= 2 && Math.abs(p![2] - Math.round(0xb2 * 0.45 + 255 * 0.55)) <= 2,
      `faded swatch, got ${p}`,
    );
  });
});
