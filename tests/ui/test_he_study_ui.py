"""The He study page in headless Chromium: linked views follow the slider and the fractions; Retrain."""

from __future__ import annotations

import time

import pytest
from ui_helpers import drag_handle, legend_labels, open_page, open_tab, text_of, wait_until

pytestmark = pytest.mark.ui


def _auc_labels(page) -> list[str]:
    return sorted(label for label in legend_labels(page) if "AUC" in label)


def test_threshold_slider_changes_the_migration_matrix(server, page):
    load = open_page(page, server.url("he_study"))
    assert load < 15, f"page took {load:.1f} s to draw its first plot"
    open_tab(page, "Migration & anomalies")
    page.wait_for_selector(".migration-plot canvas")
    page.locator(".bk-btn", has_text="counts").first.click()  # counts: every cell moves with the cut
    wait_until(lambda: "weighted events" in text_of(page, "migration-summary"), what="the matrix caption")
    time.sleep(0.5)
    caption, flagged = text_of(page, "migration-summary"), text_of(page, "anomaly-summary")
    matrix_before = page.locator(".migration-plot canvas").first.screenshot()

    drag_handle(page, "threshold-slider", 60)

    wait_until(lambda: text_of(page, "migration-summary") != caption, what="the matrix caption to change")
    wait_until(lambda: text_of(page, "anomaly-summary") != flagged, what="the flagged fractions to change")
    # the heatmap itself was redrawn with other numbers (its pixels differ)
    wait_until(lambda: page.locator(".migration-plot canvas").first.screenshot() != matrix_before,
               timeout=5, what="the heatmap to change")
    assert not page.errors, page.errors


def test_editing_a_class_fraction_changes_the_roc_legend(server, page):
    open_page(page, server.url("he_study"))
    open_tab(page, "ROC")
    page.wait_for_selector(".bk-tab.bk-active")
    before = wait_until(lambda: _auc_labels(page), what="ROC legend entries")
    assert len(before) == 4 and all("AUC = " in label for label in before)

    box = page.locator(".fraction-spillover input").first
    box.fill("0.9")  # spillover now dominates the expected sample
    box.press("Enter")

    after = wait_until(lambda: (lambda new: new if new != before and len(new) == 4 else None)(_auc_labels(page)),
                       what="the ROC legend to change")
    # D_spillover does not depend on f_spillover: its AUC stays, the other three move
    same = set(before) & set(after)
    assert len(same) == 1 and next(iter(same)).startswith("D_spillover")
    assert not page.errors, page.errors


def test_retrain_adds_a_run_while_the_page_stays_responsive(server, page):
    open_page(page, server.url("he_study"))
    n_runs = page.locator(".run-select select option").count()
    open_tab(page, "Train")
    # a somewhat longer training than the tiny saved one, so the responsiveness check runs during it (in its
    # own worker process it trains faster than on a thread of the server: the autoencoder gets more data)
    for name, value in (("events", "80000"), ("data_events", "40000"), ("classifier_epochs", "20"),
                        ("ae_epochs", "30")):
        box = page.locator(f".form-{name} input").first
        box.fill(value)
        box.press("Enter")
    time.sleep(0.5)
    page.locator(".retrain-button button").first.click()
    wait_until(lambda: "Training" in text_of(page, "sidebar-train-status"), what="the training to start")
    # live progress: the bar fills and the status names the model and epoch being trained
    wait_until(lambda: int(page.locator(".train-progress progress").first.get_attribute("value") or 0) > 0,
               timeout=60, what="the progress bar to move")
    assert " %" in text_of(page, "train-status")

    # while the models train on the server's worker thread, other views still answer at once
    open_tab(page, "Migration & anomalies")
    page.wait_for_selector(".migration-plot canvas")
    caption = wait_until(lambda: text_of(page, "migration-summary"), what="the matrix caption")
    start = time.time()
    drag_handle(page, "threshold-slider", -40)
    wait_until(lambda: text_of(page, "migration-summary") != caption, timeout=10, what="a response while training")
    response = time.time() - start
    assert "Training" in text_of(page, "sidebar-train-status"), "training ended before the check; cannot tell"
    assert response < 5, f"the page took {response:.1f} s to answer during training"

    # the new run appears in the run selector and becomes the shown run
    wait_until(lambda: page.locator(".run-select select option").count() == n_runs + 1, timeout=120,
               what="the new run in the run selector")
    newest = page.locator(".run-select select option").first.get_attribute("value")
    new_id = newest.split(" · ")[-1]
    wait_until(lambda: page.locator(".run-select select").first.input_value() == newest, timeout=10,
               what="the new run to be selected")
    wait_until(lambda: new_id in text_of(page, "study-header"), timeout=20,
               what="the page to show the new run")
    assert not page.errors, page.errors
