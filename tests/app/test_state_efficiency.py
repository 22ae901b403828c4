"""Your-data views: cut efficiency at the threshold and the overtraining check follow the signal choice."""

from __future__ import annotations

import numpy as np
import pytest
from app_frames import make_run_scores

from app.state.cut import ThresholdCut
from app.state.efficiency import CutEfficiencyState, OvertrainingState, SignalChoice
from app.state.samples import scored_events
from hepml_core.metrics.efficiency import cut_efficiency_table
from hepml_core.metrics.threshold import ThresholdScan

CLS = ("signal", "ttbar", "wjets")


@pytest.fixture
def splits():
    frame = make_run_scores(n=6000, classes=CLS)
    return {s: scored_events(frame[frame["split"] == s], CLS) for s in ("train", "test")}


def test_values_at_the_cut_match_the_core_table(splits):
    test = splits["test"]
    choice, cut = SignalChoice(CLS), ThresholdCut(threshold=0.5)
    state = CutEfficiencyState(test, choice, cut, n_points=51)
    for t in (0.2, 0.45, 0.7):
        cut.threshold = t
        scan = ThresholdScan(test.proba[:, 0], test.truth, sample_weight=test.weight, n_classes=3)
        ref = cut_efficiency_table(scan, 0, [t]).iloc[0]
        assert state.at_cut["signal_eff"] == pytest.approx(ref["signal_eff"])
        assert state.at_cut["significance"] == pytest.approx(ref["significance"])
    assert state.best_threshold == pytest.approx(
        state.table["threshold"].iloc[int(np.argmax(state.table["significance"]))])


def test_expected_yields_rescale_s_and_b(splits):
    choice, cut = SignalChoice(CLS), ThresholdCut(threshold=0.4)
    state = CutEfficiencyState(splits["test"], choice, cut)
    eff = state.at_cut["signal_eff"]
    state.n_signal, state.n_background = 100.0, 1e4
    assert state.at_cut["s"] == pytest.approx(100.0 * eff)
    assert "S/√(S+B)" in state.summary


def test_signal_choice_switches_the_scored_class(splits):
    choice, cut = SignalChoice(CLS), ThresholdCut(threshold=0.4)
    state = CutEfficiencyState(splits["test"], choice, cut)
    before = state.at_cut["signal_eff"]
    choice.signal = "wjets"
    assert choice.index == 2 and state.at_cut["signal_eff"] != before
    assert "p_wjets" in state.summary


def test_overtraining_check_reports_both_classes(splits):
    choice = SignalChoice(CLS)
    state = OvertrainingState(splits["train"], splits["test"], choice)
    assert set(state.ks) == {"signal", "background"}
    assert all(0.0 <= r.pvalue <= 1.0 for r in state.ks.values())
    assert state.train_hist.counts.sum() == pytest.approx(splits["train"].weight.sum())
    choice.signal = "ttbar"
    assert "p =" in state.summary and list(state.frame().columns) == ["class", "KS statistic", "p-value"]
