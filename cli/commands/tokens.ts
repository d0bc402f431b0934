import { Command } from 'commander';
import { getProfile, profileNames } from '../../profiles/index.js';
import { configureCommand, parseInteger, printJson } from '../run.js';

interface TokensFlags {
  profile: string;
  maxPixels?: number;
  json?: boolean;
}

/** One image's row: the file, its size as the provider processes it, and the billed tokens. */
export interface TokensRow {
  file: string;
  width: number;
  height: number;
  tokens: number;
}

export function tokensCommand(): Command {
  const command = configureCommand(new Command('tokens'))
    .description('vision tokens a provider bills for images, with the size it processes them at')
    .argument('<image...>', 'image files (anything sharp reads)')
    .option('--profile <name>', `provider rule: ${profileNames().join(', ')}`, 'qwen2.5-vl')
    .option(
      '--max-pixels <n>',
      'refuse images above this many pixels (default 100000000)',
      parseInteger('--max-pixels'),
    )
    .option('--json', 'print one JSON object {profile, images: [{file, width, height, tokens}], total}');
  command.addHelpText(
    'after',
    `
Examples:
  vtc tokens photo.jpg --profile gpt-4o
  vtc tokens scans/*.png --profile qwen2.5-vl --json
  vtc tokens chart.png --profile claude

width × height is the size the provider processes (after its own resizing); tokens
follow each provider's published rule (docs/profiles.md lists the sources).`,
  );
  command.action(async (files: string[], flags: TokensFlags) => {
    const profile = getProfile(flags.profile);
    const { readImage } = await import('../../encoders/image.js'); // sharp, only when run
    const rows: TokensRow[] = [];
    for (const file of files) {
      const image = await readImage(file, flags.maxPixels !== undefined ? { maxPixels: flags.maxPixels } : {});
      const processed = profile.process(image.width, image.height);
      rows.push({ file, width: processed.width, height: processed.height, tokens: processed.tokens });
    }
    const total = rows.reduce((s, r) => s + r.tokens, 0);
    if (flags.json) {
      printJson({ profile: profile.name, images: rows, total });
      return;
    }
    const width = Math.max(4, ...rows.map((r) => r.file.length));
    const lines = rows.map(
      (r) => `${r.file.padEnd(width)}  ${`${r.width}x${r.height}`.padStart(11)}  ${String(r.tokens).padStart(7)}`,
    );
    lines.push(`${'total'.padEnd(width)}  ${''.padStart(11)}  ${String(total).padStart(7)}  (${profile.name})`);
    process.stdout.write(`${lines.join('\n')}\n`);
  });
  return command;
}
