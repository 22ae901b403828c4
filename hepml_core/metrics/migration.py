"""Weighted migration (confusion) matrices: rows are the true class, columns the predicted class."""

from __future__ import annotations

import numpy as np

from hepml_core.exceptions import DataError
from hepml_core.metrics._validate import _as_codes, _as_weights, _check_n_classes

__all__ = ["migration_matrix", "migration_uncertainty", "normalise_rows", "normalise_columns"]


def _cell_index(y_true, y_pred, n_classes, where: str) -> tuple[np.ndarray, int]:
    """Flat cell index ``true * k + pred`` per event, so one bincount fills the whole matrix."""
    k = _check_n_classes(n_classes, where)
    # A cut that selects nothing gives an all-zero matrix, not an error.
    true = _as_codes(y_true, k, where, name="y_true", allow_empty=True)
    pred = _as_codes(y_pred, k, where, name="y_pred", allow_empty=True)
    if pred.shape[0] != true.shape[0]:
        raise DataError(
            f"y_pred passed to {where} has {pred.shape[0]} entries but y_true has {true.shape[0]}; "
            "pass one prediction per event"
        )
    cell = true.astype(np.int64) * k
    cell += pred
    return cell, k


def migration_matrix(y_true, y_pred, n_classes: int, sample_weight=None) -> np.ndarray:
    """Weighted count of events per (true class, predicted class) cell.

    Args:
        y_true: true class codes 0..k-1, shape (n,).
        y_pred: predicted class codes 0..k-1 (e.g. ``argmax`` of the scores), shape (n,).
        n_classes: k; classes without events give zero rows/columns.
        sample_weight: per-event weights (may be negative), shape (n,), or None.

    Returns:
        float64 array (k, k); ``m[i, j]`` is the weight of true class i predicted as j. Same values
        as ``sklearn.metrics.confusion_matrix(..., labels=range(k), sample_weight=w)``.

    Raises:
        DataError: codes outside 0..k-1, mismatched lengths, or a bad ``n_classes``.
    """
    where = "migration_matrix"
    cell, k = _cell_index(y_true, y_pred, n_classes, where)
    weights = _as_weights(sample_weight, cell.shape[0], where)
    counts = np.bincount(cell, weights=weights, minlength=k * k)
    return counts.astype(np.float64, copy=False).reshape(k, k)


def migration_uncertainty(y_true, y_pred, n_classes: int, sample_weight=None) -> np.ndarray:
    """Statistical uncertainty of each migration-matrix cell: ``sqrt(sum of w^2)``.

    Args:
        y_true, y_pred, n_classes, sample_weight: as for :func:`migration_matrix`.

    Returns:
        float64 array (k, k); ``sqrt(count)`` when unweighted.

    Raises:
        DataError: as for :func:`migration_matrix`.
    """
    where = "migration_uncertainty"
    cell, k = _cell_index(y_true, y_pred, n_classes, where)
    weights = _as_weights(sample_weight, cell.shape[0], where)
    squared = None if weights is None else weights * weights
    sum_w2 = np.bincount(cell, weights=squared, minlength=k * k).astype(np.float64)
    return np.sqrt(sum_w2).reshape(k, k)


def _normalise(matrix, axis: int, what: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise DataError(f"normalise_{what} needs a 2-D matrix, got shape {m.shape}")
    sums = m.sum(axis=axis, keepdims=True)
    if (sums < 0).any():
        bad = np.flatnonzero(sums.ravel() < 0).tolist()
        raise DataError(
            f"{what} {bad} of the matrix have a negative total weight; fractions of a negative "
            "total are meaningless (check the event weights)"
        )
    # Empty rows/columns (a class without events) become 0 rather than NaN so plots stay clean.
    safe = np.where(sums == 0, 1.0, sums)
    return np.where(sums == 0, 0.0, m / safe)


def normalise_rows(matrix) -> np.ndarray:
    """Divide each row by its sum: ``m[i, j]`` becomes P(predicted j | true i). Empty rows give 0.

    Args:
        matrix: a (k, k) migration matrix.

    Returns:
        float64 array (k, k) of fractions (not percent).

    Raises:
        DataError: not 2-D, or a row with negative total weight.
    """
    return _normalise(matrix, axis=1, what="rows")


def normalise_columns(matrix) -> np.ndarray:
    """Divide each column by its sum: ``m[i, j]`` becomes P(true i | predicted j) (purity).

    Args:
        matrix: a (k, k) migration matrix.

    Returns:
        float64 array (k, k) of fractions; empty columns give 0.

    Raises:
        DataError: not 2-D, or a column with negative total weight.
    """
    return _normalise(matrix, axis=0, what="columns")
