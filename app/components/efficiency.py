"""TMVA-style cut-efficiency view: efficiencies, purity and S/sqrt(S+B) vs the cut on p_signal."""

from __future__ import annotations

import holoviews as hv
import panel as pn

from app.components.export import csv_download
from app.components.live import ThresholdSpan
from app.components.style import PLOT_OPTS, ensure_extension, markdown
from app.state.efficiency import CutEfficiencyState

__all__ = ["CutEfficiency"]

_CURVES = (("signal_eff", "signal efficiency", "#0072B2"), ("background_eff", "background efficiency", "#D55E00"),
           ("purity", "purity S/(S+B)", "#009E73"))


class CutEfficiency(pn.viewable.Viewer):
    """Two plots sharing the threshold axis (efficiencies/purity and significance) with the cut marked.

    Args:
        state: the cut-efficiency state; its ``cut`` is shared with the migration matrix.
    """

    def __init__(self, state: CutEfficiencyState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        inputs = pn.Row(
            pn.widgets.FloatInput.from_param(state.param.n_signal, label="expected signal events", width=170,
                                             placeholder="weighted MC total"),
            pn.widgets.FloatInput.from_param(state.param.n_background, label="expected background events",
                                             width=190, placeholder="weighted MC total"),
            pn.widgets.Button(label="cut at best S/√(S+B)", color="light", align="end",
                              on_click=lambda e: setattr(state.cut, "threshold", state.best_threshold)),
        )
        self._span = ThresholdSpan(state.cut.threshold, colour="#333333")
        self._eff = pn.pane.HoloViews(pn.bind(self._efficiencies, state.param.table), sizing_mode="stretch_width",
                                      min_height=340)
        self._sig = pn.pane.HoloViews(pn.bind(self._significance, state.param.table), sizing_mode="stretch_width",
                                      min_height=340)
        # The cut marker moves in place (app.components.live) so the slider does not redraw both plots.
        state.cut.param.watch(lambda e: self._span.move(e.new, self._eff), "threshold")
        caption = markdown(state.param.summary, sizing_mode="stretch_width", margin=(0, 10),
                                   css_classes=["efficiency-summary"])
        self._layout = pn.Column(inputs, caption, pn.Row(self._eff, self._sig, sizing_mode="stretch_width"),
                                 csv_download(lambda: state.table, "cut-efficiency-scan.csv"),
                                 sizing_mode="stretch_width")

    def _x(self) -> str:
        return f"cut on p_{self.state.choice.signal} (keep events with p ≥ cut)"

    def _efficiencies(self, table) -> hv.Overlay:
        x = self._x()
        curves = [hv.Curve((table["threshold"], table[col]), x, "efficiency or purity (fraction)", label=label)
                  .opts(color=colour, line_width=2.5) for col, label, colour in _CURVES]
        return hv.Overlay(curves).opts(
            hv.opts.Curve(ylim=(0, 1.05), xlim=(0, 1), **PLOT_OPTS),
            hv.opts.Overlay(title=f"Efficiencies for signal = {self.state.choice.signal} (dashed: cut)",
                            legend_position="bottom_left", hooks=[self._span.hook]))

    def _significance(self, table) -> hv.Overlay:
        x = self._x()
        s = self.state
        which = "expected" if (s.n_signal is not None or s.n_background is not None) else "weighted MC"
        curve = hv.Curve((table["threshold"], table["significance"]), x, f"S/√(S+B) ({which} yields)",
                         label="S/√(S+B)").opts(color="#CC79A7", line_width=2.5)
        top = float(table["significance"].max()) or 1.0
        return hv.Overlay([curve]).opts(
            hv.opts.Curve(ylim=(0, top * 1.15), xlim=(0, 1), **PLOT_OPTS),
            hv.opts.Overlay(title="Significance vs cut (dashed: cut)", legend_position="bottom_left",
                            hooks=[self._span.hook]))

    def plot_objects(self) -> tuple[hv.Overlay, hv.Overlay]:
        """The efficiency and significance plots at the current state (static: reports, notebooks)."""
        table = self.state.table
        return self._efficiencies(table), self._significance(table)

    def __panel__(self):
        return self._layout
