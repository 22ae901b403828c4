"""Views of the nuclei domain-adaptation study: both heads' training curves, MC-vs-data scores, efficiency
vs threshold, before/after-cut distributions stacked by species, and per-event attention over the branches.

Each builder is a plain function of the data (the report and the notebook call them); the Viewer classes
wrap them for a page session and follow its ``NucleiViewState``.
"""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn

from hepml_core.models.multimodal import BRANCHES
from hepml_core.studies.ams_nuclei import VARIABLES

from app.components.export import with_csv
from app.components.histplot import DataSeries, class_histograms
from app.components.style import DATA_COLOUR, PLOT_OPTS, Y_WEIGHTED, ensure_extension
from app.state.ams_nuclei import NucleiViewState
from app.state.histograms import GroupedHistogram

__all__ = ["MODEL_COLOURS", "MODEL_LABELS", "BRANCH_LABELS", "head_curves", "score_plot", "efficiency_plot",
           "variable_plot", "attention_plot", "TrainingCurves", "ScoreDistributions", "EfficiencyView",
           "CutDistributions", "AttentionView"]

MODEL_COLOURS = {"adversarial": "#0072B2", "plain": "#E69F00"}
MODEL_LABELS = {"adversarial": "adversarial (MDA)", "plain": "plain (no domain head)"}
BRANCH_LABELS = {"tracker_gnn": "tracker GNN", "cluster_cnn": "cluster CNN", "rigidity_mlp": "rigidity MLP",
                 "tof_mlp": "TOF MLP"}
# signal in greens, above-L1 fragments in oranges/purples, below-L1 fragments in blues (one shade per species)
_SPECIES_COLOURS = {"signal": ("#009E73", "#7FC97F", "#1B7837"), "above L1": ("#D55E00", "#CC79A7", "#E69F00"),
                    "below L1": ("#0072B2", "#56B4E9", "#332288")}
_DASH = {"mc": "solid", "data": "dashed"}


def _empty(x_label: str, y_label: str, title: str) -> hv.Curve:
    return hv.Curve(([], []), x_label, y_label).opts(title=title, **PLOT_OPTS)


def head_curves(histories: dict[str, pd.DataFrame]) -> hv.Layout:
    """Three panels vs epoch: classification loss (both models), domain accuracy and lambda (adversarial)."""
    x = "epoch"
    loss_el, acc_el, lam_el = [], [], []
    for model, h in histories.items():
        if h is None or not len(h):
            continue
        colour = MODEL_COLOURS.get(model, "#555555")
        # The plain model's loss is the class loss itself; the adversarial one logs the head separately.
        train_col = "class_loss" if "class_loss" in h else "train_loss"
        val_col = "val_class_loss" if "val_class_loss" in h else "val_loss"
        for col, dash, what in ((train_col, "solid", "train"), (val_col, "dashed", "validation")):
            if col in h and h[col].notna().any():
                loss_el.append(hv.Curve((h["epoch"], h[col]), x, "classification loss (cross-entropy, MC)",
                                        label=f"{MODEL_LABELS.get(model, model)}, {what}").opts(
                    color=colour, line_dash=dash, line_width=2))
        for col, dash, what in (("domain_accuracy", "solid", "train batches"),
                                ("val_domain_accuracy", "dashed", "validation")):
            if col in h and h[col].notna().any():
                acc_el.append(hv.Curve((h["epoch"], h[col]), x, "domain-head accuracy",
                                       label=f"{what}").opts(color=colour, line_dash=dash, line_width=2))
        if "lambda" in h:
            lam_el.append(hv.Curve((h["epoch"], h["lambda"]), x, "gradient-reversal λ",
                                   label=MODEL_LABELS.get(model, model)).opts(color=colour, line_width=2))
    loss = hv.Overlay(loss_el).opts(title="Signal/background head") if loss_el else _empty(
        x, "classification loss", "no training history saved")
    if acc_el:
        acc_el.append(hv.HLine(0.5).opts(color="#777777", line_dash="dotted"))
        acc = hv.Overlay(acc_el).opts(hv.opts.Curve(ylim=(0, 1)),
                                      hv.opts.Overlay(title="Domain head (MC vs data): goal 0.5"))
    else:
        acc = _empty(x, "domain-head accuracy", "no domain head")
    lam = hv.Overlay(lam_el).opts(title="λ schedule (2/(1+e^(-γp)) − 1)") if lam_el else _empty(
        x, "gradient-reversal λ", "no λ logged")
    return (loss + acc + lam).opts(hv.opts.Curve(**PLOT_OPTS), hv.opts.Overlay(legend_position="top_right"),
                                   hv.opts.Layout(shared_axes=False)).cols(3)


