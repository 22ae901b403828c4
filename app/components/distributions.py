"""Distributions of each class's score (D_k or p_k) per true class, weighted, log-y, overlaid or stacked.

One plot per score, as in the talk's discriminant slides: the MC classes as coloured histograms and,
when the page has data, the data as black points normalised to the MC total (a shape comparison:
data and MC weights are on different scales).
"""

from __future__ import annotations

import holoviews as hv
import panel as pn

from app.components.histplot import DataSeries, class_histograms
from app.components.style import Y_WEIGHTED, ensure_extension
from app.state.classifier import ClassifierScores, score_axis_label

__all__ = ["DiscriminantDistributions"]


class DiscriminantDistributions(pn.viewable.Viewer):
    """Per-true-class histograms of every class score of a ``ClassifierScores`` state.

    Args:
        state: the classifier state (fractions, score kind, histograms).
        show_data: draw the data points when the state has data.
        ncols: plots per row.
    """

    def __init__(self, state: ClassifierScores, *, show_data: bool = True, ncols: int = 2, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self.show_data = show_data
        self.ncols = ncols
        # Widgets are made per instance (never class attributes): each session owns its own.
        self._controls = pn.Row(
            pn.widgets.RadioButtonGroup.from_param(state.param.stacked, options={"overlaid": False, "stacked": True},
                                                   color="default", label=""),
            pn.widgets.Checkbox.from_param(state.param.log_y, label="log y"),
            pn.widgets.IntSlider.from_param(state.param.bins, width=180),
            align="center",
        )
        # Log-y (axis type) and stacking (element types) need a new figure; fraction and bin changes
        # update the existing figure through a DynamicMap, several times cheaper.
        self._plots = [
            pn.pane.HoloViews(pn.bind(self._dynamic, k, state.param.log_y, state.param.stacked),
                              sizing_mode="stretch_width", min_height=340, linked_axes=False)
            for k in range(state.events.n_classes)
        ]
        self._layout = pn.Column(
            self._controls,
            pn.GridBox(*self._plots, ncols=ncols, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def _dynamic(self, k: int, log_y: bool, stacked: bool) -> hv.DynamicMap:
        return hv.DynamicMap(pn.bind(self._plot, k, self.state.param.histograms, stacked, log_y))

    def _plot(self, k: int, histograms, stacked: bool, log_y: bool) -> hv.Overlay:
        s = self.state
        name = s.events.class_names[k]
        hist = histograms[k]
        x_label = score_axis_label(s.score_kind, name)
        data = None
        if self.show_data and s.data_histograms:
            dh = s.data_histograms[k]
            total_mc, total_data = hist.counts.sum(), dh.counts.sum()
            # Data and MC weights are on different scales: compare shapes, data scaled to the MC area.
            scale = total_mc / total_data if total_data > 0 else 1.0
            data = DataSeries(dh.counts[0], dh.sumw2[0], scale, "data (scaled to MC)")
        title = f"{'D' if s.score_kind == 'D' else 'p'}_{name} by true class"
        return class_histograms(hist, x_label, Y_WEIGHTED, stacked=stacked, log_y=log_y, data=data, title=title)

    def __panel__(self):
        return self._layout

    def plot_object(self, k: int) -> hv.Overlay:
        """The HoloViews object of plot ``k`` at the current state (for notebooks and tests)."""
        s = self.state
        return self._plot(k, s.histograms, s.stacked, s.log_y)

