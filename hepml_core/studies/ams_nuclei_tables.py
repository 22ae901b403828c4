"""The nuclei study's evaluation tables: domain accuracy, AUC, efficiency at thresholds, L1 charge, below-L1.

Everything is computed for the adversarial and the plain network side by side, per selection (Si, P,
S and all together) and per domain; data-domain numbers use the simulator's hidden truth, which a real
analysis never has. The same functions feed the CSV files of ``hepml study ams-nuclei``, the static
report and the app. Weighted statistics throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hepml_core.io.write import write_csv_atomic
from hepml_core.metrics.roc import roc_auc
from hepml_core.simulate.ams_nuclei import SELECTIONS
from hepml_core.studies.ams_nuclei import MODELS, AmsNucleiResult

__all__ = ["SELECTION_NAMES", "DOMAINS", "species_groups", "domain_table", "auc_table", "efficiency_scan",
           "efficiency_table", "l1_window", "variable_histograms", "below_l1_table", "write_tables"]

SELECTION_NAMES = (*SELECTIONS, "all")
DOMAINS = ("mc", "data")
_L1_HALF_WIDTH = 0.5  # e: the L1 charge cut range around the selected charge


def _rows(frame: pd.DataFrame, selection: str, domain: str) -> pd.DataFrame:
    keep = frame["domain"] == domain
    if selection != "all":
        keep &= frame["selection"] == selection
    return frame[keep]


def species_groups(frame: pd.DataFrame) -> np.ndarray:
    """A stacking label per event: "P signal", "S above L1", "S below L1"... (true species and category)."""
    category = frame["true_category"].map({"signal": "signal", "above_l1": "above L1", "below_l1": "below L1"})
    return (frame["true_species"].astype(str) + " " + category.astype(str)).to_numpy()


def domain_table(result: AmsNucleiResult) -> pd.DataFrame:
    """MC-vs-data accuracy on each model's learned features, measured two ways (0.5: the domains look alike).

    ``domain_accuracy`` is a fresh probe classifier trained on the frozen features of half the held-out
    events and scored on the other half (equal MC and data counts); ``domain_head_accuracy`` is the
    adversarial model's own domain head on all held-out events, MC and data weighing the same (the
    talk's number; the plain model has no head, NaN). The head was trained to be fooled, so the probe
    is the stricter judge.
    """
    head = [result.domain_head_accuracy if m == "adversarial" else float("nan") for m in MODELS]
    return pd.DataFrame({"model": list(MODELS), "domain_accuracy": [result.domain_accuracy[m] for m in MODELS],
                         "domain_head_accuracy": head})


def auc_table(result: AmsNucleiResult) -> pd.DataFrame:
    """Weighted signal/background AUC per model, selection and domain (data: hidden truth)."""
    rows = []
    for model in MODELS:
        for selection in SELECTION_NAMES:
            for domain in DOMAINS:
                sub = _rows(result.frame, selection, domain)
                y = (sub["true_label"] == "signal").to_numpy()
                auc = (roc_auc(y, sub[f"score_{model}"].to_numpy(), sample_weight=sub["weight"].to_numpy())
                       if y.any() and (~y).any() else float("nan"))
                rows.append({"model": model, "selection": selection, "domain": domain, "auc": auc})
    return pd.DataFrame(rows)


def _pass_fractions(score: np.ndarray, signal: np.ndarray, w: np.ndarray, thresholds: np.ndarray):
    """Signal efficiency and background fraction among passing events (score >= t) for many t at once."""
    order = np.argsort(score)
    s_sorted = score[order]
    ws = np.where(signal[order], w[order], 0.0)
    wb = np.where(signal[order], 0.0, w[order])
    # Suffix sums: the weight of events at or above each sorted position; one binary search per t.
    sig_above = np.append(np.cumsum(ws[::-1])[::-1], 0.0)
    bkg_above = np.append(np.cumsum(wb[::-1])[::-1], 0.0)
    pos = np.searchsorted(s_sorted, thresholds, side="left")
    s, b = sig_above[pos], bkg_above[pos]
    eff = s / sig_above[0] if sig_above[0] > 0 else np.full(len(pos), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(s + b > 0, b / (s + b), np.nan)
    return eff, frac


def efficiency_scan(result: AmsNucleiResult, thresholds: Sequence[float]) -> pd.DataFrame:
    """Signal efficiency and background fraction per model, selection, domain and threshold.

    Returns:
        Long table: model, selection, domain, threshold, signal_efficiency, background_fraction (the
        weighted share of background among the events with score >= threshold).
    """
    t = np.asarray(thresholds, dtype=np.float64)
    parts = []
    for model in MODELS:
        for selection in SELECTION_NAMES:
            for domain in DOMAINS:
                sub = _rows(result.frame, selection, domain)
                signal = (sub["true_label"] == "signal").to_numpy()
                eff, frac = _pass_fractions(sub[f"score_{model}"].to_numpy(), signal, sub["weight"].to_numpy(), t)
                parts.append(pd.DataFrame({"model": model, "selection": selection, "domain": domain, "threshold": t,
                                           "signal_efficiency": eff, "background_fraction": frac}))
    return pd.concat(parts, ignore_index=True)


def efficiency_table(result: AmsNucleiResult, thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """:func:`efficiency_scan` at the study's thresholds (0.5 and two others)."""
    return efficiency_scan(result, result.thresholds if thresholds is None else thresholds)


