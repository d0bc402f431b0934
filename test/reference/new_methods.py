"""Keep lists of cdpruner, vispruner, dart, evs and fastvid from NumPy ports.

Each function follows its reference code's steps (CDPruner's and VisPruner's
encode_images, DART's get_retained_image_token, vLLM's
compute_retention_mask, FastVID's DySeg / STPrune / DTM block) with the
project's pinned details (ties to the lower index, budget rules, the
deviations in docs/methods.md). Written independently of the TypeScript
reducers; test/reference/new-methods.test.ts compares the results.

Inputs are generated from a formula both sides can reproduce exactly:
values(count, seed)[k] = float32(sin(0.37·k + 0.0011·k² + seed) · (1 + (k mod 7) / 7))
(the k² term keeps the rows from spanning only a few dimensions).

Usage: python3 new_methods.py METHOD JSON_ARGS   (prints JSON on stdout)
"""
import json
import math
import sys

import numpy as np


def values(count, seed):
    k = np.arange(count, dtype=np.float64)
    return (np.sin(0.37 * k + 0.0011 * k * k + seed) * (1 + (k % 7) / 7)).astype(np.float32)


def stable_desc(v):
    """Indices by descending value, lower index first on ties."""
    return sorted(range(len(v)), key=lambda i: (-v[i], i))


def cosine_matrix(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return an @ bn.T


def cdpruner(x, budget, query=None, theta=None):
    n = x.shape[0]
    sim = cosine_matrix(x, x)
    np.fill_diagonal(sim, 1.0)
    if query is None:
        q = np.ones(n)
    else:
        rel = (-cosine_matrix(x, query)).mean(axis=1)
        rel = (rel - rel.min() + 1e-6) / (rel.max() - rel.min())
        q = rel if theta is None else np.exp(theta / (2 * (1 - theta)) * rel)
    kernel = q[:, None] * sim * q[None, :]
    cis = np.zeros((budget, n))
    di2s = np.diag(kernel).copy()
    picks = []
    for i in range(budget):
        j = int(np.argmax(di2s))  # first maximum
        picks.append(j)
        eis = (kernel[j] - cis[:i, j] @ cis[:i]) / math.sqrt(di2s[j])
        cis[i] = eis
        di2s -= eis ** 2
        di2s[j] = -np.inf
    return sorted(picks)


def vispruner(x, scores, budget, share=0.5):
    important_count = int(budget * share)
    diverse_count = budget - important_count
    order = stable_desc(scores)
    important = order[:important_count]
    residual = order[important_count:]
    sim = cosine_matrix(x, x)
    while diverse_count > 0:
        r_count = len(residual)
        r = min(8, r_count - diverse_count)
        if r <= 0:
            break
        a = residual[0::2]
        b = residual[1::2]
        best = [max(sim[i, j] for j in b) for i in a]
        ranked = stable_desc(best)
        residual = [a[p] for p in ranked[r:]] + b
    kept = important + (residual if diverse_count > 0 else [])
    return sorted(kept)


def dart(x, budget, pivots=4):
    x64 = x.astype(np.float64)
    l1 = np.abs(x64).sum(axis=1)
    p_list = stable_desc(l1)[: min(pivots, budget)]
    slots = budget - len(p_list)
    base = slots // len(p_list)
    quotas = [base + (slots - base * len(p_list) if p == 0 else 0) for p in range(len(p_list))]
    norms = np.maximum(np.linalg.norm(x64, axis=1), 1e-8)
    kept = set(p_list)
    for p, i in enumerate(p_list):
        candidates = [j for j in range(len(x)) if j not in kept]
        neg = [-(x64[i] @ x64[j]) / (norms[i] * norms[j]) for j in candidates]
        for r in stable_desc(neg)[: quotas[p]]:
            kept.add(candidates[r])
    return sorted(kept)


def evs(video, ratio):
    t, n, d = video.shape
    v = video.astype(np.float64)
    dot = (v[1:] * v[:-1]).sum(-1)
    norms = np.maximum(np.linalg.norm(v, axis=-1), 1e-8)
    dissimilarity = 1 - dot / (norms[1:] * norms[:-1])
    dissimilarity = np.concatenate([np.full((1, n), 255.0), dissimilarity]).reshape(-1)
    budget = max(1, math.floor(t * n * ratio + 0.5))
    count = max(n, budget)
    order = np.argsort(-dissimilarity, kind='stable')
    return sorted(int(i) for i in order[:count])


def fastvid(video, scores, budget, c=8, tau=0.9, share=0.4, stride=4, beta=0.6):
    f_count, p_count, d = video.shape
    v = video.astype(np.float64)
    g = v.mean(axis=1)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    sims = (g[:-1] * g[1:]).sum(1)
    cuts = set(stable_desc(-sims)[: min(c - 1, f_count - 1)]) | {i for i in range(f_count - 1) if sims[i] < tau}
    bounds = [-1] + sorted(cuts) + [f_count - 1]
    segments = [bounds[i + 1] - bounds[i] for i in range(len(bounds) - 1)]
    m = budget // f_count
    ctx = int(m * share)
    sal = m - ctx
    anchor = [0] * f_count
    off = 0
    for length in segments:
        each = (ctx * length) // math.ceil(length / stride)
        for k in range(length):
            if (length - 1 - k) % stride == 0:
                anchor[off + k] = each
        off += length
    out = {}
    filtered = []
    density_score = []
    s = scores.reshape(f_count, p_count)
    for f in range(f_count):
        salient = stable_desc(s[f])[:sal]
        for p in salient:
            out[f * p_count + p] = v[f, p]
        rest = [p for p in range(p_count) if p not in salient]
        filtered.append([f * p_count + p for p in rest])
        x = v[f, rest]
        dist = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0)) / math.sqrt(d)
        k = min(4, len(rest))
        near = np.sort(dist, axis=1)[:, :k]
        density = np.exp(-(near ** 2).mean(axis=1))
        dmax = dist.max()
        delta = np.array([min([dist[i, j] for j in range(len(rest)) if density[j] > density[i]] + [dmax]) for i in range(len(rest))])
        density_score.append(delta * density)
    flat = v.reshape(-1, d)

    def merge(members, anchor_frame, count):
        picked = stable_desc(density_score[anchor_frame])[:count]
        targets = [filtered[anchor_frame][j] for j in picked]
        sim = cosine_matrix(flat[members], flat[targets])
        joined = [int(np.argmax(row)) for row in sim]
        for k, t in enumerate(targets):
            group = [members[r] for r in range(len(members)) if joined[r] == k]
            w = max(1 / (len(group) + 1), beta)
            mean = flat[group].mean(axis=0) if group else np.zeros(d)
            out[t] = w * flat[t] + (1 - w) * mean

    off = 0
    if ctx > 0:
        for length in segments:
            frames = list(range(off, off + length))
            members = [i for f in frames for i in filtered[f]]
            for a in frames:
                if (length == 1) or anchor[a] > ctx:
                    merge(members, a, min(anchor[a], p_count - sal))
            off += length
    keep = sorted(out)
    return {'keep': keep, 'features': [float(val) for i in keep for val in out[i]], 'segments': segments}


