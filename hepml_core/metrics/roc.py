"""Weighted ROC curves and areas, numerically the same as scikit-learn's, but faster on large inputs.

The points and thresholds follow ``sklearn.metrics.roc_curve(..., drop_intermediate=True)`` exactly:
zero-weight events are ignored, the curve has one point per distinct score (highest first), collinear
points are dropped, and a first point (0, 0) at threshold ``+inf`` is prepended. Speed comes from a
packed-key sort (see ``_sort``), fewer temporary arrays and no per-call validation machinery; see
``benchmarks/bench_roc.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hepml_core.exceptions import DataError
from hepml_core.metrics._sort import _sort_with_order
from hepml_core.metrics._validate import (
    _as_binary,
    _as_codes,
    _as_scores,
    _as_weights,
    _check_finite_sorted,
)

__all__ = ["RocCurve", "RejectionCurve", "roc_curve", "roc_auc", "one_vs_rest", "background_rejection"]


class RocCurve(NamedTuple):
    """A ROC curve: false and true positive rates at decreasing thresholds (``score >= threshold``)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


class RejectionCurve(NamedTuple):
    """Signal efficiency against background rejection ``1 - fpr`` (TMVA's ROC view)."""

    signal_eff: np.ndarray
    background_rejection: np.ndarray


def _cumulative_weights(y_true, score, sample_weight, where: str):
    """Return ``(fps, tps, thresholds)``: cumulative class weights at each distinct score, descending.

    Raises:
        DataError: mismatched lengths, non-binary labels, NaN/inf, one class only, or a class whose
            total weight is not positive (it is a denominator of the rates).
    """
    positive = _as_binary(y_true, where)
    n = positive.shape[0]
    scores = _as_scores(score, n, where)
    weights = _as_weights(sample_weight, n, where)
    n_positive = int(np.count_nonzero(positive))
    if n_positive in (0, n):
        present = "1 (signal)" if n_positive else "0 (background)"
        raise DataError(
            f"y_true passed to {where} holds one class only (every event is {present}); a ROC curve "
            "needs both signal and background events"
        )

    order, ascending = _sort_with_order(scores)
    _check_finite_sorted(ascending, "score", where)
    descending_order = order[::-1]
    desc_scores = ascending[::-1]
    is_pos = positive[descending_order]

    if weights is None:
        tps = np.cumsum(is_pos, dtype=np.int64)
        fps = None  # derived from the index below: exact integer counts
    else:
        w = weights[descending_order]
        # sklearn drops zero-weight events before finding thresholds; doing the same keeps the
        # threshold list (and hence drop_intermediate) identical.
        nonzero = w != 0
        if not nonzero.all():
            w, is_pos, desc_scores = w[nonzero], is_pos[nonzero], desc_scores[nonzero]
        tps = w * is_pos
        w -= tps  # exact: w - w*1 == 0 and w - w*0 == w, so these are the background weights
        np.cumsum(tps, out=tps)
        fps = np.cumsum(w, out=w)

    distinct = desc_scores[1:] != desc_scores[:-1]
    if distinct.all():
        last_of_tie = None  # no ties: every event is its own threshold, skip three gathers
    else:
        last_of_tie = np.append(np.flatnonzero(distinct), distinct.shape[0])
        tps = tps[last_of_tie]
        desc_scores = desc_scores[last_of_tie]
        if fps is not None:
            fps = fps[last_of_tie]
    if fps is None:
        index = np.arange(1, tps.shape[0] + 1) if last_of_tie is None else last_of_tie + 1
        fps = (index - tps).astype(np.float64)
        tps = tps.astype(np.float64)

    for total, name in ((fps[-1], "background (y_true == 0)"), (tps[-1], "signal (y_true == 1)")):
        if not np.isfinite(total):
            raise DataError(f"sample_weight passed to {where} contains NaN or inf")
        if total <= 0:
            raise DataError(
                f"total weight of the {name} events passed to {where} is {total:g}; it must be "
                "positive because the rates are divided by it (check negative or zero weights)"
            )
    return fps, tps, desc_scores


def _drop_collinear(fps, tps, thresholds):
    """Drop points collinear with both neighbours, as sklearn's ``drop_intermediate=True`` does."""
    if fps.shape[0] <= 2:
        return fps, tps, thresholds
    # sklearn tests np.diff(x, 2) != 0; for finite floats a - b != 0 exactly when a != b, so
    # comparing first differences gives the same answer with one temporary fewer.
    dfp = np.diff(fps)
    dtp = np.diff(tps)
    keep = np.ones(fps.shape[0], dtype=bool)
    np.not_equal(dfp[1:], dfp[:-1], out=keep[1:-1])
    keep[1:-1] |= dtp[1:] != dtp[:-1]
    if keep.all():
        return fps, tps, thresholds
    kept = np.flatnonzero(keep)
    return fps[kept], tps[kept], thresholds[kept]


