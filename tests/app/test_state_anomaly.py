"""Anomaly view state: flagged fractions by binary search, the most anomalous data events."""

from __future__ import annotations

import numpy as np
import pytest
from app_frames import CLASSES

from app.state.anomaly import AnomalyState
from app.state.cut import ThresholdCut
from app.state.samples import scored_events


@pytest.fixture
def parts(study_frame):
    mc = scored_events(study_frame[study_frame["sample"] == "mc"], CLASSES, extras=["anomaly"])
    data = scored_events(study_frame[study_frame["sample"] == "data"], CLASSES, extras=["anomaly"])
    cut = ThresholdCut(threshold=0.05)
    return mc, data, cut, AnomalyState(cut, mc, data)


def test_flagged_fractions_follow_the_threshold(parts):
    mc, data, cut, state = parts
    for t in (0.0, 0.03, 0.1, 0.3):
        cut.threshold = t
        a = data.extras["anomaly"]
        assert state.flagged_fraction("data") == pytest.approx((a >= t).mean())
        for k, name in enumerate(CLASSES):
            sel = mc.truth == k
            ref = mc.weight[sel & (mc.extras["anomaly"] >= t)].sum() / mc.weight[sel].sum()
            assert state.flagged_fraction(name) == pytest.approx(ref)
        assert f"{t:.4g}" in state.summary and f"({(a >= t).sum():,} data events)" in state.summary


def test_cut_range_covers_the_scores(parts):
    mc, data, cut, state = parts
    low, high = cut.param.threshold.bounds
    assert low == 0.0 and high >= np.quantile(data.extras["anomaly"], 0.999)


def test_top_events_are_the_highest_data_scores(parts):
    mc, data, cut, state = parts
    top = state.top_events
    assert len(top) == state.top_n
    scores = top["anomaly score"].to_numpy()
    assert np.all(np.diff(scores) <= 0)
    np.testing.assert_allclose(scores, np.sort(data.extras["anomaly"])[::-1][: state.top_n])
    # the toy's injected anomalies are what the autoencoder flags first
    assert (top["toy truth"] == "anomaly").mean() > 0.5
    state.top_n = 5
    assert len(state.top_events) == 5
