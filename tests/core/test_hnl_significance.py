"""significance_vs_mass against hand computations and a plain per-mass numpy-histogram loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hepml_core.exceptions import DataError, MissingKeyError
from hepml_core.metrics.significance import (
    average_over_channels, combined_significance, significance_vs_mass,
)

_COLS = dict(mass="m", channel="ch", label="y", weight="w")


def _hand_frame():
    """Mass 100 / channel a: the right-to-left example of test_binning; mass 200 signal elsewhere."""
    sig = pd.DataFrame({"x": [5.0, 6.0, 7.0, 8.0, 9.0], "m": 100.0, "ch": "a", "y": 1, "w": 1.0})
    # signal of another mass in the same channel: must not enter the mass-100 bins
    other = pd.DataFrame({"x": [9.5] * 50, "m": 200.0, "ch": "a", "y": 1, "w": 1.0})
    bkg = pd.DataFrame({"x": np.repeat(np.arange(10.0), 10), "m": np.tile([100.0, 200.0], 50), "ch": "a",
                        "y": 0, "w": 1.0})
    # background of another channel: must not enter channel a
    bkg_b = pd.DataFrame({"x": [9.0] * 100, "m": 100.0, "ch": "b", "y": 0, "w": 1.0})
    return pd.concat([sig, other, bkg, bkg_b], ignore_index=True)


def test_right_to_left_z_equals_the_hand_computation():
    df = _hand_frame()
    t = significance_vs_mass(df, "x", binning="right_to_left", max_rel_unc=0.75, **_COLS)
    row = t[(t["mass"] == 100.0) & (t["channel"] == "a")].iloc[0]
    # bins [8, 9]: s=2, b=20 and [5, 8): s=3, b=30 -> Z^2 = 4/20 + 9/30
    assert row["n_bins"] == 2
    assert row["z"] == pytest.approx(math.sqrt(4 / 20 + 9 / 30))
    asimov = significance_vs_mass(df, "x", binning="right_to_left", max_rel_unc=0.75, method="asimov", **_COLS)
    za = asimov[(asimov["mass"] == 100.0)].iloc[0]["z"]
    z2 = sum(2 * ((s + b) * math.log(1 + s / b) - s) for s, b in ((2, 20), (3, 30)))
    assert za == pytest.approx(math.sqrt(z2))
    # only channels with signal appear; channel b has none
    assert set(t["channel"]) == {"a"}


def test_background_all_versus_matching():
    df = _hand_frame()
    all_b = significance_vs_mass(df, "x", binning="right_to_left", max_rel_unc=0.75, **_COLS)
    match = significance_vs_mass(df, "x", binning="right_to_left", max_rel_unc=0.75, background="matching",
                                 **_COLS)
    # matching keeps half of the background (every other event has m=100): [8,9] s=2 b=10; [5,8) s=3 b=15
    z_match = match[match["mass"] == 100.0].iloc[0]["z"]
    assert z_match == pytest.approx(math.sqrt(4 / 10 + 9 / 15))
    assert z_match > all_b[all_b["mass"] == 100.0].iloc[0]["z"]


def test_equal_signal_z_by_hand():
    # 8 signal events at 0..7, 10 background events at each integer: bound 0.75 -> 4 bins of 2 signal, 20 bkg
    df = pd.concat([pd.DataFrame({"x": np.arange(8.0), "m": 85.0, "ch": "c", "y": 1, "w": 0.5}),
                    pd.DataFrame({"x": np.repeat(np.arange(8.0), 10), "m": 85.0, "ch": "c", "y": 0, "w": 2.0})])
    t = significance_vs_mass(df, "x", binning="equal_signal", max_rel_unc=0.75, **_COLS)
    assert t["n_bins"].tolist() == [4]
    assert t["z"].iloc[0] == pytest.approx(math.sqrt(4 * (1.0 / math.sqrt(40.0)) ** 2))


def _naive_equal_signal(xs, ws, xb, wb, bound, max_bins=100):
    """Per-group reference: try n bins from max_bins down with numpy.histogram, first that meets the bound."""
    order = np.argsort(xs, kind="stable")
    xs_sorted, cw = xs[order], np.cumsum(ws[order])
    lo, hi = min(xs.min(), xb.min()), max(xs.max(), xb.max())
    for n in range(max_bins, 0, -1):
        idx = np.minimum(np.searchsorted(cw, cw[-1] * np.arange(1, n) / n * (1 - 1e-12)) + 1, xs.size - 1)
        cuts = np.unique(xs_sorted[idx])
        cuts = cuts[cuts > xs_sorted[0]]
        edges = np.concatenate([[lo], cuts, [hi]])
        s, _ = np.histogram(xs, edges, weights=ws)
        s2, _ = np.histogram(xs, edges, weights=ws ** 2)
        b, _ = np.histogram(xb, edges, weights=wb)
        b2, _ = np.histogram(xb, edges, weights=wb ** 2)
        if (s > 0).all() and (b > 0).all() and (np.sqrt(s2) < bound * s).all() and (np.sqrt(b2) < bound * b).all():
            return math.sqrt(np.sum(s ** 2 / b)), len(s)
    return float("nan"), 0


def test_agrees_with_a_plain_groupby_loop_on_random_events():
    rng = np.random.default_rng(7)
    n = 30_000
    y = (rng.uniform(size=n) < 0.2).astype(int)
    m = rng.choice([100.0, 300.0, 500.0], n)
    ch = rng.choice(["a", "b"], n)
    x = np.where(y == 1, rng.normal(m / 200, 1.0), rng.normal(0.0, 1.0))
    w = np.where(y == 1, 0.01, 1.0) * rng.uniform(0.5, 1.5, n)
    df = pd.DataFrame({"x": x, "m": m, "ch": ch, "y": y, "w": w})
    t = significance_vs_mass(df, "x", binning="equal_signal", **_COLS).set_index(["mass", "channel"])
    for (mass, channel), group in df[df.y == 1].groupby(["m", "ch"]):
        bkg = df[(df.y == 0) & (df.ch == channel)]
        z, nb = _naive_equal_signal(group.x.to_numpy(), group.w.to_numpy(), bkg.x.to_numpy(), bkg.w.to_numpy(), 0.15)
        assert t.loc[(mass, channel), "z"] == pytest.approx(z, rel=1e-9)
        assert t.loc[(mass, channel), "n_bins"] == nb
    mean = average_over_channels(t.reset_index())
    assert mean["z"].tolist() == pytest.approx(t.groupby(level="mass")["z"].mean().tolist())


def test_infeasible_groups_give_nan_and_errors_name_the_problem():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "m": 100.0, "ch": "a", "y": [1, 0, 0], "w": 1.0})
    t = significance_vs_mass(df, "x", **_COLS)
    assert math.isnan(t["z"].iloc[0]) and t["n_bins"].iloc[0] == 0
    with pytest.raises(MissingKeyError, match="closest"):
        significance_vs_mass(df, "xx", **_COLS)
    with pytest.raises(DataError, match="binning"):
        significance_vs_mass(df, "x", binning="left_to_right", **_COLS)
    with pytest.raises(DataError, match="method"):
        significance_vs_mass(df, "x", method="cls", **_COLS)
    with pytest.raises(DataError, match="1 for signal"):
        significance_vs_mass(df.assign(y=[2, 0, 0]), "x", **_COLS)
    assert combined_significance([3.0, 4.0], [1.0, 1.0]) == pytest.approx(5.0)
