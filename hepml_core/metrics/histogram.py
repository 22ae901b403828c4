"""Weighted 1-D histograms with fixed edges that add up: one per partition, summed into the whole.

Scoring many files in parallel cannot see all scores at once, so each partition fills a histogram on
edges fixed beforehand and the partial histograms are summed. Bins follow the app's distribution views
(``app/state/histograms.grouped_histogram``): uniform edges, the bin index computed by arithmetic, under-
and overflow counted in the first and last bin, and per bin the sum of weights and of squared weights
(for error bars). With the same edges a written histogram therefore equals the one the app draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepml_core.exceptions import DataError

__all__ = ["Histogram", "uniform_edges", "weighted_histogram"]


@dataclass(frozen=True, eq=False)
class Histogram:
    """Weighted counts in fixed bins.

    Attributes:
        edges: (n_bins + 1,) ascending bin edges.
        sumw: (n_bins,) sum of weights per bin.
        sumw2: (n_bins,) sum of squared weights per bin.
        entries: number of events filled (finite values), whatever their weight.
    """

    edges: np.ndarray
    sumw: np.ndarray
    sumw2: np.ndarray
    entries: int

    def __add__(self, other: Histogram) -> Histogram:
        if not isinstance(other, Histogram):
            return NotImplemented
        if self.edges.shape != other.edges.shape or not np.array_equal(self.edges, other.edges):
            raise DataError("histograms with different edges cannot be added; fill both with the same edges")
        return Histogram(self.edges, self.sumw + other.sumw, self.sumw2 + other.sumw2, self.entries + other.entries)

    def equals(self, other: Histogram) -> bool:
        """Whether both histograms have the same edges, contents and entries (bit for bit)."""
        return (np.array_equal(self.edges, other.edges) and np.array_equal(self.sumw, other.sumw)
                and np.array_equal(self.sumw2, other.sumw2) and self.entries == other.entries)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists for JSON (Python floats print with enough digits to read back exactly)."""
        return {"edges": self.edges.tolist(), "sumw": self.sumw.tolist(), "sumw2": self.sumw2.tolist(),
                "entries": int(self.entries)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """The inverse of :meth:`to_dict`."""
        return cls(np.asarray(data["edges"], dtype=np.float64), np.asarray(data["sumw"], dtype=np.float64),
                   np.asarray(data["sumw2"], dtype=np.float64), int(data["entries"]))


def uniform_edges(low: float, high: float, n_bins: int) -> np.ndarray:
    """``n_bins`` equal bins from ``low`` to ``high`` (``np.linspace``, as the app makes them).

    Raises:
        DataError: ``n_bins`` < 1 or ``high`` <= ``low``.
    """
    if int(n_bins) < 1 or not high > low:
        raise DataError(f"histogram bins need n_bins >= 1 and high > low; got {n_bins} bins on [{low}, {high}]")
    return np.linspace(float(low), float(high), int(n_bins) + 1)


def weighted_histogram(values, edges, weights=None, *, clip: bool = True) -> Histogram:
    """Fill ``values`` into uniform ``edges`` with per-event ``weights``.

    Args:
        values: (n,) the variable; NaN/inf values are left out.
        edges: uniform bin edges (from :func:`uniform_edges`).
        weights: (n,) event weights (ones when None).
        clip: count under/overflow in the first/last bin (physicists expect the tails counted).

    Returns:
        The Histogram.

    Raises:
        DataError: weights and values differ in length.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    edges = np.asarray(edges, dtype=np.float64)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != values.shape:
        raise DataError(f"weighted_histogram: {values.size} values but {w.size} weights; one weight per value")
    n_bins = len(edges) - 1
    # The app's arithmetic (grouped_histogram), so that both put a value on a bin edge in the same bin.
    idx = np.floor((values - edges[0]) / (edges[-1] - edges[0]) * n_bins)
    keep = np.isfinite(idx)
    if clip:
        idx = np.clip(idx, 0, n_bins - 1)
    else:
        keep &= (idx >= 0) & (idx < n_bins)
    flat = idx[keep].astype(np.int64)
    sumw = np.bincount(flat, weights=w[keep], minlength=n_bins)[:n_bins]
    sumw2 = np.bincount(flat, weights=w[keep] ** 2, minlength=n_bins)[:n_bins]
    return Histogram(edges, sumw, sumw2, int(keep.sum()))
