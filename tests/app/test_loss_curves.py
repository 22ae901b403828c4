"""Live loss curves: drawn once, then every new epoch replaces the curves' data and re-fits the axes in
place (the same Bokeh models), without a HoloViews re-render."""

from __future__ import annotations

import numpy as np
import pandas as pd
import param
import pytest
from bokeh.document import Document
from bokeh.models import GlyphRenderer, Plot

from app.components.loss_curves import LiveLossCurves


class _Control(param.Parameterized):
    history = param.DataFrame(default=None, allow_None=True)


def _history(n: int, model: str = "classifier") -> pd.DataFrame:
    epochs = np.arange(1, n + 1)
    return pd.DataFrame({"model": model, "epoch": epochs, "train_loss": 1.0 / epochs, "val_loss": 1.2 / epochs})


def _render(curves: LiveLossCurves) -> Plot:
    doc = Document()
    root = curves.__panel__().get_root(doc)
    doc.add_root(root)
    (fig,) = [m for m in doc.models if isinstance(m, Plot)]
    return fig


def _drawn(fig: Plot) -> dict[str, np.ndarray]:
    """(x, y) drawn by each glyph renderer, keyed by glyph type and colour."""
    out = {}
    for r in fig.renderers:
        if isinstance(r, GlyphRenderer):
            data = r.data_source.data
            out[f"{type(r.glyph).__name__}:{r.glyph.line_color if hasattr(r.glyph, 'line_color') else ''}"] = (
                np.asarray(data[r.glyph.x]), np.asarray(data[r.glyph.y]))
    return out


def test_new_epochs_patch_the_drawn_plot_in_place():
    control = _Control(history=None)
    curves = LiveLossCurves("classifier", control.param.history)
    fig = _render(curves)
    assert fig.title.text == "classifier loss (no epochs yet)"
    assert fig.xaxis[0].ticker.min_interval == 1  # whole epochs only
    ids = {r.data_source.id for r in fig.renderers}
    assert all(len(x) == 0 for x, _ in _drawn(fig).values())

    control.history = pd.concat([_history(5), _history(2, "autoencoder")])
    drawn = _drawn(fig)
    assert {r.data_source.id for r in fig.renderers} == ids  # same sources: patched, not re-rendered
    assert fig.title.text == "classifier loss"
    ys = sorted(tuple(np.round(y, 6)) for _, y in drawn.values())
    expected = sorted([tuple(np.round(1.0 / np.arange(1, 6), 6))] * 2 + [tuple(np.round(1.2 / np.arange(1, 6), 6))] * 2)
    assert ys == expected  # training and validation, line and markers; the autoencoder's rows left out
    assert all(list(x) == [1, 2, 3, 4, 5] for x, _ in drawn.values())
    # the axes follow the data: every point inside, with padding
    assert fig.x_range.start < 1 < 5 < fig.x_range.end
    assert fig.y_range.start < 0.2 < 1.2 < fig.y_range.end


def test_missing_validation_losses_leave_gaps_out_and_a_single_epoch_gets_a_visible_range():
    control = _Control(history=None)
    curves = LiveLossCurves("autoencoder", control.param.history)
    fig = _render(curves)
    history = _history(1, "autoencoder")
    history["val_loss"] = np.nan
    control.history = history
    lengths = sorted(len(x) for x, _ in _drawn(fig).values())
    assert lengths == [0, 0, 1, 1]
    assert fig.x_range.start < 1 < fig.x_range.end and fig.y_range.start < 1.0 < fig.y_range.end


@pytest.mark.parametrize("n", [0, 3])
def test_a_saved_history_is_drawn_at_once(n):
    control = _Control(history=_history(n) if n else None)
    fig = _render(LiveLossCurves("classifier", control.param.history))
    assert sum(len(x) for x, _ in _drawn(fig).values()) == 4 * n


def test_a_history_set_before_the_plot_is_shown_or_shown_again_is_drawn():
    # A page fills the history (the shown run's saved losses) before its Train tab is ever rendered,
    # and Panel renders a tab's plot again when the tab is shown again.
    control = _Control(history=None)
    curves = LiveLossCurves("classifier", control.param.history)
    control.history = _history(2)
    first = _render(curves)
    assert first.title.text == "classifier loss"
    assert sum(len(x) for x, _ in _drawn(first).values()) == 8
    control.history = _history(4)
    again = _render(curves)
    assert again.id != first.id
    assert sum(len(x) for x, _ in _drawn(again).values()) == 16
    assert sum(len(x) for x, _ in _drawn(first).values()) == 16  # the earlier render still follows


def test_renders_that_left_their_document_are_forgotten():
    control = _Control(history=None)
    curves = LiveLossCurves("classifier", control.param.history)
    doc = Document()
    root = curves.__panel__().get_root(doc)
    doc.add_root(root)
    _render(curves)
    assert len(curves._figures) == 2
    doc.remove_root(root)  # Panel drops a render, e.g. a tab drawn again
    control.history = _history(3)
    assert len(curves._figures) == 1
