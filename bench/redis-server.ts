import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * A throwaway redis-server for the queue benchmark and tests: a free
 * loopback port, no persistence (`--save '' --appendonly no`), stopped by
 * `stop()`. Needs Debian's redis-server (`apt-get install redis-server`).
 */

export interface LocalRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Whether a redis-server binary is on PATH (the reason to skip when not). */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on a free loopback port (or the given one, e.g. to
 * restart a stopped server) and waits until it accepts connections.
 *
 * @example
 * const redis = await startLocalRedis();
 * // … redis.url is redis://127.0.0.1:<port>/0
 * await redis.stop();
 */
export async function startLocalRedis(options: { port?: number } = {}): Promise<LocalRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort());
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let log = '';
    const ready = await new Promise<boolean>((resolve) => {
      const onData = (chunk: Buffer) => {
        log += chunk;
        if (/Ready to accept connections/.test(log)) resolve(true);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', () => resolve(false));
      child.once('error', () => resolve(false));
      setTimeout(() => resolve(false), 10_000).unref();
    });
    if (ready) {
      child.stdout!.resume();
      child.stderr!.resume();
      return {
        url: `redis://127.0.0.1:${port}/0`,
        port,
        process: child,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    child.kill('SIGKILL');
    // Another process took the port between probing and binding: try another one.
    if (attempt >= 2 || options.port !== undefined)
      throw new Error(`redis-server did not start: ${log.trim().split('\n').pop() ?? 'no output'}`);
  }
}
