"""Precomputed threshold scans: per-class weighted yields above any cut in O(log n).

The app moves a cut on a classifier score and every plot follows; rescanning 10M events per move is
too slow, so we sort once and keep, for every class, the cumulative weight of the events ranked from
the highest score down. A cut ``score >= t`` then keeps exactly the top ``m`` events, where ``m`` comes
from one binary search, and the yields are row ``m`` of the cumulative table.
"""

from __future__ import annotations

import numpy as np

from hepml_core.exceptions import DataError
from hepml_core.metrics._sort import _sort_with_order
from hepml_core.metrics._validate import (
    _as_1d,
    _as_codes,
    _as_scores,
    _as_weights,
    _check_finite_sorted,
    _check_n_classes,
)

__all__ = ["ThresholdScan"]

# Non-negative integer labels up to this value are coded with a bincount instead of np.unique
# (which sorts all events a second time).
_BINCOUNT_MAX_LABEL = 1 << 20


def _class_codes(y_true, n_classes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(classes, codes)``: sorted class labels and each event's index into them."""
    if n_classes is not None:
        k = _check_n_classes(n_classes, where)
        return np.arange(k), _as_codes(y_true, k, where)
    y = _as_1d(y_true, "y_true", where)
    if y.dtype == np.bool_ or (y.dtype.kind in "iu" and y.min() >= 0 and y.max() < _BINCOUNT_MAX_LABEL):
        as_int = y.view(np.uint8) if y.dtype == np.bool_ else y
        present = np.flatnonzero(np.bincount(as_int))
        lookup = np.zeros(present[-1] + 1, dtype=np.intp)
        lookup[present] = np.arange(present.shape[0])
        return present.astype(y.dtype), lookup[as_int]
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError as err:
        raise DataError(f"y_true passed to {where} has labels that cannot be sorted: {err}") from err
    if classes.dtype.kind == "f" and np.isnan(classes).any():
        raise DataError(f"y_true passed to {where} contains NaN labels; drop or fix those events")
    return classes, codes


class ThresholdScan:
    """Weighted yield and efficiency of every class above any score threshold, by binary search.

    Construction sorts the scores once (O(n log n)); each query afterwards is one ``searchsorted``
    plus a row lookup (O(log n)), independent of the number of events in practice.

    Args:
        score: per-event score, shape (n,); a cut keeps events with ``score >= threshold``.
        y_true: per-event class label, shape (n,). Classes are the sorted distinct labels, or
            ``0 .. n_classes-1`` when ``n_classes`` is given (then labels must be those codes, and
            classes without events get zero yields).
        sample_weight: per-event weights (may be negative), shape (n,), or None for unit weights.
        n_classes: number of classes when ``y_true`` holds integer codes, or None.

    Attributes:
        classes_: class labels, in the column order of every result.
        totals_: total weight of each class, shape (k,).
        sorted_scores_: the scores sorted ascending, shape (n,), read-only.
        cumulative_: shape (n + 1, k), read-only; row ``m`` is the per-class weight of the ``m``
            highest-scored events (row 0 is zeros, row n equals ``totals_``).

    Raises:
        DataError: mismatched lengths, NaN/inf scores or weights, labels outside ``0..n_classes-1``.
    """

    def __init__(self, score, y_true, sample_weight=None, n_classes=None):
        where = "ThresholdScan"
        self.classes_, codes = _class_codes(y_true, n_classes, where)
        n = codes.shape[0]
        scores = _as_scores(score, n, where)
        weights = _as_weights(sample_weight, n, where)
        order, ascending = _sort_with_order(scores)
        _check_finite_sorted(ascending, "score", where)

        # Accumulate from the highest score down: tight cuts (the physics region) then read sums
        # of few terms, so their rounding error stays small whatever the size of the sample.
        top_first = order[::-1]
        top_codes = codes[top_first]
        top_weights = None if weights is None else weights[top_first]
        k = self.classes_.shape[0]
        # One contiguous (n+1) row per class makes each cumsum a streaming pass; the public
        # (n+1, k) table is its transpose (a view, no copy).
        by_class = np.zeros((k, n + 1), dtype=np.float64)
        for c in range(k):
            in_class = top_codes == c
            if top_weights is None:
                by_class[c, 1:] = in_class
            else:
                # copyto keeps other classes' entries exactly 0 (multiplying would turn inf into NaN)
                np.copyto(by_class[c, 1:], top_weights, where=in_class)
            np.cumsum(by_class[c], out=by_class[c])
        if not np.isfinite(by_class[:, n]).all():
            raise DataError(f"sample_weight passed to {where} contains NaN or inf")

        ascending.flags.writeable = False
        by_class.flags.writeable = False
        self._n = n
        self._by_class = by_class
        self.sorted_scores_ = ascending
        self.cumulative_ = by_class.T
        self.totals_ = by_class[:, n].copy()
        self.totals_.flags.writeable = False

    def __repr__(self) -> str:
        return f"ThresholdScan(n_events={self._n}, classes={self.classes_.tolist()})"

    def _n_above(self, threshold) -> int:
        try:
            t = float(threshold)
        except (TypeError, ValueError) as err:
            raise DataError(
                f"threshold must be one real number, got {threshold!r}; for many thresholds use "
                "yields_above_many"
            ) from err
        if t != t:
            raise DataError("threshold is NaN; pass a real number (use -inf to keep every event)")
        return self._n - int(self.sorted_scores_.searchsorted(t, side="left"))

    def yields_above(self, threshold: float) -> np.ndarray:
        """Weighted yield of each class among events with ``score >= threshold``.

        Args:
            threshold: the cut value; values outside the score range give all or nothing.

        Returns:
            float64 array of shape (k,), in ``classes_`` order (a new array the caller may modify).

        Raises:
            DataError: the threshold is NaN or not a number.
        """
        return self._by_class[:, self._n_above(threshold)].copy()

    def efficiencies(self, threshold: float) -> np.ndarray:
        """Fraction of each class's total weight with ``score >= threshold``.

        Args:
            threshold: the cut value.

        Returns:
            float64 array of shape (k,), in ``classes_`` order.

        Raises:
            DataError: the threshold is NaN, or a class has total weight <= 0 (no events, or
                weights cancelling), since it is the denominator.
        """
        self._check_totals()
        return self.yields_above(threshold) / self.totals_

    def yields_above_many(self, thresholds) -> np.ndarray:
        """Weighted yields of each class above each of many thresholds (one vectorised search).

        Args:
            thresholds: cut values, shape (m,), in any order.

        Returns:
            float64 array of shape (m, k).

        Raises:
            DataError: a threshold is NaN or the input is not 1-D numeric.
        """
        ts = np.asarray(thresholds, dtype=np.float64)
        if ts.ndim != 1:
            raise DataError(f"thresholds must be a 1-D array, got shape {ts.shape}")
        if np.isnan(ts).any():
            raise DataError("thresholds contain NaN; pass real numbers (use -inf to keep every event)")
        n_above = self._n - self.sorted_scores_.searchsorted(ts, side="left")
        return self._by_class[:, n_above].T.copy()

    def efficiencies_many(self, thresholds) -> np.ndarray:
        """Efficiency of each class above each of many thresholds, shape (m, k).

        Raises:
            DataError: as for :meth:`yields_above_many` and :meth:`efficiencies`.
        """
        self._check_totals()
        return self.yields_above_many(thresholds) / self.totals_

    def _check_totals(self) -> None:
        bad = np.flatnonzero(self.totals_ <= 0)
        if bad.size:
            labels = self.classes_.tolist()
            names = ", ".join(f"{labels[i]!r} (total {self.totals_[i]:g})" for i in bad)
            raise DataError(
                f"efficiencies need a positive total weight per class; not so for class {names}; "
                "check the labels and weights (or drop classes without events)"
            )
