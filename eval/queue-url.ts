import { UsageError } from '../core/errors.js';

/**
 * Queue-mode defaults and the Redis URL check, in a module without BullMQ or
 * ioredis so that `vtc eval --help` can show them without loading either
 * (eval/queue.ts re-exports them).
 */

export const DEFAULT_QUEUE_NAME = 'vtc-eval';
/** How long Redis may stay unreachable in the middle of a run before the command stops (ms). */
export const DEFAULT_REDIS_WAIT_MS = 10_000;

/** A parsed `redis://[user:password@]host:port[/db]` (or `rediss://`) URL. */
export interface QueueUrl {
  url: string;
  /** The URL without its password, for messages. */
  display: string;
}

/**
 * Validates a Redis URL.
 *
 * @example
 * parseQueueUrl('redis://127.0.0.1:6379/0').display; // 'redis://127.0.0.1:6379/0'
 */
export function parseQueueUrl(text: string): QueueUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--queue expects a Redis URL redis://HOST:PORT/DB, got ${JSON.stringify(text)}`,
      'E_QUEUE_URL',
    );
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new UsageError(`--queue expects a redis:// or rediss:// URL, got ${JSON.stringify(text)}`, 'E_QUEUE_URL');
  if (url.hostname === '') throw new UsageError(`--queue URL has no host: ${JSON.stringify(text)}`, 'E_QUEUE_URL');
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db))
    throw new UsageError(
      `--queue URL database must be a number (redis://HOST:PORT/DB), got ${JSON.stringify(db)}`,
      'E_QUEUE_URL',
    );
  const shown = new URL(url.href);
  if (shown.password) shown.password = '***';
  return { url: url.href, display: shown.href };
}
