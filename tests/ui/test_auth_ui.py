"""Signing in to a served app with ``--auth basic`` in headless Chromium; a reviewer cannot train.

The server is started as a user would (``python -m app.serve --auth basic --users FILE``) on the tiny
runs folder; the browser goes through the real login page. A reviewer sees the Retrain button disabled
with a note, and a Retrain forced from the browser (the button re-enabled in the page's Bokeh model, as
a hostile client could) is refused by the server.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import Server, wait_http
from ui_helpers import open_tab, text_of, wait_until

from app.auth.users import add_user

pytestmark = pytest.mark.ui

SECRET = "ui-test-cookie-secret-" + "z" * 32
PASSWORDS = {"alice": "alice-ui-pw", "bob": "bob-ui-pw"}
SHOTS = Path(os.environ.get("HEPML_SCREENSHOT_DIR") or "/tmp/shots")

_ENABLE_RETRAIN_JS = """() => {
  let n = 0;
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.label === 'Retrain' && m.disabled !== undefined) { m.disabled = false; n += 1; }
  return n;
}"""


_MODELS_JS = """() => {
  const out = [];
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.label !== undefined) out.push([m.type, String(m.label)]);
  return out;
}"""


@pytest.fixture(scope="module")
def auth_server(ui_runs, tmp_path_factory):
    users = tmp_path_factory.mktemp("auth-ui") / "users.yaml"
    add_user(users, "alice", PASSWORDS["alice"], "analyst")
    add_user(users, "bob", PASSWORDS["bob"], "reviewer")
    code = ("from app.serve import main; main(['--port', '{port}', '--runs-dir', r'{runs_dir}', "
            "'--auth', 'basic', '--users', r'" + str(users) + "'])")
    previous = os.environ.get("HEPML_COOKIE_SECRET")
    os.environ["HEPML_COOKIE_SECRET"] = SECRET  # the server subprocess inherits it
    try:
        srv = Server(ui_runs[0], code=code)
    finally:
        if previous is None:
            os.environ.pop("HEPML_COOKIE_SECRET")
        else:
            os.environ["HEPML_COOKIE_SECRET"] = previous
    try:
        wait_http(srv.url("login"), timeout=90)
    except TimeoutError:
        srv.stop()
        raise AssertionError("the app did not start:\n" + srv.log())
    yield srv
    srv.stop()


def _sign_in(page, server, user: str, screenshot: str | None = None) -> None:
    page.goto(server.url("he_study"))
    page.wait_for_selector("input#username")
    assert "/login?next=" in page.url
    if screenshot:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / screenshot))
    page.fill("input#username", user)
    page.fill("input#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_selector("canvas", timeout=60_000)  # the He page drew its first plot
    assert urlsplit(page.url).path == "/he_study"


def test_sign_in_through_the_login_page_opens_the_he_page(auth_server, page):
    page.goto(auth_server.url("login"))
    page.fill("input#username", "alice")
    page.fill("input#password", "not-her-password")
    page.click("button[type=submit]")
    page.wait_for_selector(".note.error")
    assert "Wrong user name or password" in page.inner_text(".note.error")

    _sign_in(page, auth_server, "alice", screenshot="login.png")
    open_tab(page, "Train")
    retrain = page.locator(".retrain-button button").first
    retrain.wait_for()
    assert retrain.is_enabled() and page.locator(".train-read-only").count() == 0
    # The role is read again when the click arrives on the server: an analyst's Retrain starts.
    for name, value in (("events", "6000"), ("classifier_epochs", "1"), ("ae_epochs", "1")):
        box = page.locator(f".form-{name} input").first
        box.fill(value)
        box.press("Enter")
    retrain.click()
    status = wait_until(lambda: (lambda t: t if t and not t.startswith("idle") else None)(
        text_of(page, "train-status")), what="the training to start")
    assert "read-only" not in status.lower() and "not started" not in status
    page.locator(".cancel-button button").first.click()
    assert not page.errors, page.errors


def test_a_reviewer_sees_train_disabled_and_the_server_refuses_a_forced_retrain(auth_server, page):
    _sign_in(page, auth_server, "bob")
    open_tab(page, "Train")
    retrain = page.locator(".retrain-button button").first
    retrain.wait_for()
    assert retrain.is_disabled()
    assert "Read-only reviewer" in wait_until(lambda: text_of(page, "train-read-only"), what="the reviewer note")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "reviewer_train_tab.png"))

    forced = page.evaluate(_ENABLE_RETRAIN_JS)
    assert forced >= 1, page.evaluate(_MODELS_JS)  # a hostile client re-enables the button...
    wait_until(lambda: retrain.is_enabled(), what="the forced button to enable")
    retrain.click()  # ...and presses it: the server still says no
    wait_until(lambda: "not started" in text_of(page, "train-status"), what="the server's refusal")
    assert "read-only reviewer" in text_of(page, "train-status").lower()
    assert not page.errors, page.errors

    assert "Signed in as bob (reviewer)" in text_of(page, "signed-in")
    page.locator(".signed-in a", has_text="Sign out").first.click()
    page.wait_for_selector(".note.info")
    assert "signed out" in page.inner_text(".note.info")
    page.goto(auth_server.url("he_study"))  # the session is gone: back to the login page
    page.wait_for_selector("input#username")
