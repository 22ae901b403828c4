"""Null densities, the extended unbinned H0 likelihood and p-values against scipy and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from hepml_core.exceptions import DataError
from hepml_core.metrics.likelihood import (
    extended_log_likelihood,
    fit_null_density,
    fit_template_density_2d,
    median_pvalue,
    pvalues,
    toy_log_likelihoods,
)


@pytest.fixture(scope="module")
def normal_sample():
    return np.random.default_rng(0).normal(size=20_000)


def _integral(density) -> float:
    grid = np.linspace(*density.support, 400_001)
    return float(np.trapezoid(density.pdf(grid), grid))


def test_kde_matches_scipy_gaussian_kde_at_the_same_bandwidth(normal_sample):
    x = normal_sample
    ours = fit_null_density(x, bandwidth=0.2)
    ref = stats.gaussian_kde(x, bw_method=0.2 / x.std(ddof=1))
    t = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(ours.pdf(t), ref(t), rtol=3e-3)
    assert _integral(ours) == pytest.approx(1.0, abs=1e-4)


def test_weighted_kde_equals_the_kde_of_repeated_events():
    rng = np.random.default_rng(1)
    x = rng.normal(size=3000)
    w = rng.integers(1, 4, size=3000).astype(float)
    weighted = fit_null_density(x, w, bandwidth=0.25)
    repeated = fit_null_density(np.repeat(x, w.astype(int)), bandwidth=0.25)
    t = np.linspace(-2.5, 2.5, 11)
    ratio = weighted.pdf(t) / repeated.pdf(t)
    # Same shape; only the floor differs (weights carry n_eff < sum(w) events), which moves the
    # normalisation by a fraction of a percent.
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    assert ratio[0] == pytest.approx(1.0, abs=0.01)


def test_density_above_a_cut_is_the_truncated_normal(normal_sample):
    d = fit_null_density(normal_sample, threshold=1.0)
    assert d.fraction_above == pytest.approx(stats.norm.sf(1.0), abs=0.01)
    assert _integral(d) == pytest.approx(1.0, abs=1e-4)
    t = np.array([1.05, 1.5, 2.0, 2.5])
    truth = stats.norm.pdf(t) / stats.norm.sf(1.0)
    np.testing.assert_allclose(d.pdf(t), truth, rtol=0.1)  # reflection keeps the boundary unbiased
    assert np.isneginf(d.logpdf(np.array([0.9]))).all()


def test_histogram_density_is_normalised_and_close_to_the_truth(normal_sample):
    d = fit_null_density(normal_sample, method="histogram", bins=60)
    assert _integral(d) == pytest.approx(1.0, abs=2e-3)
    np.testing.assert_allclose(d.pdf(np.array([0.0, 1.0])), stats.norm.pdf([0.0, 1.0]), rtol=0.08)


def test_far_outliers_get_the_floor_not_minus_infinity(normal_sample):
    d = fit_null_density(normal_sample)
    far = d.logpdf(np.array([50.0, 1e6]))
    assert np.isfinite(far).all()
    assert far[0] == pytest.approx(d.log_floor) and far[1] == pytest.approx(d.log_floor)
    assert d.logpdf(np.array([0.0]))[0] > d.log_floor + 5


def test_extended_log_likelihood_by_hand():
    d = fit_null_density(np.random.default_rng(2).normal(size=5000), threshold=0.0)
    ts = np.array([-1.0, 0.2, 0.7, 1.4])  # the first is below the cut and is ignored
    b = 4.5
    expected = 3 * np.log(b) - b - gammaln(4) + d.logpdf(ts[1:]).sum()
    assert extended_log_likelihood(ts, b, d) == pytest.approx(expected)
    assert expected == pytest.approx(stats.poisson.logpmf(3, b) + d.logpdf(ts[1:]).sum())
    with pytest.raises(DataError, match="expected background"):
        extended_log_likelihood(ts, 0.0, d)


def test_toys_are_poisson_and_their_statistic_matches_the_formula():
    d = fit_null_density(np.random.default_rng(3).normal(size=5000))
    pool = np.array([0.3])  # one value: a toy's statistic depends on its count only
    toys = toy_log_likelihoods(7.0, d, [(pool, 7.0)], 4000, np.random.default_rng(4))
    counts = np.random.default_rng(4).poisson(7.0, 4000)  # the same stream draws the same counts first
    logf = d.logpdf(pool)[0]
    np.testing.assert_allclose(toys, stats.poisson.logpmf(counts, 7.0) + counts * logf)
    assert counts.mean() == pytest.approx(7.0, abs=0.15) and counts.var() == pytest.approx(7.0, rel=0.08)


def test_pvalues_empirical_and_gaussian():
    null = np.arange(1, 100, dtype=float)  # 99 null toys
    assert pvalues(np.array([0.5]), null, method="empirical")[0] == pytest.approx(1 / 100)
    assert pvalues(np.array([50.0]), null, method="empirical")[0] == pytest.approx(51 / 100)
    rng = np.random.default_rng(5)
    gauss = rng.normal(10.0, 2.0, 200_000)
    np.testing.assert_allclose(pvalues(np.array([4.0, 10.0]), gauss), stats.norm.cdf([-3.0, 0.0]), rtol=0.02)
    assert median_pvalue(np.array([4.0, 6.0, 8.0]), gauss) == pytest.approx(stats.norm.cdf(-2.0), rel=0.02)
    with pytest.raises(DataError, match="method"):
        pvalues(np.array([1.0]), null, method="exact")


def test_injected_signal_lowers_the_median_p_value():
    rng = np.random.default_rng(6)
    null_fit, null_toy = rng.exponential(1.0, 20_000), rng.exponential(1.0, 20_000)
    signal = rng.normal(6.0, 0.5, 5000)
    d = fit_null_density(null_fit, threshold=2.0)
    b = 2000 * d.fraction_above
    null_stats = toy_log_likelihoods(b, d, [(null_toy, b)], 1000, rng)
    weak = toy_log_likelihoods(b, d, [(null_toy, b), (signal, 5.0)], 300, rng)
    strong = toy_log_likelihoods(b, d, [(null_toy, b), (signal, 40.0)], 300, rng)
    p_null = pvalues(toy_log_likelihoods(b, d, [(null_toy, b)], 2000, rng), null_stats, method="empirical")
    assert 0.4 < np.median(p_null) < 0.6  # under H0 the p-value is uniform
    assert median_pvalue(strong, null_stats) < median_pvalue(weak, null_stats) < 0.5


def test_template_density_2d_is_normalised_and_follows_the_sample():
    rng = np.random.default_rng(7)
    x, y = rng.normal(0, 1, 50_000), rng.normal(0, 1, 50_000)
    t = fit_template_density_2d(x, y, bins=(40, 40), smooth=0.0, ranges=((-4, 4), (-4, 4)))
    area = np.outer(np.diff(t.x_edges), np.diff(t.y_edges))
    assert (np.exp(t.log_pdf) * area).sum() == pytest.approx(1.0)
    assert np.exp(t.logpdf(np.array([0.0]), np.array([0.0])))[0] == pytest.approx(1 / (2 * np.pi), rel=0.1)
    assert t.logpdf(np.array([10.0]), np.array([0.0]))[0] == pytest.approx(t.log_floor)


def test_bad_inputs_raise_data_errors():
    with pytest.raises(DataError, match="only 0 events"):
        fit_null_density(np.zeros(10), threshold=5.0)
    with pytest.raises(DataError, match="NaN"):
        fit_null_density(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(DataError, match="'kde' or 'histogram'"):
        fit_null_density(np.arange(10.0), method="spline")