def l1_window(frame: pd.DataFrame, selection: str) -> tuple[float, float]:
    """The L1 charge cut range of a selection, calibrated on the sample itself.

    Every selected event, signal or fragment, has the selected charge in the inner tracker, so the
    median inner charge over the nominal Z measures the sample's charge scale (data differ from MC);
    the range is Z +/- 0.5 e on that scale.
    """
    z = SELECTIONS[selection]
    sub = frame[frame["selection"] == selection]
    scale = float(np.median(sub["inner_charge"].to_numpy())) / z if len(sub) else 1.0
    return scale * (z - _L1_HALF_WIDTH), scale * (z + _L1_HALF_WIDTH)


def variable_histograms(result: AmsNucleiResult, model: str, threshold: float, *, variable: str = "l1_charge",
                        bins: int = 60, value_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """Weighted histograms of ``variable`` before and after the cut ``score_model >= threshold``.

    Returns:
        Long table: selection, domain, stage ("before"/"after"), group (species and category), bin_low,
        bin_high, weighted_events.
    """
    frame = result.frame
    values = frame[variable].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = value_range or ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    groups = species_groups(frame)
    passed = frame[f"score_{model}"].to_numpy() >= threshold
    parts = []
    for selection in SELECTION_NAMES:
        for domain in DOMAINS:
            base = (frame["domain"] == domain).to_numpy()
            if selection != "all":
                base = base & (frame["selection"] == selection).to_numpy()
            for stage, mask in (("before", base), ("after", base & passed)):
                for group in np.unique(groups[base]):
                    sel = mask & (groups == group)
                    counts, _ = np.histogram(values[sel], bins=edges, weights=frame["weight"].to_numpy()[sel])
                    parts.append(pd.DataFrame({"selection": selection, "domain": domain, "stage": stage,
                                               "group": group, "bin_low": edges[:-1], "bin_high": edges[1:],
                                               "weighted_events": counts}))
    return pd.concat(parts, ignore_index=True)


def below_l1_table(result: AmsNucleiResult, thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """Below-L1 background fraction in the L1 cut range before and after each ML cut.

    Returns:
        model, selection, domain, threshold, l1_low, l1_high, below_l1_before, below_l1_after (weighted
        fraction of events fragmented below L1 among the events in the range), signal_efficiency (of
        the ML cut within the range).
    """
    thresholds = result.thresholds if thresholds is None else thresholds
    rows = []
    for selection in SELECTIONS:
        for domain in DOMAINS:
            sub = _rows(result.frame, selection, domain)
            lo, hi = l1_window(sub, selection)
            sub = sub[(sub["l1_charge"] >= lo) & (sub["l1_charge"] < hi)]
            w = sub["weight"].to_numpy()
            below = (sub["true_category"] == "below_l1").to_numpy()
            signal = (sub["true_label"] == "signal").to_numpy()
            before = float(w[below].sum() / w.sum()) if w.sum() > 0 else float("nan")
            for model in MODELS:
                score = sub[f"score_{model}"].to_numpy()
                for t in thresholds:
                    keep = score >= t
                    wk = w[keep].sum()
                    rows.append({"model": model, "selection": selection, "domain": domain, "threshold": float(t),
                                 "l1_low": lo, "l1_high": hi, "below_l1_before": before,
                                 "below_l1_after": float(w[keep & below].sum() / wk) if wk > 0 else float("nan"),
                                 "signal_efficiency": float(w[keep & signal].sum() / w[signal].sum())
                                 if w[signal].sum() > 0 else float("nan")})
    return pd.DataFrame(rows)


def write_tables(result: AmsNucleiResult, out_dir: str | Path) -> list[Path]:
    """Write domain.csv, auc.csv, efficiency.csv, below_l1.csv and l1_charge.csv (atomically each)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    l1 = pd.concat([variable_histograms(result, m, 0.5, value_range=(12.0, 19.0), bins=70).assign(model=m)
                    for m in MODELS], ignore_index=True)
    tables = {"domain.csv": domain_table(result), "auc.csv": auc_table(result),
              "efficiency.csv": efficiency_table(result), "below_l1.csv": below_l1_table(result),
              "l1_charge.csv": l1[["model", *[c for c in l1.columns if c != "model"]]]}
    paths = []
    for name, table in tables.items():
        write_csv_atomic(table, out / name)
        paths.append(out / name)
    return paths
