"""Views of the ALICE PID study: live purity/efficiency/F1 by method, the talk's tables, ROC overlay,
performance by missing-signal pattern, and the attention weights of one track.

Every view reads a ``PidState``; plot builders are plain functions of the data (``*_plot``) so the
static report and the notebook draw exactly what the page shows.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from hepml_core.studies.alice_pid import METHOD_LABELS

from app.components.export import with_csv
from app.components.style import PLOT_OPTS, class_colours, ensure_extension
from app.state.alice_pid import PidState

__all__ = ["PidLiveMetrics", "PidMetricsTable", "PidRocOverlay", "PidPatternView", "PidAttentionView",
           "live_metrics_plot", "metrics_pivot", "roc_overlay_plot", "pattern_plot", "attention_plot",
           "method_colours"]

_QUANTITIES = {"f1": "F1 = 2PE/(P+E)", "purity": "purity P", "efficiency": "efficiency E"}


def method_colours(methods) -> dict[str, str]:
    """One fixed colour per method (the n-sigma selection is grey)."""
    colours = class_colours([m for m in methods if m != "nsigma"])
    colours["nsigma"] = "#555555"
    return colours


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def live_metrics_plot(rows: pd.DataFrame, species: str, threshold: float) -> hv.Overlay:
    """Grouped bars: purity, efficiency and F1 of each method for one species."""
    long = rows.melt(id_vars=["method"], value_vars=["purity", "efficiency", "f1"], var_name="quantity",
                     value_name="value")
    long["method"] = long["method"].map(_label)
    long["quantity"] = long["quantity"].map({"purity": "purity", "efficiency": "efficiency", "f1": "F1"})
    bars = hv.Bars(long, kdims=["method", "quantity"], vdims=[hv.Dimension("value", label="fraction of tracks")])
    return bars.opts(
        **PLOT_OPTS, ylim=(0, 1.05), xrotation=20, multi_level=True, tools=["hover"], color="quantity",
        cmap=["#0072B2", "#E69F00", "#009E73"], legend_position="right", show_legend=False,
        title=f"{species}: purity, efficiency, F1 at threshold {threshold:.2f} (n-sigma: 3σ)",
        xlabel="method · quantity", ylabel="fraction (purity, efficiency, F1)")


def metrics_pivot(metrics: pd.DataFrame, subset: str, quantity: str = "f1", methods=None) -> pd.DataFrame:
    """The talk's table: methods as rows, species as columns, ``quantity`` in percent."""
    rows = metrics[metrics["subset"] == subset]
    table = rows.pivot_table(index="method", columns="species", values=quantity) * 100
    order = [m for m in (methods or table.index) if m in table.index]
    table = table.loc[order]
    table.index = [_label(m) for m in table.index]
    return table.round(2)


def roc_overlay_plot(rocs: pd.DataFrame, species: str, points: pd.DataFrame | None = None,
                     methods=None) -> hv.Overlay:
    """ROC curves of every method for ``species`` with the current operating points as markers."""
    colours = method_colours(methods or rocs["method"].unique())
    elements = []
    sub = rocs[rocs["species"] == species]
    x_label, y_label = "false-positive rate (other tracks selected)", "efficiency (true-positive rate)"
    for method in methods or sub["method"].unique():
        curve = sub[sub["method"] == method]
        if curve.empty:
            continue
        elements.append(hv.Curve((curve["fpr"], curve["tpr"]), x_label, y_label, label=_label(method)).opts(
            color=colours[method], line_width=2))
    if points is not None and len(points):
        for _, row in points.iterrows():
            if row["method"] not in colours:
                continue
            elements.append(hv.Scatter([(row["fpr"], row["efficiency"])], x_label, y_label).opts(
                color=colours[row["method"]], size=9, marker="circle", line_color="black"))
    return hv.Overlay(elements).opts(
        hv.opts.Curve(**PLOT_OPTS, logx=True, xlim=(1e-4, 1), ylim=(0, 1.01)),
        hv.opts.Scatter(**PLOT_OPTS, logx=True),
        hv.opts.Overlay(title=f"ROC of {species} vs all (dots: the threshold's operating points)",
                        legend_position="bottom_right", legend_opts={"background_fill_alpha": 0.8}))


