"""Migration-matrix heatmap (true x predicted class) that follows the shared threshold.

HoloViews draws the heatmap and its cell labels; a threshold move then only rewrites the cells'
values, texts and text colours in the captured Bokeh sources (see ``app.components.live``), because a
HoloViews re-render of an overlay costs 20+ ms and the slider has a 50 ms budget for every view. A
change of sample, normalisation or selection re-renders with HoloViews (titles and units change).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from app.components.export import csv_download
from app.components.live import ModelRefs
from app.components.session_cleanup import release_links_at_session_end
from app.components.style import PLOT_OPTS, ensure_extension, markdown
from app.state.migration import MigrationState

__all__ = ["MigrationMatrix"]

_UNITS = {"counts": "weighted events", "row %": "% of true class", "column %": "% of predicted class"}
_Y = "true class"
_TEXT_DARK, _TEXT_LIGHT = "#111111", "#ffffff"


class _Redraw(param.Parameterized):
    """A counter whose change asks the DynamicMap for a full HoloViews re-render."""

    n = param.Integer(default=0)


def _field(spec) -> str | None:
    """The column name of a Bokeh data spec (a plain string, a Field, or a dict)."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        return spec.get("field")
    return getattr(spec, "field", None)


def _cell_texts(v: np.ndarray, percent: bool) -> list[str]:
    return [f"{x:.1f} %" if percent else (f"{x:,.0f}" if x >= 100 else f"{x:,.1f}") for x in v]


