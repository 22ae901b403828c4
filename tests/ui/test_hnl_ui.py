"""The HNL page in a real browser: clicking a point of the Z-vs-mass plot switches the bin view to that mass.

A small HNL study (enough events that bins meet the default 0.15 bound) is trained into the session's runs
folder; the served app lists it on its next page load.
"""

from __future__ import annotations

import time

import pytest
from ui_helpers import open_page, wait_until

pytestmark = pytest.mark.ui

# Pixel positions of one model's drawn points, read from Bokeh's glyph view of the Z-vs-mass figure
# (page coordinates: the canvas's position plus the glyph's screen coordinates).
_POINTS_JS = """(label) => {
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.type === 'Figure' && m.title && m.title.text.startsWith('Significance vs mass')) {
        const view = Bokeh.index.find_one(m);
        if (!view) return null;
        const rect = view.canvas_view.el.getBoundingClientRect();
        for (const rv of view.renderer_views.values()) {
          const g = rv.glyph;
          if (g && g.model.type === 'Scatter' && rv.model.name === label && g.sx && g.sx.length)
            return {x: Array.from(g.x), px: Array.from(g.sx, v => rect.left + v),
                    py: Array.from(g.sy, v => rect.top + v)};
        }
      }
  return null;
}"""

# What the bin view shows: its mass selector's value and the title of its histogram figure.
_BIN_VIEW_JS = """() => {
  let mass = null, title = null;
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models) {
      if (m.type.endsWith('Select') && m.title === 'mass hypothesis [GeV]') mass = m.value;  // Panel's CustomSelect
      if (m.type === 'Figure' && m.title && m.title.text.startsWith('m_N =')) title = m.title.text;
    }
  return {mass, title};
}"""


@pytest.fixture(scope="module")
def hnl_study(ui_runs):
    from hepml_core.runs import RunStore
    from hepml_core.studies.hnl import HnlSettings, run_hnl

    settings = HnlSettings(events=100_000, test_fraction=0.5, validation_fraction=0.15, pnn_epochs=1, bdt_trees=5,
                           regression_width=8, regression_depth=3, regression_events_per_epoch=1000,
                           regression_epochs=1, transfer_epochs=1, transfer_unfreeze_epoch=1, transfer_hidden=(8,),
                           per_mass_masses=(150.0, 700.0), per_mass_epochs=1, per_mass_bdt_trees=5)
    return run_hnl(settings, RunStore(ui_runs[0]))


def _click_point(page, label: str, mass: float) -> None:
    pts = wait_until(lambda: page.evaluate(_POINTS_JS, label), timeout=60, what=f"drawn points of {label!r}")
    i = [round(x) for x in pts["x"]].index(round(mass))
    page.mouse.click(pts["px"][i], pts["py"][i])


def _bin_view_at(page, mass: float) -> bool:
    shown = page.evaluate(_BIN_VIEW_JS)
    return shown["mass"] == f"{mass:.1f}" and (shown["title"] or "").startswith(f"m_N = {mass:g} GeV")


def _wait_bin_view(page, mass: float, shots_dir, what: str) -> None:
    try:
        wait_until(lambda: _bin_view_at(page, mass), timeout=90, what=f"the bin view {what} ({mass:g} GeV)")
    except AssertionError as err:
        page.screenshot(path=str(shots_dir / f"hnl-failed-{mass:g}.png"), full_page=True)
        raise AssertionError(f"{err}; it shows {page.evaluate(_BIN_VIEW_JS)}") from None


def test_clicking_a_point_shows_that_mass_in_the_bin_view(server, hnl_study, page, shots_dir):
    open_page(page, server.url("hnl"))
    _wait_bin_view(page, 300.0, shots_dir, "at its first mass")
    # a point of the parametrised DNN's curve, then one of a per-mass variant's
    for label, mass in (("parametrised DNN", 150.0), ("per-mass DNN", 700.0)):
        _click_point(page, label, mass)
        _wait_bin_view(page, mass, shots_dir, "to switch after a click")
        time.sleep(1.0)  # let Bokeh finish drawing before the screenshot
        page.screenshot(path=str(shots_dir / f"hnl-clicked-{mass:g}.png"), full_page=True)
    assert not page.errors, page.errors
