import { join } from 'node:path';
import { Command } from 'commander';
import { UsageError, VtcError } from '../../core/errors.js';
import { getProfile } from '../../profiles/index.js';
import { summariseTasks, type TaskAnalysis } from '../../eval/groups.js';
import { methodNames } from '../../eval/method-names.js';
import type { EmbedsFormat, EvalModel } from '../../eval/models.js';
import { apiKeyFromEnv } from '../../client/openai.js';
import { METRICS, parseMetric } from '../../eval/scoring.js';
import { createProgress } from '../progress.js';
import {
  addQueueRunOptions,
  collectSubcommand,
  QUEUE_RUN_HELP,
  repeatable,
  runQueued,
  workerSubcommand,
  type QueueRunFlags,
} from './eval-queue.js';
import { configureCommand, parseInteger, parseNumberList, printJson } from '../run.js';

function fmt(value: number | null): string {
  return value === null ? '—' : value.toFixed(1);
}

/** A compact human table: one line per task × K × method. */
export function formatTaskTable(tasks: TaskAnalysis[]): string {
  const lines: string[] = [];
  for (const task of tasks) {
    lines.push(
      `${task.task}: uncompressed ${task.n_correct_uncompressed}/${task.n_uncompressed} correct (${fmt(task.accuracy_uncompressed)}%)`,
    );
    lines.push('  K   reduction  method            A(n)  acc A   B(n)  acc B   acc    retention');
    for (const ratio of Object.values(task.ratios)) {
      const row = (method: string, accA: number | null, accB: number | null, acc: number | null, ret: number | null) =>
        `  ${String(ratio.k).padEnd(3)} ${`${ratio.reduction_pct.toFixed(2)}%`.padEnd(10)} ${method.padEnd(17)} ${String(ratio.group_a).padStart(4)}  ${fmt(accA).padStart(5)}  ${String(ratio.group_b).padStart(5)}  ${fmt(accB).padStart(5)}  ${fmt(acc).padStart(5)}  ${fmt(ret).padStart(6)}`;
      lines.push(
        row(
          'downsample',
          ratio.group_a ? 0 : null,
          ratio.group_b ? 100 : null,
          ratio.downsample.accuracy,
          ratio.downsample.retention,
        ),
      );
      for (const [method, m] of Object.entries(ratio.methods))
        lines.push(row(method, m.acc_a, m.acc_b, m.accuracy, m.retention));
    }
  }
  return lines.join('\n');
}

function analyzeSubcommand(): Command {
  return configureCommand(new Command('analyze'))
    .description(
      'analyse lmms-eval --log_samples output VTC-Bench style (Group A/B by the downsample baseline) and write a report',
    )
    .argument(
      '<dir>',
      'folder of run folders: NATIVE_IR<k>/, <method>_IR<k>_RR<r>/ (or a manifest.json), each with [<timestamp>_]samples_<task>.jsonl',
    )
    .option('--out <dir>', 'report folder (default <dir>/vtc-report): summary.csv, report.json, report.md, PNG charts')
    .option(
      '--json',
      'print one JSON object {tasks: {<task>: {n_correct_uncompressed, ratios: {<K>: {group_a, group_b, methods: {<m>: {acc_a, acc_b}}}}}}} (accuracies in %, unrounded; null for an empty group)',
    )
    .addHelpText(
      'after',
      `
Examples:
  vtc eval analyze logs/qwen2-vl-7b
  vtc eval analyze logs/qwen2-vl-7b --out report --json

Folder names: NATIVE_IR1 is the uncompressed run, NATIVE_IR<k> downsampling by k
(budget 1/k²), <method>_IR1_RR<r> a method removing the fraction r of the visual
tokens (RR0.75 ↔ K=2, RR0.8889 ↔ K=3, RR0.9375 ↔ K=4, RR0.96 ↔ K=5, RR0.99 ↔ K=10).
Other layouts: manifest.json {"<folder>": {"method": "fastv", "ratio": 2}} (ratio = K,
or a kept fraction < 1; method "downsample" is the baseline); VTC-Bench's reorganised
Data/<model>/ (Downsample/<K>/<task>.jsonl, <Method>/<kept budget>/<task>.jsonl);
or results*.jsonl files written by vtc eval run (e.g. shards copied together).`,
    )
    .action(async (dir: string, opts: { out?: string; json?: boolean }) => {
      const { analyzeLogs } = await import('../../eval/analyze.js'); // the report's charts draw with canvas
      const result = await analyzeLogs(dir, { out: opts.out });
      for (const warning of result.warnings) process.stderr.write(`vtc: warning: ${warning}\n`);
      if (opts.json) {
        printJson(result.summary);
        return;
      }
      process.stdout.write(
        `${formatTaskTable(result.tasks)}\n\nreport: ${result.reportFiles.find((f) => f.endsWith('report.md'))}\n`,
      );
    });
}

