"""The alice-pid study's tables: purity, efficiency and F1 per method and species, ROC, missing patterns.

``MetricScans`` sorts every (method, species, subset) score once, so purity/efficiency/F1 at any new
threshold cost a binary search each (the app's slider); the CSV writers and the report use it too.
The n-sigma selection is a fixed cut (n < 3, i.e. score >= 0.5) whatever the threshold: the
threshold is the learned models' "certainty" cut. With repeated trainings (``settings.repeats``)
``repeat_table`` has the metrics of every repeat and ``spread_table`` their mean and standard
deviation (the talk's "98.50 +- 0.02").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from hepml_core.io.write import write_csv_atomic
from hepml_core.metrics.roc import roc_auc, roc_curve
from hepml_core.metrics.threshold import ThresholdScan
from hepml_core.studies.alice_pid import AlicePidResult

__all__ = ["NSIGMA_THRESHOLD", "SUBSETS", "MetricScans", "metrics_table", "repeat_table", "spread_table",
           "roc_table", "auc_table", "pattern_table", "write_tables", "table_names"]

NSIGMA_THRESHOLD = 0.5  # score 1 - n/6 >= 0.5 <=> n < 3
SUBSETS = ("all", "complete")


def _prf(signal_above: np.ndarray, total_above: np.ndarray, signal_total: float):
    eff = np.divide(signal_above, signal_total, out=np.full_like(signal_above, np.nan), where=signal_total > 0)
    pur = np.divide(signal_above, total_above, out=np.zeros_like(signal_above), where=total_above > 0)
    den = pur + eff
    f1 = np.divide(2 * pur * eff, den, out=np.zeros_like(den), where=den > 0)
    return pur, eff, f1


class MetricScans:
    """Precomputed threshold scans of every method, species and subset of one result.

    Args:
        result: the study result.
        rows: optional boolean mask of test tracks to use (e.g. one missing pattern).
    """

    def __init__(self, result: AlicePidResult, rows: np.ndarray | None = None) -> None:
        frame = result.frame if rows is None else result.frame[rows]
        self.methods, self.species = result.methods, result.species
        w = frame["weight"].to_numpy(np.float64)
        complete = frame["complete"].to_numpy(bool)
        self._scans: dict[tuple[str, str, str], ThresholdScan | None] = {}
        for s in self.species:
            y = (frame["label"] == s).to_numpy().astype(np.int64)
            for m in self.methods:
                score = frame[f"score_{m}_{s}"].to_numpy(np.float64)
                for subset in SUBSETS:
                    keep = np.isfinite(score) & (complete if subset == "complete" else True)
                    # case deletion cannot score incomplete tracks: it has no "all" row (as in the talk)
                    usable = keep.any() and (m != "case_deletion" or subset == "complete")
                    self._scans[(m, s, subset)] = (ThresholdScan(score[keep], y[keep], w[keep], n_classes=2)
                                                   if usable else None)

    def at(self, threshold: float) -> pd.DataFrame:
        """method, species, subset, purity, efficiency, f1, n_tracks at ``threshold`` (n-sigma: fixed cut)."""
        rows = []
        for (m, s, subset), scan in self._scans.items():
            if scan is None:
                continue
            t = NSIGMA_THRESHOLD if m == "nsigma" else threshold
            above = scan.yields_above(t)
            pur, eff, f1 = _prf(np.array([above[1]]), np.array([above.sum()]), float(scan.totals_[1]))
            rows.append({"method": m, "species": s, "subset": subset, "purity": float(pur[0]),
                         "efficiency": float(eff[0]), "f1": float(f1[0]), "n_tracks": float(scan.totals_.sum())})
        return pd.DataFrame(rows, columns=["method", "species", "subset", "purity", "efficiency", "f1", "n_tracks"])


def metrics_table(result: AlicePidResult, threshold: float | None = None) -> pd.DataFrame:
    """Purity, efficiency and F1 = 2PE/(P+E) per method, species and subset (all / complete tracks)."""
    return MetricScans(result).at(result.threshold if threshold is None else threshold)


def repeat_table(result: AlicePidResult, threshold: float | None = None) -> pd.DataFrame:
    """:func:`metrics_table` of every repeated training, stacked with a ``repeat`` column (0, 1, ...)."""
    parts = []
    for r in range(result.repeats):
        frame = result.frame
        if r:  # the repeat's scores under the names MetricScans reads
            cols = {result.score_column(m, s, r): result.score_column(m, s) for m in result.methods
                    for s in result.species if m != "nsigma"}
            frame = frame.drop(columns=list(cols.values())).rename(columns=cols)
        parts.append(metrics_table(replace(result, frame=frame), threshold).assign(repeat=r))
    return pd.concat(parts, ignore_index=True)


def spread_table(result: AlicePidResult, threshold: float | None = None) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1; NaN with one repeat) of purity, efficiency and F1 over repeats.

    Returns:
        method, species, subset, purity_mean, purity_std, efficiency_mean, efficiency_std, f1_mean,
        f1_std, n_repeats (rows in ``metrics_table`` order).
    """
    table = repeat_table(result, threshold)
    keys = ["method", "species", "subset"]
    grouped = table.groupby(keys, sort=False)[["purity", "efficiency", "f1"]]
    mean, std = grouped.mean(), grouped.std(ddof=1)
    out = pd.DataFrame(index=mean.index)
    for col in ("purity", "efficiency", "f1"):
        out[f"{col}_mean"], out[f"{col}_std"] = mean[col], std[col]
    out["n_repeats"] = table.groupby(keys, sort=False).size()
    return out.reset_index()


