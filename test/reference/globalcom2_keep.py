"""GlobalCom² keep lists from a NumPy port of the reference pipeline.

Ports, step by step, the functions of xuyang-liu16/GlobalCom2
llava/model/llava_arch.py that choose the kept tokens of a LLaVA-NeXT AnyRes
image: compress_thumbnail, generate_scale_for_crop_features, the unpadding
mask of compress_crops (LLaVA-NeXT's unpad_image arithmetic),
interpolate_and_split_cls_attn_scores (F.interpolate, bilinear,
align_corners=False, written out here) and select_topk_crop_features.
Written independently of the TypeScript reducer; test/reference/
reference.test.ts compares its output with reducers/globalcom2.ts.

Output (stdout, JSON): for each case [R, image_width, image_height], the kept
token indices in the TokenSet's numbering: thumbnail tokens 0..T-1 in
descending score order, then crop c's token i as T + c*T + i, each crop's
kept tokens in raster order.

Usage: python3 globalcom2_keep.py '[[0.5, 640, 480], ...]' GRID_ROWS GRID_COLS SIDE
       (scores: ((i*37) mod 101)/101 for the thumbnail then each crop)
"""
import json
import sys

import numpy as np


def crop_scales(thumb_scores, grid_cols, grid_rows, base_scale, temperature=10.0):
    side = int(len(thumb_scores) ** 0.5)
    patch_w = max(side // grid_cols, 1)
    patch_h = max(side // grid_rows, 1)
    sums = np.zeros(grid_cols * grid_rows)
    for idx, score in enumerate(thumb_scores):
        i, j = divmod(idx, side)
        pi = min(i // patch_h, grid_rows - 1)
        pj = min(j // patch_w, grid_cols - 1)
        sums[pi * grid_cols + pj] += score
    shifted = (sums - sums.max()) / temperature
    soft = np.exp(shifted) / (np.exp(shifted).sum() + 1e-8)
    return np.minimum(base_scale * (1 + soft - soft.mean()), 1.0)


def bilinear_resize(grid, out_h, out_w):
    """torch.nn.functional.interpolate(mode='bilinear', align_corners=False) on one 2-D map."""
    in_h, in_w = grid.shape

    def axis(out_n, in_n):
        src = np.maximum((np.arange(out_n) + 0.5) * (in_n / out_n) - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, in_n - 1)
        return lo, hi, src - lo

    y0, y1, wy = axis(out_h, in_h)
    x0, x1, wx = axis(out_w, in_w)
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bottom = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return top * (1 - wy)[:, None] + bottom * wy[:, None]


def valid_mask(grid_rows, grid_cols, side, width, height):
    """The unpadding mask on the crop canvas, then per crop [C, side*side] in crop raster order."""
    cur_h, cur_w = grid_rows * side, grid_cols * side
    canvas = np.zeros((cur_h, cur_w), dtype=bool)
    if width / height > cur_w / cur_h:
        new_h = int(height * (cur_w / width))
        pad = (cur_h - new_h) // 2
        canvas[pad:cur_h - pad, :] = True
    else:
        new_w = int(width * (cur_h / height))
        pad = (cur_w - new_w) // 2
        canvas[:, pad:cur_w - pad] = True
    rows = np.nonzero(canvas.any(axis=1))[0]
    cols = np.nonzero(canvas.any(axis=0))[0]
    valid_h, valid_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    tiles = canvas.reshape(grid_rows, side, grid_cols, side).transpose(0, 2, 1, 3)
    dims = []
    for r in range(grid_rows):
        for c in range(grid_cols):
            ys, xs = np.nonzero(tiles[r, c])
            dims.append((0, 0) if len(ys) == 0 else (xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()))
    return tiles.reshape(grid_rows * grid_cols, side * side), (valid_w, valid_h), dims


def l2_normalize(v):
    return v / max(np.sqrt((v * v).sum()), 1e-12)


def keep_list(scores, ratio, width, height, grid_rows, grid_cols, side):
    T = side * side
    thumb = scores[:T]
    thumb_keep = np.argsort(-thumb, kind='stable')[: int(T * ratio)]
    scales = crop_scales(thumb, grid_cols, grid_rows, ratio)
    mask, (valid_w, valid_h), dims = valid_mask(grid_rows, grid_cols, side, width, height)
    resized = bilinear_resize(thumb.reshape(side, side), valid_h, valid_w)
    pieces, y = [], 0
    for r in range(grid_rows):
        x = 0
        for c in range(grid_cols):
            w, h = dims[r * grid_cols + c]
            pieces.append(resized[y:y + h, x:x + w].flatten())
            x += w
        y += dims[r * grid_cols][1]
    keep = [int(i) for i in thumb_keep]
    for c in range(grid_rows * grid_cols):
        positions = np.nonzero(mask[c])[0]
        local = scores[T + c * T: T + (c + 1) * T][positions]
        combined = l2_normalize(local) + l2_normalize(pieces[c])
        top = np.argsort(-combined, kind='stable')[: int(len(positions) * scales[c])]
        keep += sorted(int(T + c * T + positions[i]) for i in top)
    return keep


def main():
    cases = json.loads(sys.argv[1])
    grid_rows, grid_cols, side = (int(a) for a in sys.argv[2:5])
    n = side * side * (grid_rows * grid_cols + 1)
    scores = np.array([((i * 37) % 101) / 101 for i in range(n)], dtype=np.float64)
    print(json.dumps([keep_list(scores, r, w, h, grid_rows, grid_cols, side) for r, w, h in cases]))


if __name__ == '__main__':
    main()
