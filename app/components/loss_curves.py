"""Live loss curves of one model, drawn once by HoloViews and then updated in place at every epoch.

Re-rendering the training/validation overlay with HoloViews costs ~45 ms per plot (a Retrain panel
has two), on the server's event loop, for every new epoch: a fast toy training sends a few epochs a
second, so the session that watches it took a third of a core and held up every other session's
threshold moves by up to 100 ms at a time. As the threshold views do (``app.components.live``), the
plot is built once and a hook captures its sources and ranges (and draws the current history into
them); a new epoch then replaces the curves' data and re-fits the axes, well under a millisecond of work.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import BasicTicker

from app.components.style import PLOT_OPTS, ensure_extension

__all__ = ["LiveLossCurves", "LOSS_COLUMNS"]

#: history column -> (legend label, colour)
LOSS_COLUMNS = {"train_loss": ("training", "#0072B2"), "val_loss": ("validation", "#D55E00")}
_LOSS_NAMES = {"classifier": "weighted cross-entropy", "autoencoder": "weighted MSE (reconstruction)"}
_PADDING = 0.1  # share of the data's span added on each side of both axes


def _series(history: pd.DataFrame | None, model: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{history column: (epochs, losses)} of ``model``'s rows (empty arrays where there are none)."""
    rows = None
    if history is not None and len(history):
        rows = history[history["model"] == model]
    out = {}
    for col in LOSS_COLUMNS:
        if rows is None or not len(rows) or col not in rows or rows[col].isna().all():
            out[col] = (np.array([]), np.array([]))
        else:
            keep = rows[col].notna().to_numpy()
            out[col] = (rows["epoch"].to_numpy(float)[keep], rows[col].to_numpy(float)[keep])
    return out


def _padded(values: np.ndarray) -> tuple[float, float] | None:
    """(start, end) of an axis showing ``values`` with padding; None without finite values."""
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lo, hi = float(values.min()), float(values.max())
    pad = _PADDING * (hi - lo) if hi > lo else max(0.5, 0.1 * abs(hi))
    return lo - pad, hi + pad


def _title(model: str, n_epochs: int) -> str:
    return f"{model} loss" + ("" if n_epochs else " (no epochs yet)")


class LiveLossCurves(pn.viewable.Viewer):
    """Training and validation loss vs epoch of one model, following a long-format history parameter.

    Args:
        model: which model's rows to show (the history's ``model`` column).
        history: a parameter (e.g. ``control.param.history``) holding a DataFrame with columns model,
            epoch, train_loss, val_loss; the plot follows every change of it.
    """

    def __init__(self, model: str, history, **params):
        ensure_extension()
        super().__init__(**params)
        self.model = model
        self._figures: dict[str, dict] = {}  # figure id -> its captured models (see _collect)
        self._shown = self._view(getattr(history.owner, history.name))
        self._pane = pn.pane.HoloViews(self._overlay(), sizing_mode="stretch_width", min_height=300)
        history.owner.param.watch(lambda event: self.update(event.new), history.name)

    def _view(self, history: pd.DataFrame | None) -> dict:
        """What to draw of ``history``: the series, the axes' spans and the number of epochs."""
        series = _series(history, self.model)
        xs = np.concatenate([x for x, _ in series.values()])
        ys = np.concatenate([y for _, y in series.values()])
        return {"series": series, "x": _padded(xs), "y": _padded(ys),
                "epochs": max(len(x) for x, _ in series.values())}

    def _overlay(self) -> hv.Overlay:
        """The plot's structure; its data comes from ``_shown`` when it is rendered (see ``_hook``)."""
        loss = _LOSS_NAMES.get(self.model, "loss")
        elements = []
        for label, colour in LOSS_COLUMNS.values():
            empty = (np.array([]), np.array([]))
            elements.append(hv.Curve(empty, "epoch", f"{loss} (per event)", label=label).opts(
                color=colour, line_width=2))
            elements.append(hv.Scatter(empty, "epoch", f"{loss} (per event)", label=label).opts(
                color=colour, size=5))
        return hv.Overlay(elements).opts(
            hv.opts.Curve(**PLOT_OPTS), hv.opts.Scatter(**PLOT_OPTS),
            hv.opts.Overlay(title=_title(self.model, 0), legend_position="top_right", hooks=[self._hook]),
        )

    def _hook(self, plot, element) -> None:
        """HoloViews hook: keep this render's models and draw what is shown now into them.

        A render happens when the pane is first displayed, and again whenever Panel rebuilds it (a tab
        shown again): either way it gets the history of that moment, not the one of construction.
        """
        models = self._collect(plot)
        for axis in plot.state.xaxis:
            axis.ticker = BasicTicker(min_interval=1)  # epochs are whole numbers: no tick at 1.2
        self._figures[plot.state.id] = models
        self._draw(models)

    @staticmethod
    def _collect(plot) -> dict:
        """The sources (by history column and glyph) and the figure's ranges and title of one render."""
        labels = {label: col for col, (label, _) in LOSS_COLUMNS.items()}
        glyphs = {}
        for sub in plot.subplots.values():
            element = sub.current_frame
            glyph = sub.handles["glyph"]
            glyphs[(labels[element.label], type(element).__name__)] = (sub.handles["source"], glyph.x, glyph.y)
        return {"glyphs": glyphs, "x_range": plot.handles["x_range"], "y_range": plot.handles["y_range"],
                "title": plot.state.title}

    def _draw(self, models: dict) -> None:
        shown = self._shown
        for (col, _), (source, x_field, y_field) in models["glyphs"].items():
            x, y = shown["series"][col]
            source.data = {x_field: x, y_field: y}
        for span, axis in ((shown["x"], models["x_range"]), (shown["y"], models["y_range"])):
            if span is not None:
                axis.update(start=span[0], end=span[1])
        models["title"].text = _title(self.model, shown["epochs"])

    def update(self, history: pd.DataFrame | None) -> None:
        """Show ``history`` (called on every change of the history parameter)."""
        self._shown = self._view(history)
        # Renders Panel has dropped (a tab drawn again) have left their document: forget them.
        self._figures = {fid: m for fid, m in self._figures.items() if m["title"].document is not None}
        for models in list(self._figures.values()):
            self._draw(models)
        if self._figures:
            pn.io.push_notebook(self._pane)  # a no-op for server sessions (their patches go by websocket)

    def __panel__(self):
        return self._pane
