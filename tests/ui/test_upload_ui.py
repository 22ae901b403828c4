"""An upload on the your-data page in headless Chromium: a Parquet file is scored and shown; a bad one is
refused with one clear line; one over the size limit gets a notice naming the limit."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from served import server  # noqa: F401 - the fixture: patient with a busy machine
from ui_helpers import open_page, open_tab, text_of, wait_until

pytestmark = pytest.mark.ui


def _message(page) -> str:
    loc = page.locator(".upload-message")
    return text_of(page, "upload-message") if loc.count() and loc.first.is_visible() else ""


def test_uploading_a_parquet_file_scores_it_with_the_run(server, page, tmp_path):
    rng = np.random.default_rng(11)
    n = 500
    y = rng.integers(0, 3, n)
    frame = pd.DataFrame(rng.normal(size=(n, 4)) + y[:, None] * np.array([0.9, 0.5, -0.4, 0.2]),
                         columns=["jet_pt", "jet_eta", "met", "ht"])
    frame["process"] = np.array(["signal", "ttbar", "wjets"])[y]
    good = tmp_path / "my_events.parquet"
    frame.to_parquet(good)
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"this is not parquet")

    open_page(page, server.url("your_data"))
    page.locator(".upload-input input[type=file]").first.set_input_files(str(bad))
    wait_until(lambda: "broken.parquet is not a Parquet file" in _message(page), timeout=60, what="the refusal")
    assert "\n" not in _message(page).strip()

    page.locator(".upload-input input[type=file]").first.set_input_files(str(good))
    wait_until(lambda: "500 events scored with run" in _message(page), timeout=90, what="the upload to be scored")
    wait_until(lambda: "Uploaded my_events.parquet: 500 events scored with run" in text_of(page, "your-data-header"),
               what="the header to name the upload")
    open_tab(page, "Cut efficiency")
    wait_until(lambda: "p_signal" in text_of(page, "efficiency-summary"), what="the views to show the upload")
    # back to the run's own test split
    page.locator(".upload-clear button").first.click()
    wait_until(lambda: "Uploaded" not in text_of(page, "your-data-header"),
               what="the run's test split again")
    assert not page.errors, page.errors


def test_a_file_over_the_size_limit_gets_a_notice_not_a_silent_page(ui_runs, page, tmp_path):
    # The server closes the WebSocket of a message over its limit (HEPML_MAX_UPLOAD_MB sets both); the
    # browser cannot be told why, so the page's lost-connection notice names the limit.
    from unittest import mock

    from conftest import Server
    from served import wait_served

    with mock.patch.dict(os.environ, {"HEPML_MAX_UPLOAD_MB": "1"}):
        small = Server(ui_runs[0])
    try:
        wait_served(small, "your_data")
        big = tmp_path / "big.parquet"
        big.write_bytes(b"PAR1" + os.urandom(3 * 2**20))
        open_page(page, small.url("your_data"))
        page.locator(".upload-input input[type=file]").first.set_input_files(str(big))
        notices = page.locator(".notyf__message")
        wait_until(lambda: "Uploads are limited to 1 MB" in " ".join(notices.all_inner_texts()), timeout=60,
                   what="the lost-connection notice naming the limit")
        assert "reload the page" in " ".join(notices.all_inner_texts())
    finally:
        small.stop()
