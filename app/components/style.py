"""Shared look of every view: one colour per class everywhere, axis labels with units, plot options.

A class keeps its colour in every plot of every page (the He study's classes have fixed colours; a
user's classes take colours from the same colour-blind-safe palette in class order), and data is
always black points. Labels spell out what a number is: "weighted events / bin", not "count".
"""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import panel as pn

__all__ = [
    "class_colours",
    "colour_of",
    "DATA_COLOUR",
    "PLOT_OPTS",
    "Y_WEIGHTED",
    "ensure_extension",
    "markdown",
]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
_FIXED = {
    "spillover": "#0072B2",
    "had_inel": "#E69F00",
    "el_scat": "#009E73",
    "other": "#CC79A7",
    "anomaly": "#D55E00",
}
DATA_COLOUR = "#000000"
Y_WEIGHTED = "weighted events / bin"

#: common options of every Bokeh plot (sizes stretch to the template's cards)
PLOT_OPTS = dict(
    responsive=True,
    min_height=320,
    fontsize={"title": "11pt", "labels": "10pt", "xticks": "9pt", "yticks": "9pt", "legend": "9pt"},
    toolbar="above",
    default_tools=["pan", "wheel_zoom", "box_zoom", "reset", "save"],
    show_grid=True,
)


def class_colours(names: Sequence[str]) -> dict[str, str]:
    """Colour of each name: fixed for the He classes, palette order for others, black for data."""
    out: dict[str, str] = {}
    free = [c for c in _PALETTE if c not in {_FIXED.get(n) for n in names}]
    i = 0
    for name in names:
        if name in _FIXED:
            out[name] = _FIXED[name]
        elif name == "data":
            out[name] = DATA_COLOUR
        else:
            out[name] = free[i % len(free)] if free else _PALETTE[i % len(_PALETTE)]
            i += 1
    return out


def colour_of(name: str, names: Sequence[str]) -> str:
    """The colour of ``name`` within the class list ``names``."""
    return class_colours(list(names) + ([name] if name not in names else []))[name]


_loaded = False


def ensure_extension() -> None:
    """Load HoloViews' Bokeh backend once (app code only; the core never plots with Bokeh)."""
    global _loaded
    # Skip when the user (a notebook's first cell) already loaded it: a second call re-sends the JS.
    if not _loaded and not ("bokeh" in hv.Store.renderers and hv.Store.current_backend == "bokeh"):
        hv.extension("bokeh", logo=False)
    _loaded = True


def markdown(obj, **params) -> pn.pane.Markdown:
    """A Markdown pane for captions and notes (no LaTeX: "$" in a caption stays a dollar sign)."""
    return pn.pane.Markdown(obj, disable_math=True, **params)
