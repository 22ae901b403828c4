"""Time hepml's weighted ROC curve against sklearn.metrics.roc_curve on the same input.

Run: python benchmarks/bench_roc.py [--events N] [--repeat R]
Prints one line: "roc_curve on N weighted events: hepml X s, sklearn.metrics.roc_curve Y s -> Zx faster".
Both are timed in this process, interleaved, best of ``--repeat``; the outputs are compared too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

try:
    from hepml_core.metrics.roc import roc_curve
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hepml_core.metrics.roc import roc_curve

from sklearn.metrics import roc_curve as sk_roc_curve


def _events(n: int, seed: int):
    """Classifier-like scores (sigmoid of a shifted normal), 30% signal, MC weights with 5% negative."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-rng.normal(1.5 * y - 0.5, 1.0)))
    w = rng.normal(1.0, 0.3, n)
    w[rng.random(n) < 0.05] *= -1.0
    return y, score, w


def _timed(func) -> tuple[float, object]:
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    y, score, w = _events(args.events, args.seed)
    roc_curve(y[:1000], score[:1000], w[:1000])  # warm-up (imports, first-touch allocations)
    sk_roc_curve(y[:1000], score[:1000], sample_weight=w[:1000])

    ours_s, ref_s = float("inf"), float("inf")
    for _ in range(args.repeat):  # interleaved so that machine noise hits both alike
        t, ours = _timed(lambda: roc_curve(y, score, w))
        ours_s = min(ours_s, t)
        t, ref = _timed(lambda: sk_roc_curve(y, score, sample_weight=w))
        ref_s = min(ref_s, t)

    same_shape = all(a.shape == b.shape for a, b in zip(ours, ref))
    # [1:] skips the shared +inf threshold (inf - inf is NaN)
    diffs = [float(np.max(np.abs(a[1:] - b[1:]))) for a, b in zip(ours, ref)] if same_shape else [np.nan]
    max_diff = max(diffs)
    print(
        f"roc_curve on {args.events:,} weighted events: hepml {ours_s:.2f} s, "
        f"sklearn.metrics.roc_curve {ref_s:.2f} s -> {ref_s / ours_s:.1f}x faster "
        f"({ours.fpr.shape[0]:,} points, same points: {same_shape}, max |diff| {max_diff:.1e})"
    )


if __name__ == "__main__":
    main()