def main():
    method = sys.argv[1]
    args = json.loads(sys.argv[2])
    if method == 'cdpruner':
        x = values(args['n'] * args['d'], args['seed']).reshape(args['n'], args['d'])
        query = None
        if args.get('query'):
            query = values(args['query'] * args['d'], args['seed'] + 5).reshape(args['query'], args['d'])
        print(json.dumps(cdpruner(x, args['budget'], query, args.get('theta'))))
    elif method == 'vispruner':
        x = values(args['n'] * args['d'], args['seed']).reshape(args['n'], args['d'])
        print(json.dumps(vispruner(x, values(args['n'], args['seed'] + 1), args['budget'])))
    elif method == 'dart':
        x = values(args['n'] * args['d'], args['seed']).reshape(args['n'], args['d'])
        print(json.dumps(dart(x, args['budget'])))
    elif method == 'evs':
        video = values(args['t'] * args['n'] * args['d'], args['seed']).reshape(args['t'], args['n'], args['d'])
        print(json.dumps(evs(video, args['ratio'])))
    elif method == 'fastvid':
        video = values(args['t'] * args['n'] * args['d'], args['seed']).reshape(args['t'], args['n'], args['d'])
        scores = values(args['t'] * args['n'], args['seed'] + 1)
        print(json.dumps(fastvid(video, scores, args['budget'], c=args['c'], tau=args['tau'])))
    else:
        raise SystemExit(f'unknown method {method}')


if __name__ == '__main__':
    main()
