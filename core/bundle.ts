import { InputError, ShapeError } from './errors.js';
import type { SafetensorsFile, SafetensorsInput } from './safetensors.js';
import {
  createTokenSet,
  gridPositions,
  identityOrigins,
  type AnyResInfo,
  type TokenSet,
  type TokenSource,
} from './tokenset.js';

/**
 * AnyRes bundle: one safetensors file with
 *   thumbnail [T, D], crops [C, T, D], thumbnail_cls [T], crops_cls [C, T]
 *   (pre-softmax CLS row scores), optional thumbnail_cls_token [D] and
 *   crops_cls_token [C, D] (the encoder's CLS vectors), and metadata
 *   grid = "rows,cols", image_size = "w,h", patch_grid = "24,24".
 * As a TokenSet: thumbnail tokens first, then crop 0, crop 1, … each in raster
 * order; crops are numbered row-major over the crop grid.
 */
export function isBundle(file: SafetensorsFile): boolean {
  return 'thumbnail' in file.tensors && 'crops' in file.tensors;
}

function parsePair(metadata: Record<string, string>, key: string, where: string): [number, number] {
  const text = metadata[key];
  if (text === undefined) throw new InputError(`${where}: bundle metadata lacks '${key}' (expected "a,b")`, 'E_BUNDLE');
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new InputError(
      `${where}: bundle metadata '${key}' must be two positive integers "a,b", got ${JSON.stringify(text)}`,
      'E_BUNDLE',
    );
  }
  return [parts[0]!, parts[1]!];
}

function floatTensor(
  file: SafetensorsFile,
  name: string,
  where: string,
): { shape: number[]; data: Float32Array } | undefined {
  const t = file.tensors[name];
  if (!t) return undefined;
  if (!(t.data instanceof Float32Array))
    throw new InputError(`${where}: tensor '${name}' must be a float tensor, got ${t.dtype}`, 'E_DTYPE');
  return { shape: t.shape, data: t.data };
}

export function bundleToTokenSet(file: SafetensorsFile, where = 'bundle'): TokenSet {
  const thumbnail = floatTensor(file, 'thumbnail', where);
  const crops = floatTensor(file, 'crops', where);
  if (!thumbnail || !crops)
    throw new InputError(`${where}: not an AnyRes bundle (needs tensors 'thumbnail' and 'crops')`, 'E_BUNDLE');
  if (thumbnail.shape.length !== 2)
    throw new ShapeError(`${where}: 'thumbnail' must be [T, D], got [${thumbnail.shape.join(', ')}]`);
  if (crops.shape.length !== 3)
    throw new ShapeError(`${where}: 'crops' must be [C, T, D], got [${crops.shape.join(', ')}]`);
  const [T, D] = thumbnail.shape as [number, number];
  const [C, cropT, cropD] = crops.shape as [number, number, number];
  if (cropD !== D)
    throw new ShapeError(
      `${where}: crops have d = ${cropD} but thumbnail has d = ${D} (feature dimensions must match)`,
    );
  if (cropT !== T) throw new ShapeError(`${where}: crops have ${cropT} tokens per tile but thumbnail has ${T}`);
  const [gridRows, gridCols] = parsePair(file.metadata, 'grid', where);
  const [imageWidth, imageHeight] = parsePair(file.metadata, 'image_size', where);
  const [patchRows, patchCols] = file.metadata.patch_grid
    ? parsePair(file.metadata, 'patch_grid', where)
    : squareGrid(T, where);
  if (patchRows * patchCols !== T)
    throw new ShapeError(`${where}: patch_grid ${patchRows}x${patchCols} does not match ${T} tokens per tile`);
  if (gridRows * gridCols !== C)
    throw new ShapeError(`${where}: grid ${gridRows}x${gridCols} needs ${gridRows * gridCols} crops, 'crops' has ${C}`);

  const thumbCls = floatTensor(file, 'thumbnail_cls', where);
  const cropsCls = floatTensor(file, 'crops_cls', where);
  if ((thumbCls === undefined) !== (cropsCls === undefined))
    throw new InputError(
      `${where}: bundle has only one of 'thumbnail_cls' and 'crops_cls'; give both or neither`,
      'E_BUNDLE',
    );
  if (thumbCls && thumbCls.data.length !== T)
    throw new ShapeError(`${where}: 'thumbnail_cls' must be [${T}], got [${thumbCls.shape.join(', ')}]`);
  if (cropsCls && cropsCls.data.length !== C * T)
    throw new ShapeError(`${where}: 'crops_cls' must be [${C}, ${T}], got [${cropsCls.shape.join(', ')}]`);
  const thumbClsToken = floatTensor(file, 'thumbnail_cls_token', where);
  const cropsClsToken = floatTensor(file, 'crops_cls_token', where);

  // Checked per tensor so the error names the tensor and index the user wrote.
  assertFiniteTensor(thumbnail.data, [T, D], 'thumbnail', where);
  assertFiniteTensor(crops.data, [C, T, D], 'crops', where);
  if (thumbCls) assertFiniteTensor(thumbCls.data, [T], 'thumbnail_cls', where);
  if (cropsCls) assertFiniteTensor(cropsCls.data, [C, T], 'crops_cls', where);

  const n = T * (C + 1);
  const data = new Float32Array(n * D);
  data.set(thumbnail.data, 0);
  data.set(crops.data, T * D);
  const source = new Int32Array(n);
  for (let c = 0; c < C; c++) source.fill(c + 1, T * (c + 1), T * (c + 2));
  const sources: TokenSource[] = [{ kind: 'thumbnail', index: 0, rows: patchRows, cols: patchCols }];
  if (thumbClsToken) sources[0]!.cls = thumbClsToken.data.slice(0, D);
  for (let c = 0; c < C; c++) {
    const s: TokenSource = { kind: 'crop', index: c, rows: patchRows, cols: patchCols };
    if (cropsClsToken) s.cls = cropsClsToken.data.slice(c * D, (c + 1) * D);
    sources.push(s);
  }
  let score: Float32Array | undefined;
  if (thumbCls && cropsCls) {
    score = new Float32Array(n);
    score.set(thumbCls.data, 0);
    score.set(cropsCls.data, T);
  }
  const anyres: AnyResInfo = { gridRows, gridCols, imageWidth, imageHeight, patchRows, patchCols };
  const meta = { ...file.metadata };
  const tokens = withWhere(where, () =>
    createTokenSet({ data, n, d: D, source, sources, anyres, meta, ...(score ? { score } : {}) }),
  );
  // A bundle is LLaVA-NeXT AnyRes: positions are (0, row, col) in each tile.
  tokens.positions = gridPositions(tokens);
  return tokens;
}

