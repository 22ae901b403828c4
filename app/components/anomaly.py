"""Anomaly-score distributions of the MC classes and the data, the threshold line, flagged fractions
and a table of the most anomalous data events.

The histograms are drawn once per state; only the threshold line (a Bokeh Span moved in place) and
the flagged-fraction caption follow the slider.
"""

from __future__ import annotations

import holoviews as hv
import panel as pn

from app.components.export import with_csv
from app.components.histplot import DataSeries, class_histograms
from app.components.live import ThresholdSpan
from app.components.style import Y_WEIGHTED, class_colours, ensure_extension, markdown
from app.state.anomaly import DATA_NAME, AnomalyState

__all__ = ["AnomalyScores"]

_X = "anomaly score = tanh(MSE of the autoencoder)"


class AnomalyScores(pn.viewable.Viewer):
    """Histogram view with threshold line and caption, plus the top-anomalies table.

    Args:
        state: the anomaly state (shares its ``cut`` with the migration matrix).
        show_table: include the most-anomalous-events table below the plot (else see ``table_view``).
    """

    def __init__(self, state: AnomalyState, *, show_table: bool = True, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        # The threshold line is a Bokeh Span moved in place (see app.components.live): redrawing the
        # histogram overlay with HoloViews on every slider step would cost ~20 ms.
        self._span = ThresholdSpan(state.cut.threshold)
        self._plot_pane = pn.pane.HoloViews(pn.bind(self._histograms, state.param.log_y),
                                            sizing_mode="stretch_width", min_height=380,
                                            css_classes=["anomaly-plot"])
        state.cut.param.watch(lambda e: self._span.move(e.new, self._plot_pane), "threshold")
        self._caption = markdown(state.param.summary, sizing_mode="stretch_width",
                                         css_classes=["anomaly-summary"], margin=(0, 10))
        parts = [pn.Row(pn.widgets.Checkbox.from_param(state.param.log_y, label="log y")),
                 self._caption, self._plot_pane]
        self._table = pn.widgets.Tabulator(
            state.param.top_events, disabled=True, show_index=False, height=330, sizing_mode="stretch_width",
            formatters={c: {"type": "money", "precision": 4} for c in self._float_columns()},
            css_classes=["top-anomalies"],
        )
        #: the most-anomalous-events table with its heading (pages may place it apart from the plot)
        self.table_view = pn.Column(
            markdown(f"**Most anomalous data events** (top {state.top_n} by anomaly score; 'toy truth' is "
                             "the simulation's hidden label, which real data would not have)",
                             margin=(10, 10, 0, 10)),
            with_csv(self._table, "top-anomalies.csv"), sizing_mode="stretch_width")
        self._layout = pn.Column(*parts, *([self.table_view] if show_table else []), sizing_mode="stretch_width")

    def _float_columns(self) -> list[str]:
        frame = self.state.top_events
        return [c for c in frame.columns if frame[c].dtype.kind == "f"] if frame is not None else []

    def _histograms(self, log_y: bool) -> hv.Overlay:
        s = self.state
        hist = s.histogram
        k = s.mc.n_classes
        mc = type(hist)(hist.edges, hist.counts[:k], hist.sumw2[:k], hist.names[:k])
        colours = class_colours(list(hist.names))
        data = None
        if DATA_NAME in hist.names:
            i = hist.names.index(DATA_NAME)
            total_mc, total_data = mc.counts.sum(), hist.counts[i].sum()
            scale = total_mc / total_data if total_data > 0 else 1.0
            data = DataSeries(hist.counts[i], hist.sumw2[i], scale, "data (scaled to MC)")
        plot = class_histograms(mc, _X, Y_WEIGHTED, log_y=log_y, colours=colours, data=data,
                                title="Anomaly score: MC classes and data (dashed: threshold)")
        return plot.opts(hv.opts.Overlay(hooks=[self._span.hook]))

    def __panel__(self):
        return self._layout

    def plot_object(self, thresholds=None) -> hv.Overlay:
        """The histogram overlay with threshold lines (static: for reports and notebooks)."""
        ts = [self.state.cut.threshold] if thresholds is None else list(thresholds)
        lines = [hv.VLine(t).opts(color="#D55E00", line_dash="dashed", line_width=2) for t in ts]
        return hv.Overlay([*self._histograms(self.state.log_y), *lines])