def score_plot(hists: dict[str, GroupedHistogram], model: str, *, log_y: bool = False) -> hv.Overlay:
    """MC (signal and background, stacked, normalised to the data) with data points, for one model's score."""
    mc, data = hists["mc"], hists["data"]
    mc_total = float(mc.counts.sum())
    data_total = float(data.counts.sum())
    scale = data_total / mc_total if mc_total > 0 else 1.0
    scaled = GroupedHistogram(mc.edges, mc.counts * scale, mc.sumw2 * scale**2, mc.names)
    return class_histograms(
        scaled, f"{MODEL_LABELS.get(model, model)} signal score", Y_WEIGHTED, stacked=True, log_y=log_y,
        colours={"signal": "#009E73", "background": "#D55E00"},
        labels={"signal": "MC signal (scaled to data)", "background": "MC background (scaled to data)"},
        data=DataSeries(data.counts.sum(axis=0), data.sumw2.sum(axis=0), 1.0, "data"),
        title=f"{MODEL_LABELS.get(model, model)}: MC vs data scores")


def efficiency_plot(scan: pd.DataFrame, threshold: float | None = None) -> hv.Layout:
    """Signal efficiency and background fraction vs threshold: per model (colour) and domain (dash)."""
    x = "ML score threshold"
    eff_el, bkg_el = [], []
    for (model, domain), g in scan.groupby(["model", "domain"], sort=False):
        label = f"{MODEL_LABELS.get(model, model)}, {domain}"
        style = dict(color=MODEL_COLOURS.get(model, "#555555"), line_dash=_DASH.get(domain, "solid"), line_width=2)
        eff_el.append(hv.Curve((g["threshold"], g["signal_efficiency"]), x, "signal efficiency", label=label).opts(
            **style))
        bkg_el.append(hv.Curve((g["threshold"], g["background_fraction"]), x,
                               "background fraction of passing events", label=label).opts(**style))
    if threshold is not None:
        for el in (eff_el, bkg_el):
            el.append(hv.VLine(float(threshold)).opts(color="#777777", line_dash="dotted"))
    eff = hv.Overlay(eff_el).opts(title="Signal efficiency (data: hidden truth)")
    bkg = hv.Overlay(bkg_el).opts(title="Background fraction after the cut")
    return (eff + bkg).opts(hv.opts.Curve(ylim=(0, 1.02), **PLOT_OPTS),
                            hv.opts.Overlay(legend_position="bottom_left"), hv.opts.Layout(shared_axes=False))


def _group_colours(names) -> dict[str, str]:
    out, used = {}, dict.fromkeys(_SPECIES_COLOURS, 0)
    for name in names:
        kind = name.split(" ", 1)[1]
        options = _SPECIES_COLOURS.get(kind, ("#999999",))
        out[name] = options[used.get(kind, 0) % len(options)]
        used[kind] = used.get(kind, 0) + 1
    return out


def variable_plot(before: GroupedHistogram, after: GroupedHistogram, variable: str, *, model: str, threshold: float,
                  domain: str, log_y: bool = False) -> hv.Layout:
    """A variable before and after the ML cut, stacked by true species and fragmentation category."""
    x = VARIABLES.get(variable, variable)
    colours = _group_colours(before.names)
    where = "MC" if domain == "mc" else "data (hidden truth)"
    b = class_histograms(before, x, Y_WEIGHTED, stacked=True, log_y=log_y, colours=colours,
                         title=f"{where}: before the ML cut ({before.counts.sum():,.0f} events)")
    a = class_histograms(after, x, Y_WEIGHTED, stacked=True, log_y=log_y, colours=colours,
                         title=f"after {MODEL_LABELS.get(model, model)} score ≥ {threshold:g} "
                               f"({after.counts.sum():,.0f} events)")
    return (b + a).opts(hv.opts.Layout(shared_axes=False))