/**
 * Throws InputError at the first NaN/Inf of a tensor, naming the file, the
 * tensor and the element index, e.g. "b.safetensors: tensor 'crops_cls' has
 * non-finite value NaN at [1, 7]".
 */
function assertFiniteTensor(data: Float32Array, shape: number[], name: string, where: string): void {
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i]!)) continue;
    const index: number[] = [];
    let rest = i;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      index.unshift(rest % shape[axis]!);
      rest = Math.floor(rest / shape[axis]!);
    }
    throw new InputError(
      `${where}: tensor '${name}' has non-finite value ${data[i]} at [${index.join(', ')}] (values must be finite numbers)`,
      'E_NONFINITE',
    );
  }
}

/** Runs a validation with the file name in front of its InputError/ShapeError message. */
function withWhere<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if ((error instanceof InputError || error instanceof ShapeError) && !error.message.startsWith(`${where}:`))
      error.message = `${where}: ${error.message}`;
    throw error;
  }
}

function squareGrid(T: number, where: string): [number, number] {
  const side = Math.round(Math.sqrt(T));
  if (side * side !== T)
    throw new InputError(`${where}: bundle lacks 'patch_grid' and ${T} tokens per tile is not a square`, 'E_BUNDLE');
  return [side, side];
}

/** The inverse of bundleToTokenSet for an unreduced AnyRes token set. */
export function tokenSetToBundle(tokens: TokenSet): {
  tensors: Record<string, SafetensorsInput>;
  metadata: Record<string, string>;
} {
  const info = tokens.anyres;
  if (!info) throw new InputError('tokenSetToBundle: token set has no AnyRes information', 'E_BUNDLE');
  const T = info.patchRows * info.patchCols;
  const C = info.gridRows * info.gridCols;
  const { d } = tokens;
  if (tokens.n !== T * (C + 1))
    throw new ShapeError(`tokenSetToBundle: expected ${T}x(1+${C}) = ${T * (C + 1)} tokens, got ${tokens.n}`);
  const tensors: Record<string, SafetensorsInput> = {
    thumbnail: { shape: [T, d], data: tokens.data.slice(0, T * d) },
    crops: { shape: [C, T, d], data: tokens.data.slice(T * d) },
  };
  if (tokens.score) {
    tensors.thumbnail_cls = { shape: [T], data: tokens.score.slice(0, T) };
    tensors.crops_cls = { shape: [C, T], data: tokens.score.slice(T) };
  }
  const thumbSource = tokens.sources[0];
  if (thumbSource?.cls) {
    tensors.thumbnail_cls_token = { shape: [d], data: thumbSource.cls };
    const cropsToken = new Float32Array(C * d);
    for (let c = 0; c < C; c++) {
      const cls = tokens.sources[c + 1]?.cls;
      if (cls) cropsToken.set(cls, c * d);
    }
    tensors.crops_cls_token = { shape: [C, d], data: cropsToken };
  }
  const metadata: Record<string, string> = {
    ...tokens.meta,
    format: 'vtc-anyres-bundle',
    grid: `${info.gridRows},${info.gridCols}`,
    image_size: `${info.imageWidth},${info.imageHeight}`,
    patch_grid: `${info.patchRows},${info.patchCols}`,
  };
  return { tensors, metadata };
}

