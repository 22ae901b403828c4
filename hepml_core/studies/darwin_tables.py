"""The DARWIN study's statistics and tables: classifier figures, TS = -ELBO + R H_B, p-value vs R, baseline.

The p-value machinery works on plain arrays so the study run, the tables, the report and the app's
sliders share it:

* ``anomaly_function(neg_elbo, h_b, R)``: the talk's anomaly function per event.
* ``pvalue_at``: fit f0 on the null-fit ER pool above a TS cut (a quantile of the null), then the
  extended unbinned H0 likelihood of background-only and signal-injected pseudo-experiments drawn from
  the null-toy ER pool and a WIMP pool; the median p-value of the injected toys.
* ``baseline_pvalue``: the same test with the classical analysis' score, -log of a 2-D (cS1, log10 cS2)
  ER template density, in place of TS.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hepml_core.io.write import write_csv_atomic
from hepml_core.metrics.likelihood import (
    fit_null_density,
    fit_template_density_2d,
    pvalues,
    toy_log_likelihoods,
)
from hepml_core.metrics.roc import roc_auc, roc_curve

if TYPE_CHECKING:  # the recipe module imports this one; a runtime import would be a cycle
    from hepml_core.studies.darwin import DarwinResult

__all__ = ["anomaly_function", "classifier_metrics", "roc_table", "PValuePoint", "pvalue_at", "pvalue_scan",
           "template_statistic", "baseline_pvalue", "optimum_table", "pseudo_data", "write_tables"]


def anomaly_function(neg_elbo, h_b, r: float) -> np.ndarray:
    """TS = -ELBO + R * H_B per event (H_B = -log(1 - p_NR), the classifier's binary cross-entropy)."""
    return np.asarray(neg_elbo, dtype=np.float64) + float(r) * np.asarray(h_b, dtype=np.float64)


def classifier_metrics(is_nr, p_nr, weight=None, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, recall, precision (NR positive, p_NR >= threshold) and ROC AUC, weighted."""
    y = np.asarray(is_nr, dtype=bool)
    p = np.asarray(p_nr, dtype=np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    pred = p >= threshold
    tp = w[pred & y].sum()
    return {
        "accuracy": float(w[pred == y].sum() / w.sum()),
        "recall": float(tp / w[y].sum()) if w[y].sum() > 0 else float("nan"),
        "precision": float(tp / w[pred].sum()) if w[pred].sum() > 0 else float("nan"),
        "auc": float(roc_auc(y, p, sample_weight=w)),
        "n_test": int(len(y)),
    }


def roc_table(is_nr, p_nr, weight=None) -> pd.DataFrame:
    """ROC of the ER-vs-NR classifier (NR positive): fpr, tpr, threshold."""
    curve = roc_curve(np.asarray(is_nr, dtype=bool), np.asarray(p_nr), sample_weight=weight)
    return pd.DataFrame({"fpr": curve.fpr, "tpr": curve.tpr, "threshold": curve.thresholds})


class PValuePoint(dict):
    """One (R, mass, strength) result: median_p_value, expected counts above the cut, the cut, toys."""


def pvalue_at(null_fit: np.ndarray, null_toy: np.ndarray, signal: np.ndarray, *, background_total: float,
              signal_total: float, cut_quantile: float | None, method: str, n_toys: int, n_signal_toys: int,
              rng: np.random.Generator) -> PValuePoint:
    """Median p-value of H0 for signal-injected pseudo-experiments, with a 1-D null density of TS.

    Args:
        null_fit: TS of the ER events that f0 (and the cut) is fitted on.
        null_toy: TS of independent ER events that background toys are drawn from.
        signal: TS of signal (WIMP) events.
        background_total: expected ER events of the exposure (after the triggers, before the cut).
        signal_total: expected signal events (after the triggers, before the cut).
        cut_quantile: the TS cut as a quantile of ``null_fit`` (None: no cut).
        method: f0 estimate, "kde" or "histogram".
        n_toys: background-only pseudo-experiments (null distribution of the statistic).
        n_signal_toys: signal-injected pseudo-experiments.
        rng: numpy Generator.

    Returns:
        A PValuePoint with ``median_p_value`` (Gaussian null tail), ``median_p_value_empirical``,
        ``ts_cut``, ``expected_background`` and ``expected_signal`` above the cut.
    """
    cut = None if cut_quantile is None else float(np.quantile(null_fit, cut_quantile))
    f0 = fit_null_density(null_fit, method=method, threshold=cut)
    lower = f0.lower
    b_cut = background_total * f0.fraction_above
    b_toy = background_total * float(np.mean(null_toy >= lower))
    s_cut = signal_total * float(np.mean(signal >= lower)) if len(signal) else 0.0
    null_stats = toy_log_likelihoods(b_cut, f0, [(null_toy, b_toy)], n_toys, rng)
    sig_stats = toy_log_likelihoods(b_cut, f0, [(null_toy, b_toy), (signal, s_cut)], n_signal_toys, rng)
    return PValuePoint(
        median_p_value=float(np.median(pvalues(sig_stats, null_stats, method="gaussian"))),
        median_p_value_empirical=float(np.median(pvalues(sig_stats, null_stats, method="empirical"))),
        ts_cut=float(lower), expected_background=float(b_cut), expected_signal=float(s_cut),
    )


def pvalue_scan(pools: dict[str, np.ndarray], r_values: Sequence[float], masses: Sequence[float], *,
                background_total: float, signal_totals: dict[float, float], strength: float = 1.0,
                cut_quantile: float | None = 0.99, method: str = "kde", n_toys: int = 1000,
                n_signal_toys: int = 300, seed: int = 1) -> pd.DataFrame:
    """Median p-value of H0 vs R for each WIMP mass (the talk's backup figure).

    Args:
        pools: per-event arrays ``neg_elbo_<pool>`` and ``h_b_<pool>`` for pools ``null_fit``,
            ``null_toy`` and ``wimp<mass>``.
        r_values: R values to scan.
        masses: WIMP masses (GeV).
        background_total: expected ER events (after the triggers).
        signal_totals: expected WIMP events per mass at strength 1.
        strength: multiplier of the signal (cross-section proxy).
        cut_quantile, method, n_toys, n_signal_toys: see ``pvalue_at``.
        seed: seeds the pseudo-experiments (each (R, mass) point gets its own stream).

    Returns:
        One row per (wimp_mass, R): median_p_value, median_p_value_empirical, ts_cut,
        expected_background, expected_signal.
    """
    rows = []
    for i, r in enumerate(r_values):
        ts = {name: anomaly_function(pools[f"neg_elbo_{name}"], pools[f"h_b_{name}"], r)
              for name in ["null_fit", "null_toy", *(f"wimp{int(m)}" for m in masses)]}
        for j, mass in enumerate(masses):
            rng = np.random.default_rng([seed, i, j])
            point = pvalue_at(ts["null_fit"], ts["null_toy"], ts[f"wimp{int(mass)}"],
                              background_total=background_total, signal_total=strength * signal_totals[mass],
                              cut_quantile=cut_quantile, method=method, n_toys=n_toys,
                              n_signal_toys=n_signal_toys, rng=rng)
            rows.append({"wimp_mass": float(mass), "R": float(r), **point})
    return pd.DataFrame(rows)


def template_statistic(train: tuple[np.ndarray, np.ndarray], *others: tuple[np.ndarray, np.ndarray],
                       bins: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The classical analysis' per-event score: -log f_ER(cS1, log10 cS2) of a 2-D ER template.

    Args:
        train: (cS1 [PE], log10 cS2 [PE]) of the ER events the template is filled with.
        *others: further (cS1, log10 cS2) pairs to score.
        bins: template bins per axis; None: sqrt(n_train / 8) clipped to 10..50, so that small samples do
            not leave most cells at the empty-cell floor (which would give many events the same score).

    Returns:
        One array of scores per pair in ``others`` (the role TS plays for the networks).
    """
    x_all = np.concatenate([train[0], *(o[0] for o in others)])
    y_all = np.concatenate([train[1], *(o[1] for o in others)])
    ranges = ((0.0, float(np.quantile(x_all, 0.999))), (float(y_all.min()), float(y_all.max())))
    if bins is None:
        side = int(np.clip(np.sqrt(len(train[0]) / 8), 10, 50))
        bins = (side, side)
    template = fit_template_density_2d(train[0], train[1], bins=bins, ranges=ranges)
    return [-template.logpdf(*o) for o in others]


def baseline_pvalue(train, null_fit, null_toy, signal, *, background_total: float, signal_total: float,
                    cut_quantile: float | None, method: str, n_toys: int, n_signal_toys: int,
                    rng: np.random.Generator) -> PValuePoint:
    """Median p-value of the classical (cS1, cS2) analysis, tested exactly like TS.

    The 2-D ER template is filled with ``train`` (as the VAE is trained on labelled ER), each event's
    score is -log f_ER(cS1, log10 cS2), and ``pvalue_at`` does the rest (same cut quantile, f0 method and
    pseudo-experiments). Arguments are (cS1, log10 cS2) pairs; the rest as in ``pvalue_at``.
    """
    ts_fit, ts_toy, ts_sig = template_statistic(train, null_fit, null_toy, signal)
    return pvalue_at(ts_fit, ts_toy, ts_sig, background_total=background_total, signal_total=signal_total,
                     cut_quantile=cut_quantile, method=method, n_toys=n_toys, n_signal_toys=n_signal_toys,
                     rng=rng)


def optimum_table(pvalue_frame: pd.DataFrame) -> pd.DataFrame:
    """Per WIMP mass: the R with the smallest median p-value, and the p-values at both ends of the scan."""
    rows = []
    for mass, grp in pvalue_frame.groupby("wimp_mass"):
        grp = grp.sort_values("R")
        best = grp.loc[grp["median_p_value"].idxmin()]
        rows.append({"wimp_mass": float(mass), "R_optimal": float(best["R"]),
                     "median_p_value_optimal": float(best["median_p_value"]),
                     "median_p_value_vae_only": float(grp.iloc[0]["median_p_value"]),
                     "median_p_value_classifier_end": float(grp.iloc[-1]["median_p_value"])})
    return pd.DataFrame(rows)


def pseudo_data(frame: pd.DataFrame, *, background_total: float, signal_total: float, mass: float,
                rng: np.random.Generator) -> pd.DataFrame:
    """One pseudo-experiment ("data"): Poisson(B) null-toy ER events plus Poisson(S) WIMP events."""
    bg = frame[frame["pool"] == "null_toy"]
    sig = frame[frame["pool"] == f"wimp{int(mass)}"]
    n_b, n_s = rng.poisson(background_total), rng.poisson(signal_total)
    parts = [bg.iloc[rng.integers(0, len(bg), n_b)]]
    if len(sig) and n_s:
        parts.append(sig.iloc[rng.integers(0, len(sig), n_s)])
    return pd.concat(parts, ignore_index=True)


def write_tables(result: DarwinResult, out_dir: str | Path) -> list[Path]:
    """Write classifier.csv, roc.csv, pvalue_vs_R.csv, optimum.csv, baseline.csv and ppc.csv (atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    test = result.mc_test
    metrics = {k: v for k, v in result.classifier.items() if k in ("accuracy", "recall", "precision", "auc")}
    tables = {
        "classifier.csv": pd.DataFrame([metrics]),
        "roc.csv": roc_table(test["label"] == "NR", test["p_nr"]),
        "pvalue_vs_R.csv": result.pvalues[["wimp_mass", "R", "median_p_value", "median_p_value_empirical",
                                           "ts_cut", "expected_background", "expected_signal"]],
        "optimum.csv": optimum_table(result.pvalues),
        "baseline.csv": result.baseline,
        "ppc.csv": result.ppc,
    }
    paths = []
    for name, table in tables.items():
        write_csv_atomic(table, out / name)
        paths.append(out / name)
    return paths
