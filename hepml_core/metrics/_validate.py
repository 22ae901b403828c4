"""Input checks shared by the metric modules: one place for the DataError messages."""

from __future__ import annotations

import numpy as np

from hepml_core.exceptions import DataError

__all__: list[str] = []


def _as_1d(values, name: str, where: str, allow_empty: bool = False) -> np.ndarray:
    """Return ``values`` as a 1-D array (non-empty unless allowed), or raise DataError."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} passed to {where} cannot be read as a numeric array: {err}") from err
    if arr.ndim != 1:
        raise DataError(
            f"{name} passed to {where} has shape {arr.shape}; expected a 1-D array with one entry per "
            "event (use .ravel() or pick one column)"
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise DataError(f"{name} passed to {where} is empty; at least one event is needed")
    return arr


def _check_length(arr: np.ndarray, n: int, name: str, ref: str, where: str) -> None:
    if arr.shape[0] != n:
        raise DataError(
            f"{name} passed to {where} has {arr.shape[0]} entries but {ref} has {n}; "
            "pass arrays with one entry per event"
        )


def _as_scores(
    score, n: int | None, where: str, name: str = "score", ref: str = "y_true"
) -> np.ndarray:
    """Return scores as float64 (a no-copy view when they already are) with length ``n``."""
    arr = _as_1d(score, name, where)
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{name} passed to {where} has dtype {arr.dtype}; expected real numbers")
    arr = arr.astype(np.float64, copy=False)
    if n is not None:
        _check_length(arr, n, name, ref, where)
    return arr


def _as_weights(
    sample_weight, n: int, where: str, name: str = "sample_weight", ref: str = "y_true"
) -> np.ndarray | None:
    """Return weights as a float64 array of length ``n`` (or None when not given)."""
    if sample_weight is None:
        return None
    arr = _as_1d(sample_weight, name, where, allow_empty=n == 0)
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{name} passed to {where} has dtype {arr.dtype}; expected real numbers")
    arr = arr.astype(np.float64, copy=False)
    _check_length(arr, n, name, ref, where)
    return arr


def _as_binary(y_true, where: str, name: str = "y_true") -> np.ndarray:
    """Return a boolean "is signal" array from 0/1, 0.0/1.0 or bool labels."""
    y = _as_1d(y_true, name, where)
    if y.dtype == np.bool_:
        return y
    if y.dtype.kind in "iuf":
        positive = y == 1
        # Counting both values is two cheap passes; np.unique would sort the whole array.
        if np.count_nonzero(positive) + np.count_nonzero(y == 0) == y.shape[0]:
            return positive
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise DataError(
            f"{name} passed to {where} must be binary (0/1 or bool); found values such as "
            f"{bad.tolist()}; for several classes pass (labels == signal_code) or use one_vs_rest"
        )
    raise DataError(
        f"{name} passed to {where} has dtype {y.dtype}; expected binary 0/1 or bool labels "
        "(e.g. labels == signal_code)"
    )


def _as_codes(
    y, n_classes: int, where: str, name: str = "y_true", allow_empty: bool = False
) -> np.ndarray:
    """Return integer class codes, checked to lie in ``0 .. n_classes-1``."""
    arr = _as_1d(y, name, where, allow_empty=allow_empty)
    if arr.shape[0] == 0:
        return arr.astype(np.int64)  # np.asarray([]) is float64; an empty selection has no codes
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    if arr.dtype.kind not in "iu":
        raise DataError(
            f"{name} passed to {where} has dtype {arr.dtype}; expected integer class codes "
            "0..n_classes-1 (EventTable.labels() returns them)"
        )
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_classes:
        raise DataError(
            f"{name} passed to {where} has codes from {lo} to {hi}, but n_classes={n_classes} "
            f"accepts 0..{n_classes - 1}; pass the right n_classes or re-code the labels"
        )
    return arr


def _check_n_classes(n_classes, where: str) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise DataError(f"n_classes passed to {where} must be a positive integer, got {n_classes!r}")
    return int(n_classes)


def _check_finite_sorted(sorted_values: np.ndarray, name: str, where: str) -> None:
    """Raise if a sorted array holds NaN or inf: both sort to the ends, so this is O(1)."""
    if not (np.isfinite(sorted_values[0]) and np.isfinite(sorted_values[-1])):
        raise DataError(
            f"{name} passed to {where} contains NaN or inf; remove or fix those events first "
            "(e.g. score[np.isfinite(score)] with the same mask on labels and weights)"
        )
