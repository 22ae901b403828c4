"""Adaptive binnings of the HNL talk: equal-signal and right-to-left, checked by hand and by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hepml_core.exceptions import DataError
from hepml_core.metrics.binning import (
    SortedSample, bin_yields, equal_signal_edges, relative_uncertainty, right_to_left_edges,
)


def _histogram(x, w, edges):
    """Reference per-bin sums with numpy.histogram (last bin closed)."""
    s, _ = np.histogram(x, bins=edges, weights=w)
    s2, _ = np.histogram(x, bins=edges, weights=w * w)
    return s, s2


def _samples(seed=0, n_s=3000, n_b=20000):
    rng = np.random.default_rng(seed)
    xs, xb = rng.normal(1.0, 1.0, n_s), rng.normal(-1.0, 1.0, n_b)
    ws, wb = rng.uniform(0.5, 1.5, n_s) * 0.01, rng.uniform(0.5, 1.5, n_b)
    return xs, ws, xb, wb


def test_sorted_sample_bin_sums_equal_numpy_histogram():
    xs, ws, xb, wb = _samples()
    sample = SortedSample(xb, wb)
    cuts = np.array([-2.0, -0.5, 0.0, 1.3])
    s, s2 = sample.in_bins(cuts)
    edges = np.concatenate([[xb.min()], cuts, [xb.max()]])
    ref, ref2 = _histogram(xb, wb, edges)
    np.testing.assert_allclose(s, ref)
    np.testing.assert_allclose(s2, ref2)
    assert sample.effective_entries == pytest.approx(wb.sum() ** 2 / (wb ** 2).sum())


def test_relative_uncertainty_by_hand():
    # bin of four unit weights: sqrt(4)/4 = 0.5; empty bin: inf
    np.testing.assert_allclose(relative_uncertainty([4.0, 0.0], [4.0, 0.0]), [0.5, np.inf])


@pytest.mark.parametrize("bound", [0.15, 0.3])
def test_equal_signal_bins_meet_the_bound_and_hold_equal_signal(bound):
    xs, ws, xb, wb = _samples()
    y = equal_signal_edges(xs, xb, signal_weights=ws, background_weights=wb, max_rel_unc=bound)
    assert y is not None and y.n_bins >= 2
    # independent check of every bin with numpy.histogram
    s, s2 = _histogram(xs, ws, y.edges)
    b, b2 = _histogram(xb, wb, y.edges)
    np.testing.assert_allclose(y.s, s)
    np.testing.assert_allclose(y.b, b)
    assert (np.sqrt(s2) / s < bound).all() and (np.sqrt(b2) / b < bound).all()
    # equal signal up to one event's weight per bin
    assert np.ptp(y.s) <= 2 * ws.max() + 1e-12
    # it is the largest such number of bins: one more equal-signal bin breaks the bound somewhere
    n = y.n_bins + 1
    cw = np.cumsum(ws[np.argsort(xs)])
    cuts = np.unique(np.sort(xs)[np.minimum(np.searchsorted(cw, ws.sum() * np.arange(1, n) / n) + 1, xs.size - 1)])
    more = bin_yields(cuts, SortedSample(xs, ws), SortedSample(xb, wb))
    assert more.max_relative_uncertainty() >= bound


def test_equal_signal_small_example_by_hand():
    # 8 unweighted signal events, bound 0.75 -> sqrt(k)/k < 0.75 needs k >= 2 per bin; background is plenty.
    xs = np.arange(8.0)
    xb = np.repeat(np.arange(8.0), 10)
    y = equal_signal_edges(xs, xb, max_rel_unc=0.75, max_bins=100)
    assert y.n_bins == 4
    np.testing.assert_allclose(y.s, [2, 2, 2, 2])
    np.testing.assert_allclose(y.edges, [0, 2, 4, 6, 7])
    np.testing.assert_allclose(y.b, [20, 20, 20, 20])


def test_right_to_left_small_example_by_hand():
    # Signal at 5..9 (one each), background 10 events at every integer 0..9, bound 0.75:
    # from the right: [8,9] holds 2 signal (rel 0.71); the next bin needs > 2 signal: [5,8) holds 3.
    # The rest (0..4: no signal) cannot form a bin and is left out.
    xs = np.array([5.0, 6.0, 7.0, 8.0, 9.0])
    xb = np.repeat(np.arange(10.0), 10)
    y = right_to_left_edges(xs, xb, max_rel_unc=0.75)
    np.testing.assert_allclose(y.edges, [5, 8, 9])
    np.testing.assert_allclose(y.s, [3, 2])
    np.testing.assert_allclose(y.b, [30, 20])


def test_right_to_left_bins_meet_the_bound_and_grow_in_signal_to_the_left():
    xs, ws, xb, wb = _samples(seed=3)
    y = right_to_left_edges(xs, xb, signal_weights=ws, background_weights=wb, max_rel_unc=0.15)
    assert y is not None and y.n_bins >= 3
    s, s2 = _histogram(xs, ws, y.edges)
    b, b2 = _histogram(xb, wb, y.edges)
    np.testing.assert_allclose(y.s, s)
    np.testing.assert_allclose(y.b, b)
    assert (np.sqrt(s2) / s < 0.15).all() and (np.sqrt(b2) / b < 0.15).all()
    assert (np.diff(y.s) < 0).all()  # read right to left, each bin holds more signal
    # the top bin is the narrowest valid one: removing its lowest signal value breaks the bound
    top_lo = y.edges[-2]
    next_lo = np.min(xs[xs > top_lo])
    s_in = (xs >= next_lo)
    b_in = (xb >= next_lo)
    rel_s = np.sqrt((ws[s_in] ** 2).sum()) / ws[s_in].sum()
    rel_b = np.sqrt((wb[b_in] ** 2).sum()) / max(wb[b_in].sum(), 1e-300)
    assert max(rel_s, rel_b) >= 0.15


def test_no_valid_bin_returns_none_and_bad_input_is_refused():
    # three background events can never have a relative uncertainty below 0.15
    assert equal_signal_edges(np.arange(100.0), np.array([1.0, 2.0, 3.0])) is None
    assert right_to_left_edges(np.arange(100.0), np.array([1.0, 2.0, 3.0])) is None
    with pytest.raises(DataError, match="max_rel_unc"):
        equal_signal_edges(np.arange(10.0), np.arange(10.0), max_rel_unc=0)
    with pytest.raises(DataError, match="finite"):
        SortedSample(np.array([1.0, np.nan]))
