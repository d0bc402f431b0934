"""PyTorch implementations of the rules of vtc's divprune, tome and cluster,
for `vtc bench pytorch` (bench/pytorch.ts). Not part of npm test.

Usage: python3 bench/torch_reference.py FEATURES.npy RATIO RUNS THREADS
Prints one JSON object {torch, threads, methods: {name: {median_ms, min_ms, runs, n_out, times}}};
besides the three methods, gemm_R times one R×d · (R×d)ᵀ product (tome's rounds).
Each method runs once to warm up, then RUNS times; the median is reported.
The rules follow the vtc methods (docs/methods.md), written the way one would
in PyTorch (dense n×n / n×k matrices, vectorised steps).
"""
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def divprune(x, budget):
    # Max–min diversity on 1 − cos: first pick = largest nearest-neighbour distance, then greedy.
    unit = F.normalize(x, dim=1)
    dist = 1.0 - unit @ unit.T
    n = x.shape[0]
    dist.fill_diagonal_(float("inf"))
    nearest = dist.min(dim=1).values
    pick = int(torch.argmax(nearest))
    dist.fill_diagonal_(0.0)
    selected = torch.zeros(n, dtype=torch.bool)
    min_dist = torch.full((n,), float("inf"))
    picks = []
    for _ in range(budget):
        picks.append(pick)
        selected[pick] = True
        torch.minimum(min_dist, dist[pick], out=min_dist)
        pick = int(torch.argmax(min_dist.masked_fill(selected, -float("inf"))))
    return sorted(picks)


def tome(x, budget):
    # Bipartite soft matching rounds (A = even, B = odd positions), r = min(n − budget, n/2), size-weighted means.
    feats = x.clone()
    size = torch.ones(x.shape[0])
    first = torch.arange(x.shape[0])
    while feats.shape[0] > budget:
        m = feats.shape[0]
        r = min(m - budget, m // 2)
        a, b = feats[0::2], feats[1::2]
        scores = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
        best, best_b = scores.max(dim=1)
        order = torch.argsort(best, descending=True, stable=True)
        merged_a = order[:r]
        target = torch.arange(m)
        target[2 * merged_a] = 2 * best_b[merged_a] + 1
        weighted = feats * size[:, None]
        sums = torch.zeros_like(feats).index_add_(0, target, weighted)
        new_size = torch.zeros(m).index_add_(0, target, size)
        new_first = first.clone().scatter_reduce_(0, target, first, reduce="amin")
        keep = (target == torch.arange(m)).nonzero().squeeze(1)
        keep = keep[torch.argsort(new_first[keep])]
        feats = sums[keep] / new_size[keep, None]
        size = new_size[keep]
        first = new_first[keep]
    return feats.shape[0]


def cluster(x, k, iterations=10, seed=1):
    # Spherical k-means, k-means++ seeding (∝ D², D = 1 − max cos), Lloyd steps on normalised centroid sums.
    gen = torch.Generator().manual_seed(seed)
    unit = F.normalize(x, dim=1)
    n = x.shape[0]
    seeds = [int(torch.randint(n, (1,), generator=gen))]
    dist = torch.full((n,), float("inf"))
    for _ in range(k - 1):
        torch.minimum(dist, (1.0 - unit @ unit[seeds[-1]]).clamp_(min=0), out=dist)
        prob = dist * dist
        prob[seeds] = 0
        seeds.append(int(torch.multinomial(prob, 1, generator=gen)) if float(prob.sum()) > 0 else 0)
    centroids = unit[seeds]
    assign = (unit @ centroids.T).argmax(dim=1)
    for _ in range(iterations):
        sums = torch.zeros(k, x.shape[1]).index_add_(0, assign, unit)
        assign = (unit @ F.normalize(sums, dim=1).T).argmax(dim=1)
    return int(assign.unique().numel())


def main():
    path, ratio, runs, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    torch.set_num_threads(threads)
    x = torch.from_numpy(np.load(path).astype(np.float32).reshape(-1, np.load(path, mmap_mode="r").shape[-1]))
    budget = max(1, int(round(x.shape[0] * ratio)))
    methods = {"divprune": lambda: len(divprune(x, budget)), "tome": lambda: tome(x, budget), "cluster": lambda: cluster(x, budget)}
    # tome's two GEMMs alone (its first two rounds' A·Bᵀ on unit rows): where the BLAS, not the rule, sets the time.
    for rows in (x.shape[0] // 2, x.shape[0] // 4):
        a, b = F.normalize(x[0 : 2 * rows : 2], dim=1), F.normalize(x[1 : 2 * rows : 2], dim=1)
        methods[f"gemm_{rows}"] = lambda a=a, b=b: (a @ b.T).shape[0]
    out = {}
    with torch.no_grad():
        for name, fn in methods.items():
            n_out = fn()
            for _ in range(warmup - 1):
                fn()
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                fn()
                times.append((time.perf_counter() - started) * 1000)
            out[name] = {"median_ms": statistics.median(times), "min_ms": min(times), "runs": runs, "n_out": n_out, "times": times}
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "methods": out}))


if __name__ == "__main__":
    main()