def _with_origin(values: np.ndarray, first: float, scale: float = 1.0) -> np.ndarray:
    out = np.empty(values.shape[0] + 1, dtype=np.float64)
    out[0] = first
    if scale == 1.0:
        out[1:] = values
    else:
        np.divide(values, scale, out=out[1:])
    return out


def roc_curve(y_true, score, sample_weight=None) -> RocCurve:
    """Weighted ROC curve, point for point equal to ``sklearn.metrics.roc_curve``.

    Args:
        y_true: binary labels (0/1, 0.0/1.0 or bool), 1 = signal, shape (n,).
        score: larger means more signal-like, shape (n,).
        sample_weight: per-event weights (may be negative), shape (n,), or None for unit weights.

    Returns:
        RocCurve with increasing ``fpr``/``tpr`` (for non-negative weights) and decreasing
        ``thresholds``; the first point is (0, 0) at ``+inf``. A point means "select score >= t".

    Raises:
        DataError: mismatched lengths, non-binary labels, NaN/inf scores or weights, one class only,
            or a class whose total weight is <= 0.
    """
    fps, tps, thresholds = _cumulative_weights(y_true, score, sample_weight, "roc_curve")
    fp_total, tp_total = fps[-1], tps[-1]
    fps, tps, thresholds = _drop_collinear(fps, tps, thresholds)
    return RocCurve(
        fpr=_with_origin(fps, 0.0, fp_total),
        tpr=_with_origin(tps, 0.0, tp_total),
        thresholds=_with_origin(thresholds, np.inf),
    )


def roc_auc(y_true, score, sample_weight=None) -> float:
    """Weighted area under the ROC curve (ties count one half), equal to ``roc_auc_score``.

    With negative weights the rates need not be monotonic; the trapezoid area is still the weighted
    Mann-Whitney statistic, where sklearn would refuse the curve.

    Args:
        y_true: binary labels (0/1 or bool), 1 = signal, shape (n,).
        score: larger means more signal-like, shape (n,).
        sample_weight: per-event weights, shape (n,), or None.

    Returns:
        The area, in [0, 1] for non-negative weights.

    Raises:
        DataError: as for :func:`roc_curve`.
    """
    fps, tps, _ = _cumulative_weights(y_true, score, sample_weight, "roc_auc")
    fpr = _with_origin(fps, 0.0, fps[-1])
    tpr = _with_origin(tps, 0.0, tps[-1])
    # Collinear points add nothing to a trapezoid sum, so there is no need to drop them first.
    return float(np.trapezoid(tpr, fpr))


def one_vs_rest(y_codes, scores, sample_weight=None) -> list[RocCurve]:
    """One ROC curve per class: class ``c`` (signal) against all others, scored by ``scores[:, c]``.

    Args:
        y_codes: integer class codes 0..k-1, shape (n,).
        scores: per-class scores (probabilities or discriminants), shape (n, k).
        sample_weight: per-event weights, shape (n,), or None.

    Returns:
        A list of k RocCurve, in class-code order.

    Raises:
        DataError: scores not 2-D, codes outside 0..k-1, mismatched lengths, or a class with no
            events or non-positive total weight (the message names the class).
    """
    where = "one_vs_rest"
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise DataError(
            f"scores passed to {where} has shape {scores.shape}; expected (n_events, n_classes)"
        )
    n, k = scores.shape
    codes = _as_codes(y_codes, k, where, name="y_codes")
    if codes.shape[0] != n:
        raise DataError(
            f"y_codes passed to {where} has {codes.shape[0]} entries but scores has {n} rows; "
            "pass one row of scores per event"
        )
    weights = _as_weights(sample_weight, n, where)
    curves = []
    for c in range(k):
        try:
            curves.append(roc_curve(codes == c, scores[:, c], weights))
        except DataError as err:
            raise DataError(f"{where}, class {c} against the rest: {err}") from err
    return curves


def background_rejection(roc: RocCurve) -> RejectionCurve:
    """Convert a ROC curve to (signal efficiency, background rejection = 1 - fpr).

    Args:
        roc: a curve from :func:`roc_curve`.

    Returns:
        RejectionCurve(signal_eff=roc.tpr, background_rejection=1 - roc.fpr); unpacks as a pair.
    """
    return RejectionCurve(signal_eff=roc.tpr, background_rejection=1.0 - roc.fpr)
