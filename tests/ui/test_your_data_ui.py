"""The "your data" page in headless Chromium: cut and signal choice drive the TMVA-style views."""

from __future__ import annotations

import pytest
from ui_helpers import drag_handle, open_page, open_tab, text_of, wait_until

pytestmark = pytest.mark.ui


def test_cut_and_signal_choice_update_the_efficiency_view(server, page):
    open_page(page, server.url("your_data"))
    open_tab(page, "Cut efficiency")
    before = wait_until(lambda: text_of(page, "efficiency-summary"), what="the efficiency caption")
    assert "p_signal" in before and "S/√(S+B)" in before

    drag_handle(page, "threshold-slider", 50)
    moved = wait_until(lambda: (lambda t: t if t != before else None)(text_of(page, "efficiency-summary")),
                       what="the caption to follow the cut")

    page.locator("select").filter(has_text="wjets").first.select_option("wjets")
    wait_until(lambda: "p_wjets" in text_of(page, "efficiency-summary"), what="the signal class to switch")
    assert text_of(page, "efficiency-summary") != moved
    open_tab(page, "Overtraining")
    wait_until(lambda: "Kolmogorov" in text_of(page, "overtraining-summary"), what="the KS test caption")
    assert not page.errors, page.errors
