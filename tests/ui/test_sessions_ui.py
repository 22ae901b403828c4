"""Sessions, shareable links and exports in headless Chromium.

Two browser contexts (two analysts) on the same served app set different thresholds on the He page and
each keeps its own; the address of one, opened in a fresh context, shows that analyst's run and cut. A
link naming a deleted run says so and shows the newest run. The JSON and HTML exports download.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from conftest import VIEWPORT
from served import server  # noqa: F401 - the fixture: patient with a busy machine
from ui_helpers import open_page, text_of, wait_until

from app.state.he_study import list_he_studies


def _newest_study(ui_runs) -> str:
    # Other UI tests (Retrain) add studies to the shared runs folder; the page shows the newest one.
    return list_he_studies(str(ui_runs[0]))[0][1]

pytestmark = pytest.mark.ui


def _set_threshold(page, value: float) -> None:
    box = page.locator(".threshold-slider input").first
    box.fill(f"{value:g}")
    box.press("Enter")
    wait_until(lambda: f"≥ {value:.4g} " in text_of(page, "migration-summary"), what=f"the matrix at {value:g}")


def _query(page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page.url).query))


def _new_tab(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    return context, tab


def test_two_sessions_keep_their_own_threshold_and_a_link_reopens_it(server, browser, ui_runs):
    study_id = _newest_study(ui_runs)
    contexts = []
    try:
        (ctx_a, a), (ctx_b, b) = _new_tab(browser), _new_tab(browser)
        contexts += [ctx_a, ctx_b]
        for tab in (a, b):
            open_page(tab, server.url("he_study"))
            tab.wait_for_selector(".migration-plot canvas")
            tab.locator(".bk-btn", has_text="counts").first.click()  # counts: every cell moves with the cut
            wait_until(lambda: "weighted events" in text_of(tab, "migration-summary"), what="the counts matrix")
        _set_threshold(a, 0.05)
        _set_threshold(b, 0.12)
        # each session shows its own cut: the captions, the inputs and the matrices differ
        caption_a, caption_b = text_of(a, "migration-summary"), text_of(b, "migration-summary")
        assert "≥ 0.05 " in caption_a and "≥ 0.12 " in caption_b
        assert a.locator(".threshold-slider input").first.input_value() == "0.05"
        assert b.locator(".threshold-slider input").first.input_value() == "0.12"
        wait_until(lambda: (a.locator(".migration-plot canvas").first.screenshot()
                            != b.locator(".migration-plot canvas").first.screenshot()), what="the matrices to differ")
        # each address bar carries its own session's run and threshold
        wait_until(lambda: _query(a).get("threshold") == "0.05", what="A's address to hold its threshold")
        wait_until(lambda: _query(b).get("threshold") == "0.12", what="B's address to hold its threshold")
        assert _query(a)["run"] == study_id and {"f_spillover", "f_had_inel"} <= set(_query(a))

        # a reviewer opens A's address in a fresh browser: same run, same threshold, same matrix caption
        ctx_c, c = _new_tab(browser)
        contexts.append(ctx_c)
        open_page(c, a.url)
        c.wait_for_selector(".migration-plot canvas")
        wait_until(lambda: text_of(c, "migration-summary") == caption_a, what="C to show A's cut")
        assert c.locator(".threshold-slider input").first.input_value() == "0.05"
        assert c.locator(".run-select select").first.input_value().endswith(study_id)
        assert text_of(a, "migration-summary") == caption_a  # and A was not touched by B or C
        assert not c.locator(".link-notice").first.is_visible()
        for tab in (a, b, c):
            assert not tab.errors, tab.errors
    finally:
        for ctx in contexts:
            ctx.close()


def test_a_link_to_a_deleted_run_says_so_and_shows_the_newest(server, page, ui_runs):
    study_id = _newest_study(ui_runs)
    open_page(page, server.url("he_study") + "?run=20200101-000000-study-gone&threshold=0.05")
    notice = wait_until(lambda: text_of(page, "link-notice"), what="the link notice")
    assert "20200101-000000-study-gone is not in this server's runs folder" in notice
    assert f"showing the newest run, {study_id}" in notice
    wait_until(lambda: _query(page).get("run") == study_id, what="the address to name the shown run")
    assert _query(page)["threshold"] == "0.05"  # the rest of the link still applies
    assert page.locator(".run-select select").first.input_value().endswith(study_id)
    assert not page.errors, page.errors


def test_cut_json_and_html_report_download(server, browser, ui_runs):
    ctx, tab = _new_tab(browser)
    try:
        open_page(tab, server.url("he_study"))
        tab.wait_for_selector(".migration-plot canvas")
        _set_threshold(tab, 0.04)
        with tab.expect_download(timeout=60_000) as info:
            tab.locator(".export-json button").first.click()
        download = info.value
        assert download.suggested_filename == f"he_study-{_newest_study(ui_runs)}-cut.json"
        cut = json.loads(open(download.path(), encoding="utf-8").read())
        assert cut["thresholds"] == {"threshold": 0.04} and cut["run_id"] == _newest_study(ui_runs)
        assert cut["study"] == "ams-he" and set(cut["class_fractions"]) == {"spillover", "had_inel", "el_scat",
                                                                             "other"}

        open_page(tab, server.url("your_data"))
        with tab.expect_download(timeout=180_000) as info:
            tab.locator(".export-report button").first.click()
        report = info.value
        assert report.suggested_filename == f"your_data-{ui_runs[1]['user']}-report.html"
        html = open(report.path(), encoding="utf-8").read()
        assert html.lstrip().lower().startswith("<!doctype html") and ui_runs[1]["user"] in html
        assert not tab.errors, tab.errors
    finally:
        ctx.close()
