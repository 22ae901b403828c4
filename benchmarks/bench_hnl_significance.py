"""Benchmark: the HNL significance table (16 masses x 5 channels, both binnings, 4 scores) on 1.6M events.

``significance_vs_mass`` sorts each channel's background once per score and bins every (mass, channel)
with binary searches. The peer is the straightforward analysis loop: pandas groupby over (mass, channel),
a boolean mask for the channel's background, and numpy.histogram for every trial binning (equal signal:
from 100 bins down; right-to-left: one fine histogram on the signal values, then a Python walk).
The peer is timed on 4 of the 16 masses and scaled by 4 (it would take minutes on all of them); both give
the same Z on those groups.

Usage: ``python benchmarks/bench_hnl_significance.py [--events 1600000]``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from hepml_core.metrics.significance import significance_vs_mass
from hepml_core.simulate.hnl import simulate_hnl

_COLS = dict(mass="mass_hyp", channel="channel", label="label", weight="weight")
_BOUND = 0.15


def _scores(frame: pd.DataFrame, rng) -> dict[str, np.ndarray]:
    """Four score columns: Mt_tot and three model-like scores (timing depends on sizes, not on quality)."""
    mt = frame["mt_tot"].to_numpy()
    m3 = frame["m_3l"].to_numpy()
    lt = frame["lt_met"].to_numpy()
    return {
        "mt_tot": mt,
        "bdt": 1 / (1 + np.exp(-(mt - frame["mass_hyp"].to_numpy()) / 100 + rng.normal(0, 0.5, len(frame)))),
        "pnn": np.tanh((m3 + lt) / 500 + rng.normal(0, 0.2, len(frame))),
        "transfer": rng.uniform(size=len(frame)) * 0.2 + mt / mt.max(),
    }


def _ok(s, s2, b, b2):
    return (s > 0) & (b > 0) & (np.sqrt(s2) < _BOUND * s) & (np.sqrt(b2) < _BOUND * b)


def _naive_equal(xs, ws, xb, wb):
    order = np.argsort(xs, kind="stable")
    xs_sorted, cw = xs[order], np.cumsum(ws[order])
    lo, hi = min(xs.min(), xb.min()), max(xs.max(), xb.max())
    for n in range(100, 0, -1):
        idx = np.minimum(np.searchsorted(cw, cw[-1] * np.arange(1, n) / n * (1 - 1e-12)) + 1, xs.size - 1)
        cuts = np.unique(xs_sorted[idx])
        edges = np.concatenate([[lo], cuts[cuts > xs_sorted[0]], [hi]])
        s, _ = np.histogram(xs, edges, weights=ws)
        s2, _ = np.histogram(xs, edges, weights=ws ** 2)
        b, _ = np.histogram(xb, edges, weights=wb)
        b2, _ = np.histogram(xb, edges, weights=wb ** 2)
        if _ok(s, s2, b, b2).all():
            return math.sqrt(np.sum(s ** 2 / b))
    return float("nan")


def _naive_right_to_left(xs, ws, xb, wb):
    cand = np.unique(xs)
    edges = np.append(cand, max(xs.max(), xb.max()) + 1e-9)
    s, _ = np.histogram(xs, edges, weights=ws)
    s2, _ = np.histogram(xs, edges, weights=ws ** 2)
    b, _ = np.histogram(xb, edges, weights=wb)
    b2, _ = np.histogram(xb, edges, weights=wb ** 2)
    z2, acc, prev_s = 0.0, [0.0, 0.0, 0.0, 0.0], 0.0
    found = False
    for k in range(len(cand) - 1, -1, -1):
        acc = [acc[0] + s[k], acc[1] + s2[k], acc[2] + b[k], acc[3] + b2[k]]
        if acc[0] > prev_s * (1 + 1e-9) and _ok(np.array(acc[0]), acc[1], np.array(acc[2]), acc[3]):
            z2 += acc[0] ** 2 / acc[2]
            prev_s, acc, found = acc[0], [0.0, 0.0, 0.0, 0.0], True
    return math.sqrt(z2) if found else float("nan")


def _naive(frame: pd.DataFrame, score: str, binning: str, masses) -> pd.DataFrame:
    rows = []
    fn = _naive_equal if binning == "equal_signal" else _naive_right_to_left
    sig = frame[(frame["label"] == 1) & frame["mass_hyp"].isin(masses)]
    for (mass, channel), group in sig.groupby(["mass_hyp", "channel"], observed=True):
        bkg = frame[(frame["label"] == 0) & (frame["channel"] == channel)]
        z = fn(group[score].to_numpy(), group["weight"].to_numpy(), bkg[score].to_numpy(), bkg["weight"].to_numpy())
        rows.append({"mass": mass, "channel": channel, "z": z})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_600_000)
    args = parser.parse_args()
    t = time.perf_counter()
    frame = simulate_hnl(args.events, seed=11)
    rng = np.random.default_rng(1)
    for name, values in _scores(frame, rng).items():
        frame[name] = values
    print(f"simulated {len(frame):,} events in {time.perf_counter() - t:.1f} s")
    models = ("mt_tot", "bdt", "pnn", "transfer")
    binnings = ("equal_signal", "right_to_left")

    t = time.perf_counter()
    fast = {}
    for model in models:
        for binning in binnings:
            fast[(model, binning)] = significance_vs_mass(frame, model, binning=binning, **_COLS)
    t_fast = time.perf_counter() - t
    n_groups = sum(len(v) for v in fast.values())

    masses = sorted(frame.loc[frame["label"] == 1, "mass_hyp"].unique())[::4]  # 4 of the 16 masses
    t = time.perf_counter()
    worst = 0.0
    for model in models:
        for binning in binnings:
            ref = _naive(frame, model, binning, masses)
            got = fast[(model, binning)].merge(ref, on=["mass", "channel"], suffixes=("", "_ref"))
            diff = np.abs(got["z"] - got["z_ref"]) / np.maximum(np.abs(got["z_ref"]), 1e-12)
            worst = max(worst, float(np.nanmax(diff)) if len(diff) else 0.0)
    t_naive = (time.perf_counter() - t) * len(frame.loc[frame["label"] == 1, "mass_hyp"].unique()) / len(masses)
    print(f"full table: {n_groups} (model, binning, mass, channel) Z values in {t_fast:.2f} s; "
          f"pandas-groupby + numpy.histogram loop: {t_naive:.1f} s (timed on {len(masses)} masses, scaled); "
          f"{t_naive / t_fast:.1f}x faster; largest relative Z difference {worst:.1e}")


if __name__ == "__main__":
    main()
