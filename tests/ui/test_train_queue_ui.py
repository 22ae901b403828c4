"""The Train tab's queue in two real browser sessions: one user's training shows in the other's queue
(not marked as theirs), the tab-close choice is offered, and a cancel empties both queues."""

from __future__ import annotations

import time

import pytest
from ui_helpers import open_page, open_tab, wait_until

pytestmark = pytest.mark.ui


def _queue(page) -> str:
    """Text of the Train tab's queue (its paragraphs and table; Panel renders them in a shadow root)."""
    # one round trip: the pane re-renders as the queue changes, so counting then reading would race
    texts = page.locator(".train-queue p, .train-queue table").evaluate_all("els => els.map(e => e.innerText)")
    return " ".join(texts)


def test_a_training_shows_in_every_sessions_queue_and_cancel_clears_it(server, browser, page, shots_dir):
    other = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    try:
        open_page(page, server.url("he_study"))
        open_tab(page, "Train")
        # the default is to cancel this tab's training when the tab closes
        chosen = page.locator(".train-on-close label:has(input:checked)")
        wait_until(lambda: chosen.count() == 1, what="the tab-close choice")
        assert chosen.first.inner_text().strip() == "cancel"
        wait_until(lambda: "empty" in _queue(page), what="the empty queue")

        # a training long enough to be still running while the other session looks
        for name, value in (("events", "80000"), ("classifier_epochs", "30"), ("ae_epochs", "30")):
            box = page.locator(f".form-{name} input").first
            box.fill(value)
            box.press("Enter")
        time.sleep(0.5)
        page.locator(".retrain-button button").first.click()
        mine = wait_until(lambda: "yours" in _queue(page) and _queue(page), timeout=60, what="my job in my queue")
        assert "He study: 80,000 MC" in mine

        open_page(other, server.url("he_study"))
        open_tab(other, "Train")
        theirs = wait_until(lambda: "He study: 80,000 MC" in _queue(other) and _queue(other), timeout=60,
                            what="the first session's job in the second session's queue")
        assert "running" in theirs and "yours" not in theirs  # another user's job: description only
        page.screenshot(path=str(shots_dir / "train_queue_own.png"))
        other.screenshot(path=str(shots_dir / "train_queue_other.png"))

        page.locator(".cancel-button button").first.click()
        wait_until(lambda: "empty" in _queue(page), timeout=60, what="my queue to empty after the cancel")
        wait_until(lambda: "empty" in _queue(other), timeout=30, what="the other queue to empty")
        assert not page.errors, page.errors
    finally:
        other.context.close()
