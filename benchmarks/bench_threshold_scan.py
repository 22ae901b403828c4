"""Time ThresholdScan.yields_above on 10M vs 1M events, and against naive masked sums.

Run: python benchmarks/bench_threshold_scan.py [--events N] [--calls C]
Prints the construction time, the mean time per ``yields_above`` call (after construction, over many
random thresholds) on N and N/10 events with their ratio (a binary search: should stay within 2x),
and the ratio against the naive ``w_c[score_c >= t].sum()`` per class on N events.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

try:
    from hepml_core.metrics.threshold import ThresholdScan
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hepml_core.metrics.threshold import ThresholdScan

N_CLASSES = 3


def _events(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    score = 1.0 / (1.0 + np.exp(-rng.normal(y - 1.0, 1.0)))
    w = rng.normal(1.0, 0.3, n)
    return score, y, w


def _per_call(func, thresholds) -> float:
    start = time.perf_counter()
    for t in thresholds:
        func(t)
    return (time.perf_counter() - start) / len(thresholds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--naive-calls", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    n_big, n_small = args.events, max(args.events // 10, 1)

    score, y, w = _events(n_big, args.seed)
    start = time.perf_counter()
    big = ThresholdScan(score, y, w, n_classes=N_CLASSES)
    build_s = time.perf_counter() - start
    small_score, small_y, small_w = _events(n_small, args.seed + 1)
    small = ThresholdScan(small_score, small_y, small_w, n_classes=N_CLASSES)

    rng = np.random.default_rng(args.seed)
    thresholds = rng.uniform(0.0, 1.0, args.calls).tolist()
    _per_call(big.yields_above, thresholds[:1000])  # warm-up
    _per_call(small.yields_above, thresholds[:1000])
    big_s = min(_per_call(big.yields_above, thresholds) for _ in range(3))
    small_s = min(_per_call(small.yields_above, thresholds) for _ in range(3))

    by_class = [(score[y == c], w[y == c]) for c in range(N_CLASSES)]

    def naive(t):
        return np.array([wc[sc >= t].sum() for sc, wc in by_class])

    naive_ts = thresholds[: args.naive_calls]
    naive_s = _per_call(naive, naive_ts)
    agree = all(np.allclose(naive(t), big.yields_above(t), rtol=1e-9) for t in naive_ts[:3])

    print(f"ThresholdScan construction on {n_big:,} events ({N_CLASSES} classes): {build_s:.2f} s")
    print(
        f"ThresholdScan.yields_above: {big_s * 1e6:.2f} us/call on {n_big:,} events, "
        f"{small_s * 1e6:.2f} us/call on {n_small:,} events -> {big_s / small_s:.2f}x "
        f"(mean over {args.calls:,} random thresholds, best of 3)"
    )
    print(
        f"yields_above vs naive w[score >= t].sum() per class on {n_big:,} events: "
        f"hepml {big_s * 1e6:.2f} us, naive {naive_s * 1e3:.1f} ms -> {naive_s / big_s:,.0f}x faster "
        f"(results agree: {agree})"
    )


if __name__ == "__main__":
    main()
