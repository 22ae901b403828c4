"""Panel's process-wide JS-link registry gives a closed session's widgets back (app.components.session_cleanup)."""

from __future__ import annotations

import gc
import weakref

import panel as pn
import param
from bokeh.document import Document
from panel.io.state import set_curdoc
from panel.links import Callback

from app.components.session_cleanup import release_links, release_links_at_session_end


class _Cut(param.Parameterized):
    threshold = param.Number(default=0.1, bounds=(0.0, 1.0))


def _slider(cut: _Cut) -> pn.widgets.EditableFloatSlider:
    return pn.widgets.EditableFloatSlider.from_param(cut.param.threshold)


def test_an_editable_slider_outlives_its_page_unless_its_links_are_released():
    # Panel's registry value (the link) refers back to its key (the slider's text box): without a
    # release, the slider and the state it is bound to live as long as the process.
    cut = _Cut()
    slider = _slider(cut)
    kept = weakref.ref(cut)
    assert any(part in Callback.registry for part in slider.select())
    del slider, cut
    gc.collect()
    assert kept() is not None, "Panel no longer keeps linked widgets alive: the workaround can go"

    # the same, released: everything goes with the last reference
    cut = _Cut()
    slider = _slider(cut)
    freed = weakref.ref(cut)
    assert release_links(slider) >= 1
    assert not any(part in Callback.registry for part in slider.select())
    del slider, cut
    gc.collect()
    assert freed() is None


def test_release_at_session_end_registers_only_in_a_served_session():
    cut = _Cut()
    doc = Document()
    with set_curdoc(doc):  # a plain document (a notebook's): nothing is registered
        slider = release_links_at_session_end(_slider(cut))
    assert doc.session_destroyed_callbacks == set()
    assert any(part in Callback.registry for part in slider.select())
    release_links(slider)
