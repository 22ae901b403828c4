"""First start on an empty runs folder: the page is up at once and shows the training; later starts
reuse the saved run."""

from __future__ import annotations

import time

import pytest
from conftest import Server, wait_http
from ui_helpers import open_tab, text_of, wait_until

pytestmark = pytest.mark.ui

# ``python -m app.serve`` (what ``hepml serve`` calls) with a tiny first-start training.
_LAUNCH = ("from app.serve import main; "
           "main(['--port', '{port}', '--runs-dir', r'{runs_dir}', '--events', '6000', '--epochs', '2'])")


def test_first_start_trains_with_visible_progress_then_reuses_the_run(tmp_path, page, browser):
    runs_dir = tmp_path / "runs"
    server = Server(runs_dir, code=_LAUNCH)
    try:
        up = wait_http(server.url("he_study"), timeout=90)
        page.goto(server.url("he_study"), timeout=90_000)
        # while the default models train, the page is there and says so, with a progress bar
        page.wait_for_selector(".train-progress", timeout=60_000)
        assert up < 30, f"the server took {up:.1f} s to answer"
        assert "first start" in server.log()
        # ... and the study's views replace it once the run is saved
        wait_until(lambda: page.locator(".bk-tab", has_text="Discriminants").count() > 0, timeout=180,
                   what="the study views after the first-start training")
        open_tab(page, "Discriminants")
        page.wait_for_selector("canvas")
    except Exception as err:
        raise AssertionError(f"{err}\n--- server log ---\n{server.log()[-3000:]}") from err
    finally:
        server.stop()

    again = Server(runs_dir, code=_LAUNCH)
    try:
        wait_http(again.url("he_study"), timeout=60)
        time.sleep(1)
        assert "first start" not in again.log(), again.log()
        tab = browser.new_page()
        tab.goto(again.url("he_study"))
        tab.wait_for_selector("canvas", timeout=30_000)
        assert "Study" in text_of(tab, "study-header")
        tab.close()
    finally:
        again.stop()
