"""Views of the HNL study: Z vs mass hypothesis, the adaptive bins of one (mass, channel), regression residuals.

Each builder is a plain function of the data (used by the report and the notebook) wrapped by a Viewer
that follows the page state.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from hepml_core.metrics.significance import asimov_significance, s_over_sqrt_b
from hepml_core.simulate._hnl_features import feature_unit

from app.components.style import PLOT_OPTS, Y_WEIGHTED, ensure_extension
from app.state.hnl import AVERAGE, HnlSignificanceState

__all__ = ["SignificanceVsMass", "BinDetail", "RegressionResiduals", "significance_plot", "bin_detail_plots",
           "residual_plot", "MODEL_COLOURS", "MODEL_LABELS"]

# a per-mass variant is drawn dashed, in a lighter shade of its parametrised twin's colour
MODEL_COLOURS = {"mt_tot": "#000000", "bdt": "#E69F00", "pnn": "#0072B2", "transfer": "#D55E00",
                 "dnn_per_mass": "#56B4E9", "bdt_per_mass": "#B8860B",
                 "m_3l": "#999999", "e_tot": "#882255", "lt_met": "#009E73", "met": "#CC79A7"}
MODEL_LABELS = {"mt_tot": "Mt_tot (best observable)", "bdt": "BDT (xgboost)", "pnn": "parametrised DNN",
                "transfer": "transfer learning", "dnn_per_mass": "per-mass DNN", "bdt_per_mass": "per-mass BDT"}
_DASHED = ("dnn_per_mass", "bdt_per_mass")
_EXTRA = ("#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#999999", "#882255")
_SIG, _BKG = "#D55E00", "#0072B2"
_METHOD_LABEL = {"s_over_sqrt_b": "S/√B", "asimov": "Asimov Z"}


def _colour(model: str, i: int) -> str:
    return MODEL_COLOURS.get(model, _EXTRA[i % len(_EXTRA)])


def significance_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, method: str, binning: str,
                      channel: str, selected_mass: float | None = None) -> hv.Overlay:
    """Z vs mass hypothesis (log x), one line per model.

    Args:
        curves: model -> (masses in GeV, Z).
        method, binning, channel: shown in the axis label and title.
        selected_mass: drawn as a vertical line (the mass whose bins are shown).
    """
    ensure_extension()
    x_label = "HNL mass hypothesis m_N [GeV]"
    y_label = f"combined {_METHOD_LABEL.get(method, method)} (quadrature sum over bins)"
    elements = []
    for i, (model, (x, z)) in enumerate(curves.items()):
        keep = np.isfinite(z)
        label = MODEL_LABELS.get(model, model)
        colour = _colour(model, i)
        dash = "dashed" if model in _DASHED else "solid"
        elements.append(hv.Curve((x[keep], z[keep]), x_label, y_label, label=label).opts(color=colour, line_width=2,
                                                                                          line_dash=dash))
        elements.append(hv.Scatter((x[keep], z[keep]), x_label, y_label, label=label).opts(
            color=colour, size=6, tools=["hover", "tap"]))
    if selected_mass is not None:
        elements.append(hv.VLine(float(selected_mass)).opts(color="#777777", line_dash="dashed", line_width=1))
    where = "averaged over the 5 channels" if channel == AVERAGE else f"channel {channel}"
    title = f"Significance vs mass ({binning.replace('_', '-')} bins, {where})"
    return hv.Overlay(elements).opts(
        hv.opts.Curve(logx=True, logy=True, **PLOT_OPTS), hv.opts.Scatter(logx=True, logy=True, **PLOT_OPTS),
        hv.opts.Overlay(title=title, legend_position="right", legend_opts={"background_fill_alpha": 0.8}))


def bin_detail_plots(bins, samples, *, model: str, mass: float, channel: str, method: str = "s_over_sqrt_b"):
    """Signal and background histograms in the adaptive bins, and the per-bin significance.

    Args:
        bins: a ``BinnedYields`` (or None when no bin meets the bound).
        samples: ``(xs, ws, xb, wb)`` of the (mass, channel).
        model, mass, channel: for labels.
        method: per-bin formula.

    Returns:
        ``(histograms, per-bin Z)`` HoloViews objects.
    """
    ensure_extension()
    unit = feature_unit(model) if model not in MODEL_LABELS or model == "mt_tot" else ""
    x_label = f"{MODEL_LABELS.get(model, model)}" + (f" [{unit}]" if unit else " score")
    title = f"m_N = {mass:g} GeV, {channel}"
    if bins is None or bins.n_bins == 0:
        # a per-mass variant trained for a few masses has no score at the others
        why = "no bin meets the bound" if len(samples[0]) else f"no {MODEL_LABELS.get(model, model)} score at this mass"
        empty = hv.Curve(([], []), x_label, Y_WEIGHTED).opts(title=f"{title}: {why}", **PLOT_OPTS)
        return empty, hv.Curve(([], []), x_label, "Z per bin").opts(**PLOT_OPTS)
    edges = bins.edges
    # Histograms as "weighted events / bin" so the heights are the yields that enter S/sqrt(B)
    y_label = Y_WEIGHTED
    floor = max(min(np.min(bins.s[bins.s > 0]) if (bins.s > 0).any() else 1e-3,
                    np.min(bins.b[bins.b > 0]) if (bins.b > 0).any() else 1e-3) / 300, 1e-6)

    def step(values, label, colour):
        h = np.where(values > 0, values, floor)
        return hv.Curve((edges, np.append(h, h[-1])), x_label, y_label, label=label).opts(
            interpolation="steps-post", color=colour, line_width=2)

    xs, ws, xb, wb = samples
    lo = float(min(xs.min() if xs.size else edges[0], xb.min() if xb.size else edges[0]))
    hi = float(max(xs.max() if xs.size else edges[-1], xb.max() if xb.size else edges[-1]))
    fine = np.linspace(lo, hi, 41)

    def fine_step(x, w, label, colour):
        h, _ = np.histogram(x, fine, weights=w)
        h = np.where(h > 0, h, floor)
        return hv.Curve((fine, np.append(h, h[-1])), x_label, y_label, label=label).opts(
            interpolation="steps-post", color=colour, line_width=1, alpha=0.45, line_dash="dotted")

    sig_err = hv.ErrorBars(((edges[:-1] + edges[1:]) / 2, bins.s, np.sqrt(bins.s_w2)), x_label, [y_label, "e"]).opts(
        color=_SIG)
    hist = hv.Overlay([fine_step(xs, ws, "signal, 40 fine bins", _SIG), fine_step(xb, wb, "background, 40 fine bins", _BKG),
                       step(bins.s, f"signal m_N = {mass:g} GeV, adaptive bins", _SIG), sig_err,
                       step(bins.b, "background, adaptive bins", _BKG),
                       *[hv.VLine(float(e)).opts(color="#BBBBBB", line_width=1) for e in edges]]).opts(
        hv.opts.Curve(logy=True, **PLOT_OPTS),
        hv.opts.Curve(xlim=(lo, hi)),
        hv.opts.Overlay(title=f"{title}: {bins.n_bins} adaptive bins (grey lines: edges)", legend_position="right"))
    fn = asimov_significance if method == "asimov" else s_over_sqrt_b
    z = fn(bins.s, bins.b)
    z_label = f"{_METHOD_LABEL.get(method, method)} per bin"
    total = float(np.sqrt(np.sum(z ** 2)))
    per_bin = hv.Curve((edges, np.append(z, z[-1])), x_label, z_label).opts(
        interpolation="steps-post", color="#009E73", line_width=2,
        title=f"per-bin significance (quadrature sum Z = {total:.3g})", xlim=(lo, hi), **PLOT_OPTS)
    return hist, per_bin


def residual_plot(residuals: pd.DataFrame, feature: str) -> hv.Overlay:
    """Histogram of the regression residual (predicted - true) of one feature, with and without drop-in."""
    ensure_extension()
    unit = feature_unit(feature)
    x_label = f"{feature} predicted − true" + (f" [{unit}]" if unit else "")
    elements = []
    sel = residuals[residuals["feature"] == feature] if residuals is not None and len(residuals) else None
    if sel is None or not len(sel):
        return hv.Curve(([], []), x_label, "events / bin").opts(title="no regression residuals saved", **PLOT_OPTS)
    d = sel["pred"].to_numpy() - sel["true"].to_numpy()
    if feature.startswith("dphi"):
        d = (d + np.pi) % (2 * np.pi) - np.pi
    lo, hi = np.percentile(d, [0.5, 99.5])
    edges = np.linspace(lo, hi, 61)
    for flag, label, colour in ((True, "with drop-in", "#0072B2"), (False, "without drop-in", "#E69F00")):
        part = d[sel["drop_in"].to_numpy() == flag]
        if not part.size:
            continue
        h, _ = np.histogram(part, edges)
        rms = float(np.sqrt(np.mean(part ** 2)))
        elements.append(hv.Curve((edges, np.append(h, h[-1])), x_label, "events / bin",
                                 label=f"{label} (RMS {rms:.3g})").opts(interpolation="steps-post", color=colour,
                                                                          line_width=2))
    return hv.Overlay(elements).opts(hv.opts.Curve(**PLOT_OPTS),
                                     hv.opts.Overlay(title=f"Regression residual of {feature} on test events",
                                                     legend_position="top_right"))


class SignificanceVsMass(pn.viewable.Viewer):
    """Z vs mass for the selected models; a click on the plot selects the mass of the bin view."""

    def __init__(self, state: HnlSignificanceState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        # The Tap stream must be one of the DynamicMap's own streams: HoloViews attaches the browser's click
        # callback only to plots whose DynamicMap declares a linked stream (a stream given a source later
        # never hears a click). A click redraws the (small) overlay once for the tap and once for the new mass.
        self._tap = hv.streams.Tap(x=None, y=None, transient=True)
        self._tap.add_subscriber(self._on_tap)
        shown = hv.streams.Params(state, ["table", "channel", "mass"])
        dmap = hv.DynamicMap(self._draw, streams=[shown, self._tap])
        self._pane = pn.pane.HoloViews(dmap, sizing_mode="stretch_width", min_height=440)

    def _on_tap(self, x=None, y=None) -> None:
        if x is not None:
            self.state.select_mass(x)

    def _draw(self, table=None, channel=None, mass=None, x=None, y=None) -> hv.Overlay:
        return self._plot(self.state.table, self.state.channel, self.state.mass)

    def _plot(self, table, channel, mass) -> hv.Overlay:
        s = self.state
        curves = {m: s.curve(m) for m in s.models}
        return significance_plot(curves, method=s.method, binning=s.binning, channel=channel, selected_mass=mass)

    def plot_object(self) -> hv.Overlay:
        """The overlay at the current state."""
        return self._plot(self.state.table, self.state.channel, self.state.mass)

    def __panel__(self):
        return self._pane


class BinDetail(pn.viewable.Viewer):
    """Signal and background histograms in the chosen bins of one (model, mass, channel), with per-bin Z."""

    def __init__(self, state: HnlSignificanceState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        deps = (state.param.detail_model, state.param.mass, state.param.detail_channel, state.param.binning,
                state.param.max_rel_unc, state.param.method)
        self._hist = pn.pane.HoloViews(hv.DynamicMap(pn.bind(lambda *a: self._plots()[0], *deps)),
                                       sizing_mode="stretch_width", min_height=360)
        self._z = pn.pane.HoloViews(hv.DynamicMap(pn.bind(lambda *a: self._plots()[1], *deps)),
                                    sizing_mode="stretch_width", min_height=260)
        self._layout = pn.Column(
            pn.Row(pn.widgets.Select.from_param(state.param.detail_model, width=200),
                   pn.widgets.Select.from_param(state.param.mass, width=140, label="mass hypothesis [GeV]"),
                   pn.widgets.Select.from_param(state.param.detail_channel, width=160)),
            self._hist, self._z, sizing_mode="stretch_width")

    def _plots(self):
        s = self.state
        bins, samples = s.detail()
        return bin_detail_plots(bins, samples, model=s.detail_model, mass=s.mass, channel=s.detail_channel,
                                method=s.method)

    def __panel__(self):
        return self._layout


class RegressionResiduals(pn.viewable.Viewer):
    """Residuals of the pre-trained regression for a chosen derived feature, with and without drop-in."""

    def __init__(self, residuals: pd.DataFrame, **params):
        ensure_extension()
        super().__init__(**params)
        self.residuals = residuals
        names = sorted(residuals["feature"].unique()) if residuals is not None and len(residuals) else ["dphi_12"]
        default = "dphi_12" if "dphi_12" in names else names[0]
        self._feature = pn.widgets.Select(label="derived feature", options=names, value=default, width=200)
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(lambda f: residual_plot(self.residuals, f),
                                                             self._feature)),
                                       sizing_mode="stretch_width", min_height=360)
        self._layout = pn.Column(self._feature, self._pane, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout
