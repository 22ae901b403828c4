"""Class-fraction-weighted discriminants of a multi-class classifier (AMS-02 He study).

``D_k = log10(p_k / sum_{j != k} f_j p_j)``: the log-likelihood ratio of class k against the mixture of
the other classes, each weighted by its expected fraction ``f_j`` in the sample.
"""

from __future__ import annotations

import numpy as np

from hepml_core.exceptions import DataError

__all__ = ["class_fractions", "discriminants", "discriminant_names"]

# Probabilities are clipped here before the log so an event with p = 0 gives a large finite D,
# never -inf (histograms and min-max scaling downstream cannot take infinities).
_EPS = 1e-12


def class_fractions(labels: np.ndarray, n_classes: int, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted fraction of each class in a labelled sample.

    Args:
        labels: integer class codes 0..n_classes-1.
        n_classes: number of classes.
        sample_weight: optional event weights.

    Returns:
        Array of shape (n_classes,) summing to 1.

    Raises:
        DataError: if the total weight is not positive.
    """
    labels = np.asarray(labels, dtype=np.int64)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sums = np.bincount(labels, weights=weights, minlength=n_classes)[:n_classes].astype(np.float64)
    total = sums.sum()
    if not total > 0:
        raise DataError(f"class fractions need a positive total weight; got {total!r}")
    return sums / total


def discriminants(proba: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Discriminant of each class from class probabilities and class fractions.

    Args:
        proba: (n_events, k) probabilities (rows sum to 1).
        fractions: (k,) class fractions f_j; they are renormalised to sum to 1.

    Returns:
        (n_events, k) float64 array of D_k values.

    Raises:
        DataError: on shape mismatch or fractions that are negative or all zero.
    """
    proba = np.asarray(proba, dtype=np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    if proba.ndim != 2 or fractions.shape != (proba.shape[1],):
        raise DataError(
            f"discriminants need proba of shape (n, k) and fractions of shape (k,); got {proba.shape} and {fractions.shape}"
        )
    if np.any(fractions < 0) or not fractions.sum() > 0:
        raise DataError(f"class fractions must be >= 0 and not all zero; got {fractions.tolist()}")
    fractions = fractions / fractions.sum()
    p = np.clip(proba, _EPS, None)
    weighted = p * fractions
    # The mixture of the *other* classes: the full weighted sum minus class k's own term.
    others = weighted.sum(axis=1, keepdims=True) - weighted
    return np.log10(p / np.clip(others, _EPS, None))


def discriminant_names(class_names) -> list[str]:
    """Column names ``D_<class>`` for the given class names."""
    return [f"D_{name}" for name in class_names]
