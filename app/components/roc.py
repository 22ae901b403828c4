"""One-vs-rest ROC curves of every class, AUC in the legend; optional background-rejection view."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from app.components.style import PLOT_OPTS, class_colours, ensure_extension
from app.state.classifier import ClassifierScores

__all__ = ["RocCurves", "roc_legend_label"]

_AXES = {
    "ROC": ("background efficiency ε_B (false-positive rate)", "signal efficiency ε_S (true-positive rate)"),
    "background rejection": ("signal efficiency ε_S", "background rejection 1 − ε_B"),
}


def roc_legend_label(name: str, auc: float, kind: str) -> str:
    """Legend text of one curve: the class, its score and the AUC to four decimals."""
    return f"{kind}_{name} vs rest  (AUC = {auc:.4f})"


class RocCurves(pn.viewable.Viewer):
    """ROC curves of ``state.rocs`` (one per class, one-vs-rest), redrawn when the scores change.

    Args:
        state: the classifier state; its ``roc_mode`` picks the axes.
    """

    def __init__(self, state: ClassifierScores, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        self._mode = pn.widgets.RadioButtonGroup.from_param(state.param.roc_mode, color="default", label="")
        # A DynamicMap updates the existing figure (legend, curves) instead of building a new one.
        self._pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, state.param.rocs, state.param.roc_mode)),
                                       sizing_mode="stretch_width", min_height=420)
        self._layout = pn.Column(self._mode, self._pane, sizing_mode="stretch_width")

    def _plot(self, rocs, roc_mode: str) -> hv.Overlay:
        s = self.state
        x_label, y_label = _AXES[roc_mode]
        colours = class_colours(s.events.class_names)
        curves = []
        for c in rocs:
            x, y = s.roc_points(c)
            curves.append(hv.Curve((x, y), x_label, y_label, label=roc_legend_label(c.name, c.auc, s.score_kind))
                          .opts(color=colours[c.name], line_width=2.5))
        line = np.array([0.0, 1.0])
        chance = (line, line) if roc_mode == "ROC" else (line, line[::-1])
        guide = hv.Curve(chance, x_label, y_label, label="random guess").opts(
            color="#888888", line_dash="dashed", line_width=1)
        legend = "bottom_right" if roc_mode == "ROC" else "bottom_left"
        return hv.Overlay([*curves, guide]).opts(
            hv.opts.Curve(xlim=(0, 1), ylim=(0, 1.01), **{**PLOT_OPTS, "min_height": 420}),
            hv.opts.Overlay(legend_position=legend, title=f"One-vs-rest ROC of the {s.score_kind}_k scores",
                            legend_opts={"background_fill_alpha": 0.8}),
        )

    def __panel__(self):
        return self._layout

    def plot_object(self) -> hv.Overlay:
        """The HoloViews overlay at the current state."""
        return self._plot(self.state.rocs, self.state.roc_mode)
