import { InputError, ShapeError, UsageError } from '../core/errors.js';
import { mergeTokens, type Reduction, resolveBudget, type TokenSet } from '../core/tokenset.js';
import { checkInteger } from '../core/validate.js';
import { blockFrames, type FrameBlockSource } from './frame-blocks.js';
import { frameLayout } from './frames.js';
import type { BaseReduceOptions, Reducer } from './types.js';

/**
 * Temporal merging of video frames, as in MARC's visual memory retriever:
 * while there are more frames than the budget, find the most similar pair of
 * ADJACENT frames and replace both by their average H = (Ha + Hb) / 2.
 * Similarity = mean over patch positions of the cosine between the two
 * frames' tokens at that position. Pure numerics: no I/O.
 *
 * Cost is one pass over P·d values per pair, and after a merge only the two
 * neighbouring similarities change, so the whole run is O(n·P·d): a banded
 * problem where a GEMM (all n² pairs) would do about n/3 times more work.
 * (Pre-normalising every frame was measured slower: the extra n·P·d copies
 * cost more in allocation than they save in arithmetic.) The similarities
 * stay in float64 JS arithmetic rather than a float32 native kernel so the
 * merge order is the one the pipeline always had.
 *
 * The merge is written once (generators yielding frame reads) and runs from
 * memory (`mergeAdjacentFrames`, `temporalMerge`) or from frame blocks
 * (`mergeFrameBlocks`, the `temporal-merge` block path), with identical
 * results; see docs/methods.md for the block rule.
 */

/** One frame: P tokens × d, row-major. */
export type FrameFeatures = Float32Array;

export interface TemporalMergeResult {
  /** Merged frames in temporal order (each P×d). */
  features: FrameFeatures[];
  /** For each merged frame, the original frame indices it covers (contiguous, ascending). */
  groups: number[][];
  /** Similarity of each merge performed, in order (for inspection/tests). */
  mergedSimilarities: number[];
  /** Each merge performed, in order: the index (in the frame list at that moment) of the pair's first frame. */
  steps: number[];
}

/**
 * Mean per-patch cosine between two frames of P tokens × d.
 * Zero-norm patches contribute 0.
 *
 * @example
 * framePatchSimilarity(Float32Array.of(1, 0, 0, 1), Float32Array.of(1, 0, 1, 0), 2); // (1 + 0) / 2 = 0.5
 */
export function framePatchSimilarity(a: FrameFeatures, b: FrameFeatures, d: number): number {
  if (a.length !== b.length)
    throw new ShapeError(`framePatchSimilarity: frames have ${a.length} and ${b.length} values`);
  const patches = a.length / d;
  let total = 0;
  for (let p = 0; p < patches; p++) {
    const base = p * d;
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let c = 0; c < d; c++) {
      const x = a[base + c]!;
      const y = b[base + c]!;
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    if (na > 0 && nb > 0) total += dot / Math.sqrt(na * nb);
  }
  return total / patches;
}

/**
 * Bytes of merged frame features kept between merges by default (an hour at
 * 196×1152: ~590 groups). Measured on an hour (docs/methods.md): 256 MiB
 * reads 15.6k frames, 512 MiB 9.9k, 1 GiB 6.5k (3,600 is one pass).
 */
export const MERGE_CACHE_BYTES = 512 * 1024 * 1024;

/** How a merge runs (not what it computes: every setting gives the same groups and features). */
export interface MergeRunOptions {
  /**
   * Bytes of group features kept between merges, the group whose nearby
   * pairs are least similar evicted first (default {@link MERGE_CACHE_BYTES}).
   * An evicted group needed again is recomputed from its frames by
   * replaying its merges: the same values, more reads.
   */
  cacheBytes?: number;
}

/**
 * Merges adjacent frames until `budget` remain (H = (Ha + Hb)/2, most similar
 * pair first, earliest pair on ties). Budget ≥ frame count returns the input.
 * With `quotas`, pairs merge only inside a segment until every segment is
 * down to its quota (the frames left are then Σ quota, not `budget`).
 * The same code as {@link mergeFrameBlocks}, over frames already in memory.
 *
 * @example
 * const { groups } = mergeAdjacentFrames([f0, f1, f2, f3], 4, 2); // e.g. [[0, 1], [2, 3]]
 */