def pattern_plot(pattern_metrics: pd.DataFrame, species: str, quantity: str = "f1") -> hv.Bars:
    """Grouped bars of ``quantity`` by missing-signal pattern and method for one species."""
    rows = pattern_metrics[pattern_metrics["species"] == species].copy()
    rows["method"] = rows["method"].map(_label)
    rows["pattern"] = rows["pattern"] + " (" + rows["n_tracks"].map(lambda n: f"{n:,.0f}") + " tracks)"
    colours = {_label(m): c for m, c in method_colours(pattern_metrics["method"].unique()).items()}
    bars = hv.Bars(rows, kdims=["pattern", "method"], vdims=[hv.Dimension(quantity, label=_QUANTITIES[quantity])])
    return bars.opts(**PLOT_OPTS, ylim=(0, 1.05), xrotation=25, multi_level=False, tools=["hover"],
                     color="method", cmap=colours, legend_position="right", show_legend=True,
                     title=f"{species}: {_QUANTITIES[quantity]} by missing-signal pattern",
                     xlabel="missing-signal pattern (test tracks)", ylabel=_QUANTITIES[quantity])


def attention_plot(att: pd.DataFrame, species: str, row: int, label: str) -> hv.Bars:
    """Bars of the pooling attention of each feature of one track (missing features shown at 0)."""
    frame = att.assign(shown=np.where(att["present"], att["attention"], 0.0),
                       status=np.where(att["present"], "present", "missing"))
    bars = hv.Bars(frame, kdims=[hv.Dimension("feature", label="feature")],
                   vdims=[hv.Dimension("shown", label="attention weight (sums to 1)"), "status", "value"])
    return bars.opts(**PLOT_OPTS, xrotation=45, tools=["hover"], color="status",
                     cmap={"present": "#0072B2", "missing": "#BBBBBB"}, show_legend=True, legend_position="top_right",
                     title=f"FSE attention pooling, {species} model, test track {row} (true: {label})",
                     ylabel="attention weight (sums to 1)", xlabel="feature (grey: missing, not in the set)")


class PidLiveMetrics(pn.viewable.Viewer):
    """Purity/efficiency/F1 bars of every method for the chosen species, following the threshold."""

    def __init__(self, state: PidState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, state.param.metrics, state.param.species)),
                                       sizing_mode="stretch_width", min_height=380)
        self._table = pn.widgets.Tabulator(self._rows(), disabled=True, show_index=False, sizing_mode="stretch_width",
                                           css_classes=["pid-live-table"])
        state.param.watch(lambda *_: setattr(self._table, "value", self._rows()), ["metrics", "species"])

    def _rows(self) -> pd.DataFrame:
        rows = self.state.species_metrics("all")[["method", "purity", "efficiency", "f1", "n_tracks"]].copy()
        rows["method"] = rows["method"].map(_label)
        return rows.round(4)

    def _plot(self, metrics, species):
        return live_metrics_plot(self.state.species_metrics("all"), species, self.state.threshold)

    def __panel__(self):
        return pn.Column(self._pane, with_csv(self._table, "pid-live-metrics.csv"), sizing_mode="stretch_width")


