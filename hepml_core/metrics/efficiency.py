"""Efficiency, purity and significance of a cut on a score (TMVA's "cut efficiencies" view)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from hepml_core.exceptions import DataError
from hepml_core.metrics._validate import _as_binary, _as_scores, _as_weights
from hepml_core.metrics.threshold import ThresholdScan

__all__ = ["EffPurity", "efficiency_purity_f1", "cut_efficiency_table"]


class EffPurity(NamedTuple):
    """Signal efficiency (recall), purity (precision) and their harmonic mean F1."""

    efficiency: float
    purity: float
    f1: float


def efficiency_purity_f1(y_true_binary, score, threshold: float, sample_weight=None) -> EffPurity:
    """Weighted efficiency, purity and F1 of the selection ``score >= threshold``.

    Efficiency = selected signal weight / signal weight; purity = selected signal weight / selected
    weight; F1 = 2PE/(P+E). Like ``precision_recall_fscore_support(..., zero_division=0)``, purity
    is 0 when the selected weight is exactly 0 and F1 is 0 when P+E is 0.

    Args:
        y_true_binary: 1/True for signal, 0/False for background, shape (n,).
        score: per-event score, shape (n,).
        threshold: the cut value (events with ``score >= threshold`` are selected).
        sample_weight: per-event weights (may be negative), shape (n,), or None.

    Returns:
        EffPurity(efficiency, purity, f1) as Python floats.

    Raises:
        DataError: mismatched lengths, non-binary labels, NaN threshold, or signal total weight <= 0
            (the efficiency's denominator).
    """
    where = "efficiency_purity_f1"
    signal = _as_binary(y_true_binary, where, name="y_true_binary")
    n = signal.shape[0]
    scores = _as_scores(score, n, where, ref="y_true_binary")
    weights = _as_weights(sample_weight, n, where, ref="y_true_binary")
    try:
        t = float(threshold)
    except (TypeError, ValueError) as err:
        raise DataError(f"threshold passed to {where} must be one number, got {threshold!r}") from err
    if t != t:
        raise DataError(f"threshold passed to {where} is NaN; pass a real number")
    selected = scores >= t
    if weights is None:
        signal_total = float(np.count_nonzero(signal))
        selected_signal = float(np.count_nonzero(selected & signal))
        selected_total = float(np.count_nonzero(selected))
    else:
        signal_total = float(weights[signal].sum())
        selected_signal = float(weights[selected & signal].sum())
        selected_total = float(weights[selected].sum())
    if not np.isfinite(signal_total) or signal_total <= 0:
        raise DataError(
            f"total signal weight passed to {where} is {signal_total:g}; it must be positive "
            "because the efficiency is divided by it (are there signal events with y_true == 1?)"
        )
    efficiency = selected_signal / signal_total
    purity = selected_signal / selected_total if selected_total != 0 else 0.0
    f1 = 2 * purity * efficiency / (purity + efficiency) if purity + efficiency != 0 else 0.0
    return EffPurity(efficiency=efficiency, purity=purity, f1=f1)


def cut_efficiency_table(
    scan: ThresholdScan,
    signal_class,
    thresholds,
    n_signal: float | None = None,
    n_background: float | None = None,
) -> pd.DataFrame:
    """Signal/background efficiency, purity and s/sqrt(s+b) at each threshold, from a scan.

    Background is every class other than ``signal_class``. Yields ``s`` and ``b`` are the weighted
    yields above the cut; when ``n_signal`` / ``n_background`` are given they are rescaled so that
    the totals equal those expected numbers (``s = signal_eff * n_signal``), as TMVA does.

    Args:
        scan: a ThresholdScan of the score.
        signal_class: the label (an entry of ``scan.classes_``) that is signal; with
            ``n_classes`` given to the scan, labels are the codes 0..k-1.
        thresholds: cut values, shape (m,).
        n_signal: expected number of signal events before the cut, or None for the weighted total.
        n_background: expected number of background events before the cut, or None.

    Returns:
        DataFrame with one row per threshold and columns ``threshold, signal_eff, background_eff,
        purity, s, b, significance``. Purity and significance are 0 where ``s + b <= 0``.

    Raises:
        DataError: unknown signal class, no background class, a total (signal or background) weight
            <= 0, a negative expected number, or NaN thresholds.
    """
    matches = np.flatnonzero(scan.classes_ == signal_class)
    if matches.size != 1:
        raise DataError(
            f"signal_class {signal_class!r} is not one of the scan's classes "
            f"{scan.classes_.tolist()}; pass one of them"
        )
    if scan.classes_.shape[0] < 2:
        raise DataError("cut_efficiency_table needs a background class; the scan has one class only")
    sig = int(matches[0])
    ts = np.asarray(thresholds, dtype=np.float64).ravel()
    yields = scan.yields_above_many(ts)
    s_raw = yields[:, sig]
    b_raw = yields.sum(axis=1) - s_raw
    s_total = float(scan.totals_[sig])
    b_total = float(scan.totals_.sum() - s_total)
    for total, name in ((s_total, "signal"), (b_total, "background")):
        if total <= 0:
            raise DataError(
                f"total {name} weight in the scan is {total:g}; it must be positive because "
                "efficiencies are divided by it"
            )
    signal_eff = s_raw / s_total
    background_eff = b_raw / b_total
    s = _scaled(s_raw, signal_eff, n_signal, "n_signal")
    b = _scaled(b_raw, background_eff, n_background, "n_background")
    total = s + b
    positive = total > 0
    safe = np.where(positive, total, 1.0)  # avoids 0/0 warnings; those rows are set to 0 below
    purity = np.where(positive, s / safe, 0.0)
    significance = np.where(positive, s / np.sqrt(safe), 0.0)
    return pd.DataFrame(
        {
            "threshold": ts,
            "signal_eff": signal_eff,
            "background_eff": background_eff,
            "purity": purity,
            "s": s,
            "b": b,
            "significance": significance,
        }
    )


def _scaled(raw: np.ndarray, eff: np.ndarray, expected: float | None, name: str) -> np.ndarray:
    if expected is None:
        return raw
    expected = float(expected)
    if not np.isfinite(expected) or expected < 0:
        raise DataError(f"{name} must be a non-negative number of expected events, got {expected!r}")
    return eff * expected
