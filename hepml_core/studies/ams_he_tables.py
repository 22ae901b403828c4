"""The He study's evaluation tables: ROC, migration matrices at anomaly thresholds, discriminant summary.

The same functions feed the CSV files of ``hepml study ams-he``, the static report and the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hepml_core.io.write import write_csv_atomic
from hepml_core.metrics.migration import migration_matrix, migration_uncertainty
from hepml_core.metrics.roc import one_vs_rest, roc_auc
from hepml_core.studies.ams_he import AmsHeResult

__all__ = ["mc_rows", "roc_table", "auc_table", "migration_table", "discriminant_summary", "write_tables"]


def mc_rows(result: AmsHeResult) -> pd.DataFrame:
    """Test-MC rows (the labelled events the classifier never saw)."""
    return result.frame[result.frame["sample"] == "mc"]


def _codes(labels: pd.Series, class_names: Sequence[str]) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(class_names)}
    return labels.map(lookup).to_numpy(dtype=np.int64)


def roc_table(result: AmsHeResult) -> pd.DataFrame:
    """One-vs-rest ROC of each discriminant D_k on test MC (weighted): class, fpr, tpr, threshold."""
    mc = mc_rows(result)
    y = _codes(mc["label"], result.class_names)
    scores = mc[[f"D_{c}" for c in result.class_names]].to_numpy()
    parts = []
    for name, curve in zip(result.class_names, one_vs_rest(y, scores, sample_weight=mc["weight"].to_numpy())):
        parts.append(pd.DataFrame({"class": name, "fpr": curve.fpr, "tpr": curve.tpr, "threshold": curve.thresholds}))
    return pd.concat(parts, ignore_index=True)


def auc_table(result: AmsHeResult) -> pd.DataFrame:
    """Weighted one-vs-rest AUC of each discriminant on test MC."""
    mc = mc_rows(result)
    y = _codes(mc["label"], result.class_names)
    w = mc["weight"].to_numpy()
    rows = [{"class": name, "auc": roc_auc(y == k, mc[f"D_{name}"].to_numpy(), sample_weight=w)}
            for k, name in enumerate(result.class_names)]
    return pd.DataFrame(rows)


def migration_table(result: AmsHeResult, thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """MC migration matrices (true x predicted class) for events with anomaly score >= each threshold.

    Returns:
        Long table: threshold, true_class, predicted_class, weighted_events, uncertainty, row_fraction.
    """
    thresholds = result.settings.thresholds if thresholds is None else thresholds
    mc = mc_rows(result)
    y = _codes(mc["label"], result.class_names)
    pred = result.proba[result.frame["sample"].to_numpy() == "mc"].argmax(axis=1)
    w = mc["weight"].to_numpy()
    anomaly = mc["anomaly"].to_numpy()
    k = len(result.class_names)
    rows = []
    for t in thresholds:
        keep = anomaly >= t
        m = migration_matrix(y[keep], pred[keep], k, sample_weight=w[keep])
        u = migration_uncertainty(y[keep], pred[keep], k, sample_weight=w[keep])
        row_sum = m.sum(axis=1, keepdims=True)
        frac = np.divide(m, row_sum, out=np.zeros_like(m), where=row_sum > 0)
        for i in range(k):
            for j in range(k):
                rows.append({"threshold": t, "true_class": result.class_names[i],
                             "predicted_class": result.class_names[j], "weighted_events": m[i, j],
                             "uncertainty": u[i, j], "row_fraction": frac[i, j]})
    return pd.DataFrame(rows)


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(cw, q * cw[-1]), len(x) - 1)])


def discriminant_summary(result: AmsHeResult) -> pd.DataFrame:
    """Per discriminant and true MC class: weighted events, mean, std, median and the fraction with D > 0."""
    mc = mc_rows(result)
    rows = []
    for d_name in result.class_names:
        for true in result.class_names:
            sel = mc[mc["label"] == true]
            if sel.empty:
                continue
            x = sel[f"D_{d_name}"].to_numpy()
            w = sel["weight"].to_numpy()
            mean = float(np.average(x, weights=w))
            rows.append({
                "discriminant": f"D_{d_name}", "true_class": true, "weighted_events": float(w.sum()),
                "mean": mean, "std": float(np.sqrt(np.average((x - mean) ** 2, weights=w))),
                "median": _weighted_quantile(x, w, 0.5), "fraction_positive": float(w[x > 0].sum() / w.sum()),
            })
    return pd.DataFrame(rows)


def write_tables(result: AmsHeResult, out_dir: str | Path) -> list[Path]:
    """Write roc.csv, auc.csv, migration.csv and discriminants.csv into ``out_dir`` (atomically each)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"roc.csv": roc_table(result), "auc.csv": auc_table(result),
              "migration.csv": migration_table(result), "discriminants.csv": discriminant_summary(result)}
    paths = []
    for name, table in tables.items():
        write_csv_atomic(table, out / name)
        paths.append(out / name)
    return paths
