"""The HNL study's tables: significance vs mass per model and channel, channel averages, regression residuals.

The same functions feed the CSV files of ``hepml study hnl``, the static report, the app and the notebook.
Mass-independent scores (Mt_tot and every classical observable) are binned on the test events once
(each background event counts once); parametrised scores use the background scored at each mass
hypothesis (``background="matching"`` on ``HnlResult.scores``), and so do the per-mass variants (at mass m
every background event goes through the model of m). A per-mass variant trained for a few masses only
has rows for those masses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hepml_core.exceptions import MissingKeyError
from hepml_core.io.write import write_csv_atomic
from hepml_core.metrics.binning import BINNINGS, BinnedYields, SortedSample
from hepml_core.metrics.significance import average_over_channels, make_bins, significance_vs_mass
from hepml_core.studies.hnl import TRAINED_MODELS, HnlResult

__all__ = ["significance_table", "significance_all", "comparison_table", "residual_summary", "score_samples",
           "bins_for", "write_tables", "METHODS", "DEFAULT_BINNING", "DEFAULT_METHOD"]

METHODS = ("s_over_sqrt_b", "asimov")
DEFAULT_BINNING = "right_to_left"  # the talk uses the "increasing-signal" binning from its results on
DEFAULT_METHOD = "s_over_sqrt_b"
_COLS = dict(mass="mass_hyp", channel="channel", label="label", weight="weight")


def _source(result: HnlResult, name: str) -> tuple[pd.DataFrame, str]:
    if name in TRAINED_MODELS and name in result.scores.columns:
        scored = result.scores[name].notna()
        # per-mass variants trained for a few masses only: the other masses have no score
        return (result.scores if scored.all() else result.scores[scored.to_numpy()]), "matching"
    if name in result.events.columns and name not in ("event", "label", "channel", "mass_hyp", "process", "weight"):
        return result.events, "all"
    raise MissingKeyError("model or feature", name, f"HNL study {result.study_run_id}",
                          [*result.models, *[c for c in result.events.columns if c not in result.models]])


def significance_table(result: HnlResult, models: Sequence[str] | None = None, *, binning: str = DEFAULT_BINNING,
                       method: str = DEFAULT_METHOD, max_rel_unc: float = 0.15) -> pd.DataFrame:
    """Z per (model, mass, channel).

    Args:
        result: the study.
        models: model names (``result.models``) or classical observables (``CLASSICAL``); default all models.
        binning, method, max_rel_unc: see ``significance_vs_mass``.

    Returns:
        Columns model, mass, channel, z, n_bins.
    """
    parts = []
    for name in models if models is not None else result.models:
        frame, background = _source(result, name)
        t = significance_vs_mass(frame, name, binning=binning, method=method, max_rel_unc=max_rel_unc,
                                 background=background, **_COLS)
        parts.append(t.assign(model=name))
    out = pd.concat(parts, ignore_index=True)
    return out[["model", "mass", "channel", "z", "n_bins"]]


def significance_all(result: HnlResult, models: Sequence[str] | None = None, max_rel_unc: float = 0.15) -> pd.DataFrame:
    """Both binnings and both methods: columns binning, method, model, mass, channel, z, n_bins."""
    parts = []
    for binning in BINNINGS:
        for method in METHODS:
            t = significance_table(result, models, binning=binning, method=method, max_rel_unc=max_rel_unc)
            parts.append(t.assign(binning=binning, method=method))
    out = pd.concat(parts, ignore_index=True)
    return out[["binning", "method", "model", "mass", "channel", "z", "n_bins"]]


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """Channel-averaged Z per mass, one column per model, plus which trained models beat Mt_tot.

    Args:
        table: ``significance_table`` output.

    Returns:
        One row per mass: ``z_<model>`` columns and ``<model>_beats_mt_tot`` booleans (nullable: NA where
        a Z is missing).
    """
    mean = average_over_channels(table)
    wide = mean.pivot(index="mass", columns="model", values="z")
    out = pd.DataFrame({"mass": wide.index.to_numpy()})
    for model in wide.columns:
        out[f"z_{model}"] = wide[model].to_numpy()
    if "mt_tot" in wide.columns:
        ref = wide["mt_tot"].to_numpy()
        for model in wide.columns:
            if model != "mt_tot":
                z = wide[model].to_numpy()
                # NA where either Z is missing (a per-mass variant trained for a few masses only)
                out[f"{model}_beats_mt_tot"] = pd.array(np.where(np.isnan(z) | np.isnan(ref), None, z > ref),
                                                        dtype="boolean")
    return out


def residual_summary(result: HnlResult) -> pd.DataFrame:
    """Regression residuals (pred - true) per feature, with and without drop-in: mean, RMS, and RMS/spread."""
    r = result.residuals
    if r is None or not len(r):
        return pd.DataFrame(columns=["feature", "drop_in", "mean_residual", "rms_residual", "rms_over_std"])
    rows = []
    for (feature, drop_in), g in r.groupby(["feature", "drop_in"], sort=True):
        d = g["pred"].to_numpy() - g["true"].to_numpy()
        if feature.startswith("dphi"):  # angles wrap around
            d = (d + np.pi) % (2 * np.pi) - np.pi
        spread = float(np.std(g["true"].to_numpy())) or 1.0
        rms = float(np.sqrt(np.mean(d ** 2)))
        rows.append({"feature": feature, "drop_in": bool(drop_in), "mean_residual": float(d.mean()),
                     "rms_residual": rms, "rms_over_std": rms / spread})
    return pd.DataFrame(rows)


def score_samples(result: HnlResult, name: str, mass: float, channel: str):
    """Signal (of ``mass``) and background (of ``channel``) values of a score: ``(xs, ws, xb, wb)``."""
    frame, background = _source(result, name)
    ch = frame["channel"].astype(str).to_numpy() == str(channel)
    lab = frame["label"].to_numpy()
    at_m = np.isclose(frame["mass_hyp"].to_numpy(dtype=np.float64), float(mass))
    sig = ch & (lab == 1) & at_m
    bkg = ch & (lab == 0) & (at_m if background == "matching" else True)
    x = frame[name].to_numpy(dtype=np.float64)
    w = frame["weight"].to_numpy(dtype=np.float64)
    return x[sig], w[sig], x[bkg], w[bkg]


def bins_for(result: HnlResult, name: str, mass: float, channel: str, *, binning: str = DEFAULT_BINNING,
             max_rel_unc: float = 0.15) -> BinnedYields | None:
    """The adaptive bins of one (model, mass, channel), as used for its Z (None: no bin meets the bound)."""
    xs, ws, xb, wb = score_samples(result, name, mass, channel)
    return make_bins(SortedSample(xs, ws), SortedSample(xb, wb), binning=binning, max_rel_unc=max_rel_unc)


def write_tables(result: HnlResult, out_dir: str | Path) -> list[Path]:
    """Write significance.csv (model, mass, channel, z), significance_all.csv, significance_mean.csv,
    comparison.csv and residuals.csv into ``out_dir`` (each atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    everything = significance_all(result)
    pick = (everything["binning"] == DEFAULT_BINNING) & (everything["method"] == DEFAULT_METHOD)
    default = everything[pick].drop(columns=["binning", "method"]).reset_index(drop=True)
    tables = {
        "significance.csv": default[["model", "mass", "channel", "z"]],
        "significance_all.csv": everything,
        "significance_mean.csv": average_over_channels(everything),
        "comparison.csv": comparison_table(default),
        "residuals.csv": residual_summary(result),
    }
    paths = []
    for name, table in tables.items():
        write_csv_atomic(table, out / name)
        paths.append(out / name)
    return paths
