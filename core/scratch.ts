/*
 * Reusable float32 work buffers for the reducers' intermediate results (never
 * for outputs handed to a caller). A fresh multi-megabyte Float32Array costs
 * its page faults on first touch — on the 2-core VM the benchmarks run on,
 * about 0.45 ms per MB, as much as the arithmetic that fills it — so a warm
 * caller that reduces token sets of one shape again and again should not pay
 * them every call. Buffers are borrowed and returned: concurrent reductions
 * (the reducers await native runs between steps) never share one.
 */

/** Most bytes kept in the pool between calls; a returned buffer past it is left to the garbage collector. */
export const MAX_POOLED_BYTES = 64 * 2 ** 20;

const pool: Float32Array[] = [];
let pooledBytes = 0;
/** Allocations this module made: only these are ever pooled (never a caller's array returned by mistake). */
const owned = new WeakSet<ArrayBufferLike>();

/**
 * A Float32Array of exactly `length` values, taken from the pool when a
 * returned buffer is large enough (the smallest such), else newly allocated.
 * Its contents are arbitrary: the caller writes every value before reading it.
 *
 * @example
 * const next = borrowFloat32(count * d);
 * try { fill(next); use(next); } finally { returnFloat32(next); }
 */
export function borrowFloat32(length: number): Float32Array {
  let best = -1;
  for (let i = 0; i < pool.length; i++) {
    if (pool[i]!.length >= length && (best < 0 || pool[i]!.length < pool[best]!.length)) best = i;
  }
  if (best < 0) {
    const fresh = new Float32Array(length);
    owned.add(fresh.buffer);
    return fresh;
  }
  const [buffer] = pool.splice(best, 1);
  pooledBytes -= buffer!.byteLength;
  return buffer!.subarray(0, length);
}

/**
 * Gives a borrowed buffer back (the whole allocation behind the view); the
 * caller must not use it afterwards. Arrays this module did not hand out are
 * ignored.
 */
export function returnFloat32(view: Float32Array): void {
  if (!owned.has(view.buffer)) return;
  const whole = new Float32Array(view.buffer, 0, view.buffer.byteLength / 4);
  if (pool.some((buffer) => buffer.buffer === whole.buffer)) return;
  if (pooledBytes + whole.byteLength > MAX_POOLED_BYTES) return;
  pool.push(whole);
  pooledBytes += whole.byteLength;
}

/** Bytes currently kept for reuse (for tests and diagnostics). */
export function pooledScratchBytes(): number {
  return pooledBytes;
}