export function mergeAdjacentFrames(
  frames: FrameFeatures[],
  d: number,
  budget: number,
  quotas?: SegmentQuotas,
  options: MergeRunOptions = {},
): TemporalMergeResult {
  checkInteger(budget, 'frame budget', { min: 1, where: 'temporal merge' });
  if (frames.length === 0) throw new ShapeError('temporal merge: no frames');
  const size = frames[0]!.length;
  for (const [i, f] of frames.entries()) {
    if (f.length !== size)
      throw new ShapeError(
        `temporal merge: frame ${i} has ${f.length} values, expected ${size} (all frames need the same token grid)`,
      );
    if (size % d !== 0)
      throw new ShapeError(`temporal merge: frame ${i} has ${f.length} values, not a multiple of d = ${d}`);
  }
  // One frame per read: each is its own array, and views of it stay valid.
  const context = mergeContext(frames.length, size, d, 1, true, options.cacheBytes);
  const read = (start: number) => frames[start]!;
  const plan = runInMemory(mergePlan(context, budget, quotas), read);
  const features: FrameFeatures[] = [];
  runInMemory(
    emitGroups(plan.groups, context, (_g, f) => features.push(f)),
    read,
  );
  return { features, groups: plan.groups.map(framesOfNode), mergedSimilarities: plan.similarities, steps: plan.steps };
}

/** {@link mergeAdjacentFrames} on a frame-block source: the merged frames as one array [groups·perFrame·d]. */
export interface FrameBlockMerge extends Omit<TemporalMergeResult, 'features'> {
  features: Float32Array;
}

/**
 * Temporal merge over a frame-block source, exactly {@link mergeAdjacentFrames}
 * (same groups, steps, similarities and bit-identical features) without the
 * video in memory:
 *
 * 1. one streaming pass gives the F − 1 adjacent similarities;
 * 2. each merge needs the features of the pair and of its two neighbours.
 *    A group's features are its merge tree replayed over its contiguous
 *    frames (each node (left + right)/2, the same float operations as the
 *    running average), so they are taken from a cache of `cacheBytes`
 *    or recomputed by reading the group's frames (one read when the group
 *    fits a block, else frame by frame, the subtree needing more buffers
 *    first, so at most ⌊log₂ frames⌋ + 1 frame buffers live);
 * 3. the output is every group's features in order (one more pass; groups
 *    still cached are not read).
 *
 * Memory: one block + the cache + O(frames) scalars and tree nodes + the
 * output (none with `write`). Every read is at most `block` frames.
 *
 * @example
 * const { groups, features } = await mergeFrameBlocks(fileFrames, 360); // an hour at 1 fps → 360 frames
 */
export async function mergeFrameBlocks(
  source: FrameBlockSource,
  budget: number,
  options: MergeRunOptions & {
    quotas?: SegmentQuotas;
    block?: number;
    /**
     * Hands the merged rows to a writer instead of returning them: called
     * with the groups, steps and similarities once the merge is planned;
     * the function it returns gets each group's P·d features in order
     * (awaited before the next read), and `features` comes back empty.
     */
    write?: (merge: Omit<TemporalMergeResult, 'features'>) => Promise<(rows: Float32Array) => Promise<void>>;
  } = {},
): Promise<FrameBlockMerge> {
  checkInteger(budget, 'frame budget', { min: 1, where: 'temporal merge' });
  const block = options.block ?? blockFrames(source);
  checkInteger(block, 'block', { min: 1, where: 'temporal merge' });
  if (source.frames < 1) throw new ShapeError('temporal merge: no frames');
  const size = source.perFrame * source.d;
  const context = mergeContext(source.frames, size, source.d, block, false, options.cacheBytes);
  const plan = await runOnBlocks(mergePlan(context, budget, options.quotas), source, size);
  const groups = plan.groups.map(framesOfNode);
  const result = { groups, mergedSimilarities: plan.similarities, steps: plan.steps };
  if (options.write) {
    const append = await options.write(result);
    // A group's features may be a view of the last read: written before the next one.
    const pending: Float32Array[] = [];
    const flush = async () => {
      for (const rows of pending) await append(rows);
      pending.length = 0;
    };
    await runOnBlocks(
      emitGroups(plan.groups, context, (_g, f) => pending.push(f)),
      source,
      size,
      flush,
    );
    return { ...result, features: new Float32Array(0) };
  }
  const features = new Float32Array(plan.groups.length * size);
  await runOnBlocks(
    emitGroups(plan.groups, context, (g, f) => features.set(f, g * size)),
    source,
    size,
  );
  return { ...result, features };
}

/**
 * Mean per-patch cosine of every adjacent pair of frames (entry i: frames i
 * and i + 1), in one streaming pass over a frame-block source — the
 * similarities temporal merging starts from and the pipeline segments on.
 *
 * @example
 * await frameSimilarityBlocks(arrayFrames(Float32Array.of(1, 0, 1, 0, 0, 1), 3, 1, 2)); // [1, 0]
 */
