"""DARWIN anomaly-search views: TS distributions with the threshold, and the median p-value vs R.

Plot builders are plain functions of the state (the static report calls them too); the Viewer classes
wrap them in DynamicMaps bound to the state's parameters, so a slider move redraws only what changed.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from app.components.style import DATA_COLOUR, PLOT_OPTS, ensure_extension
from app.state.darwin import DarwinSearchState

__all__ = ["ER_COLOUR", "NR_COLOUR", "MASS_COLOURS", "ts_distributions_plot", "pvalue_curve_plot", "TSDistributions",
           "PValueVsR", "SearchControls"]

ER_COLOUR, NR_COLOUR = "#0072B2", "#D55E00"
MASS_COLOURS = {30.0: "#009E73", 50.0: "#D55E00", 100.0: "#CC79A7"}
_Y = "expected events / bin (exposure)"


def _step(edges: np.ndarray, heights: np.ndarray, label: str, colour: str, x_label: str, floor: float, **opts):
    h = np.where(heights > 0, heights, floor)
    return hv.Curve((edges, np.append(h, h[-1])), x_label, _Y, label=label).opts(
        interpolation="steps-post", color=colour, line_width=2, **opts)


def ts_distributions_plot(state: DarwinSearchState, n_bins: int = 80) -> hv.Overlay:
    """TS of ER (null), the injected WIMPs and one pseudo-data set, scaled to the exposure, with the cut.

    ER and WIMP histograms are normalised to their expected counts (B and S); the data are one
    pseudo-experiment (Poisson counts, sqrt(N) error bars).
    """
    ensure_extension()
    er, sig = state.ts("null_fit"), state.ts(f"wimp{int(state.mass)}")
    data = state.pseudo_data_ts()
    b_tot = state.data.result.expected["background_total"]
    s_tot = state.expected_signal_total()
    lo = float(np.quantile(er, 0.0005))
    hi = float(max(np.quantile(sig, 0.995), np.quantile(er, 0.9999)))
    edges = np.linspace(lo, hi, n_bins + 1)
    h_er = np.histogram(np.clip(er, lo, hi), edges)[0] / len(er) * b_tot
    h_sig = np.histogram(np.clip(sig, lo, hi), edges)[0] / max(len(sig), 1) * s_tot
    h_data = np.histogram(np.clip(data, lo, hi), edges)[0].astype(float)
    x_label = f"TS = −ELBO + R·H_B  (R = {state.R:g})"
    positive = np.concatenate([h_er[h_er > 0], h_sig[h_sig > 0], [1.0]])
    floor = 10 ** (np.floor(np.log10(positive.min())) - 0.3)
    top = max(h_er.max(), h_data.max(), h_sig.max(), 1.0) * 5
    centres = (edges[:-1] + edges[1:]) / 2
    keep = h_data > 0
    err = np.sqrt(h_data[keep])
    low = np.minimum(err, h_data[keep] - floor)
    cut = state.ts_threshold()
    elements = [
        _step(edges, h_er, f"ER background (B = {b_tot:,.0f})", ER_COLOUR, x_label, floor),
        _step(edges, h_sig, f"WIMP {state.mass:g} GeV (S = {s_tot:,.0f})", NR_COLOUR, x_label, floor),
        hv.ErrorBars((centres[keep], h_data[keep], np.clip(low, 0, None), err), x_label,
                     [_Y, "yerrneg", "yerrpos"]).opts(color=DATA_COLOUR),
        hv.Scatter((centres[keep], h_data[keep]), x_label, _Y, label="pseudo-data").opts(color=DATA_COLOUR, size=4),
        hv.VLine(cut, label=f"threshold (ER quantile {state.cut_quantile:g})").opts(
            color="#555555", line_dash="dashed", line_width=2),
    ]
    return hv.Overlay(elements).opts(
        hv.opts.Curve(logy=True, ylim=(floor, top), xlim=(lo, hi), framewise=True, **PLOT_OPTS),
        hv.opts.Scatter(logy=True, ylim=(floor, top), framewise=True, **PLOT_OPTS),
        hv.opts.Overlay(title=f"TS distributions · median p-value of H0 = {state.median_p:.3g}",
                        legend_position="top_right", legend_opts={"background_fill_alpha": 0.8}),
    )


def _log_r(r: np.ndarray, r_zero: float) -> np.ndarray:
    return np.where(r > 0, r, r_zero)


def pvalue_curve_plot(state: DarwinSearchState) -> hv.Overlay:
    """Median p-value vs R per WIMP mass (the study's scan), the live curve, the optimum and the baseline.

    R = 0 (the VAE alone) cannot sit on a log axis; it is drawn a factor 3 left of the smallest R > 0.
    """
    ensure_extension()
    res = state.data.result
    scan = res.pvalues
    r_pos = scan.loc[scan["R"] > 0, "R"]
    r_zero = float(r_pos.min()) / 3 if len(r_pos) else 1.0
    x_label, y_label = "R (weight of the classifier term; R = 0 drawn at the left edge)", "median p-value of H0"
    elements = []
    for mass, grp in scan.groupby("wimp_mass"):
        grp = grp.sort_values("R")
        x, y = _log_r(grp["R"].to_numpy(), r_zero), np.clip(grp["median_p_value"].to_numpy(), 1e-300, 1)
        colour = MASS_COLOURS.get(float(mass), "#999999")
        elements.append(hv.Curve((x, y), x_label, y_label, label=f"{mass:g} GeV (study scan)").opts(
            color=colour, line_width=2))
        k = int(np.argmin(y))
        best = f"{mass:g} GeV optimum R = {grp['R'].iloc[k]:g}"
        elements.append(hv.Scatter(([x[k]], [y[k]]), x_label, y_label, label=best).opts(
            color=colour, marker="star", size=16))
    base = res.baseline
    for _, row in base.iterrows():
        elements.append(hv.HLine(max(row["median_p_value"], 1e-300)).opts(
            color=MASS_COLOURS.get(float(row["wimp_mass"]), "#999999"), line_dash="dotted", line_width=1.5))
    live = state.curve
    if live is not None and len(live):
        x = _log_r(live["R"].to_numpy(), r_zero)
        elements.append(hv.Curve((x, np.clip(live["median_p_value"].to_numpy(), 1e-300, 1)), x_label, y_label,
                                 label=f"{state.mass:g} GeV × {state.strength:g} (live, fewer toys)").opts(
            color="#000000", line_dash="dashed", line_width=2))
    elements.append(hv.VLine(state.R if state.R > 0 else r_zero).opts(color="#555555", line_width=1))
    return hv.Overlay(elements).opts(
        hv.opts.Curve(logx=True, logy=True, framewise=True, **PLOT_OPTS),
        hv.opts.Scatter(logx=True, logy=True, **PLOT_OPTS),
        hv.opts.Overlay(title="Median p-value vs R (dotted: 2-D cS1/cS2 template baseline)",
                        legend_position="bottom_left", legend_opts={"background_fill_alpha": 0.8}),
    )


class SearchControls(pn.viewable.Viewer):
    """R, mass, injected strength and threshold widgets, and the live median p-value."""

    def __init__(self, state: DarwinSearchState, **params):
        super().__init__(**params)
        self.state = state
        r_slider = pn.widgets.DiscreteSlider.from_param(state.param.R, name="R (classifier weight)",
                                                        sizing_mode="stretch_width")
        mass = pn.widgets.RadioButtonGroup.from_param(state.param.mass, name="WIMP mass (GeV)")
        strength = pn.widgets.FloatSlider.from_param(state.param.strength, name="injected signal × σ_study",
                                                     value_throttled=True, sizing_mode="stretch_width")
        quantile = pn.widgets.FloatSlider.from_param(state.param.cut_quantile, name="TS threshold (ER quantile)",
                                                     value_throttled=True, format="0.000",
                                                     sizing_mode="stretch_width")
        summary = pn.pane.Markdown(pn.bind(self._summary, state.param.point), sizing_mode="stretch_width",
                                   css_classes=["darwin-summary"])
        self._layout = pn.Column(r_slider, pn.pane.Markdown("WIMP mass (GeV)", margin=(0, 10)), mass, strength,
                                 quantile, summary, sizing_mode="stretch_width")

    @staticmethod
    def _summary(point: dict) -> str:
        if not point:
            return ""
        return (f"**median p-value = {point['median_p_value']:.3g}** (empirical: "
                f"{point['median_p_value_empirical']:.3g})  \nabove the threshold TS ≥ {point['ts_cut']:.4g}: "
                f"B = {point['expected_background']:,.1f}, S = {point['expected_signal']:,.1f}")

    def __panel__(self):
        return self._layout


class TSDistributions(pn.viewable.Viewer):
    """``ts_distributions_plot`` following R, mass, strength and threshold."""

    def __init__(self, state: DarwinSearchState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        dmap = hv.DynamicMap(pn.bind(lambda *_: ts_distributions_plot(state), state.param.R, state.param.mass,
                                     state.param.point))
        self._pane = pn.pane.HoloViews(dmap, sizing_mode="stretch_width", min_height=420)

    def __panel__(self):
        return self._pane


class PValueVsR(pn.viewable.Viewer):
    """``pvalue_curve_plot`` following the live curve and the chosen R."""

    def __init__(self, state: DarwinSearchState, **params):
        ensure_extension()
        super().__init__(**params)
        dmap = hv.DynamicMap(pn.bind(lambda *_: pvalue_curve_plot(state), state.param.curve, state.param.R))
        self._pane = pn.pane.HoloViews(dmap, sizing_mode="stretch_width", min_height=420)

    def __panel__(self):
        return self._pane
