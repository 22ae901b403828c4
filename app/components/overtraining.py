"""Overtraining check (TMVA style): test-sample histograms as fills, training sample as points."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from app.components.histplot import data_points, log_floor
from app.components.style import DATA_COLOUR, PLOT_OPTS, ensure_extension, markdown
from app.state.efficiency import OvertrainingState

__all__ = ["OvertrainingCheck"]

_COLOURS = {"signal": "#0072B2", "background": "#D55E00"}
_Y = "normalised events / bin (1/N dN/dx)"


class OvertrainingCheck(pn.viewable.Viewer):
    """Train vs test distributions of p_signal for signal and background, KS p-values in the legend.

    Args:
        state: the overtraining state.
    """

    def __init__(self, state: OvertrainingState, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._pane = pn.pane.HoloViews(pn.bind(self._plot, state.param.test_hist), sizing_mode="stretch_width",
                                       min_height=380)
        caption = markdown(state.param.summary, sizing_mode="stretch_width", margin=(0, 10),
                                   css_classes=["overtraining-summary"])
        self._layout = pn.Column(caption, self._pane, sizing_mode="stretch_width")

    def _plot(self, test_hist) -> hv.Overlay:
        s = self.state
        x = f"p_{s.choice.signal} (classifier probability)"
        train_hist = s.train_hist
        widths = np.diff(test_hist.edges)
        # Densities (1/N dN/dx): the two splits have different sizes; shapes are what is compared.
        dens = {}
        for split, h in (("test", test_hist), ("train", train_hist)):
            tot = h.counts.sum(axis=1, keepdims=True)
            tot = np.where(tot > 0, tot, 1.0) * widths
            dens[split] = (h.counts / tot, h.sumw2 / tot**2)
        all_h = np.concatenate([dens["test"][0].ravel(), dens["train"][0].ravel()])
        lo = log_floor(all_h)
        elements = []
        for i, name in enumerate(test_hist.names):
            ks = s.ks.get(name)
            p_text = f", KS p = {ks.pvalue:.3f}" if ks is not None else ""
            colour = _COLOURS.get(name, DATA_COLOUR)
            test_d = np.where(dens["test"][0][i] > 0, dens["test"][0][i], lo)
            elements.append(hv.Histogram((test_hist.edges, test_d), kdims=[x], vdims=[_Y], label=f"{name} (test)")
                            .opts(fill_color=colour, fill_alpha=0.3, line_color=colour, line_width=1.5))
            elements += list(data_points(test_hist.centres, dens["train"][0][i], dens["train"][1][i], x, _Y,
                                         label=f"{name} (train{p_text})", floor=lo, colour=colour))
        return hv.Overlay(elements).opts(
            hv.opts.Histogram(logy=True, ylim=(lo, float(all_h.max()) * 30), xlim=(0, 1), **PLOT_OPTS),
            hv.opts.Overlay(title="Overtraining check: training (points) vs test (filled)",
                            legend_position="top_left", legend_opts={"background_fill_alpha": 0.8}),
        )

    def plot_object(self) -> hv.Overlay:
        """The overlay at the current state (static: reports, notebooks)."""
        return self._plot(self.state.test_hist)

    def __panel__(self):
        return self._layout
