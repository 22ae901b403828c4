"""Weighted KS test against scipy.stats.ks_2samp, and the per-class overtraining check."""

import numpy as np
import pytest
from scipy.stats import distributions, ks_2samp

from hepml_core.exceptions import DataError
from hepml_core.metrics.overtraining import KSResult, ks_2samp_weighted, overtraining_check


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("sizes", [(50, 80), (1000, 700), (20000, 15000)])
@pytest.mark.parametrize("ties", [False, True])
def test_unweighted_matches_scipy_asymp(seed, sizes, ties):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, sizes[0])
    b = rng.normal(0.1, 1.1, sizes[1])
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    ref = ks_2samp(a, b, method="asymp")
    ours = ks_2samp_weighted(a, b)
    assert isinstance(ours, KSResult)
    assert ours.statistic == ref.statistic  # bit for bit
    assert ours.pvalue == pytest.approx(ref.pvalue, abs=1e-12)


def test_integer_weights_equal_replicated_events():
    # A weight of 3 is three identical events for the ECDF (the statistic), and the effective
    # sample size (sum w)^2 / sum w^2 sets the p-value.
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 200), rng.normal(0.2, 1, 300)
    wa, wb = rng.integers(1, 4, 200).astype(float), rng.integers(1, 4, 300).astype(float)
    ours = ks_2samp_weighted(a, b, wa, wb)
    ref = ks_2samp(np.repeat(a, wa.astype(int)), np.repeat(b, wb.astype(int)), method="asymp")
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    n_a, n_b = wa.sum() ** 2 / (wa**2).sum(), wb.sum() ** 2 / (wb**2).sum()
    expected_p = distributions.kstwo.sf(ours.statistic, np.round(n_a * n_b / (n_a + n_b)))
    assert ours.pvalue == pytest.approx(expected_p, abs=1e-12)


def test_constant_weights_change_nothing():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 400), rng.normal(0.1, 1, 500)
    plain = ks_2samp_weighted(a, b)
    scaled = ks_2samp_weighted(a, b, np.full(400, 2.5), np.full(500, 0.3))
    assert scaled.statistic == pytest.approx(plain.statistic, abs=1e-12)
    assert scaled.pvalue == pytest.approx(plain.pvalue, abs=1e-9)


def test_negative_weights_are_allowed_when_totals_are_positive():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 300), rng.normal(0, 1, 300)
    wa = np.where(rng.random(300) < 0.1, -1.0, 1.0)
    result = ks_2samp_weighted(a, b, wa, None)
    assert 0.0 <= result.pvalue <= 1.0 and result.statistic > 0


def test_ks_errors():
    with pytest.raises(DataError, match="total weight of sample a"):
        ks_2samp_weighted([1.0, 2.0], [1.0, 3.0], wa=[1.0, -1.0])
    with pytest.raises(DataError, match="wb passed to ks_2samp_weighted has 1 entries but b has 2"):
        ks_2samp_weighted([1.0, 2.0], [1.0, 3.0], wb=[1.0])
    with pytest.raises(DataError, match="empty"):
        ks_2samp_weighted([], [1.0])
    with pytest.raises(DataError, match="NaN or inf"):
        ks_2samp_weighted([1.0, np.nan], [1.0, 2.0])


def _split(seed, shift_train=0.0):
    rng = np.random.default_rng(seed)
    y_tr, y_te = rng.integers(0, 3, 3000), rng.integers(0, 3, 2000)
    s_tr = rng.normal(y_tr + shift_train * (y_tr == 2), 1.0)
    s_te = rng.normal(y_te.astype(float), 1.0)
    return s_tr, y_tr, s_te, y_te, rng.exponential(1, 3000), rng.exponential(1, 2000)


def test_overtraining_check_is_per_class_ks():
    s_tr, y_tr, s_te, y_te, w_tr, w_te = _split(7)
    results = overtraining_check(s_tr, y_tr, s_te, y_te, w_tr, w_te)
    assert list(results) == [0, 1, 2]
    for c, res in results.items():
        tr, te = y_tr == c, y_te == c
        assert res == ks_2samp_weighted(s_tr[tr], s_te[te], w_tr[tr], w_te[te])
    unweighted = overtraining_check(s_tr, y_tr, s_te, y_te)
    tr, te = y_tr == 1, y_te == 1
    assert unweighted[1].statistic == ks_2samp(s_tr[tr], s_te[te], method="asymp").statistic


def test_overtraining_check_flags_the_shifted_class():
    s_tr, y_tr, s_te, y_te, _, _ = _split(8, shift_train=0.4)
    results = overtraining_check(s_tr, y_tr, s_te, y_te)
    assert results[2].pvalue < 1e-6
    assert results[0].pvalue > 1e-3 and results[1].pvalue > 1e-3


def test_overtraining_check_uses_column_c_of_two_dimensional_scores():
    rng = np.random.default_rng(9)
    y_tr, y_te = rng.integers(0, 2, 500), rng.integers(0, 2, 400)
    p_tr, p_te = rng.dirichlet([1, 1], 500), rng.dirichlet([1, 1], 400)
    results = overtraining_check(p_tr, y_tr, p_te, y_te)
    for c in (0, 1):
        expected = ks_2samp_weighted(p_tr[y_tr == c, c], p_te[y_te == c, c])
        assert results[c] == expected


def test_overtraining_check_errors():
    s_tr, y_tr, s_te, y_te, _, _ = _split(10)
    with pytest.raises(DataError, match="class 2 has no test events"):
        overtraining_check(s_tr, y_tr, s_te[y_te < 2], y_te[y_te < 2])
    with pytest.raises(DataError, match="train_score .* has shape"):
        overtraining_check(s_tr[:-1], y_tr, s_te, y_te)
    with pytest.raises(DataError, match="integer class codes"):
        overtraining_check(s_tr, y_tr.astype(float), s_te, y_te)
