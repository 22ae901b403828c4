"""ThresholdScan against brute-force masks: ties, thresholds outside the range, weights, labels."""

import numpy as np
import pytest

from hepml_core.exceptions import DataError
from hepml_core.metrics.threshold import ThresholdScan


def _brute(score, y, w, classes, t):
    w = np.ones(score.shape[0]) if w is None else w
    return np.array([w[(score >= t) & (y == c)].sum() for c in classes])


def _events(seed, n=2000, k=3, ties=True, negative=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    score = rng.normal(y * 0.5, 1.0)
    if ties:
        score = np.round(score, 1)
    w = rng.exponential(1.0, n)
    if negative:
        w[rng.random(n) < 0.15] *= -1
    return score, y, w


def _thresholds(score, rng):
    # Exact score values (ties at the cut), points between them, and values outside the range.
    inside = rng.choice(score, 30)
    between = rng.uniform(score.min(), score.max(), 30)
    outside = [-np.inf, score.min() - 1, score.min(), score.max(), score.max() + 1, np.inf]
    return np.concatenate([inside, between, outside])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("negative", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_yields_match_brute_force_masks(weighted, negative, ties):
    score, y, w = _events(1, ties=ties, negative=negative)
    w = w if weighted else None
    scan = ThresholdScan(score, y, w)
    np.testing.assert_array_equal(scan.classes_, [0, 1, 2])
    ts = _thresholds(score, np.random.default_rng(2))
    many = scan.yields_above_many(ts)
    assert many.shape == (ts.shape[0], 3)
    for i, t in enumerate(ts):
        expected = _brute(score, y, w, [0, 1, 2], t)
        np.testing.assert_allclose(scan.yields_above(t), expected, rtol=1e-10, atol=1e-9)
        np.testing.assert_array_equal(many[i], scan.yields_above(t))


def test_ends_of_the_range_are_exact():
    score, y, w = _events(3)
    scan = ThresholdScan(score, y, w)
    np.testing.assert_array_equal(scan.yields_above(-np.inf), scan.totals_)
    np.testing.assert_array_equal(scan.yields_above(score.min()), scan.totals_)
    np.testing.assert_array_equal(scan.yields_above(np.nextafter(score.max(), np.inf)), 0.0)
    np.testing.assert_array_equal(scan.efficiencies(-np.inf), 1.0)
    np.testing.assert_allclose(scan.totals_, [w[y == c].sum() for c in range(3)], rtol=1e-12)


def test_efficiencies_are_yields_over_totals():
    score, y, w = _events(4)
    scan = ThresholdScan(score, y, w)
    for t in (-0.5, 0.0, 0.7):
        np.testing.assert_allclose(scan.efficiencies(t), scan.yields_above(t) / scan.totals_)
    ts = np.array([-0.5, 0.0, 0.7])
    np.testing.assert_allclose(scan.efficiencies_many(ts), scan.yields_above_many(ts) / scan.totals_)


def test_n_classes_gives_codes_and_zero_yields_for_absent_classes():
    score, y, w = _events(5, k=2)
    scan = ThresholdScan(score, y, w, n_classes=4)
    np.testing.assert_array_equal(scan.classes_, [0, 1, 2, 3])
    assert scan.cumulative_.shape == (score.shape[0] + 1, 4)
    np.testing.assert_allclose(scan.yields_above(0.2), _brute(score, y, w, range(4), 0.2))
    with pytest.raises(DataError, match=r"class 2 \(total 0\), 3 \(total 0\)"):
        scan.efficiencies(0.2)  # classes 2 and 3 have no events: no denominator
    with pytest.raises(DataError, match="codes from 0 to 1"):
        ThresholdScan(score, y, w, n_classes=1)


def test_labels_are_sorted_class_values():
    rng = np.random.default_rng(6)
    names = np.array(["tau", "electron", "muon"])
    y = names[rng.integers(0, 3, 300)]
    score = rng.random(300)
    scan = ThresholdScan(score, y)
    np.testing.assert_array_equal(scan.classes_, ["electron", "muon", "tau"])
    np.testing.assert_array_equal(scan.yields_above(0.5), _brute(score, y, None, scan.classes_, 0.5))
    sparse = np.where(rng.random(300) < 0.5, 7, 42)  # integer labels that are not 0..k-1
    scan = ThresholdScan(score, sparse)
    np.testing.assert_array_equal(scan.classes_, [7, 42])
    np.testing.assert_array_equal(scan.yields_above(0.3), _brute(score, sparse, None, [7, 42], 0.3))


def test_sorted_scores_and_cumulative_table():
    score, y, w = _events(7, n=50)
    scan = ThresholdScan(score, y, w)
    np.testing.assert_array_equal(scan.sorted_scores_, np.sort(score))
    assert scan.cumulative_.shape == (51, 3) and scan.cumulative_.dtype == np.float64
    np.testing.assert_array_equal(scan.cumulative_[0], 0.0)
    np.testing.assert_array_equal(scan.cumulative_[-1], scan.totals_)


def test_results_are_copies_and_state_is_read_only():
    score, y, w = _events(8, n=100)
    scan = ThresholdScan(score, y, w)
    before = scan.yields_above(0.1)
    out = scan.yields_above(0.1)
    out *= 10.0
    np.testing.assert_array_equal(scan.yields_above(0.1), before)
    for attr in (scan.sorted_scores_, scan.cumulative_, scan.totals_):
        with pytest.raises(ValueError):
            attr[0] = 1.0


def test_bad_inputs_raise_data_error():
    score, y, w = _events(9, n=20)
    with pytest.raises(DataError, match="19 entries but y_true has 20"):
        ThresholdScan(score[:19], y, w)
    with pytest.raises(DataError, match="NaN or inf"):
        ThresholdScan(np.where(np.arange(20) == 3, np.nan, score), y, w)
    with pytest.raises(DataError, match="NaN or inf"):
        ThresholdScan(score, y, np.where(np.arange(20) == 3, np.inf, w))
    scan = ThresholdScan(score, y, w)
    with pytest.raises(DataError, match="NaN"):
        scan.yields_above(np.nan)
    with pytest.raises(DataError, match="yields_above_many"):
        scan.yields_above([0.1, 0.2])
    with pytest.raises(DataError, match="NaN"):
        scan.yields_above_many([0.1, np.nan])
