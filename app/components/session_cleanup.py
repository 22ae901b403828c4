"""Give back what Panel keeps process-wide for a session's widgets when that session ends.

Panel records every JavaScript link of a widget (``jslink``, ``jscallback``) in
``panel.links.Callback.registry``, a WeakKeyDictionary keyed by the source widget. An
``EditableFloatSlider`` links its text box to its slider, and the link's ``args`` hold the slider, whose
watchers hold the EditableFloatSlider, which holds the text box: the value refers back to its own key,
so the entry never goes (Panel 1.9). Through the slider's watchers the bound state (a ThresholdCut) and
every view watching it (migration matrix, anomaly plots and their Bokeh models) then outlive the
browser session: ~2 MB per closed He page on a served app. ``release_links_at_session_end`` drops the
entries when the server discards the session.
"""

from __future__ import annotations

from typing import TypeVar

import panel as pn
from panel.links import Callback

__all__ = ["release_links", "release_links_at_session_end"]

W = TypeVar("W", bound=pn.viewable.Viewable)


def release_links(widget: pn.viewable.Viewable) -> int:
    """Remove ``widget``'s JS links, and those of the widgets it is made of, from Panel's registry.

    Returns:
        How many registry entries were removed.
    """
    removed = 0
    for part in {id(w): w for w in [widget, *widget.select()]}.values():
        if Callback.registry.pop(part, None) is not None:
            removed += 1
    return removed


def release_links_at_session_end(widget: W) -> W:
    """Call ``release_links(widget)`` when the current server session is destroyed; returns ``widget``.

    Outside a served session (a notebook, a test building a page by hand) nothing is registered: Panel
    would otherwise keep the callback in a process-wide list until a session is created.
    """
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        doc.on_session_destroyed(lambda session_context: release_links(widget))
    return widget