export async function frameSimilarityBlocks(source: FrameBlockSource, block = blockFrames(source)): Promise<number[]> {
  checkInteger(block, 'block', { min: 1, where: 'frame similarities' });
  const size = source.perFrame * source.d;
  return runOnBlocks(similarityPass(mergeContext(source.frames, size, source.d, block, false)), source, size);
}

/** A contiguous run of frames [start, end) and how it was merged: a frame, or (left + right)/2 of two adjacent runs. */
interface MergeNode {
  start: number;
  end: number;
  left?: MergeNode;
  right?: MergeNode;
  /** Frame buffers its evaluation holds at once (its Strahler number): 1 for a frame. */
  need: number;
}

/** A read of frames [start, end) (at most a block), answered with their features. */
interface FrameRequest {
  start: number;
  end: number;
}

/**
 * The merge is written once as generators that yield their reads; a driver
 * answers them from memory (synchronously) or from a FrameBlockSource (awaiting
 * each read), so both paths run the same code.
 */
type Reads<T> = Generator<FrameRequest, T, Float32Array>;

interface MergeContext {
  frames: number;
  /** Values per frame: perFrame·d. */
  size: number;
  d: number;
  block: number;
  /** Whether a read stays valid after the next one (in-memory views); else what is kept is copied. */
  stable: boolean;
  cache: GroupCache;
}

function mergeContext(
  frames: number,
  size: number,
  d: number,
  block: number,
  stable: boolean,
  cacheBytes = MERGE_CACHE_BYTES,
): MergeContext {
  if (!(cacheBytes >= 0)) throw new UsageError(`temporal merge: cache bytes must be ≥ 0, got ${cacheBytes}`);
  return { frames, size, d, block, stable, cache: new GroupCache(cacheBytes) };
}

/**
 * Group features by node. When over its limit the cache drops the entry of
 * lowest urgency, which the merge sets: the group needed furthest in the
 * future per frame a miss would re-read, as far as the merge can tell (see
 * mergePlan). Without a forecast the oldest entry goes. Views of stable
 * reads cost no memory and are never dropped.
 */
class GroupCache {
  private readonly entries = new Map<MergeNode, { features: Float32Array; bytes: number }>();
  private bytes = 0;
  /** How soon each node will be needed (higher: sooner); set by the merge loop. */
  urgency?: () => (node: MergeNode) => number;
  constructor(private readonly limit: number) {}

  get(node: MergeNode): Float32Array | undefined {
    return this.entries.get(node)?.features;
  }

  set(node: MergeNode, features: Float32Array, owned: boolean): void {
    this.delete(node);
    const bytes = owned ? features.byteLength : 0;
    this.entries.set(node, { features, bytes });
    this.bytes += bytes;
    if (this.bytes <= this.limit) return;
    const urgencyOf = this.urgency?.() ?? (() => 0);
    while (this.bytes > this.limit) {
      let victim: MergeNode | undefined;
      let lowest = Number.POSITIVE_INFINITY;
      for (const [key, entry] of this.entries) {
        if (entry.bytes === 0) continue;
        const urgency = urgencyOf(key);
        if (urgency < lowest) {
          lowest = urgency;
          victim = key;
        }
      }
      this.delete(victim!);
    }
  }

  /** Whether `bytes` more fit without dropping anything. */
  fits(bytes: number): boolean {
    return this.bytes + bytes <= this.limit;
  }

  /** The lowest urgency among the entries that cost memory (+∞ when none: nothing could make room). */
  lowestUrgency(): number {
    const urgencyOf = this.urgency?.() ?? (() => 0);
    let lowest = Number.POSITIVE_INFINITY;
    for (const [key, entry] of this.entries) if (entry.bytes > 0) lowest = Math.min(lowest, urgencyOf(key));
    return lowest;
  }

  delete(node: MergeNode): void {
    const entry = this.entries.get(node);
    if (!entry) return;
    this.entries.delete(node);
    this.bytes -= entry.bytes;
  }
}

/**
 * Similarities of adjacent frames, reading `block` frames at a time (the last
 * frame is carried to the next block). With `seed` (the merge's one-frame
 * groups, frames that do not stay in memory), the frames read here also fill
 * the cache, the most urgent first by the similarities known so far, so the
 * merge's first loads of them need no read.
 */
