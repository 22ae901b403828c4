"""Null densities, extended unbinned likelihoods of H0 and their p-values from pseudo-experiments.

The anomaly search of seed talk 004 reduces each event to one number TS and tests
H0 (background only) with L(TS | H0) = Pois(N | B) * prod_i f0(TS_i): f0 is the null density of TS
learnt from background-only pseudo-data and B the expected background count. Events enter above a TS
cut; the statistic's null distribution comes from background-only pseudo-experiments, and the p-value
of an observed (or signal-injected) pseudo-experiment is its lower-tail probability.

Null density f0 (``fit_null_density``), two documented choices:
    * ``"kde"`` (default): a weighted Gaussian kernel density (Silverman bandwidth), computed by binning
      the sample on a 2048-point grid and convolving with the kernel; reflected at the cut so that no
      mass leaks below it;
    * ``"histogram"``: a fine weighted histogram (``bins`` equal bins), empty bins floored at half an
      average event.
    Both are stored as log-density on a grid, interpolated linearly in log f, and continued beyond the
    largest null value by an exponential tail whose scale is the mean excess of the top 5 % of the
    sample. The density never drops below a floor of half an event per resolution element (the KDE
    bandwidth or the histogram bin): a finite null sample cannot vouch for anything rarer, and without
    the floor a single event far beyond the sample would decide any test on its own. The support ends
    5 tail scales beyond the grid; TS values further out are read at that edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import gammaln, log_ndtr

from hepml_core.exceptions import DataError
from hepml_core.metrics._validate import _as_scores, _as_weights

__all__ = ["NullDensity", "fit_null_density", "extended_log_likelihood", "toy_log_likelihoods",
           "toy_log_likelihoods_from_logf", "pvalues", "median_pvalue", "TemplateDensity2D", "fit_template_density_2d"]

_GRID = 2048


@dataclass(frozen=True)
class NullDensity:
    """A normalised 1-D density on ``[lower, upper]`` stored as log-density on a grid.

    Attributes:
        grid: increasing evaluation points.
        log_pdf: log density at ``grid``.
        lower: the cut; the density is zero below it (``-inf`` when there is no cut).
        fraction_above: weighted fraction of the fitted sample with TS >= lower.
        tail_scale: scale of the exponential continuation beyond ``grid[-1]`` (and below ``grid[0]``
            when there is no cut).
        log_floor: the smallest log density (half an event per resolution element).
        method: ``"kde"`` or ``"histogram"``.
    """

    grid: np.ndarray
    log_pdf: np.ndarray
    lower: float
    fraction_above: float
    tail_scale: float
    log_floor: float
    method: str

    @property
    def support(self) -> tuple[float, float]:
        """(low, high) edges of the support; values outside (above the cut) are read at the edge."""
        lo = self.lower if np.isfinite(self.lower) else self.grid[0] - 5 * self.tail_scale
        return float(lo), float(self.grid[-1] + 5 * self.tail_scale)

    def logpdf(self, ts) -> np.ndarray:
        """log f0 at ``ts`` (``-inf`` below the cut)."""
        x = np.asarray(ts, dtype=np.float64)
        lo, hi = self.support
        out = _raw_logpdf(np.clip(x, lo, hi), self.grid, self.log_pdf, self.tail_scale, self.log_floor)
        if np.isfinite(self.lower):
            out = np.where(x < self.lower, -np.inf, out)
        return out

    def pdf(self, ts) -> np.ndarray:
        """f0 at ``ts``."""
        return np.exp(self.logpdf(ts))


def _raw_logpdf(x: np.ndarray, grid: np.ndarray, log_pdf: np.ndarray, tail: float, log_floor: float) -> np.ndarray:
    out = np.interp(x, grid, log_pdf)
    out = np.where(x > grid[-1], log_pdf[-1] - (x - grid[-1]) / tail, out)
    out = np.where(x < grid[0], log_pdf[0] - (grid[0] - x) / tail, out)
    return np.maximum(out, log_floor)


def _weighted_std(x: np.ndarray, w: np.ndarray) -> float:
    mean = np.average(x, weights=w)
    return float(np.sqrt(np.average((x - mean) ** 2, weights=w)))


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(cw, q * cw[-1]), len(x) - 1)])


def _tail_scale(x: np.ndarray, w: np.ndarray, right: bool = True) -> float:
    """Exponential scale from the mean excess of the top (or bottom) 5 % of the sample."""
    q = _weighted_quantile(x, w, 0.95 if right else 0.05)
    sel = x > q if right else x < q
    if not sel.any():
        return max(_weighted_std(x, w), 1e-6)
    excess = np.average(np.abs(x[sel] - q), weights=w[sel])
    return float(max(excess, 1e-3 * max(_weighted_std(x, w), 1e-6), 1e-9))


def fit_null_density(ts, sample_weight=None, *, method: str = "kde", threshold: float | None = None,
                     bins: int = 200, bandwidth: float | None = None) -> NullDensity:
    """Fit the null density f0 of a test statistic above an optional cut.

    Args:
        ts: TS values of background-only (null) events.
        sample_weight: event weights (default 1).
        method: ``"kde"`` or ``"histogram"`` (see the module docstring).
        threshold: fit only TS >= threshold (the density is normalised there); None: no cut.
        bins: histogram bins (``"histogram"``).
        bandwidth: KDE bandwidth in TS units; None: Silverman's rule with the effective sample size.

    Returns:
        A NullDensity.

    Raises:
        DataError: bad inputs, an unknown method, or fewer than 2 events above the cut.
    """
    where = "fit_null_density"
    x = _as_scores(ts, None, where, name="ts")
    w = _as_weights(sample_weight, len(x), where, ref="ts")
    w = np.ones_like(x) if w is None else w
    if not np.all(np.isfinite(x)):
        raise DataError(f"ts passed to {where} contains NaN or inf; score the events again or drop them")
    if method not in ("kde", "histogram"):
        raise DataError(f"method={method!r} is not known to {where}; use 'kde' or 'histogram'")
    lower = -np.inf if threshold is None else float(threshold)
    keep = x >= lower
    if keep.sum() < 2 or w[keep].sum() <= 0:
        raise DataError(f"{where}: only {int(keep.sum())} events have TS >= {lower:g}; lower the cut or "
                        f"score more null events")
    frac = float(w[keep].sum() / w.sum())
    x, w = x[keep], w[keep]
    tail = _tail_scale(x, w)
    if method == "histogram":
        grid, log_pdf, width = _histogram_log_pdf(x, w, lower, bins)
    else:
        grid, log_pdf, width = _kde_log_pdf(x, w, lower, bandwidth)
    n_eff = w.sum() ** 2 / np.sum(w**2)
    # log_pdf is in "weight per unit TS" until normalised; the floor is half an average event per width.
    log_floor = float(np.log(0.5 * w.sum() / n_eff / width))
    return _normalised(grid, log_pdf, lower, frac, tail, log_floor, method)


def _silverman(x: np.ndarray, w: np.ndarray) -> float:
    n_eff = w.sum() ** 2 / np.sum(w**2)
    iqr = _weighted_quantile(x, w, 0.75) - _weighted_quantile(x, w, 0.25)
    spread = min(_weighted_std(x, w), iqr / 1.34) or _weighted_std(x, w) or 1.0
    return float(0.9 * spread * n_eff ** (-0.2))


def _kde_log_pdf(x, w, lower, bandwidth):
    h = _silverman(x, w) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise DataError(f"fit_null_density: bandwidth must be > 0, got {h!r}")
    lo = lower if np.isfinite(lower) else x.min() - 4 * h
    hi = x.max() + 4 * h
    step = (hi - lo) / (_GRID - 1)
    pad = int(np.ceil(6 * h / step))  # room for the reflected points and the kernel's reach
    full = lo + step * np.arange(-pad, _GRID + pad)
    pts, wts = x, w
    if np.isfinite(lower):  # reflection keeps the kernel mass that would fall below the cut
        pts, wts = np.concatenate([x, 2 * lower - x]), np.concatenate([w, w])
    edges = np.concatenate([full - step / 2, [full[-1] + step / 2]])
    hist, _ = np.histogram(pts, bins=edges, weights=wts)
    smooth = gaussian_filter(hist, sigma=h / step, mode="constant", truncate=6.0) / step
    grid, dens = full[pad:pad + _GRID], smooth[pad:pad + _GRID]
    return grid, np.log(np.clip(dens, 1e-300, None)), h


def _histogram_log_pdf(x, w, lower, bins):
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise DataError(f"fit_null_density: bins must be an int >= 2, got {bins!r}")
    lo = lower if np.isfinite(lower) else x.min()
    edges = np.linspace(lo, x.max(), bins + 1)
    hist, _ = np.histogram(x, bins=edges, weights=w)
    width = float(edges[1] - edges[0])
    hist = np.where(hist > 0, hist, 0.5 * w.mean()) / width  # an empty bin is not an impossible one
    centres = (edges[:-1] + edges[1:]) / 2
    # Bin edges are part of the grid so the density is flat up to the ends (a step histogram).
    grid = np.concatenate([[edges[0]], centres, [edges[-1]]])
    vals = np.concatenate([[hist[0]], hist, [hist[-1]]])
    return grid, np.log(vals), width


def _normalised(grid, log_pdf, lower, frac, tail, log_floor, method) -> NullDensity:
    """Rescale so that the density integrates to one over its support (tails and floor included)."""
    raw = NullDensity(grid, log_pdf, lower, frac, tail, log_floor, method)
    lo, hi = raw.support
    left = np.linspace(lo, grid[0], 513) if lo < grid[0] else np.array([])
    right = np.linspace(grid[-1], hi, 513)
    pts = np.unique(np.concatenate([left, grid, right]))
    vals = _raw_logpdf(pts, grid, log_pdf, tail, log_floor)
    top = vals.max()
    log_norm = top + np.log(np.trapezoid(np.exp(vals - top), pts))
    return NullDensity(grid, log_pdf - log_norm, lower, frac, tail, log_floor - log_norm, method)


def extended_log_likelihood(ts, expected: float, null: NullDensity) -> float:
    """log L(TS | H0) = log Pois(N | B) + sum_i log f0(TS_i) over the events above the cut.

    Args:
        ts: TS of the events of one (pseudo-)experiment; those below ``null.lower`` are ignored.
        expected: B, the expected background count above the cut.
        null: the fitted null density.

    Returns:
        The log-likelihood (finite: above the cut f0 is never below its floor).

    Raises:
        DataError: expected <= 0.
    """
    if not expected > 0:
        raise DataError(f"extended_log_likelihood: expected background must be > 0, got {expected!r}")
    x = np.asarray(ts, dtype=np.float64).ravel()
    x = x[x >= null.lower]
    n = len(x)
    return float(n * np.log(expected) - expected - gammaln(n + 1) + null.logpdf(x).sum())


def toy_log_likelihoods(expected: float, null: NullDensity, pools: Sequence[tuple[np.ndarray, float]],
                        n_toys: int, rng: np.random.Generator) -> np.ndarray:
    """``extended_log_likelihood`` of ``n_toys`` pseudo-experiments drawn from event pools.

    Each pool is ``(ts_values, mean_count)``: a toy takes Poisson(mean_count) events drawn with
    replacement from the pool's values above the cut (``mean_count`` counts events above the cut).

    Args:
        expected: B of the H0 likelihood (above the cut).
        null: the fitted null density.
        pools: background pool and, for signal-injected toys, signal pools.
        n_toys: number of pseudo-experiments.
        rng: numpy Generator.

    Returns:
        ``(n_toys,)`` log-likelihoods.
    """
    logf_pools = []
    for values, mean in pools:
        vals = np.asarray(values, dtype=np.float64)
        logf_pools.append((null.logpdf(vals[vals >= null.lower]), mean))
    return toy_log_likelihoods_from_logf(expected, logf_pools, n_toys, rng)


def toy_log_likelihoods_from_logf(expected: float, pools: Sequence[tuple[np.ndarray, float]], n_toys: int,
                                  rng: np.random.Generator) -> np.ndarray:
    """Like ``toy_log_likelihoods`` with pools of per-event log-densities already evaluated.

    Args:
        expected: B of the H0 likelihood.
        pools: ``(log_f0_values, mean_count)`` per pool.
        n_toys: number of pseudo-experiments.
        rng: numpy Generator.

    Returns:
        ``(n_toys,)`` log-likelihoods ``N log B - B - log N! + sum log f0``.
    """
    if not expected > 0:
        raise DataError(f"toy_log_likelihoods: expected background must be > 0, got {expected!r}")
    n_total = np.zeros(n_toys, dtype=np.int64)
    sums = np.zeros(n_toys)
    for logf, mean in pools:
        logf = np.asarray(logf, dtype=np.float64)
        if mean <= 0 or len(logf) == 0:
            continue
        counts = rng.poisson(mean, n_toys)
        picks = logf[rng.integers(0, len(logf), counts.sum())]
        toy = np.repeat(np.arange(n_toys), counts)
        sums += np.bincount(toy, weights=picks, minlength=n_toys)
        n_total += counts
    return n_total * np.log(expected) - expected - gammaln(n_total + 1) + sums


def pvalues(observed, null_statistics, *, method: str = "gaussian") -> np.ndarray:
    """Lower-tail p-values of observed statistics against their null distribution.

    Args:
        observed: statistic(s) of the tested experiments (small = incompatible with H0).
        null_statistics: the statistic in background-only pseudo-experiments.
        method: ``"empirical"``: (1 + #{null <= obs}) / (1 + n_null) (cannot go below 1/(n_null+1));
            ``"gaussian"``: Phi((obs - mean) / std) of the null toys (the log-likelihood is a sum over
            many events, so its null distribution is close to normal; this reaches far-tail p-values).

    Returns:
        Array of p-values in (0, 1].

    Raises:
        DataError: fewer than 2 null statistics or an unknown method.
    """
    null = np.asarray(null_statistics, dtype=np.float64).ravel()
    obs = np.asarray(observed, dtype=np.float64)
    if len(null) < 2:
        raise DataError(f"pvalues needs at least 2 null pseudo-experiments, got {len(null)}")
    if method == "empirical":
        ranks = np.searchsorted(np.sort(null), obs, side="right")
        return (1.0 + ranks) / (1.0 + len(null))
    if method == "gaussian":
        sd = null.std(ddof=1)
        if not sd > 0:
            raise DataError("pvalues: the null statistics have zero spread; use more events per toy")
        return np.exp(log_ndtr((obs - null.mean()) / sd))
    raise DataError(f"pvalues: method={method!r} is not known; use 'gaussian' or 'empirical'")


def median_pvalue(observed, null_statistics, *, method: str = "gaussian") -> float:
    """Median p-value over signal-injected pseudo-experiments (the talk's 'median sensitivity')."""
    return float(np.median(pvalues(observed, null_statistics, method=method)))


@dataclass(frozen=True)
class TemplateDensity2D:
    """A normalised 2-D histogram template (the classical (cS1, cS2) likelihood's background pdf).

    Attributes:
        x_edges, y_edges: bin edges.
        log_pdf: (nx, ny) log density per unit area; outside the edges ``log_floor``.
        log_floor: log density given to events outside the template range.
    """

    x_edges: np.ndarray
    y_edges: np.ndarray
    log_pdf: np.ndarray
    log_floor: float

    def logpdf(self, x, y) -> np.ndarray:
        """log density at points (x, y)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        ix = np.searchsorted(self.x_edges, x, side="right") - 1
        iy = np.searchsorted(self.y_edges, y, side="right") - 1
        inside = (ix >= 0) & (ix < len(self.x_edges) - 1) & (iy >= 0) & (iy < len(self.y_edges) - 1)
        out = np.full(x.shape, self.log_floor)
        out[inside] = self.log_pdf[ix[inside], iy[inside]]
        return out


def fit_template_density_2d(x, y, sample_weight=None, *, bins: tuple[int, int] = (50, 50),
                            smooth: float = 1.0, ranges=None) -> TemplateDensity2D:
    """Fit a smoothed 2-D histogram density of background events.

    Args:
        x, y: the two observables (e.g. cS1 and log10 cS2).
        sample_weight: event weights.
        bins: bins per axis.
        smooth: Gaussian smoothing of the histogram, in bins (0: none).
        ranges: ((x_lo, x_hi), (y_lo, y_hi)); default: the sample's range.

    Returns:
        A TemplateDensity2D; empty cells (after smoothing) get half an average event, and points
        outside the range a quarter of that.
    """
    where = "fit_template_density_2d"
    xs = _as_scores(x, None, where, name="x")
    ys = _as_scores(y, len(xs), where, name="y", ref="x")
    w = _as_weights(sample_weight, len(xs), where, ref="x")
    w = np.ones_like(xs) if w is None else w
    if ranges is None:
        ranges = ((xs.min(), xs.max()), (ys.min(), ys.max()))
    hist, xe, ye = np.histogram2d(xs, ys, bins=bins, range=ranges, weights=w)
    if smooth > 0:
        hist = gaussian_filter(hist, sigma=smooth, mode="constant")
    area = np.outer(np.diff(xe), np.diff(ye))
    empty = 0.5 * w.mean()
    hist = np.where(hist > empty, hist, empty)
    density = hist / area
    total = (density * area).sum()
    log_pdf = np.log(density / total)
    return TemplateDensity2D(xe, ye, log_pdf, float(np.log(0.25 * empty / total / area.mean())))