def roc_table(result: AlicePidResult, max_points: int = 300) -> pd.DataFrame:
    """One-vs-all ROC of every method and species on all test tracks (complete ones for case deletion).

    Returns:
        method, species, fpr, tpr, threshold; at most ``max_points`` points per curve (evenly in the
        curve's index, first and last kept).
    """
    parts = []
    w = result.frame["weight"].to_numpy(np.float64)
    for s in result.species:
        y = result.truth(s)
        for m in result.methods:
            score = result.score(m, s)
            keep = np.isfinite(score)
            if not keep.any() or y[keep].all() or not y[keep].any():
                continue
            curve = roc_curve(y[keep], score[keep], sample_weight=w[keep])
            idx = np.unique(np.linspace(0, len(curve.fpr) - 1, min(max_points, len(curve.fpr))).astype(int))
            parts.append(pd.DataFrame({"method": m, "species": s, "fpr": curve.fpr[idx], "tpr": curve.tpr[idx],
                                       "threshold": curve.thresholds[idx]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["method", "species", "fpr", "tpr", "threshold"])


def auc_table(result: AlicePidResult) -> pd.DataFrame:
    """Weighted one-vs-all ROC AUC per method and species (tracks the method can score)."""
    rows = []
    w = result.frame["weight"].to_numpy(np.float64)
    for s in result.species:
        y = result.truth(s)
        for m in result.methods:
            score = result.score(m, s)
            keep = np.isfinite(score)
            if keep.any() and y[keep].any() and not y[keep].all():
                rows.append({"method": m, "species": s, "auc": roc_auc(y[keep], score[keep], sample_weight=w[keep])})
    return pd.DataFrame(rows, columns=["method", "species", "auc"])


def pattern_table(result: AlicePidResult, threshold: float | None = None,
                  patterns: Sequence[str] | None = None) -> pd.DataFrame:
    """Purity, efficiency and F1 per missing-signal pattern, method and species (subset "all" of the pattern)."""
    t = result.threshold if threshold is None else threshold
    parts = []
    pattern = result.frame["pattern"].astype(str).to_numpy()
    for name in patterns or result.patterns:
        rows = pattern == name
        table = MetricScans(result, rows).at(t)
        table = table[table["subset"] == ("complete" if name == "complete" else "all")].drop(columns="subset")
        parts.append(table.assign(pattern=name))
    cols = ["pattern", "method", "species", "purity", "efficiency", "f1", "n_tracks"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def table_names(result: AlicePidResult) -> dict[str, str]:
    """File names of the tables: ``pid_metrics.csv`` etc., ``_real`` before the suffix for the real sample."""
    tag = "_real" if result.sample == "real" else ""
    return {k: f"pid_{k}{tag}.csv" for k in ("metrics", "spread", "roc", "auc", "patterns")}


def write_tables(result: AlicePidResult, out_dir: str | Path) -> list[Path]:
    """Write pid_metrics(.csv|_real.csv), pid_spread, pid_roc, pid_auc and pid_patterns into ``out_dir``.

    ``pid_spread`` holds the mean and standard deviation over repeated trainings (one repeat: std NaN).
    Each file is written atomically.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = table_names(result)
    tables = {names["metrics"]: metrics_table(result), names["spread"]: spread_table(result),
              names["roc"]: roc_table(result),
              names["auc"]: auc_table(result), names["patterns"]: pattern_table(result)}
    paths = []
    for name, table in tables.items():
        write_csv_atomic(table, out / name)
        paths.append(out / name)
    return paths
