"""Every view of both pages draws something: screenshot each tab and check its plots are not empty.

The PNGs are kept (see the ``shots_dir`` fixture) so a person can look at them.
"""

from __future__ import annotations

import time

import pytest
from ui_helpers import open_page, open_tab, plot_canvases, plot_colour_counts, wait_until

pytestmark = pytest.mark.ui

PAGES = {
    "he_study": ["Discriminants", "ROC", "Migration & anomalies", "Train"],
    "your_data": ["Scores", "ROC", "Cut efficiency", "Migration", "Overtraining", "Training history"],
}


@pytest.mark.parametrize("page_name", list(PAGES))
def test_every_tab_draws_non_empty_plots(server, page, shots_dir, page_name):
    open_page(page, server.url(page_name))
    for tab in PAGES[page_name]:
        open_tab(page, tab)
        canvases = wait_until(lambda: plot_canvases(page), timeout=60, what=f"plots on tab {tab!r}")
        time.sleep(1.0)  # let Bokeh finish drawing before the screenshot
        slug = tab.lower().replace(" & ", "_").replace(" ", "_")
        page.screenshot(path=str(shots_dir / f"{page_name}-{slug}.png"), full_page=True)
        for i, colours in enumerate(plot_colour_counts(page)):
            # an empty frame (axes, grid, white) has few colours; drawn data adds many (antialiasing)
            assert colours > 60, f"{page_name}/{tab}: plot {i} looks empty ({colours} colours)"
        assert len(canvases) >= 1
    assert not page.errors, page.errors
