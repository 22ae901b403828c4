"""DARWIN model views: classifier figures and ROC, VAE latent space, posterior predictive check.

The latent space shows the VAE's latent means of the labelled test events coloured by recoil energy and
by recoil type. Large samples go through datashader when it is installed (rasterised, so a million
points stay responsive); without it the plot shows a seeded random subsample of ``MAX_POINTS`` events.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from hepml_core.studies.darwin_tables import roc_table

from app.components.darwin import ER_COLOUR, NR_COLOUR
from app.components.export import with_csv
from app.components.style import PLOT_OPTS, ensure_extension
from app.state.darwin import DarwinData

__all__ = ["MAX_POINTS", "classifier_table", "roc_plot", "latent_plot", "ppc_plot", "ModelViews"]

MAX_POINTS = 20_000
_GROUP_COLOURS = {"S1WaveformTotal": "#0072B2", "S2WaveformTotal": "#E69F00", "S2Pattern": "#009E73"}


def classifier_table(data: DarwinData) -> pd.DataFrame:
    """Accuracy, recall, precision and AUC of the ER/NR classifier on the test events (NR positive)."""
    c = data.result.classifier
    return pd.DataFrame([{k: round(float(c[k]), 4) for k in ("accuracy", "recall", "precision", "auc")}])


def roc_plot(data: DarwinData) -> hv.Overlay:
    """ROC of the ER/NR classifier on the test events."""
    ensure_extension()
    test = data.result.mc_test
    roc = roc_table(test["label"] == "NR", test["p_nr"], test["weight"])
    x_label, y_label = "ER efficiency (false-positive rate)", "NR efficiency (true-positive rate)"
    auc = data.result.classifier["auc"]
    curve = hv.Curve((roc["fpr"], roc["tpr"]), x_label, y_label, label=f"MLP, AUC = {auc:.4f}").opts(
        color=NR_COLOUR, line_width=2.5)
    guide = hv.Curve(([0, 1], [0, 1]), x_label, y_label, label="random guess").opts(
        color="#888888", line_dash="dashed", line_width=1)
    return (curve * guide).opts(hv.opts.Curve(xlim=(0, 1), ylim=(0, 1.01), **PLOT_OPTS),
                                hv.opts.Overlay(title="ER vs NR classifier ROC (test events)",
                                                legend_position="bottom_right"))


def _sample(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    if len(frame) <= MAX_POINTS:
        return frame
    return frame.iloc[np.random.default_rng(seed).choice(len(frame), MAX_POINTS, replace=False)]


def _datashade(element, **opts):
    try:
        from holoviews.operation.datashader import rasterize  # optional: pip install datashader
    except ImportError:
        return None
    return rasterize(element).opts(**opts)


def latent_plot(data: DarwinData, dims: tuple[int, int] = (0, 1)) -> hv.Layout:
    """VAE latent means of the test events: coloured by energy (left) and by recoil type (right)."""
    ensure_extension()
    test = data.result.mc_test
    a, b = (f"z_{d}" for d in dims)
    x_label, y_label = f"latent mean z{dims[0]}", f"latent mean z{dims[1]}"
    big = len(test) > MAX_POINTS
    shaded = None
    if big:
        shaded = _datashade(hv.Points(test, [a, b], ["energy_kev"]).redim.label(**{a: x_label, b: y_label}),
                            aggregator="mean", cmap="viridis", colorbar=True, **PLOT_OPTS)
    pts = _sample(test)
    by_energy = shaded if shaded is not None else hv.Points(
        pts, [a, b], ["energy_kev"]).redim.label(**{a: x_label, b: y_label, "energy_kev": "recoil energy (keV)"}).opts(
        color="energy_kev", cmap="viridis", colorbar=True, size=2, alpha=0.6, **PLOT_OPTS)
    by_type = hv.Overlay([
        hv.Points(pts[pts["label"] == lab], [a, b], label=f"{lab}").redim.label(**{a: x_label, b: y_label}).opts(
            color=colour, size=2, alpha=0.4) for lab, colour in (("ER", ER_COLOUR), ("NR", NR_COLOUR))
    ]).opts(hv.opts.Points(**PLOT_OPTS), hv.opts.Overlay(legend_position="top_right"))
    n = f"{len(test):,} test events" + (f" (showing {MAX_POINTS:,})" if big and shaded is None else "")
    return (by_energy.opts(title=f"VAE latent space by recoil energy (keV) · {n}")
            + by_type.opts(title="VAE latent space by recoil type (VAE trained on ER only)")).cols(2)


def ppc_plot(data: DarwinData) -> hv.Overlay:
    """Mean posterior predictive check per input: mean(x_sample - x_test) / sigma_test on ER test events."""
    ensure_extension()
    ppc = data.result.ppc.reset_index(drop=True)
    bars = [hv.Scatter((ppc.index[ppc["group"] == g], ppc.loc[ppc["group"] == g, "mean_ppc"]), "input index",
                       "mean PPC (σ of the test inputs)", label=g).opts(color=c, size=6)
            for g, c in _GROUP_COLOURS.items()]
    zero = hv.HLine(0).opts(color="#555555", line_width=1)
    return hv.Overlay([*bars, zero]).opts(
        hv.opts.Scatter(**PLOT_OPTS),
        hv.opts.Overlay(title="Posterior predictive check of the VAE (0 = unbiased)", legend_position="top_right"))


class ModelViews(pn.viewable.Viewer):
    """Classifier numbers and ROC, latent space and PPC of one study (static: they follow no slider)."""

    def __init__(self, data: DarwinData, **params):
        ensure_extension()
        super().__init__(**params)
        self._layout = pn.Column(
            pn.Row(with_csv(pn.pane.DataFrame(classifier_table(data), index=False, width=420),
                            "darwin-classifier.csv", sizing_mode="fixed", width=430),
                   pn.pane.HoloViews(roc_plot(data), sizing_mode="stretch_width", min_height=360),
                   sizing_mode="stretch_width"),
            pn.pane.HoloViews(latent_plot(data), sizing_mode="stretch_width", min_height=400),
            pn.pane.HoloViews(ppc_plot(data), sizing_mode="stretch_width", min_height=340),
            sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout
