"""Weighted two-sample Kolmogorov-Smirnov test and TMVA's train-vs-test overtraining check.

The p-value uses Smirnov's asymptotic distribution as ``scipy.stats.ks_2samp(..., method="asymp")``
does (``kstwo.sf(D, round(m n / (m + n)))``), with each sample size replaced by its effective size
``(sum w)^2 / sum w^2`` when weighted. Unweighted, statistic and p-value equal scipy's
``method="asymp"`` result exactly. (scipy's default ``method="auto"`` switches to an exact p-value
below 10,000 events per sample; the asymptotic one is what has a weighted generalisation.)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import distributions

from hepml_core.exceptions import DataError
from hepml_core.metrics._sort import _sort_with_order
from hepml_core.metrics._validate import _as_1d, _as_scores, _as_weights, _check_finite_sorted

__all__ = ["KSResult", "ks_2samp_weighted", "overtraining_check"]


class KSResult(NamedTuple):
    """Two-sample KS result: the largest ECDF distance and its two-sided p-value."""

    statistic: float
    pvalue: float


def _weighted_ecdf(values, weights, name: str, where: str):
    """Return ``(sorted values, cumulative weights with a leading 0, effective sample size)``."""
    order, ordered = _sort_with_order(values)
    _check_finite_sorted(ordered, name, where)
    cumulative = np.empty(values.shape[0] + 1, dtype=np.float64)
    cumulative[0] = 0.0
    if weights is None:
        # Exact integer counts, so the unweighted statistic equals scipy's count / n bit for bit.
        cumulative[1:] = np.arange(1, values.shape[0] + 1)
        return ordered, cumulative, float(values.shape[0])
    w = weights[order]
    np.cumsum(w, out=cumulative[1:])
    total = cumulative[-1]
    if not np.isfinite(total) or total <= 0:
        raise DataError(
            f"total weight of sample {name} passed to {where} is {total:g}; it must be positive "
            "because the empirical CDF is divided by it"
        )
    return ordered, cumulative, total * total / float(np.dot(w, w))


def ks_2samp_weighted(a, b, wa=None, wb=None) -> KSResult:
    """Weighted two-sample Kolmogorov-Smirnov test (two-sided).

    The statistic is ``max |F_a(x) - F_b(x)|`` over all observed x, with ``F`` the weighted empirical
    CDFs (``F(x)`` = weight of events ``<= x`` / total weight).

    Args:
        a: first sample, shape (n,).
        b: second sample, shape (m,).
        wa: weights of ``a`` (may be negative, total must be positive), or None.
        wb: weights of ``b``, or None.

    Returns:
        KSResult(statistic, pvalue) as floats; unweighted, equal to
        ``scipy.stats.ks_2samp(a, b, method="asymp")``.

    Raises:
        DataError: empty samples, NaN/inf values, mismatched weight lengths, or a sample whose total
            weight is <= 0.
    """
    where = "ks_2samp_weighted"
    a = _as_scores(a, None, where, name="a")
    b = _as_scores(b, None, where, name="b")
    wa = _as_weights(wa, a.shape[0], where, name="wa", ref="a")
    wb = _as_weights(wb, b.shape[0], where, name="wb", ref="b")
    a_sorted, a_cum, n_a = _weighted_ecdf(a, wa, "a", where)
    b_sorted, b_cum, n_b = _weighted_ecdf(b, wb, "b", where)

    # The ECDF difference only changes at observed values, so evaluating there finds the maximum;
    # side="right" counts every event equal to x, which handles ties across and within samples.
    points = np.concatenate([a_sorted, b_sorted])
    cdf_a = a_cum[np.searchsorted(a_sorted, points, side="right")] / a_cum[-1]
    cdf_b = b_cum[np.searchsorted(b_sorted, points, side="right")] / b_cum[-1]
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))

    m, n = sorted([n_a, n_b], reverse=True)  # same operand order as scipy, same rounding
    en = m * n / (m + n)
    # kstwo needs an integer sample size >= 1; tiny effective sizes would otherwise round to 0.
    pvalue = float(np.clip(distributions.kstwo.sf(statistic, max(1.0, np.round(en))), 0.0, 1.0))
    return KSResult(statistic=statistic, pvalue=pvalue)


def overtraining_check(
    train_score, train_y, test_score, test_y, wtrain=None, wtest=None
) -> dict[int, KSResult]:
    """TMVA's overtraining check: per class, KS test of the score on training vs test events.

    A small p-value means the classifier scores its own training events differently from unseen
    ones of the same class, i.e. it learned fluctuations of the training sample.

    Args:
        train_score: scores of the training events, shape (n,), or (n, k) to test class c on
            column c (per-class probabilities or discriminants).
        train_y: integer class codes of the training events, shape (n,).
        test_score: scores of the test events, shape (m,) or (m, k).
        test_y: integer class codes of the test events, shape (m,).
        wtrain: weights of the training events, or None.
        wtest: weights of the test events, or None.

    Returns:
        dict mapping each class code present (in either sample) to its KSResult, in code order.

    Raises:
        DataError: non-integer codes, mismatched lengths, a class present in only one of the two
            samples, or a class whose total weight is <= 0 in either sample.
    """
    where = "overtraining_check"
    train_score, train_y = _scores_and_codes(train_score, train_y, "train", where)
    test_score, test_y = _scores_and_codes(test_score, test_y, "test", where)
    if train_score.ndim != test_score.ndim or train_score.shape[1:] != test_score.shape[1:]:
        raise DataError(
            f"train_score has shape {train_score.shape} but test_score has {test_score.shape}; "
            f"{where} needs the same score columns for both"
        )
    wtrain = _as_weights(wtrain, train_y.shape[0], where, name="wtrain", ref="train_y")
    wtest = _as_weights(wtest, test_y.shape[0], where, name="wtest", ref="test_y")

    results: dict[int, KSResult] = {}
    for code in np.union1d(train_y, test_y).tolist():
        in_train, in_test = train_y == code, test_y == code
        if not in_train.any() or not in_test.any():
            missing = "training" if not in_train.any() else "test"
            raise DataError(
                f"class {code} has no {missing} events in {where}; both samples need every class "
                "(check the split, or drop that class)"
            )
        if train_score.ndim == 2:
            if code >= train_score.shape[1]:
                raise DataError(
                    f"class code {code} has no score column: scores have {train_score.shape[1]}"
                )
            a, b = train_score[in_train, code], test_score[in_test, code]
        else:
            a, b = train_score[in_train], test_score[in_test]
        wa = None if wtrain is None else wtrain[in_train]
        wb = None if wtest is None else wtest[in_test]
        try:
            results[int(code)] = ks_2samp_weighted(a, b, wa, wb)
        except DataError as err:
            raise DataError(f"{where}, class {code}: {err}") from err
    return results


def _scores_and_codes(score, y, sample: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    codes = _as_1d(y, f"{sample}_y", where)
    if codes.dtype == np.bool_:
        codes = codes.astype(np.int64)
    if codes.dtype.kind not in "iu":
        raise DataError(
            f"{sample}_y passed to {where} has dtype {codes.dtype}; expected integer class codes "
            "(EventTable.labels() returns them)"
        )
    scores = np.asarray(score, dtype=np.float64)
    if scores.ndim not in (1, 2) or scores.shape[0] != codes.shape[0]:
        raise DataError(
            f"{sample}_score passed to {where} has shape {scores.shape} but {sample}_y has "
            f"{codes.shape[0]} entries; pass one score (or one row of scores) per event"
        )
    return scores, codes