def attention_plot(att: pd.DataFrame, model: str) -> hv.Layout:
    """Per-event attention over the four branches: distribution per branch, split by true class."""
    branches = [b for b in BRANCHES if b in att]
    if not len(att) or not branches:
        return hv.Layout([_empty("branch", "attention weight", "no attention weights saved")])
    long = att.melt(id_vars=["true_label"], value_vars=branches, var_name="branch", value_name="weight")
    long["branch"] = long["branch"].map(BRANCH_LABELS)
    box = hv.BoxWhisker(long, ["branch", "true_label"], "weight").opts(
        box_fill_color=hv.dim("true_label").categorize({"signal": "#009E73", "background": "#D55E00"}),
        title=f"{MODEL_LABELS.get(model, model)}: per-event attention each branch receives",
        ylabel="attention weight (sums to 1 over branches)", xlabel="branch, true class", outlier_alpha=0.1,
        **PLOT_OPTS)
    means = att.groupby("domain")[branches].mean().reset_index().melt(id_vars="domain", var_name="branch",
                                                                     value_name="mean weight")
    means["branch"] = means["branch"].map(BRANCH_LABELS)
    bars = hv.Bars(means, ["branch", "domain"], "mean weight").opts(
        title="Mean attention per branch, MC vs data", ylabel="mean attention weight", xlabel="branch, domain",
        color=hv.dim("domain").categorize({"mc": "#0072B2", "data": DATA_COLOUR}), **PLOT_OPTS)
    return (box + bars).opts(hv.opts.Layout(shared_axes=False))


class TrainingCurves(pn.viewable.Viewer):
    """Both heads' curves of the shown study (saved histories)."""

    def __init__(self, state: NucleiViewState, **params):
        ensure_extension()
        super().__init__(**params)
        self._pane = pn.pane.HoloViews(head_curves(state.result.histories), sizing_mode="stretch_width",
                                       min_height=360)

    def __panel__(self):
        return self._pane


class ScoreDistributions(pn.viewable.Viewer):
    """MC-vs-data score distributions of both networks for the shown selection."""

    def __init__(self, state: NucleiViewState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._panes = [pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, m, state.param.selection,
                                                               state.param.log_y)),
                                         sizing_mode="stretch_width", min_height=380) for m in state.result.run_ids()]

    def _plot(self, model, selection, log_y):
        return score_plot(self.state.score_histograms(model), model, log_y=log_y)

    def __panel__(self):
        return pn.Row(*self._panes, sizing_mode="stretch_width")


class EfficiencyView(pn.viewable.Viewer):
    """Efficiency and background fraction vs threshold, and the numbers at the current threshold."""

    def __init__(self, state: NucleiViewState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._plot = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._curves, state.param.selection,
                                                             state.param.threshold)),
                                       sizing_mode="stretch_width", min_height=380)
        self._table = pn.pane.DataFrame(pn.bind(self._numbers, state.param.selection, state.param.threshold),
                                        float_format="{:.4f}".format, index=False, sizing_mode="stretch_width")

    def _curves(self, selection, threshold):
        return efficiency_plot(self.state.efficiency_curves(selection), threshold)

    def _numbers(self, selection, threshold):
        return self.state.at_threshold()

    def __panel__(self):
        return pn.Column(self._plot, pn.pane.Markdown("**At the current threshold** (data: hidden truth)"),
                         with_csv(self._table, "nuclei-efficiency-at-threshold.csv"), sizing_mode="stretch_width")


class CutDistributions(pn.viewable.Viewer):
    """Any variable (L1 charge by default) before and after the ML cut, stacked by species."""

    def __init__(self, state: NucleiViewState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        s = state.param
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, s.selection, s.model, s.threshold,
                                                             s.variable, s.domain, s.log_y)),
                                       sizing_mode="stretch_width", min_height=400)

    def _plot(self, selection, model, threshold, variable, domain, log_y):
        before, after = self.state.variable_histograms()
        return variable_plot(before, after, variable, model=model, threshold=threshold, domain=domain, log_y=log_y)

    def __panel__(self):
        return self._pane


class AttentionView(pn.viewable.Viewer):
    """Per-event attention weights of the shown model, and a table of the first events."""

    def __init__(self, state: NucleiViewState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, state.param.model,
                                                             state.param.selection)),
                                       sizing_mode="stretch_width", min_height=400)
        self._table = pn.pane.DataFrame(pn.bind(self._events, state.param.model, state.param.selection),
                                        float_format="{:.3f}".format, sizing_mode="stretch_width", max_rows=12)

    def _plot(self, model, selection):
        return attention_plot(self.state.attention(model), model)

    def _events(self, model, selection):
        return self.state.attention(model).head(12).rename(columns=BRANCH_LABELS)

    def __panel__(self):
        return pn.Column(self._pane, pn.pane.Markdown("**First events** (attention weights per branch)"),
                         with_csv(self._table, "nuclei-attention-first-events.csv"), sizing_mode="stretch_width")
