"""ScoredEvents and grouped histograms: the read-only arrays every view derives from."""

from __future__ import annotations

import numpy as np
import pytest
from app_frames import CLASSES, make_run_scores

from app.state.histograms import grouped_histogram, nice_range
from app.state.samples import scored_events
from hepml_core.exceptions import MissingKeyError


def test_scored_events_codes_truth_and_prediction(study_frame):
    data = study_frame[study_frame["sample"] == "data"]
    ev = scored_events(data, CLASSES, extras=["anomaly"])
    # the toy data's hidden "anomaly" label is kept as an extra truth name after the classes
    assert ev.truth_names == (*CLASSES, "anomaly")
    assert np.array_equal(np.asarray(ev.truth_names, dtype=object)[ev.truth], data["label"].to_numpy())
    proba = data[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert np.array_equal(ev.predicted, proba.argmax(axis=1))
    assert (~ev.known()).sum() == (data["label"] == "anomaly").sum()
    with pytest.raises(ValueError):  # shared between sessions: never writable
        ev.weight[0] = 3.0


def test_scored_events_missing_column_names_the_closest():
    frame = make_run_scores().rename(columns={"p_signal": "p_sgnal"})
    with pytest.raises(MissingKeyError, match="p_sgnal"):
        scored_events(frame, ("signal", "background"), where="run x scores")


def test_grouped_histogram_matches_numpy_per_group():
    rng = np.random.default_rng(1)
    values, groups, w = rng.normal(size=5000), rng.integers(0, 3, 5000), rng.uniform(0, 2, 5000)
    edges = np.linspace(-2, 2, 41)
    h = grouped_histogram(values, groups, ("a", "b", "c"), edges, w, clip=False)
    for g in range(3):
        ref, _ = np.histogram(values[groups == g], edges, weights=w[groups == g])
        np.testing.assert_allclose(h.counts[g], ref, atol=1e-9)
        ref2, _ = np.histogram(values[groups == g], edges, weights=w[groups == g] ** 2)
        np.testing.assert_allclose(h.sumw2[g], ref2, atol=1e-9)


def test_grouped_histogram_counts_overflow_in_edge_bins():
    h = grouped_histogram(np.array([-10.0, 0.5, 10.0]), np.zeros(3, np.int64), ("a",), np.linspace(0, 1, 5))
    assert h.counts.sum() == 3 and h.counts[0, 0] == 1 and h.counts[0, -1] == 1


def test_nice_range_ignores_far_outliers():
    values = np.concatenate([np.random.default_rng(0).normal(size=100_000), [1e6]])
    lo, hi = nice_range(values)
    assert -6 < lo < -2 and 2 < hi < 6