function* similarityPass(context: MergeContext, seed?: MergeNode[]): Reads<number[]> {
  const { frames, size, d, block, cache } = context;
  const similarities: number[] = [];
  // A frame is needed early when a pair within two of it is among the most similar.
  const urgencyOf = (f: number) => {
    let urgency = Number.NEGATIVE_INFINITY;
    for (let j = Math.max(0, f - 2); j <= Math.min(similarities.length - 1, f + 1); j++)
      urgency = Math.max(urgency, similarities[j]!);
    return urgency;
  };
  if (seed) cache.urgency = () => (node) => urgencyOf(node.start);
  let previous: Float32Array | undefined;
  for (let start = 0; start < frames; start += block) {
    const end = Math.min(frames, start + block);
    const features = yield { start, end };
    for (let f = 0; f < end - start; f++) {
      const frame = features.subarray(f * size, (f + 1) * size);
      if (previous) similarities.push(framePatchSimilarity(previous, frame, d));
      previous = frame;
    }
    if (seed && !context.stable) {
      for (let f = start; f < end; f++) {
        const urgency = urgencyOf(f);
        if (cache.fits(size * 4) || urgency > cache.lowestUrgency())
          cache.set(seed[f]!, features.slice((f - start) * size, (f - start + 1) * size), true);
      }
    }
    // The next read may reuse this buffer.
    if (!context.stable) previous = previous!.slice();
  }
  if (seed) cache.urgency = undefined;
  return similarities;
}

interface MergePlan {
  groups: MergeNode[];
  similarities: number[];
  steps: number[];
}

