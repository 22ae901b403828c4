"""In-place updates of Bokeh models that HoloViews rendered, for the views a slider drives.

HoloViews re-renders a whole plot on every update: 10-25 ms per plot, mostly option lookup and range
computation, whatever the data size. A threshold slider redraws several plots per move, so that
alone would exceed the 50 ms budget. The views therefore let HoloViews build each plot (axes, ranges,
colour bar, legend, theme) and capture the few Bokeh models a threshold changes with a plot hook; a
move then patches those models directly (a 20-cell source, a line's location), which costs well under
a millisecond. A structural change (another sample, normalisation, log axis) still re-renders with
HoloViews, and the hooks capture the new models.

Served apps send the patches over the session's websocket as usual; in Jupyter the changed pane is
pushed explicitly with ``pn.io.push_notebook``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import panel as pn
from bokeh.models import Span

__all__ = ["ModelRefs", "ThresholdSpan"]


class ModelRefs:
    """Models captured from rendered HoloViews plots, one entry per Bokeh figure.

    Args:
        collect: ``collect(plot) -> dict`` picks the models to keep from a HoloViews plot
            (``plot.handles``, ``plot.state``); it is called from the element's hook at each render.
    """

    def __init__(self, collect: Callable[[Any], dict]):
        self._collect = collect
        self._entries: dict[str, dict] = {}

    def hook(self, plot, element) -> None:
        """HoloViews hook: (re)capture the models of this render (pass as ``.opts(hooks=[refs.hook])``)."""
        self._entries[plot.state.id] = self._collect(plot)

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, update: Callable[[dict], None], pane: pn.viewable.Viewable | None = None) -> None:
        """Call ``update(models)`` for every captured figure, then push to notebooks if needed."""
        for models in list(self._entries.values()):
            update(models)
        if pane is not None:
            pn.io.push_notebook(pane)  # a no-op for server sessions (their patches go by websocket)


class ThresholdSpan:
    """A vertical dashed line at a threshold, added to HoloViews plots by a hook and moved in place.

    Args:
        location: the starting threshold.
        colour: line colour.
    """

    def __init__(self, location: float, colour: str = "#D55E00"):
        self.location = float(location)
        self.colour = colour
        self._spans: dict[str, Span] = {}

    def hook(self, plot, element) -> None:
        """HoloViews hook adding the line to the figure once (re-renders keep the same figure)."""
        fig = plot.state
        if fig.id not in self._spans:
            span = Span(location=self.location, dimension="height", line_color=self.colour, line_width=2,
                        line_dash="dashed", name="threshold-line")
            fig.add_layout(span)
            self._spans[fig.id] = span

    def move(self, location: float, pane: pn.viewable.Viewable | None = None) -> None:
        """Move every line to ``location``."""
        self.location = float(location)
        for span in self._spans.values():
            span.location = self.location
        if pane is not None:
            pn.io.push_notebook(pane)  # a no-op for server sessions (their patches go by websocket)

