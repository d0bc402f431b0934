import { Command } from 'commander';
import { createProgress } from '../progress.js';
import { defaultModelDir, pullModel } from '../../encoders/hub.js';
import { configureCommand, parseInteger, parseNumber, printJson } from '../run.js';
import { checkInteger, checkNumber } from '../../core/validate.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function pullCommand(): Command {
  const command = configureCommand(new Command('pull'))
    .description('download model files from the Hugging Face hub (resumable, size- and sha256-checked)')
    .argument('<repo>', 'hub repository, e.g. Xenova/clip-vit-base-patch32')
    .option(
      '--file <path>',
      'file inside the repo (repeatable); default: every .onnx/.onnx_data/.json file of the revision',
      collect,
    )
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--dir <dir>', 'destination directory (default models/<owner>--<name>)')
    .option('--endpoint <url>', 'hub base URL (default $VTC_HF_ENDPOINT, $HF_ENDPOINT or https://huggingface.co)')
    .option(
      '--timeout <s>',
      'seconds the server may stay silent: to connect, to send its headers, between two chunks of a download',
      parseNumber('--timeout'),
      60,
    )
    .option(
      '--retries <n>',
      'retries of a file after a reset, a stall or a 5xx, each resuming the .part file (backoff 1 s, 2 s, 4 s, …)',
      parseInteger('--retries'),
      3,
    )
    .option(
      '--json',
      'print one JSON object {repo, revision, dir, files: [{file, path, bytes, sha256, status, verified}]}',
    );
  command.addHelpText(
    'after',
    `
Examples:
  vtc models pull Xenova/clip-vit-base-patch32 --file onnx/vision_model.onnx --dir models/clip-b32
  vtc models pull org/my-vit --revision v1.0 --json
  VTC_HF_ENDPOINT=http://127.0.0.1:8080 vtc models pull org/my-vit

Downloads go to <file>.part and are renamed once the size and the sha256 the hub
announces (x-linked-etag, or the LFS pointer) match; an interrupted download
resumes with an HTTP Range request. A server that accepts and then says nothing
fails after --timeout seconds; a reset or stall is retried (--retries), resuming
where it stopped, so the worst case is (retries + 1) attempts each ending after
at most --timeout seconds of silence, plus the backoff waits. A download may not
exceed the size the hub announced. Gated repos need HF_TOKEN in the environment.
After pulling, add vtc-encoder.json to the directory (docs/encoders.md) to use it
with --encoder.`,
  );
  command.action(
    async (
      repo: string,
      opts: {
        file?: string[];
        revision: string;
        dir?: string;
        endpoint?: string;
        timeout: number;
        retries: number;
        json?: boolean;
      },
    ) => {
      checkNumber(opts.timeout, 'timeout (seconds)', { gt: 0, where: 'models pull' });
      checkInteger(opts.retries, 'retries', { min: 0, where: 'models pull' });
      const progress = createProgress();
      const dir = opts.dir ?? defaultModelDir(repo);
      let result;
      try {
        result = await pullModel({
          repo,
          revision: opts.revision,
          dir,
          ...(opts.file ? { files: opts.file } : {}),
          ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
          timeoutMs: opts.timeout * 1000,
          retries: opts.retries,
          onStart: (file, total, resumeFrom) => {
            progress.stop();
            if (total !== undefined) progress.start(total, resumeFrom > 0 ? `${file} (resumed)` : file);
          },
          onProgress: ({ received }) => progress.update(received),
        });
      } finally {
        progress.stop();
      }
      if (opts.json) printJson(result);
      else {
        for (const f of result.files)
          process.stdout.write(
            `${f.status.padEnd(10)} ${f.path} (${f.bytes} bytes, ${f.verified === 'sha256' ? `sha256 ${f.sha256!.slice(0, 12)}… verified` : f.verified === 'size' ? 'size verified' : 'unverified'})\n`,
          );
      }
    },
  );
  return command;
}

function presetsCommand(): Command {
  return configureCommand(new Command('presets'))
    .description('list the ONNX encoder presets usable as "preset" in vtc-encoder.json')
    .option('--json', 'print the presets as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { ONNX_ENCODER_PRESETS } = await import('../../encoders/onnx.js'); // onnxruntime and sharp: when run
      if (opts.json) return printJson(ONNX_ENCODER_PRESETS);
      for (const [name, p] of Object.entries(ONNX_ENCODER_PRESETS)) {
        process.stdout.write(
          `${name.padEnd(20)} ${p.inputSize}px, patch ${p.patchSize}, ${p.normalization} mean/std, resize ${p.resize}, ${p.hasCls ? `CLS, ${p.heads} heads` : 'no CLS (scores −cos to mean)'}\n`,
        );
      }
    });
}

export function modelsCommand(): Command {
  const command = configureCommand(new Command('models')).description(
    'manage encoder models: download from the Hugging Face hub, list presets',
  );
  command.addCommand(pullCommand());
  command.addCommand(presetsCommand());
  return command;
}
