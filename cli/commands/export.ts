import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { loadTokens } from '../../encoders/tokenfile.js';
import { embedsOf, embedsPart, type EmbedsFormat } from '../../eval/embeds.js';
import { writeFileAtomic } from '../../io/write.js';
import { isQwenTokenSet } from '../../prompt/serving.js';
import { configureCommand, printJson } from '../run.js';

interface ExportFlags {
  out: string;
  embedsFormat: string;
  json?: boolean;
}

const FORMATS: readonly EmbedsFormat[] = ['torch', 'npy'];

/**
 * The serving payload of a (reduced) token file: the `image_embeds` content
 * part `vtc eval run` sends — for Qwen sets vLLM's dict form with
 * `image_grid_thw` (full lattice) or vtc's `image_positions` (pruned), rows in
 * raster order, Qwen3-VL rows with their DeepStack features appended; for
 * other sets the plain base64 embeddings. Video sets use the same form under
 * `video_*` keys (docs/qwen.md says what servers accept).
 */
export function exportCommand(): Command {
  const command = configureCommand(new Command('export'))
    .description(
      'write the serving payload (image_embeds content part) of a token file for an embeddings-enabled server',
    )
    .argument('<tokens>', 'token file: .safetensors from vtc encode / vtc reduce (Qwen sets keep grid and positions)')
    .requiredOption('--out <file>', 'where to write the payload (.json)')
    .option('--embeds-format <fmt>', 'tensor serialisation: torch (torch.save, what vLLM loads) or npy', 'torch')
    .option(
      '--json',
      'print one JSON object {tokens, kind, family, rows, width, grid, positions, deepstack, format, out}',
    );
  command.addHelpText(
    'after',
    `
Examples:
  vtc export pooled.safetensors --out part.json                  # Qwen, full lattice: image_embeds + image_grid_thw
  vtc export pruned.safetensors --out part.json --json           # Qwen, pruned: image_embeds + image_positions
  vtc export llava.safetensors --out part.json --embeds-format npy

The file holds one content part, {"type": "image_embeds", "image_embeds": …},
ready to put in a chat-completions message for vLLM started with
--enable-mm-embeds. Stock vLLM takes the grid form (full sets and poolings);
image_positions is vtc's own field for pruned sets (docs/qwen.md).`,
  );
  command.action(async (file: string, flags: ExportFlags) => {
    if (!FORMATS.includes(flags.embedsFormat as EmbedsFormat))
      throw new UsageError(
        `export: --embeds-format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(flags.embedsFormat)}`,
      );
    if (!flags.out.toLowerCase().endsWith('.json'))
      throw new UsageError(`export: --out ${flags.out}: the payload is JSON, expected a .json file`);
    const tokens = await loadTokens(file);
    const qwen = isQwenTokenSet(tokens);
    const kind = qwen && tokens.meta.video_grid_thw !== undefined ? 'video' : 'image';
    const embeds = embedsOf(tokens);
    const part = renameKeys(embedsPart(embeds, flags.embedsFormat as EmbedsFormat), kind);
    const type = `${kind}_embeds`;
    await writeFileAtomic(flags.out, `${JSON.stringify({ type, [type]: part })}\n`);
    const summary = {
      tokens: file,
      kind,
      family: tokens.meta.family ?? null,
      rows: embeds.shape[0],
      width: embeds.shape[1],
      grid: embeds.grid ?? null,
      positions: embeds.positions !== undefined,
      deepstack: Object.keys(tokens.extra ?? {}).filter((name) => name.startsWith('deepstack_')).length,
      format: flags.embedsFormat,
      out: flags.out,
    };
    if (flags.json) printJson(summary);
    else
      process.stdout.write(
        `${flags.out}: ${summary.rows} × ${summary.width} ${type}${summary.grid ? ` with ${kind}_grid_thw ${summary.grid.join(',')}` : summary.positions ? ` with ${kind}_positions` : ''}\n`,
      );
  });
  return command;
}

/** The dict form's image_* keys as video_* for a video set. */
function renameKeys(part: string | Record<string, string>, kind: 'image' | 'video'): string | Record<string, string> {
  if (typeof part === 'string' || kind === 'image') return part;
  return Object.fromEntries(Object.entries(part).map(([key, value]) => [key.replace(/^image_/, 'video_'), value]));
}
