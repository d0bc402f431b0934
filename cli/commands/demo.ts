import { Command } from 'commander';
import { VtcError } from '../../core/errors.js';
import { createProgress } from '../progress.js';
import { configureCommand, parseInteger, printJson } from '../run.js';

/** `vtc demo` — the whole toolkit on the bundled samples, offline (see samples/demo.ts). */
export function demoCommand(): Command {
  const command = configureCommand(new Command('demo'))
    .description('run the offline demo on the bundled samples and write an HTML/Markdown report')
    .option('--out <dir>', 'output folder', 'vtc-demo')
    .option('--samples <dir>', 'folder with images/, text/*.txt and video/scenes.mp4 (default: the bundled samples)')
    .option('--ocr-pages <n>', 'Glyph pages to OCR for the character error rate', parseInteger('--ocr-pages'), 1)
    .option('--json', 'print the summary as one JSON object instead of the table');
  command.addHelpText(
    'after',
    `
What it does (no network, no arguments needed):
  1. encodes samples/images/* with the built-in patch encoder and reduces them with every
     registered reducer at 25% and 10% (GlobalCom² on the AnyRes bundle), writing overlays;
  2. renders the sample long text (samples/text/) with Glyph, reports compression and CER;
  3. runs the video pipeline on samples/video/scenes.mp4 in dry-run and writes a contact sheet.
Writes <out>/index.html (open it in a browser), summary.md and summary.json.
A part that fails is reported (stderr and the report) and the exit code is 1.

Examples:
  vtc demo
  vtc demo --out /tmp/demo --json`,
  );
  command.action(async (flags: { out: string; samples?: string; ocrPages: number; json?: boolean }) => {
    // Imported when run: the demo touches every area (sharp, canvas, OCR, tokenizers), its help none of them.
    const { runDemo, summaryText } = await import('../../samples/demo.js');
    const progress = createProgress();
    let started = false;
    const summary = await runDemo({
      outDir: flags.out,
      samplesDir: flags.samples,
      ocrPages: flags.ocrPages,
      onProgress: (done, total, label) => {
        if (!started) progress.start(total, label);
        started = true;
        progress.update(done, label);
      },
    }).finally(() => progress.stop());
    if (flags.json) printJson(summary);
    else process.stdout.write(summaryText(summary));
    if (summary.failures.length > 0) {
      throw new VtcError(
        `demo: ${summary.failures.length} part(s) failed: ${summary.failures.map((f) => f.part).join(', ')} (details in ${summary.outDir}/summary.md)`,
        'E_DEMO',
      );
    }
  });
  return command;
}