/**
 * A (possibly reduced) token set as safetensors tensors: `tokens` [n, d],
 * `sizes` [n], plus `source` [n], `grid_pos` [n, 2], `scores` [n] when
 * present, `positions` [n, 3] int32 and `extra.<name>` [n, d_k] when the set
 * has them and, after a reduction, `origin_offsets` [n+1] + `origin_index`
 * (the input tokens each output covers, CSR), so reductions stay traceable
 * (also through a second reduction of the file); the input's metadata is kept.
 */
export function tokenSetToTensors(tokens: TokenSet): {
  tensors: Record<string, SafetensorsInput>;
  metadata: Record<string, string>;
} {
  const gridPos = new Int32Array(tokens.n * 2);
  for (let i = 0; i < tokens.n; i++) {
    gridPos[2 * i] = tokens.row[i]!;
    gridPos[2 * i + 1] = tokens.col[i]!;
  }
  const tensors: Record<string, SafetensorsInput> = {
    tokens: { shape: [tokens.n, tokens.d], data: tokens.data },
    sizes: { shape: [tokens.n], data: Float32Array.from(tokens.size) },
    source: { shape: [tokens.n], data: tokens.source, dtype: 'I32' },
    grid_pos: { shape: [tokens.n, 2], data: gridPos, dtype: 'I32' },
  };
  if (tokens.score) tensors.scores = { shape: [tokens.n], data: tokens.score };
  if (tokens.positions) tensors.positions = { shape: [tokens.n, 3], data: tokens.positions, dtype: 'I32' };
  for (const [name, values] of Object.entries(tokens.extra ?? {})) {
    tensors[`${EXTRA_PREFIX}${name}`] = {
      shape: [tokens.n, tokens.n > 0 ? values.length / tokens.n : 0],
      data: values,
    };
  }
  // Origins (which input tokens each output covers) only when some token is not its own origin [i].
  if (tokens.origin.some((o, i) => o.length !== 1 || o[0] !== i)) {
    const offsets = new Int32Array(tokens.n + 1);
    tokens.origin.forEach((o, i) => (offsets[i + 1] = offsets[i]! + o.length));
    const index = new Int32Array(offsets[tokens.n]!);
    tokens.origin.forEach((o, i) => index.set(o, offsets[i]!));
    tensors.origin_offsets = { shape: [tokens.n + 1], data: offsets, dtype: 'I32' };
    tensors.origin_index = { shape: [index.length], data: index, dtype: 'I32' };
  }
  const metadata: Record<string, string> = {
    ...tokens.meta,
    sources: JSON.stringify(
      tokens.sources.map(({ kind, index, rows, cols, time }) => ({
        kind,
        index,
        rows,
        cols,
        ...(time !== undefined ? { time } : {}),
      })),
    ),
  };
  if (tokens.anyres) {
    const a = tokens.anyres;
    metadata.grid = `${a.gridRows},${a.gridCols}`;
    metadata.image_size = `${a.imageWidth},${a.imageHeight}`;
    metadata.patch_grid = `${a.patchRows},${a.patchCols}`;
  }
  return { tensors, metadata };
}

/**
 * Origins stored as `origin_offsets` [n+1] + `origin_index` (CSR: token i covers
 * origin_index[offsets[i] .. offsets[i+1])), or undefined when the file has none.
 */