/** The greedy merge (most similar adjacent pair first, earliest on ties), reading group features as needed. */
function* mergePlan(context: MergeContext, budget: number, quotas?: SegmentQuotas): Reads<MergePlan> {
  const { frames, d, cache } = context;
  const groups: MergeNode[] = Array.from({ length: frames }, (_, f) => ({ start: f, end: f + 1, need: 1 }));
  const segmentOfGroup = quotas ? checkQuotas(quotas, frames) : undefined;
  const groupsLeft = quotas ? quotas.quota.map((_, q) => segmentOfGroup!.filter((s) => s === q).length) : [];
  const target = quotas ? quotas.quota.reduce((a, b) => a + b, 0) : budget;
  if (frames <= target) return { groups, similarities: [], steps: [] };
  const sims = yield* similarityPass(context, groups);
  const similarities: number[] = [];
  const steps: number[] = [];
  // With quotas a pair may merge only inside one segment that still has more groups than its quota.
  const mergeable = (i: number) =>
    !segmentOfGroup ||
    (segmentOfGroup[i] === segmentOfGroup[i + 1] &&
      groupsLeft[segmentOfGroup[i]!]! > quotas!.quota[segmentOfGroup[i]!]!);
  // The cache's forecast (rebuilt after each merge): a group is needed when a pair within two of it merges, and
  // merges go roughly in descending similarity, so the pairs more similar than its most similar nearby pair
  // are about the merges before it is needed. Re-reading a group costs one frame read per frame it covers
  // while every group takes one frame of memory, so the cache drops the group with the most merges ahead
  // per frame it covers (Belady's rule weighed by the cost of a miss).
  let forecast: ((node: MergeNode) => number) | undefined;
  cache.urgency = () => {
    if (forecast) return forecast;
    const at = new Map(groups.map((g, i) => [g, i]));
    const descending = Float64Array.from(sims).sort().reverse();
    // Pairs more similar than u: the merges expected before one of similarity u.
    const ahead = (u: number) => {
      let lo = 0;
      let hi = descending.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (descending[mid]! > u) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    forecast = (node) => {
      const i = at.get(node);
      if (i === undefined) return Number.NEGATIVE_INFINITY;
      let urgency = Number.NEGATIVE_INFINITY;
      for (let j = Math.max(0, i - 2); j <= Math.min(sims.length - 1, i + 1); j++)
        urgency = Math.max(urgency, sims[j]!);
      return -(ahead(urgency) + 1) / (node.end - node.start);
    };
    return forecast;
  };
  while (groups.length > target) {
    let best = -1;
    for (let i = 0; i < sims.length; i++) if (mergeable(i) && (best < 0 || sims[i]! > sims[best]!)) best = i;
    if (segmentOfGroup) {
      groupsLeft[segmentOfGroup[best]!]!--;
      segmentOfGroup.splice(best, 1);
    }
    similarities.push(sims[best]!);
    steps.push(best);
    const left = groups[best]!;
    const right = groups[best + 1]!;
    const a = yield* load(left, context);
    const b = yield* load(right, context);
    const h = average(a, b);
    const merged: MergeNode = {
      start: left.start,
      end: right.end,
      left,
      right,
      need: left.need === right.need ? left.need + 1 : Math.max(left.need, right.need),
    };
    cache.delete(left);
    cache.delete(right);
    groups.splice(best, 2, merged);
    sims.splice(best, 1);
    forecast = undefined;
    cache.set(merged, h, true);
    if (best > 0) sims[best - 1] = framePatchSimilarity(yield* load(groups[best - 1]!, context), h, d);
    if (best < groups.length - 1) sims[best] = framePatchSimilarity(h, yield* load(groups[best + 1]!, context), d);
  }
  cache.urgency = undefined;
  return { groups, similarities, steps };
}

/** A group's features: from the cache, else replayed from its frames (and cached). */
function* load(node: MergeNode, context: MergeContext): Reads<Float32Array> {
  const cached = context.cache.get(node);
  if (cached) return cached;
  const { features, owned } = yield* evaluate(node, context);
  context.cache.set(node, features, owned);
  return features;
}

/** Every group's features in order, handed to `emit` before the next read (then dropped from the cache). */
function* emitGroups(
  groups: MergeNode[],
  context: MergeContext,
  emit: (group: number, features: Float32Array) => void,
): Reads<void> {
  for (const [g, node] of groups.entries()) {
    const features = context.cache.get(node) ?? (yield* evaluate(node, context)).features;
    context.cache.delete(node);
    emit(g, features);
  }
}

/**
 * A node's features from its frames: one read when it fits a block, else its
 * two subtrees one after the other, the one needing more buffers first
 * (Strahler order), so at most `need` frame buffers are alive.
 */
function* evaluate(node: MergeNode, context: MergeContext): Reads<{ features: Float32Array; owned: boolean }> {
  const { left, right } = node;
  if (node.end - node.start <= context.block) {
    const frames = yield { start: node.start, end: node.end };
    const features = replay(node, frames, node.start, context.size);
    if (left || !context.stable) return { features: left ? features : features.slice(), owned: true };
    return { features, owned: false };
  }
  const leftFirst = left!.need >= right!.need;
  const first = (yield* evaluate(leftFirst ? left! : right!, context)).features;
  const second = (yield* evaluate(leftFirst ? right! : left!, context)).features;
  return { features: leftFirst ? average(first, second) : average(second, first), owned: true };
}

/** A node's features from frames [offset, …) already read (a frame is a view; the read itself when it is exactly that frame). */
function replay(node: MergeNode, frames: Float32Array, offset: number, size: number): Float32Array {
  if (!node.left || !node.right) {
    if (node.start === offset && frames.length === size) return frames;
    return frames.subarray((node.start - offset) * size, (node.end - offset) * size);
  }
  return average(replay(node.left, frames, offset, size), replay(node.right, frames, offset, size));
}

/** MARC's H = (Ha + Hb) / 2, element by element in float32. */
function average(a: Float32Array, b: Float32Array): Float32Array {
  const h = new Float32Array(a.length);
  for (let c = 0; c < a.length; c++) h[c] = (a[c]! + b[c]!) / 2;
  return h;
}

function framesOfNode(node: MergeNode): number[] {
  return Array.from({ length: node.end - node.start }, (_, i) => node.start + i);
}

/** Answers a generator's reads from memory, one frame at a time. */
function runInMemory<T>(reads: Reads<T>, read: (start: number) => Float32Array): T {
  let step = reads.next();
  while (!step.done) {
    if (step.value.end !== step.value.start + 1) throw new Error('temporal merge: in-memory reads are one frame');
    step = reads.next(read(step.value.start));
  }
  return step.value;
}

/** Answers a generator's reads from a frame-block source, checking each read's length. */
async function runOnBlocks<T>(
  reads: Reads<T>,
  source: FrameBlockSource,
  size: number,
  beforeRead?: () => Promise<void>,
): Promise<T> {
  let step = reads.next();
  for (;;) {
    await beforeRead?.();
    if (step.done) return step.value;
    const { start, end } = step.value;
    const features = await source.readFrames(start, end);
    if (features.length !== (end - start) * size)
      throw new ShapeError(
        `temporal merge: frames [${start}, ${end}) gave ${features.length} values, expected ${(end - start) * size}`,
      );
    step = reads.next(features);
  }
}

/**
 * Per-segment frame quotas for mergeAdjacentFrames: `segment[f]` is frame f's
 * segment (0, 1, … non-decreasing), `quota[s]` ≥ 1 how many merged frames
 * segment s ends with (at most its frame count). Merges never cross a
 * segment boundary, so every segment stays represented.
 */
export interface SegmentQuotas {
  segment: ArrayLike<number>;
  quota: number[];
}

/** Validates quotas; returns each frame's segment as a mutable list (spliced as groups merge). */
function checkQuotas(quotas: SegmentQuotas, frameCount: number): number[] {
  if (quotas.segment.length !== frameCount)
    throw new ShapeError(
      `temporal merge: quotas name a segment for ${quotas.segment.length} frames, expected ${frameCount}`,
    );
  const segmentOf = Array.from(quotas.segment);
  const counts = quotas.quota.map(() => 0);
  segmentOf.forEach((s, f) => {
    if (!(Number.isInteger(s) && s >= 0 && s < quotas.quota.length) || (f > 0 && s < segmentOf[f - 1]!)) {
      throw new ShapeError(
        `temporal merge: frame ${f} has segment ${s}; segments must be non-decreasing integers in [0, ${quotas.quota.length})`,
      );
    }
    counts[s]!++;
  });
  quotas.quota.forEach((q, s) => {
    if (!(Number.isInteger(q) && q >= 1 && q <= counts[s]!))
      throw new UsageError(
        `temporal merge: segment ${s} has ${counts[s]} frames, its quota must be an integer in [1, ${counts[s]}], got ${q}`,
      );
  });
  return segmentOf;
}

/**
 * Temporal merging on a frame TokenSet (sources of kind 'frame', each with the
 * same rows×cols, tokens grouped by frame in order): merges down to
 * `frames` frames. Token p of every frame in a group goes into output token p
 * of that group; features are the MARC running average, not the size-weighted
 * mean (extra tensors replay the same averages); positions and source come
 * from the group's first (earliest) frame.
 *
 * @example
 * const { tokens, stats } = temporalMerge(videoTokens, { frames: 4 });
 * stats.groups; // [[0,1,2],[3],[4,5],[6,7]]
 */
export function temporalMerge(
  tokens: TokenSet,
  options: { frames: number; quotas?: SegmentQuotas } & MergeRunOptions,
): Reduction {
  const frameTokens = framesOf(tokens);
  const { d } = tokens;
  const perFrame = frameTokens[0]!.length;
  // A frame stored in one run of tokens is a view of the features; others are gathered.
  const gather = (values: Float32Array, width: number, indices: number[]): Float32Array => {
    const first = indices[0]!;
    if (indices.every((t, p) => t === first + p)) return values.subarray(first * width, (first + perFrame) * width);
    const f = new Float32Array(perFrame * width);
    indices.forEach((t, p) => f.set(values.subarray(t * width, (t + 1) * width), p * width));
    return f;
  };
  const frames = frameTokens.map((indices) => gather(tokens.data, d, indices));
  const result = mergeAdjacentFrames(frames, d, Math.min(options.frames, frames.length), options.quotas, options);
  const assign = new Int32Array(tokens.n);
  for (const [g, members] of result.groups.entries()) {
    for (const f of members) frameTokens[f]!.forEach((t, p) => (assign[t] = g * perFrame + p));
  }
  const outputCount = result.groups.length * perFrame;
  const data = new Float32Array(outputCount * d);
  result.features.forEach((f, g) => data.set(f, g * perFrame * d));
  const representative = new Int32Array(outputCount);
  result.groups.forEach((members, g) =>
    frameTokens[members[0]!]!.forEach((t, p) => (representative[g * perFrame + p] = t)),
  );
  const combine = (values: Float32Array, width: number): Float32Array => {
    const replayed = frameTokens.map((indices) => gather(values, width, indices));
    for (const at of result.steps) replayed.splice(at, 2, average(replayed[at]!, replayed[at + 1]!));
    const out = new Float32Array(outputCount * width);
    replayed.forEach((f, g) => out.set(f, g * perFrame * width));
    return out;
  };
  const merged = mergeTokens(tokens, assign, outputCount, { features: data, representative, combine });
  return {
    tokens: merged,
    assign,
    representative,
    stats: {
      frames_in: frames.length,
      frames_out: result.groups.length,
      groups: result.groups,
      merged_similarities: result.mergedSimilarities,
    },
  };
}

/** Options of `temporal-merge`: ratio/budget in tokens (whole frames are kept), segment quotas and the block path's cache. */
export interface TemporalMergeOptions extends BaseReduceOptions {
  /** MiB of merged frame features kept between merges (default 512, ≥ 0); only memory and reads change, never the result. */
  cacheMb?: number;
  /**
   * Per-segment frame quotas (`vtc reduce --segment-quotas q.json`): merges stay inside a segment and each
   * segment ends with its quota, so Σ quota frames are kept; that must not exceed the budget's frames.
   * Validated on use (the CLI hands over parsed JSON): errors name the field, expected vs got.
   */
  segmentQuotas?: SegmentQuotas;
}

/**
 * `segmentQuotas` checked against the video and the budget's frames: an
 * object with integer arrays `segment` (one per frame) and `quota` (one per
 * segment) — the merge checks their values (checkQuotas) — and Σ quota ≤
 * `budgetFrames`. Errors name the field, expected vs got.
 */
function quotasOf(value: unknown, frames: number, budgetFrames: number): SegmentQuotas | undefined {
  if (value === undefined) return undefined;
  const where = 'temporal-merge: segmentQuotas (--segment-quotas)';
  const describe = (v: unknown) =>
    Array.isArray(v)
      ? `an array of ${v.length}`
      : v === null
        ? 'null'
        : typeof v === 'object'
          ? 'an object'
          : JSON.stringify(v);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InputError(
      `${where} must be an object {"segment": [...], "quota": [...]}, got ${describe(value)}`,
      'E_QUOTAS',
    );
  const { segment, quota } = value as Record<string, unknown>;
  const integers = (list: unknown) => Array.isArray(list) && list.every((v) => Number.isInteger(v));
  if (!integers(segment) || (segment as number[]).length !== frames)
    throw new InputError(
      `${where}: 'segment' must be an array of ${frames} integers (each frame's segment), got ${describe(segment)}${Array.isArray(segment) && !integers(segment) ? ' with a non-integer' : ''}`,
      'E_QUOTAS',
    );
  if (!integers(quota) || (quota as number[]).length === 0)
    throw new InputError(
      `${where}: 'quota' must be a non-empty array of integers (frames each segment keeps), got ${describe(quota)}${Array.isArray(quota) && !integers(quota) ? ' with a non-integer' : ''}`,
      'E_QUOTAS',
    );
  const kept = (quota as number[]).reduce((a, b) => a + b, 0);
  if (kept > budgetFrames)
    throw new UsageError(
      `${where}: the quotas keep ${kept} frames (Σ quota), more than the budget's ${budgetFrames}; raise --ratio/--budget or lower the quotas`,
      'E_RANGE',
    );
  return { segment: segment as number[], quota: quota as number[] };
}

/**
 * `temporal-merge` — MARC's temporal merge as a registered reducer on a video
 * token set [F frames, P tokens, d]: frames kept = ⌊budget / P⌋ (whole
 * frames, so the output never exceeds the budget), budget = max(1, round(F·P·R))
 * or the given one; the most similar adjacent pair (mean per-patch cosine) is
 * replaced by (Ha + Hb)/2 until that many remain. A budget below one frame is
 * refused; a ratio that rounds below one frame keeps one (stats.budget = P,
 * reported as a warning). Output: P tokens per merged frame, positions and
 * source from the group's first frame.
 *
 * @example
 * const { stats } = await temporalMergeReducer.run(video, { ratio: 0.1 }); // 64 frames → 6
 */
export const temporalMergeReducer: Reducer<TemporalMergeOptions> = {
  name: 'temporal-merge',
  summary:
    'MARC temporal merge: average the most similar adjacent frames ((Ha + Hb)/2, mean per-patch cosine) until ⌊budget / tokens per frame⌋ remain',
  kind: 'merge',
  scope: 'video',
  options: {
    segmentQuotas: {
      type: 'json',
      description:
        'segment quotas as JSON {"segment": [segment of each frame, non-decreasing from 0], "quota": [frames each segment keeps]}: merges stay inside a segment, Σ quota frames are kept (at most the budget\'s)',
    },
    cacheMb: {
      type: 'integer',
      description:
        'MiB of merged frame features kept between merges (when full, the group needed last by the similarity forecast is dropped and later recomputed from its frames: same result, more reads)',
      default: MERGE_CACHE_BYTES / 2 ** 20,
    },
  },
  async run(tokens: TokenSet, options: TemporalMergeOptions): Promise<Reduction> {
    const { frames, perFrame } = frameLayout(tokens, 'temporal-merge');
    const plan = temporalMergeFrames(frames, perFrame, options);
    const quotas = quotasOf(options.segmentQuotas, frames, plan.frames);
    const result = temporalMerge(tokens, {
      frames: plan.frames,
      cacheBytes: cacheBytesOf(options),
      ...(quotas ? { quotas } : {}),
    });
    return { ...result, stats: reducerStats(plan, perFrame, result.stats) };
  },
};

/**
 * temporal-merge on a frame-block source (the `vtc reduce` path for a 3-D
 * .npy): the merged features [groups·P·d], assign (input token → output
 * token) and representative (output → the group's first frame's token) of
 * {@link temporalMergeReducer.run} on the loaded video, and the same stats.
 *
 * @example
 * const { features, assign } = await temporalMergeBlocks(fileFrames, { ratio: 0.1 });
 */
export async function temporalMergeBlocks(
  source: FrameBlockSource,
  options: TemporalMergeOptions,
  block = blockFrames(source),
  write?: (
    assign: Int32Array,
    representative: Int32Array,
    stats: Record<string, unknown>,
  ) => Promise<(rows: Float32Array) => Promise<void>>,
): Promise<{ features: Float32Array; assign: Int32Array; representative: Int32Array; stats: Record<string, unknown> }> {
  const { frames, perFrame } = source;
  const plan = temporalMergeFrames(frames, perFrame, options);
  const quotas = quotasOf(options.segmentQuotas, frames, plan.frames);
  const layout = (groups: number[][], similarities: number[]) => {
    const assign = new Int32Array(frames * perFrame);
    const representative = new Int32Array(groups.length * perFrame);
    groups.forEach((members, g) => {
      for (const f of members) for (let p = 0; p < perFrame; p++) assign[f * perFrame + p] = g * perFrame + p;
      for (let p = 0; p < perFrame; p++) representative[g * perFrame + p] = members[0]! * perFrame + p;
    });
    const stats = reducerStats(plan, perFrame, {
      frames_in: frames,
      frames_out: groups.length,
      groups,
      merged_similarities: similarities,
    });
    return { assign, representative, stats };
  };
  let laidOut: ReturnType<typeof layout> | undefined;
  const merged = await mergeFrameBlocks(source, plan.frames, {
    block,
    cacheBytes: cacheBytesOf(options),
    ...(quotas ? { quotas } : {}),
    // The layout (assign, stats) is known once the merge is planned, before any row is written.
    ...(write
      ? {
          write: (planned: Omit<TemporalMergeResult, 'features'>) => {
            laidOut = layout(planned.groups, planned.mergedSimilarities);
            return write(laidOut.assign, laidOut.representative, laidOut.stats);
          },
        }
      : {}),
  });
  laidOut ??= layout(merged.groups, merged.mergedSimilarities);
  return { features: merged.features, ...laidOut };
}

/**
 * Frames temporal-merge keeps: ⌊budget / perFrame⌋ for the token budget
 * (given, or max(1, round(n·R))). An explicit budget below one frame is a
 * usage error; a ratio rounding below one frame keeps one.
 *
 * @example
 * temporalMergeFrames(3600, 196, { ratio: 0.1 }); // { frames: 360, budget: 70560, ratio: 0.1 }
 */
export function temporalMergeFrames(
  frames: number,
  perFrame: number,
  options: BaseReduceOptions,
): { frames: number; budget: number; ratio: number } {
  const { budget, ratio } = resolveBudget(frames * perFrame, options, 'temporal-merge');
  const kept = Math.floor(budget / perFrame);
  if (kept < 1 && options.budget !== undefined)
    throw new UsageError(
      `temporal-merge: a budget of ${budget} tokens is below one frame (${perFrame} tokens per frame); temporal merge keeps whole frames, give at least ${perFrame}`,
      'E_RANGE',
    );
  const keptFrames = Math.max(1, kept);
  return { frames: keptFrames, budget: keptFrames * perFrame, ratio };
}

function cacheBytesOf(options: TemporalMergeOptions): number {
  const cacheMb = options.cacheMb ?? MERGE_CACHE_BYTES / 2 ** 20;
  checkInteger(cacheMb, 'cacheMb (--cache-mb)', { min: 0, where: 'temporal-merge', code: 'E_RANGE' });
  return cacheMb * 2 ** 20;
}

/** The reducer's stats, the same keys in the same order on both paths. */
function reducerStats(
  plan: { budget: number; ratio: number },
  perFrame: number,
  merge: Record<string, unknown>,
): Record<string, unknown> {
  return { budget: plan.budget, ratio: plan.ratio, tokens_per_frame: perFrame, ...merge };
}

/** Token indices of each frame source, validated to share one grid. */
function framesOf(tokens: TokenSet): number[][] {
  const bySource = new Map<number, number[]>();
  for (let i = 0; i < tokens.n; i++) {
    const s = tokens.source[i]!;
    if (tokens.sources[s]!.kind !== 'frame')
      throw new ShapeError(
        `temporal merge: token ${i} comes from a ${tokens.sources[s]!.kind} source, expected frames`,
      );
    let list = bySource.get(s);
    if (!list) bySource.set(s, (list = []));
    list.push(i);
  }
  const order = [...bySource.keys()];
  for (let k = 1; k < order.length; k++) {
    if (order[k]! < order[k - 1]!) throw new ShapeError('temporal merge: frames must appear in temporal order');
  }
  const frames = order.map((s) => bySource.get(s)!);
  if (frames.length === 0) throw new ShapeError('temporal merge: no frames');
  for (const [k, f] of frames.entries()) {
    if (f.length !== frames[0]!.length)
      throw new ShapeError(
        `temporal merge: frame ${k} has ${f.length} tokens, expected ${frames[0]!.length} like frame 0`,
      );
  }
  return frames;
}
