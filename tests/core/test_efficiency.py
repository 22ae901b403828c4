"""Efficiency/purity/F1 against scikit-learn and the cut-efficiency table against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_fscore_support

from hepml_core.exceptions import DataError
from hepml_core.metrics.efficiency import EffPurity, cut_efficiency_table, efficiency_purity_f1
from hepml_core.metrics.threshold import ThresholdScan


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.4, 1.5])
def test_matches_sklearn_precision_recall_f1(seed, weighted, threshold):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    score = np.round(rng.normal(y * 0.7, 1.0), 1)
    w = rng.exponential(1.0, 400) if weighted else None
    p, r, f, _ = precision_recall_fscore_support(
        y, (score >= threshold).astype(int), sample_weight=w, average="binary", zero_division=0
    )
    result = efficiency_purity_f1(y, score, threshold, w)
    assert isinstance(result, EffPurity)
    assert result.efficiency == pytest.approx(r, abs=1e-12)
    assert result.purity == pytest.approx(p, abs=1e-12)
    assert result.f1 == pytest.approx(f, abs=1e-12)


def test_hand_computed_small_example():
    y = np.array([1, 1, 1, 0, 0])
    score = np.array([0.9, 0.6, 0.2, 0.7, 0.1])
    w = np.array([1.0, 2.0, 1.0, 3.0, 1.0])
    result = efficiency_purity_f1(y, score, 0.6, w)  # selects events 0, 1 (signal) and 3 (bkg)
    assert result.efficiency == pytest.approx(3 / 4)
    assert result.purity == pytest.approx(3 / 6)
    assert result.f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)


def test_nothing_selected_gives_zero_purity_and_f1():
    result = efficiency_purity_f1([1, 0, 1], [0.1, 0.2, 0.3], 5.0)
    assert result == EffPurity(0.0, 0.0, 0.0)


def test_efficiency_purity_errors():
    with pytest.raises(DataError, match="total signal weight"):
        efficiency_purity_f1([1, 0, 1], [0.1, 0.2, 0.3], 0.0, [1.0, 1.0, -1.0])
    with pytest.raises(DataError, match="2 entries but y_true_binary"):
        efficiency_purity_f1([1, 0, 1], [0.1, 0.2], 0.0)
    with pytest.raises(DataError, match="NaN"):
        efficiency_purity_f1([1, 0, 1], [0.1, 0.2, 0.3], float("nan"))


def _table_scan():
    # Signal (class 1): scores 0.9 (w 2), 0.7 (w 1), 0.3 (w 1) -> total 4.
    # Background (classes 0 and 2): 0.8 (w 1), 0.4 (w 3), 0.2 (w 4), 0.7 (w 2) -> total 10.
    score = np.array([0.9, 0.7, 0.3, 0.8, 0.4, 0.2, 0.7])
    y = np.array([1, 1, 1, 0, 0, 2, 2])
    w = np.array([2.0, 1.0, 1.0, 1.0, 3.0, 4.0, 2.0])
    return ThresholdScan(score, y, w, n_classes=3)


def test_cut_efficiency_table_hand_computed():
    table = cut_efficiency_table(_table_scan(), 1, [0.7, 0.85, 1.0])
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == [
        "threshold", "signal_eff", "background_eff", "purity", "s", "b", "significance",
    ]
    # t = 0.7: signal 0.9, 0.7 -> s = 3; background 0.8, 0.7 -> b = 3 (the tie at 0.7 is kept).
    # t = 0.85: s = 2, b = 0.  t = 1.0: nothing.
    np.testing.assert_allclose(table["s"], [3.0, 2.0, 0.0])
    np.testing.assert_allclose(table["b"], [3.0, 0.0, 0.0])
    np.testing.assert_allclose(table["signal_eff"], [0.75, 0.5, 0.0])
    np.testing.assert_allclose(table["background_eff"], [0.3, 0.0, 0.0])
    np.testing.assert_allclose(table["purity"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(table["significance"], [3 / math.sqrt(6), 2 / math.sqrt(2), 0.0])


def test_cut_efficiency_table_scales_to_expected_numbers():
    table = cut_efficiency_table(_table_scan(), 1, [0.7], n_signal=100, n_background=1000)
    # s = 0.75 * 100 = 75, b = 0.3 * 1000 = 300 (TMVA's view for given expected numbers)
    row = table.iloc[0]
    assert row["s"] == pytest.approx(75.0)
    assert row["b"] == pytest.approx(300.0)
    assert row["purity"] == pytest.approx(75 / 375)
    assert row["significance"] == pytest.approx(75 / math.sqrt(375))
    assert row["signal_eff"] == pytest.approx(0.75)  # efficiencies do not depend on the scaling


def test_cut_efficiency_table_errors():
    scan = _table_scan()
    with pytest.raises(DataError, match="signal_class 5 is not one"):
        cut_efficiency_table(scan, 5, [0.5])
    with pytest.raises(DataError, match="n_signal"):
        cut_efficiency_table(scan, 1, [0.5], n_signal=-3)
    empty_signal = ThresholdScan([0.1, 0.2], [0, 0], n_classes=2)
    with pytest.raises(DataError, match="total signal weight"):
        cut_efficiency_table(empty_signal, 1, [0.5])
