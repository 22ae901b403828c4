"""Real-browser fixtures: the served app on a tiny pre-trained runs folder, and headless Chromium.

The server runs in a subprocess exactly as a user starts it (``python -m app.serve``), on a free port,
against a runs folder holding a tiny real He study and a user classifier run. Tests are skipped when
``/usr/bin/chromium`` is missing, unless ``HEPML_REQUIRE_BROWSER=1`` (then they fail).
Screenshots go to ``$HEPML_SCREENSHOT_DIR`` (default: a pytest temp folder, printed at the end).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS_APP = ROOT / "tests" / "app"
for _p in (ROOT, TESTS_APP):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from processes import stop_process  # noqa: E402 - tests/app is on the path from here on

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1500, "height": 1000}


def _browser_or_skip() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = f"{CHROMIUM} not found (apt-get install chromium); browser tests need it"
    if os.environ.get("HEPML_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and HEPML_REQUIRE_BROWSER=1")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> float:
    """Wait until ``url`` answers 200; return the seconds it took."""
    start = time.time()
    last: Exception | None = None
    while time.time() - start < timeout:
        try:
            # a page render can take longer than 5 s on a busy machine; a client that gives up and asks again
            # only piles more renders on the server, so wait for each answer
            with urllib.request.urlopen(url, timeout=max(5.0, timeout - (time.time() - start))) as response:
                if response.status == 200:
                    return time.time() - start
        except OSError as err:
            last = err
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s (last error: {last})")


class Server:
    """A served app in a subprocess; ``url(page)`` gives a page's address."""

    def __init__(self, runs_dir: Path, code: str | None = None):
        self.port = free_port()
        self.runs_dir = runs_dir
        self.log_path = runs_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS_APP)])}
        cmd = ([sys.executable, "-c", code.format(port=self.port, runs_dir=str(runs_dir))] if code else
               [sys.executable, "-m", "app.serve", "--port", str(self.port), "--runs-dir", str(runs_dir)])
        self._log = open(self.log_path, "w")
        self.started = time.time()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def url(self, page: str = "he_study") -> str:
        return f"http://127.0.0.1:{self.port}/{page}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


@pytest.fixture(scope="session")
def ui_runs(tmp_path_factory):
    """A runs folder with a tiny He study and a user run (trained once per test session)."""
    _browser_or_skip()
    from app_frames import build_tiny_runs

    runs_dir = tmp_path_factory.mktemp("ui") / "runs"
    ids = build_tiny_runs(runs_dir)
    return runs_dir, ids


@pytest.fixture(scope="session")
def server(ui_runs):
    """``python -m app.serve`` on the tiny runs folder, stopped at the end of the session."""
    srv = Server(ui_runs[0])
    try:
        wait_http(srv.url("he_study"), timeout=90)
    except TimeoutError:
        log = srv.log()  # read before stop() closes it
        srv.stop()
        raise AssertionError("the app did not start:\n" + log)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab (its own app session); console errors are collected in ``page.errors``."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    yield tab
    context.close()


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory) -> Path:
    """Where screenshots are written (look at them!)."""
    path = Path(os.environ.get("HEPML_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {path}")
    return path
