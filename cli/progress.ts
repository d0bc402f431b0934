import { createRequire } from 'node:module';

/**
 * Progress for long work: a bar with ETA on an interactive terminal (stderr),
 * nothing otherwise, so --json output and CI logs stay clean.
 */
export interface Progress {
  start(total: number, label?: string): void;
  update(done: number, label?: string): void;
  increment(step?: number, label?: string): void;
  stop(): void;
}

export function createProgress(enabled = Boolean(process.stderr.isTTY) && !process.env.CI): Progress {
  if (!enabled) {
    return { start() {}, update() {}, increment() {}, stop() {} };
  }
  // Loaded only for a bar: most runs (pipes, --json, CI) never draw one, and the CLI's cold start should not pay for it.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: '{bar} {percentage}% | {value}/{total} | ETA {eta_formatted} | {label}',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  return {
    start(total, label = '') {
      bar.start(total, 0, { label });
      running = true;
    },
    update(done, label) {
      if (running) bar.update(done, label === undefined ? {} : { label });
    },
    increment(step = 1, label) {
      if (running) bar.increment(step, label === undefined ? {} : { label });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