class PidMetricsTable(pn.viewable.Viewer):
    """The talk's two tables (all tracks / complete tracks only), method x species, in percent."""

    def __init__(self, state: PidState, **params):
        super().__init__(**params)
        self.state = state
        self._quantity = pn.widgets.RadioButtonGroup(options={v: k for k, v in _QUANTITIES.items()}, value="f1")
        self._all = pn.widgets.Tabulator(disabled=True, sizing_mode="stretch_width", css_classes=["pid-table-all"])
        self._complete = pn.widgets.Tabulator(disabled=True, sizing_mode="stretch_width",
                                              css_classes=["pid-table-complete"])
        self._refresh()
        state.param.watch(self._refresh, ["metrics"])
        self._quantity.param.watch(self._refresh, "value")

    def _refresh(self, *events) -> None:
        methods = self.state.data.result.methods
        for widget, subset in ((self._all, "all"), (self._complete, "complete")):
            widget.value = metrics_pivot(self.state.metrics, subset, self._quantity.value, methods)

    def __panel__(self):
        return pn.Column(self._quantity, pn.pane.Markdown("**All test tracks** (%)"),
                         with_csv(self._all, "pid-table-all-tracks.csv"),
                         pn.pane.Markdown("**Complete tracks only** (%)"),
                         with_csv(self._complete, "pid-table-complete-tracks.csv"), sizing_mode="stretch_width")


class PidRocOverlay(pn.viewable.Viewer):
    """ROC overlay by method for the chosen species; markers move with the threshold."""

    def __init__(self, state: PidState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, state.param.species, state.param.metrics)),
                                       sizing_mode="stretch_width", min_height=440)

    def _plot(self, species, metrics):
        rows = self.state.species_metrics("all")
        points = rows.assign(fpr=_fpr(self.state, rows))
        return roc_overlay_plot(self.state.data.rocs, species, points, self.state.data.result.methods)

    def __panel__(self):
        return self._pane


def _fpr(state: PidState, rows: pd.DataFrame) -> np.ndarray:
    """False-positive rate of each method's current selection (from purity, efficiency and the totals)."""
    r = state.data.result
    y = r.truth(state.species)
    w = r.frame["weight"].to_numpy()
    out = []
    for _, row in rows.iterrows():
        score = r.score(row["method"], state.species)
        keep = np.isfinite(score)
        s_tot, b_tot = w[keep & y].sum(), w[keep & ~y].sum()
        sel_s = row["efficiency"] * s_tot
        sel_b = sel_s * (1 / row["purity"] - 1) if row["purity"] > 0 else 0.0
        out.append(sel_b / b_tot if b_tot > 0 else np.nan)
    return np.asarray(out)


class PidPatternView(pn.viewable.Viewer):
    """Performance by missing-signal pattern for the chosen species, following the threshold."""

    def __init__(self, state: PidState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._quantity = pn.widgets.RadioButtonGroup(options={v: k for k, v in _QUANTITIES.items()}, value="f1")
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, state.param.pattern_metrics,
                                                             state.param.species, self._quantity)),
                                       sizing_mode="stretch_width", min_height=420)

    def _plot(self, pattern_metrics, species, quantity):
        return pattern_plot(pattern_metrics, species, quantity)

    def __panel__(self):
        return pn.Column(self._quantity, self._pane, sizing_mode="stretch_width")


class PidAttentionView(pn.viewable.Viewer):
    """The FSE model's attention weights on one test track, with its feature values."""

    def __init__(self, state: PidState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, state.param.species, state.param.track)),
                                       sizing_mode="stretch_width", min_height=380)
        self._table = pn.widgets.Tabulator(disabled=True, show_index=False, sizing_mode="stretch_width",
                                           css_classes=["pid-attention-table"])
        self._info = pn.pane.Markdown("", sizing_mode="stretch_width")

    def _plot(self, species, track):
        r = self.state.data.result
        att = self.state.attention()
        label = str(r.frame["label"].iloc[int(track)])
        score = r.frame[f"score_fse_attention_{species}"].iloc[int(track)] if "fse_attention" in r.methods else np.nan
        pattern = r.frame["pattern"].iloc[int(track)]
        self._info.object = (f"Track {track}: true species **{label}**, pattern **{pattern}**, "
                             f"FSE certainty for {species}: **{score:.3f}**")
        self._table.value = att[["feature", "value", "attention"]].round(4)
        return attention_plot(att, species, int(track), label)

    def __panel__(self):
        return pn.Column(self._info, self._pane, with_csv(self._table, "pid-attention-track.csv"),
                         sizing_mode="stretch_width")