class MigrationMatrix(pn.viewable.Viewer):
    """Heatmap with cell labels, normalisation and sample choices, and a caption of what passes the cut.

    Args:
        state: the migration state.
        show_threshold: also show a slider of the shared threshold next to the matrix.
    """

    def __init__(self, state: MigrationState, *, show_threshold: bool = False, **params):
        ensure_extension()
        super().__init__(**params)
        self.state = state
        first = [pn.widgets.RadioButtonGroup.from_param(state.param.normalisation, color="default",
                                                        label="", align="end")]
        if len(state.param.table.objects) > 1:
            first.insert(0, pn.widgets.Select.from_param(state.param.table, label="sample", width=180))
        second = []
        if state.current.selectable:
            second.append(pn.widgets.RadioBoxGroup.from_param(state.param.selection, inline=True, label=""))
        if show_threshold:
            second.append(release_links_at_session_end(pn.widgets.EditableFloatSlider.from_param(
                state.cut.param.threshold, label=state.cut.score_label, width=260)))
        controls = [pn.Row(*first)] + ([pn.Row(*second)] if second else [])
        self._redraw = _Redraw()
        self._rendered_key: tuple | None = None
        self._heat = ModelRefs(lambda plot: {"glyph": plot.handles["glyph"], "source": plot.handles["source"],
                                             "mapper": plot.handles.get("color_mapper")})
        self._labels = ModelRefs(lambda plot: {"glyph": plot.handles["glyph"], "source": plot.handles["source"]})
        self._caption = markdown(state.param.summary, css_classes=["migration-summary"],
                                         sizing_mode="stretch_width", margin=(0, 10))
        self._plot_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._plot, self._redraw.param.n)),
                                            sizing_mode="stretch_width", min_height=380,
                                            css_classes=["migration-plot"])
        self._layout = pn.Column(*controls, self._caption, self._plot_pane,
                                 csv_download(self.table, "migration-matrix.csv"), sizing_mode="stretch_width")
        state.param.watch(self._on_shown, "shown")

    def table(self) -> pd.DataFrame:
        """The matrix as shown (rows: true class, columns: predicted class; unit as the normalisation)."""
        s = self.state
        unit = _UNITS[s.normalisation]
        frame = pd.DataFrame(np.asarray(s.shown, dtype=np.float64), columns=[f"predicted {c}" for c in s.col_names])
        frame.insert(0, "true class", list(s.row_names))
        frame.insert(1, "unit", unit)
        return frame

    # -- what is drawn -------------------------------------------------------------------------------
    def _key(self) -> tuple:
        s = self.state
        return (s.table, s.normalisation, s.selection, tuple(s.row_names), tuple(s.col_names),
                s.current.prediction)

    def _cells(self) -> dict:
        """The matrix as flat cell arrays in row-major order (true class, then predicted class)."""
        s = self.state
        rows, cols = list(s.row_names), list(s.col_names)
        r_idx, c_idx = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), indexing="ij")
        v = np.asarray(s.shown, dtype=np.float64).ravel()
        top = float(v.max()) if v.size and v.max() > 0 else 1.0
        return {
            "x": np.asarray(cols, dtype=object)[c_idx.ravel()],
            "y": np.asarray(rows, dtype=object)[r_idx.ravel()],
            "v": v,
            "text": _cell_texts(v, s.normalisation != "counts"),
            "dark": (v > 0.55 * top).astype(np.int64),  # 1 where the cell needs white text
            "top": top,
        }

    def _plot(self, n: int) -> hv.Overlay:
        s = self.state
        cells = self._cells()
        unit = _UNITS[s.normalisation]
        x_label = f"predicted class ({s.current.prediction})"
        self._rendered_key = self._key()
        heat = hv.HeatMap({x_label: cells["x"], _Y: cells["y"], unit: cells["v"]}, kdims=[x_label, _Y],
                          vdims=[unit]).opts(
            cmap="Blues", colorbar=True, clim=(0, cells["top"]), tools=["hover"], invert_yaxis=True, clabel=unit,
            hooks=[self._heat.hook], **{**PLOT_OPTS, "show_grid": False},
        )
        labels = hv.Labels({x_label: cells["x"], _Y: cells["y"], "text": cells["text"], "dark": cells["dark"]},
                           kdims=[x_label, _Y], vdims=["text", "dark"]).opts(
            text_font_size="10pt", text_color=hv.dim("dark").categorize({0: _TEXT_DARK, 1: _TEXT_LIGHT}),
            hooks=[self._labels.hook])
        return (heat * labels).opts(title=f"Migration matrix ({s.table}): {unit}")

    # -- updates -------------------------------------------------------------------------------------
    def _on_shown(self, event) -> None:
        if self._key() != self._rendered_key or not len(self._heat):
            self._redraw.n += 1  # new layout or not rendered yet: let HoloViews draw it
        else:
            self._patch()

    def _patch(self) -> None:
        """Write the new cell values into the rendered sources (same cells, new numbers)."""
        cells = self._cells()
        position = {(x, y): i for i, (x, y) in enumerate(zip(cells["x"], cells["y"]))}

        def order(glyph, source) -> np.ndarray:
            xs, ys = source.data[_field(glyph.x)], source.data[_field(glyph.y)]
            return np.array([position[(x, y)] for x, y in zip(xs, ys)], dtype=np.int64)

        def heat(models) -> None:
            glyph, source = models["glyph"], models["source"]
            idx = order(glyph, source)
            source.data[_field(glyph.fill_color)] = cells["v"][idx]
            if models["mapper"] is not None:
                models["mapper"].high = cells["top"]

        def labels(models) -> None:
            glyph, source = models["glyph"], models["source"]
            idx = order(glyph, source)
            texts = np.asarray(cells["text"], dtype=object)[idx]
            colours = np.where(cells["dark"][idx] == 1, _TEXT_LIGHT, _TEXT_DARK)
            update = {_field(glyph.text): list(texts)}
            colour_field = _field(glyph.text_color)
            if colour_field in source.data:
                update[colour_field] = list(colours)
            source.data.update(update)

        self._heat.apply(heat)
        self._labels.apply(labels, self._plot_pane)

    def __panel__(self):
        return self._layout

    def plot_object(self) -> hv.Overlay:
        """The HoloViews overlay at the current state (for notebooks and tests)."""
        return self._plot(self._redraw.n)