function readOrigins(file: SafetensorsFile, n: number, where: string): Int32Array[] | undefined {
  const offsets = file.tensors.origin_offsets?.data;
  const index = file.tensors.origin_index?.data;
  if (offsets === undefined && index === undefined) return undefined;
  if (!(offsets instanceof Int32Array) || !(index instanceof Int32Array)) {
    throw new InputError(
      `${where}: 'origin_offsets' and 'origin_index' must both be present as int32 tensors`,
      'E_TOKENS',
    );
  }
  if (offsets.length !== n + 1 || offsets[0] !== 0 || offsets[n] !== index.length) {
    throw new ShapeError(
      `${where}: 'origin_offsets' must be [${n + 1}] from 0 to len(origin_index) = ${index.length}, got [${offsets.length}] ending at ${offsets[offsets.length - 1]}`,
    );
  }
  const origin: Int32Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (!(offsets[i + 1]! > offsets[i]!))
      throw new ShapeError(`${where}: 'origin_offsets' must increase strictly (token ${i} covers no origin)`);
    origin[i] = index.slice(offsets[i]!, offsets[i + 1]!);
  }
  return origin;
}

/** Tensor-name prefix of TokenSet.extra entries in token files (`extra.deepstack_0`). */
export const EXTRA_PREFIX = 'extra.';

/**
 * Reads a `tokens` [n, d] safetensors file (as written by tokenSetToTensors,
 * or any with that tensor). `lazyOrigins`: when the file has no origin
 * tensors (every token its own origin), `origin` is identityOrigins(n) —
 * for the metadata skeleton of a long video, not for hot loops.
 */
export function tensorsToTokenSet(
  file: SafetensorsFile,
  where = 'tokens file',
  options: { lazyOrigins?: boolean } = {},
): TokenSet {
  const t = floatTensor(file, 'tokens', where);
  if (!t)
    throw new InputError(
      `${where}: safetensors file has neither 'tokens' [n, d] nor the AnyRes tensors 'thumbnail' + 'crops' (found: ${Object.keys(file.tensors).join(', ') || 'none'})`,
      'E_TOKENS',
    );
  if (t.shape.length !== 2) throw new ShapeError(`${where}: 'tokens' must be [n, d], got [${t.shape.join(', ')}]`);
  const [n, d] = t.shape as [number, number];
  const sizes = floatTensor(file, 'sizes', where);
  const scores = floatTensor(file, 'scores', where);
  const sourceT = file.tensors.source;
  const gridPos = file.tensors.grid_pos;
  let sources: TokenSource[] | undefined;
  if (file.metadata.sources) {
    try {
      sources = JSON.parse(file.metadata.sources) as TokenSource[];
    } catch {
      throw new InputError(`${where}: metadata 'sources' is not valid JSON`, 'E_TOKENS');
    }
  }
  const init: Parameters<typeof createTokenSet>[0] = { data: t.data, n, d, meta: { ...file.metadata } };
  if (sources) init.sources = sources;
  if (sizes) init.size = Float64Array.from(sizes.data);
  if (scores) init.score = scores.data;
  if (sourceT && sourceT.data instanceof Int32Array && sources) init.source = sourceT.data;
  if (gridPos && gridPos.data instanceof Int32Array && gridPos.data.length === 2 * n) {
    init.row = new Int32Array(n);
    init.col = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      init.row[i] = gridPos.data[2 * i]!;
      init.col[i] = gridPos.data[2 * i + 1]!;
    }
  }
  const origin = readOrigins(file, n, where);
  if (origin) init.origin = origin;
  else if (options.lazyOrigins) init.origin = identityOrigins(n);
  const positions = file.tensors.positions;
  if (positions) {
    if (
      !(positions.data instanceof Int32Array) ||
      positions.shape.length !== 2 ||
      positions.shape[0] !== n ||
      positions.shape[1] !== 3
    ) {
      throw new ShapeError(
        `${where}: 'positions' must be an integer [${n}, 3] tensor ((t, h, w) per token), got ${positions.dtype} [${positions.shape.join(', ')}]`,
      );
    }
    init.positions = positions.data;
  }
  for (const [name, tensor] of Object.entries(file.tensors)) {
    if (!name.startsWith(EXTRA_PREFIX)) continue;
    const t = floatTensor(file, name, where)!;
    if (t.shape.length !== 2 || t.shape[0] !== n)
      throw new ShapeError(
        `${where}: '${name}' must be [${n}, d_k] (one row per token), got ${tensor.dtype} [${t.shape.join(', ')}]`,
      );
    (init.extra ??= {})[name.slice(EXTRA_PREFIX.length)] = t.data;
  }
  if (file.metadata.grid && file.metadata.image_size && file.metadata.patch_grid) {
    const [gridRows, gridCols] = parsePair(file.metadata, 'grid', where);
    const [imageWidth, imageHeight] = parsePair(file.metadata, 'image_size', where);
    const [patchRows, patchCols] = parsePair(file.metadata, 'patch_grid', where);
    init.anyres = { gridRows, gridCols, imageWidth, imageHeight, patchRows, patchCols };
  }
  return withWhere(where, () => createTokenSet(init));
}