interface RunFlags {
  dataset: string;
  model: string;
  endpoint?: string[];
  apiKeyEnv?: string;
  methods: string;
  ratios: number[];
  out: string;
  results?: string;
  concurrency: number;
  timeout: number;
  retries: number;
  maxTokens: number;
  limit?: number;
  shard?: string;
  metric: string;
  encoder?: string;
  embedsFormat: string;
  videoFrames: number;
  seed: number;
  profile: string;
  json?: boolean;
  queue?: string;
}

function runSubcommand(): Command {
  return addQueueRunOptions(configureCommand(new Command('run')))
    .description(
      'run a dataset through a model for the downsample baseline and methods at each ratio K, resumably, and write the VTC-Bench report',
    )
    .requiredOption(
      '--dataset <path>',
      'JSONL rows {id, image|images|video|text, question, options?, answer}, a VLMEvalKit .tsv, or a folder with images + questions.jsonl/.json/.tsv/.csv',
    )
    .requiredOption('--model <name>', '"ocr" (offline tesseract.js reader), or the model name served at --endpoint')
    .option(
      '--endpoint <url>',
      'OpenAI-compatible base URL ending in /v1 (vLLM, llama.cpp server, Ollama, LM Studio); repeatable with --queue --workers',
      repeatable,
    )
    .option('--api-key-env <VAR>', 'environment variable holding the API key (sent as a Bearer token)')
    .option(
      '--methods <list>',
      `comma-separated methods besides the downsample baseline: ${methodNames().join(', ')} (reducers are token level: need --encoder and a vLLM server with --enable-mm-embeds)`,
      'downsample',
    )
    .option(
      '--ratios <list>',
      'downsample factors K > 1 (kept budget 1/K²: 2 → 25%, 3 → 11.1%, 4 → 6.25%)',
      parseNumberList('--ratios'),
      [2, 3, 4],
    )
    .option(
      '--out <dir>',
      'report folder (summary.csv, report.json, report.md, charts); holds results.jsonl unless --results is given',
      'vtc-eval',
    )
    .option(
      '--results <file>',
      'results cache (JSONL; default <out>/results.jsonl, or results.shard-i-of-n.jsonl with --shard)',
    )
    .option(
      '--concurrency <n>',
      'parallel requests (endpoint), or most tesseract workers (ocr: started only as jobs need them, capped by memory at ~100 MB each)',
      parseInteger('--concurrency'),
      2,
    )
    .option(
      '--timeout <ms>',
      'deadline of one request attempt, whole reply body included (replies over 16 MiB are refused)',
      parseInteger('--timeout'),
      120000,
    )
    .option(
      '--retries <n>',
      'retries for timeouts, resets, 429 and 5xx with exponential backoff; a request takes at most (retries + 1) × timeout plus the waits',
      parseInteger('--retries'),
      3,
    )
    .option('--max-tokens <n>', 'max_tokens for the endpoint', parseInteger('--max-tokens'), 64)
    .option('--limit <n>', 'only the first n samples', parseInteger('--limit'))
    .option('--shard <i/n>', 'run every n-th sample starting at the i-th (split a run across machines)')
    .option('--metric <name>', `scoring for rows without their own metric: ${METRICS.join(', ')}`, 'auto')
    .option(
      '--encoder <spec>',
      'vision encoder for token-level methods: "patch", an ONNX encoder folder, or a Qwen2.5-VL/Qwen3-VL tower folder (vtc-encoder.json with "family"; sends image_grid_thw or positions)',
    )
    .option(
      '--embeds-format <fmt>',
      'image_embeds serialisation for token-level methods: npy, or torch (torch.save bytes, what stock vLLM decodes)',
      'npy',
    )
    .option('--video-frames <n>', 'uniform frames of an uncompressed video input', parseInteger('--video-frames'), 16)
    .option('--seed <n>', 'seed for randomised reducers', parseInteger('--seed'), 0)
    .option(
      '--profile <name>',
      'vision profile whose billed tokens set the focus budget (the tokens downsample sends at K)',
      'qwen2.5-vl',
    )
    .option(
      '--json',
      'print one JSON object {dataset, model, jobs, cached, done, failed, report: {tasks: …} as in eval analyze --json, files}',
    )
    .addHelpText(
      'after',
      `
Examples:
  vtc eval run --dataset samples/bench/bench.jsonl --model ocr --methods downsample --ratios 2,3,4
  vtc eval run --dataset mmbench.tsv --model Qwen/Qwen2.5-VL-3B-Instruct --endpoint http://127.0.0.1:8000/v1 --ratios 2,4 --concurrency 8
  vtc eval run --dataset docs.jsonl --model qwen --endpoint http://127.0.0.1:8000/v1 --methods glyph --ratios 2,3
  vtc eval run --dataset bench.jsonl --model llava --endpoint http://127.0.0.1:8000/v1 --methods pool,random --encoder models/clip

Every sample runs uncompressed (K=1) and downsampled by each K; other methods run at
each K with the same budget. Results are appended to the cache as they finish: run the
same command again to resume after a crash or Ctrl-C (nothing finished is redone).
Groups: A = uncompressed right but downsampled wrong (difficult), B = both right (simple).
${QUEUE_RUN_HELP}`,
    )
    .action(async (opts: RunFlags) => {
      // eval/'s methods, models and runner bring the encoders, renderer, OCR and tokenizers: imported when run.
      const [
        { getMethod },
        { createEndpointModel, createOcrModel, OCR_WORKER_BYTES, ocrWorkersAllowed },
        { parseShard, runEval },
        { checkEndpointModelOptions, checkRunOptions },
        { openTokenEncoder },
      ] = await Promise.all([
        import('../../eval/methods.js'),
        import('../../eval/models.js'),
        import('../../eval/runner.js'),
        import('../../eval/run-options.js'),
        import('../../eval/encoder.js'),
      ]);
      const methods = opts.methods
        .split(',')
        .map((m) => m.trim())
        .filter((m) => m !== '');
      for (const m of methods) getMethod(m);
      const metric = parseMetric(opts.metric);
      const shard = opts.shard !== undefined ? parseShard(opts.shard) : undefined;
      const results =
        opts.results ??
        join(opts.out, shard ? `results.shard-${shard.index}-of-${shard.count}.jsonl` : 'results.jsonl');
      // The library's own checks, before anything loads (same messages as runEval / createEndpointModel).
      checkRunOptions({
        methods,
        model: opts.model,
        encoder: opts.encoder !== undefined,
        concurrency: opts.concurrency,
        limit: opts.limit,
      });
      if (opts.model === 'ocr') {
        // Each OCR worker holds ~100 MB: the pool never outgrows memory (and starts only as many as jobs run at once).
        const allowed = ocrWorkersAllowed();
        if (opts.concurrency > allowed) {
          process.stderr.write(
            `vtc: warning: --concurrency ${opts.concurrency} capped at ${allowed} OCR workers (each needs ~${OCR_WORKER_BYTES / 1024 / 1024} MB; half the free memory allows ${allowed})\n`,
          );
          opts.concurrency = allowed;
        }
      }
      if (opts.queue !== undefined)
        return runQueued(opts as RunFlags & QueueRunFlags, {
          methods,
          metric,
          ...(shard ? { shard } : {}),
          results,
          report: (analysis) => formatTaskTable([analysis]),
        });
      if ((opts.endpoint?.length ?? 0) > 1)
        throw new UsageError('eval run: several --endpoint need queue mode (--queue … --workers n)');
      const endpoint = opts.endpoint?.[0];
      if (opts.model !== 'ocr')
        checkEndpointModelOptions({
          endpoint,
          model: opts.model,
          embedsFormat: opts.embedsFormat,
          maxTokens: opts.maxTokens,
          retries: opts.retries,
          timeoutMs: opts.timeout,
        });
      if (opts.model === 'ocr' && endpoint)
        process.stderr.write('vtc: warning: --endpoint is ignored with --model ocr (the offline reader)\n');
      const model: EvalModel =
        opts.model === 'ocr'
          ? await createOcrModel({ workers: opts.concurrency })
          : createEndpointModel({
              endpoint: endpoint!,
              model: opts.model,
              apiKey: apiKeyFromEnv(opts.apiKeyEnv),
              timeoutMs: opts.timeout,
              retries: opts.retries,
              maxTokens: opts.maxTokens,
              embedsFormat: opts.embedsFormat as EmbedsFormat,
            });
      const tokenEncoder = opts.encoder ? await openTokenEncoder(opts.encoder) : undefined;
      const progress = createProgress();
      const controller = new AbortController();
      const onSignal = () => {
        process.stderr.write(
          '\nvtc: stopping after the requests in flight (results so far are saved; run again to resume)\n',
        );
        controller.abort();
      };
      process.once('SIGINT', onSignal);
      let started = false;
      try {
        const summary = await runEval({
          dataset: opts.dataset,
          model,
          methods,
          ratios: opts.ratios,
          results,
          out: opts.out,
          concurrency: opts.concurrency,
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
          ...(shard ? { shard } : {}),
          metric,
          context: {
            ...(tokenEncoder?.encoder ? { encoder: tokenEncoder.encoder } : {}),
            ...(tokenEncoder?.qwenEncoder ? { qwenEncoder: tokenEncoder.qwenEncoder } : {}),
            videoFrames: opts.videoFrames,
            seed: opts.seed,
            profile: getProfile(opts.profile).name,
          },
          signal: controller.signal,
          onProgress: (done, total, label) => {
            if (!started) {
              progress.start(total, label);
              started = true;
              // An update to 0 right after start makes cli-progress print "ETA NFs" (0 / 0 s).
              if (done === 0) return;
            }
            progress.update(done, label);
          },
        });
        progress.stop();
        for (const warning of summary.warnings) process.stderr.write(`vtc: warning: ${warning}\n`);
        if (opts.json) {
          printJson({
            dataset: summary.dataset,
            model: summary.model,
            samples: summary.samples,
            jobs: summary.jobs,
            cached: summary.cached,
            done: summary.done,
            failed: summary.failed.length,
            unsupported: summary.unsupported,
            interrupted: summary.interrupted,
            results,
            report: summary.analysis ? summariseTasks([summary.analysis]) : null,
            files: summary.reportFiles,
            seconds: summary.ms / 1000,
          });
        } else {
          process.stdout.write(
            `${summary.dataset} × ${summary.model}: ${summary.samples} samples, ${summary.jobs} jobs (${summary.cached} cached, ${summary.done} run now, ${summary.failed.length} failed) in ${(summary.ms / 1000).toFixed(1)} s\n`,
          );
          if (summary.analysis) process.stdout.write(`${formatTaskTable([summary.analysis])}\n`);
          const md = summary.reportFiles.find((f) => f.endsWith('report.md'));
          if (md) process.stdout.write(`\nreport: ${md}\nresults: ${results}\n`);
        }
        // Exit 1 (after the output above) so scripts notice unfinished work; the cache keeps what finished.
        if (summary.interrupted)
          throw new VtcError(
            `interrupted: ${summary.cached + summary.done} of ${summary.jobs} jobs saved in ${results}; run the same command again to resume`,
            'E_INTERRUPTED',
          );
        if (summary.failed.length > 0)
          throw new VtcError(
            `${summary.failed.length} jobs failed (see warnings); run the same command again to retry them`,
            'E_EVAL_FAILED',
          );
      } finally {
        progress.stop();
        process.removeListener('SIGINT', onSignal);
        await model.close();
        await tokenEncoder?.dispose();
      }
    });
}

export function evalCommand(): Command {
  const command = configureCommand(new Command('eval')).description(
    'VTC-Bench evaluation: analyse lmms-eval logs, or run a dataset through a model for methods × ratios',
  );
  command.addCommand(analyzeSubcommand());
  command.addCommand(runSubcommand());
  command.addCommand(workerSubcommand());
  command.addCommand(collectSubcommand((analysis) => formatTaskTable([analysis])));
  for (const sub of command.commands) configureCommand(sub);
  return command;
}
