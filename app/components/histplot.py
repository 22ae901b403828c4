"""HoloViews elements for per-class histograms: overlaid steps, stacked fills, data points with errors.

Used by the discriminant, anomaly-score, score and overtraining views so that a histogram looks the
same everywhere: MC classes as coloured steps (or a stack), data as black points with sqrt(sum w^2)
error bars, log-y with a lower limit set from the smallest filled bin (log axes cannot show zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import holoviews as hv
import numpy as np

from app.components.style import DATA_COLOUR, PLOT_OPTS, class_colours
from app.state.histograms import GroupedHistogram

__all__ = ["DataSeries", "class_histograms", "data_points", "log_floor", "y_range"]


class DataSeries(NamedTuple):
    """Data counts in a histogram's bins, drawn as points; ``scale`` multiplies counts and errors."""

    counts: np.ndarray
    sumw2: np.ndarray
    scale: float = 1.0
    label: str = "data"


def log_floor(counts: np.ndarray) -> float:
    """A y lower limit for log axes: a bit below the smallest positive bin content."""
    positive = np.asarray(counts)[np.asarray(counts) > 0]
    if positive.size == 0:
        return 0.1
    return float(10 ** (np.floor(np.log10(positive.min())) - 0.3))


def y_range(arrays: Sequence[np.ndarray], log_y: bool) -> tuple[float, float]:
    """y limits covering every array (with headroom for the legend)."""
    stacked = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.array([1.0])
    top = float(np.nanmax(stacked)) if stacked.size and np.nanmax(stacked) > 0 else 1.0
    if log_y:
        low = log_floor(stacked)
        return low, top * 3.0
    return 0.0, top * 1.1


def _hist(edges: np.ndarray, heights: np.ndarray, label: str, colour: str, x_label: str, y_label: str,
          filled: bool, floor: float | None) -> hv.Element:
    h = np.asarray(heights, dtype=np.float64)
    if floor is not None:
        # Zero bins are drawn at the axis floor: on a log axis a zero height has no position.
        h = np.where(h > 0, h, floor)
    if filled:
        return hv.Histogram((edges, h), kdims=[x_label], vdims=[y_label], label=label).opts(
            fill_color=colour, fill_alpha=0.85, line_color=colour, line_width=0.5, muted_alpha=0.1)
    # Overlaid classes as step outlines (a physicist's "histtype=step"): bar outlines would draw a
    # vertical line down to the axis at every bin edge and hide the other classes.
    return hv.Curve((edges, np.append(h, h[-1])), kdims=[x_label], vdims=[y_label], label=label).opts(
        interpolation="steps-post", color=colour, line_width=2, muted_alpha=0.1)


def class_histograms(
    hist: GroupedHistogram,
    x_label: str,
    y_label: str,
    *,
    stacked: bool = False,
    log_y: bool = True,
    colours: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    data: DataSeries | None = None,
    title: str = "",
) -> hv.Overlay:
    """One histogram per group of ``hist``, overlaid (step lines) or stacked (filled bars).

    Args:
        hist: the per-group counts.
        x_label, y_label: axis labels with units.
        stacked: draw cumulative fills so the outline is the total.
        log_y: logarithmic y axis.
        colours: name -> colour (default: the class colours).
        labels: name -> legend text (default: the names).
        data: data drawn on top as points with error bars, in the same bins.
        title: plot title.

    Returns:
        An Overlay with axis labels, log-y and ranges set.
    """
    colours = colours or class_colours(hist.names)
    labels = labels or {}
    counts = np.asarray(hist.counts, dtype=np.float64)
    shown = np.cumsum(counts, axis=0) if stacked else counts
    extra_heights = [np.asarray(data.counts) * data.scale] if data is not None else []
    lo, hi = y_range([shown, *extra_heights], log_y)
    floor = lo if log_y else None
    order = range(len(hist.names) - 1, -1, -1) if stacked else range(len(hist.names))
    elements = [
        _hist(hist.edges, shown[i], labels.get(hist.names[i], hist.names[i]), colours[hist.names[i]], x_label,
              y_label, stacked, floor)
        for i in order
    ]
    xlim = (float(hist.edges[0]), float(hist.edges[-1]))
    if data is not None:
        points = data_points(hist.centres, data.counts, data.sumw2, x_label, y_label, label=data.label,
                             scale=data.scale, floor=floor)
        elements += list(points)
    # Options are applied to the finished overlay: multiplying overlays afterwards would drop them.
    return hv.Overlay(elements).opts(
        # framewise: a DynamicMap update (new fractions, bins) re-applies these ranges.
        hv.opts.Histogram(logy=log_y, ylim=(lo, hi), xlim=xlim, framewise=True, **PLOT_OPTS),
        hv.opts.Curve(logy=log_y, ylim=(lo, hi), xlim=xlim, framewise=True, **PLOT_OPTS),
        hv.opts.Overlay(legend_position="right", title=title, legend_opts={"background_fill_alpha": 0.7}),
    )


def data_points(centres: np.ndarray, counts: np.ndarray, sumw2: np.ndarray, x_label: str, y_label: str,
                label: str = "data", scale: float = 1.0, floor: float | None = None,
                colour: str = DATA_COLOUR) -> hv.Overlay:
    """Data as black points with vertical sqrt(sum w^2) error bars, optionally scaled (e.g. to MC area).

    Args:
        floor: on log axes, the y lower limit: the downward error stops there instead of at zero,
            which a log axis cannot draw.
    """
    y = np.asarray(counts, dtype=np.float64) * scale
    err = np.sqrt(np.asarray(sumw2, dtype=np.float64)) * scale
    keep = y > 0  # empty data bins are not drawn (a point at zero is invisible on log axes anyway)
    y, err, x = y[keep], err[keep], np.asarray(centres)[keep]
    low = np.minimum(err, y - floor) if floor is not None else err
    pts = hv.Scatter((x, y), kdims=[x_label], vdims=[y_label], label=label).opts(
        color=colour, size=5, marker="circle")
    bars = hv.ErrorBars((x, y, np.clip(low, 0, None), err), kdims=[x_label],
                        vdims=[y_label, "yerrneg", "yerrpos"]).opts(color=colour, line_width=1)
    return bars * pts
