"""ROC curves and AUC against scikit-learn, brute-force pair counting, and the fast sort helper."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from hepml_core.exceptions import DataError
from hepml_core.metrics._sort import _sort_with_order
from hepml_core.metrics.roc import (
    RejectionCurve,
    RocCurve,
    background_rejection,
    one_vs_rest,
    roc_auc,
    roc_curve,
)


def _sample(seed, n=500, ties=False, weighted=True, zeros=False, negative=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = rng.normal(y * 0.8, 1.0)
    if ties:
        score = np.round(score, 1)  # many exact ties, within and across classes
    w = None
    if weighted:
        w = rng.exponential(1.0, n)
        if zeros:
            w[rng.random(n) < 0.2] = 0.0
        if negative:
            w[rng.random(n) < 0.1] *= -0.5
    return y, score, w


def _assert_same_curve(ours, ref):
    for name, a, b in zip(("fpr", "tpr", "thresholds"), ours, ref):
        assert a.shape == b.shape, f"{name}: {a.shape} vs sklearn {b.shape}"
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "case",
    [
        dict(weighted=False),
        dict(weighted=False, ties=True),
        dict(weighted=True),
        dict(weighted=True, ties=True),
        dict(weighted=True, ties=True, zeros=True),
        dict(weighted=True, negative=True),
    ],
    ids=["unweighted", "unweighted-ties", "weighted", "weighted-ties", "zero-weights", "negative"],
)
def test_roc_curve_matches_sklearn(seed, case):
    y, score, w = _sample(seed, **case)
    ours = roc_curve(y, score, sample_weight=w)
    assert isinstance(ours, RocCurve)
    _assert_same_curve(ours, sk_roc_curve(y, score, sample_weight=w, drop_intermediate=True))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_auc_matches_sklearn(seed, ties, weighted):
    y, score, w = _sample(seed, ties=ties, weighted=weighted, zeros=weighted)
    assert roc_auc(y, score, w) == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)


def test_sklearn_docstring_example_and_conventions():
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    roc = roc_curve(y, scores)
    np.testing.assert_array_equal(roc.fpr, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(roc.tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(roc.thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    assert roc.fpr.dtype == roc.tpr.dtype == roc.thresholds.dtype == np.float64
    assert roc_auc(y, scores) == 0.75


def test_labels_may_be_bool_or_float_and_scores_float32():
    y, score, w = _sample(7, ties=True)
    ref = sk_roc_curve(y, score.astype(np.float32), sample_weight=w)
    _assert_same_curve(roc_curve(y.astype(bool), score.astype(np.float32), w), ref)
    _assert_same_curve(roc_curve(y.astype(float), score.astype(np.float32), list(w)), ref)


def test_auc_with_negative_weights_equals_weighted_pair_count():
    # Weighted Mann-Whitney: sum over (signal i, background j) of w_i w_j [s_i > s_j] (+1/2 on ties)
    y, score, w = _sample(11, n=300, ties=True, negative=True)
    sig, bkg = y == 1, y == 0
    diff = score[sig][:, None] - score[bkg][None, :]
    pair = np.outer(w[sig], w[bkg]) * ((diff > 0) + 0.5 * (diff == 0))
    expected = pair.sum() / (w[sig].sum() * w[bkg].sum())
    assert roc_auc(y, score, w) == pytest.approx(expected, abs=1e-12)


def test_perfect_and_inverted_separation():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0
    assert roc_auc(y, np.zeros(5)) == 0.5  # all tied: the diagonal


def test_one_vs_rest_matches_sklearn_per_class():
    rng = np.random.default_rng(3)
    n, k = 400, 3
    codes = rng.integers(0, k, n)
    scores = rng.dirichlet(np.ones(k), n) + 0.3 * np.eye(k)[codes]
    w = rng.exponential(1.0, n)
    curves = one_vs_rest(codes, scores, w)
    assert len(curves) == k
    for c, curve in enumerate(curves):
        _assert_same_curve(curve, sk_roc_curve(codes == c, scores[:, c], sample_weight=w))


def test_one_vs_rest_names_the_class_without_events():
    codes = np.array([0, 1, 0, 1])
    with pytest.raises(DataError, match="class 2"):
        one_vs_rest(codes, np.full((4, 3), 1 / 3))
    with pytest.raises(DataError, match="codes from 0 to 3"):
        one_vs_rest(np.array([0, 3]), np.ones((2, 3)))
    with pytest.raises(DataError, match="shape"):
        one_vs_rest(codes, np.ones(4))


def test_background_rejection_is_one_minus_fpr():
    y, score, w = _sample(5)
    roc = roc_curve(y, score, w)
    rej = background_rejection(roc)
    assert isinstance(rej, RejectionCurve)
    eff, rejection = rej  # unpacks as the (signal_eff, 1 - fpr) pair of the interface
    np.testing.assert_array_equal(eff, roc.tpr)
    np.testing.assert_array_equal(rejection, 1.0 - roc.fpr)


@pytest.mark.parametrize("func", [roc_curve, roc_auc])
def test_bad_inputs_raise_data_error(func):
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(DataError, match="3 entries but y_true has 4"):
        func(y, s[:3])
    with pytest.raises(DataError, match="one class only"):
        func(np.ones(4, dtype=int), s)
    with pytest.raises(DataError, match="binary"):
        func(np.array([0, 1, 2, 1]), s)
    with pytest.raises(DataError, match="NaN or inf"):
        func(y, np.array([0.1, np.nan, 0.3, 0.4]))
    with pytest.raises(DataError, match="NaN or inf"):
        func(y, np.array([0.1, -np.inf, 0.3, 0.4]))
    with pytest.raises(DataError, match="signal .* is -1"):
        func(y, s, np.array([1.0, -2.0, 1.0, 1.0]))
    with pytest.raises(DataError, match="background .* is 0"):
        func(y, s, np.array([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(DataError, match="NaN or inf"):
        func(y, s, np.array([1.0, np.nan, 1.0, 1.0]))
    with pytest.raises(DataError, match="empty"):
        func([], [])


@pytest.mark.parametrize("n", [1, 2, 5, 1000, 100_000])
def test_sort_helper_orders_values_differing_only_in_low_bits(n):
    # Values a few ulps apart share the packed key's high bits, which exercises the fix-up pass.
    rng = np.random.default_rng(n)
    base = rng.choice([-1.5, -0.0, 0.0, 0.5, 3.0], n)
    values = np.nextafter(base, base + rng.choice([-1, 1], n)) if n > 2 else base
    values = np.where(rng.random(n) < 0.5, values, base + rng.integers(0, 64, n) * np.spacing(base))
    order, ordered = _sort_with_order(values)
    assert np.all(ordered[1:] >= ordered[:-1])
    np.testing.assert_array_equal(values[order], ordered)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
