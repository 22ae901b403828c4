"""Adaptive binnings of a score for a signal/background comparison with bounded statistical uncertainty.

Both schemes of the HNL talk (seed 003) make every bin's relative statistical uncertainty
``sqrt(sum w^2) / sum w`` smaller than a bound (0.15) for signal *and* background:

* ``equal_signal_edges``: bins of equal signal weight; start with many bins and use fewer until the
  bound holds in every bin.
* ``right_to_left_edges``: from the highest score down, widen each bin until the bound holds and the bin
  holds more signal than the bin to its right (finer bins where a model is most confident).

Bins are ``[e_i, e_{i+1})`` with the last bin closed, like ``numpy.histogram``; the outer edges are the
smallest and largest value of either sample (right-to-left: the lowest cut and the largest value). Sorting is done once per sample (``SortedSample``), so a
background shared by many signal hypotheses is sorted once and each binning costs binary searches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepml_core.exceptions import DataError

__all__ = [
    "SortedSample",
    "BinnedYields",
    "relative_uncertainty",
    "bin_yields",
    "equal_signal_edges",
    "right_to_left_edges",
    "BINNINGS",
]

BINNINGS = ("equal_signal", "right_to_left")


def relative_uncertainty(sum_w, sum_w2) -> np.ndarray:
    """``sqrt(sum w^2) / sum w`` per bin; inf where the bin's weight is not positive."""
    sum_w = np.asarray(sum_w, dtype=np.float64)
    sum_w2 = np.asarray(sum_w2, dtype=np.float64)
    return np.divide(np.sqrt(np.clip(sum_w2, 0.0, None)), sum_w, out=np.full(sum_w.shape, np.inf),
                     where=sum_w > 0)


class SortedSample:
    """Values sorted once with cumulative weights and squared weights, for fast bin sums.

    Args:
        values: the score (or feature) of each event.
        weights: event weights (ones when None).

    Raises:
        DataError: shapes differ, or values/weights are not finite.
    """

    def __init__(self, values, weights=None):
        x = np.asarray(values, dtype=np.float64).ravel()
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != x.shape:
            raise DataError(f"SortedSample: {x.size} values but {w.size} weights; pass one weight per value")
        if not (np.isfinite(x).all() and np.isfinite(w).all()):
            raise DataError("SortedSample: values and weights must be finite (drop or fill NaN/inf first)")
        order = np.argsort(x, kind="stable")
        self.x = x[order]
        w = w[order]
        self.cw = np.concatenate([[0.0], np.cumsum(w)])
        self.cw2 = np.concatenate([[0.0], np.cumsum(w * w)])

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def total(self) -> float:
        """Sum of the weights."""
        return float(self.cw[-1])

    @property
    def effective_entries(self) -> float:
        """``(sum w)^2 / sum w^2``: the number of unweighted events with the same relative uncertainty."""
        return float(self.cw[-1] ** 2 / self.cw2[-1]) if self.cw2[-1] > 0 else 0.0

    def below(self, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weight and squared weight of the events with value < each cut."""
        idx = np.searchsorted(self.x, cuts, side="left")
        return self.cw[idx], self.cw2[idx]

    def in_bins(self, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-bin weight and squared weight for interior cuts (bins: < c1, [c1, c2), ..., >= c_last)."""
        idx = np.concatenate([[0], np.searchsorted(self.x, cuts, side="left"), [self.x.size]])
        return np.diff(self.cw[idx]), np.diff(self.cw2[idx])


@dataclass(frozen=True)
class BinnedYields:
    """Signal and background per bin.

    Attributes:
        edges: bin edges (n + 1), ascending; outer edges are the smallest/largest value seen.
        s, s_w2, b, b_w2: per-bin weight sums and squared-weight sums.
    """

    edges: np.ndarray
    s: np.ndarray
    s_w2: np.ndarray
    b: np.ndarray
    b_w2: np.ndarray

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return int(self.s.size)

    def max_relative_uncertainty(self) -> float:
        """The largest relative uncertainty over all bins, signal and background."""
        if self.n_bins == 0:
            return float("inf")
        return float(max(relative_uncertainty(self.s, self.s_w2).max(), relative_uncertainty(self.b, self.b_w2).max()))


def _as_sorted(sample, weights=None) -> SortedSample:
    return sample if isinstance(sample, SortedSample) else SortedSample(sample, weights)


def _outer(sig: SortedSample, bkg: SortedSample) -> tuple[float, float]:
    lows = [a.x[0] for a in (sig, bkg) if len(a)]
    highs = [a.x[-1] for a in (sig, bkg) if len(a)]
    return (float(min(lows)), float(max(highs))) if lows else (0.0, 1.0)


def bin_yields(cuts: np.ndarray, sig: SortedSample, bkg: SortedSample) -> BinnedYields:
    """Per-bin yields for interior ``cuts`` (ascending); edges get the samples' outer values."""
    cuts = np.asarray(cuts, dtype=np.float64)
    s, s2 = sig.in_bins(cuts)
    b, b2 = bkg.in_bins(cuts)
    lo, hi = _outer(sig, bkg)
    return BinnedYields(np.concatenate([[lo], cuts, [hi]]), s, s2, b, b2)


def _ok(s, s2, b, b2, bound: float) -> np.ndarray:
    # sqrt(w2)/w < bound  <=>  w2 < bound^2 w^2 with w > 0 (no division, no sqrt)
    r2 = bound * bound
    return (s > 0) & (b > 0) & (s2 < r2 * s * s) & (b2 < r2 * b * b)


def _check_bound(max_rel_unc: float) -> None:
    if not 0.0 < max_rel_unc:
        raise DataError(f"max_rel_unc must be > 0 (a relative uncertainty such as 0.15); got {max_rel_unc!r}")


def equal_signal_edges(signal, background, *, signal_weights=None, background_weights=None,
                       max_rel_unc: float = 0.15, max_bins: int = 100) -> BinnedYields | None:
    """Equal-signal bins: the most bins (at most ``max_bins``) for which every bin meets the bound.

    Args:
        signal, background: scores, or ``SortedSample`` objects (then the weights arguments are ignored).
        signal_weights, background_weights: event weights.
        max_rel_unc: bound on ``sqrt(sum w^2)/sum w`` of signal and background in every bin.
        max_bins: the number of bins tried first; fewer are tried until the bound holds.

    Returns:
        The binning, or None when not even a single bin meets the bound (too few events).
    """
    _check_bound(max_rel_unc)
    sig, bkg = _as_sorted(signal, signal_weights), _as_sorted(background, background_weights)
    if len(sig) == 0 or len(bkg) == 0 or sig.total <= 0 or bkg.total <= 0:
        return None
    # With n equal-signal bins each holds ~N_eff/n effective events, so above N_eff * bound^2 bins the
    # bound cannot hold; starting there instead of at max_bins skips hopeless trials.
    n_start = int(max(1, min(max_bins, np.floor(sig.effective_entries * max_rel_unc ** 2) + 1)))
    inner_cw = sig.cw[1:]
    for n in range(n_start, 0, -1):
        targets = sig.total * np.arange(1, n) / n
        # the event whose cumulative weight reaches a target closes the bin below the cut
        idx = np.minimum(np.searchsorted(inner_cw, targets * (1 - 1e-12), side="left") + 1, len(sig) - 1)
        cuts = np.unique(sig.x[idx])
        cuts = cuts[cuts > sig.x[0]] if len(cuts) else cuts  # a cut at the minimum would leave an empty bin
        yields = bin_yields(cuts, sig, bkg)
        if _ok(yields.s, yields.s_w2, yields.b, yields.b_w2, max_rel_unc).all():
            return yields
    return None


def right_to_left_edges(signal, background, *, signal_weights=None, background_weights=None,
                        max_rel_unc: float = 0.15) -> BinnedYields | None:
    """Bins built from the highest score down, each widened until the bound holds and it holds more signal.

    Candidate lower edges are the signal values (a bin never ends between two signal events). The events
    below the lowest bin, which cannot form a valid bin of their own, are left out (the first edge is
    the lowest cut, not the smallest value).

    Args:
        signal, background: scores, or ``SortedSample`` objects.
        signal_weights, background_weights: event weights.
        max_rel_unc: bound on ``sqrt(sum w^2)/sum w`` of signal and background in every bin.

    Returns:
        The binning, or None when not even one bin meets the bound.
    """
    _check_bound(max_rel_unc)
    sig, bkg = _as_sorted(signal, signal_weights), _as_sorted(background, background_weights)
    if len(sig) == 0 or len(bkg) == 0 or sig.total <= 0 or bkg.total <= 0:
        return None
    # Candidate cuts: distinct signal values, highest first; "above" sums include the cut value.
    cand = np.unique(sig.x)[::-1]
    s_lt, s2_lt = sig.below(cand)
    b_lt, b2_lt = bkg.below(cand)
    s_ge, s2_ge = sig.total - s_lt, sig.cw2[-1] - s2_lt
    b_ge, b2_ge = bkg.total - b_lt, bkg.cw2[-1] - b2_lt
    r2 = max_rel_unc ** 2
    cuts: list[float] = []  # lower edges, from right to left
    prev = (0.0, 0.0, 0.0, 0.0)  # cumulative sums above the previous cut
    prev_s = 0.0
    start = 0
    while start < cand.size:
        ds, ds2 = s_ge[start:] - prev[0], s2_ge[start:] - prev[1]
        db, db2 = b_ge[start:] - prev[2], b2_ge[start:] - prev[3]
        # "more signal" with a relative margin: equal-weight events would otherwise tie and let the
        # rounding of the cumulative sums decide
        good = (ds > prev_s * (1 + 1e-9)) & (db > 0) & (ds2 < r2 * ds * ds) & (db2 < r2 * db * db)
        if not good.any():
            break
        k = start + int(np.argmax(good))
        cuts.append(float(cand[k]))
        prev = (s_ge[k], s2_ge[k], b_ge[k], b2_ge[k])
        prev_s = float(ds[k - start])
        start = k + 1
    if not cuts:
        return None
    # Events below the lowest cut could not form a bin of their own (too few, or not more signal than
    # the bin to their right); they are left out rather than merged, which would only add their
    # background to the lowest bin. Edges: [lowest cut, ..., largest value].
    interior = np.array(cuts[::-1])
    s_in, s2_in = sig.in_bins(interior)
    b_in, b2_in = bkg.in_bins(interior)
    hi = _outer(sig, bkg)[1]
    return BinnedYields(np.append(interior, hi), s_in[1:], s2_in[1:], b_in[1:], b2_in[1:])
