"""Opening and closing many sessions of the served app does not grow the server's memory.

The app runs as users start it, in a subprocess (``python -m app.diagnostics``: ``app.serve.serve`` plus a
JSON diagnostics endpoint), against a runs folder holding a tiny real He study, with Bokeh's sweep for
closed sessions set to a quarter of a second. Sessions are real Bokeh sessions opened over the websocket
(``bokeh.client.pull_session``): each runs the He page factory on the server, receives the whole
document, says "document ready" as a browser does, moves the threshold once, then closes its connection
like a browser tab that goes away.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from processes import stop_process

ROOT = Path(__file__).resolve().parents[2]

#: the page objects every He session builds once (``app.diagnostics.TRACKED`` counts them)
PER_SESSION = ("HeStudyPage", "HeStudyState", "TrainControl", "TrainPanel", "MigrationMatrix", "AnomalyScores",
               "ServerSession")
WARM_UP, SESSIONS, PARALLEL = 5, 50, 2
#: Measured on this app (2 cores): a live He session holds ~4-6 MB of the server (its page objects, ~265
#: Bokeh models, the rendered plots; the events are shared through the loaders' cache). While Panel's
#: JS-link registry kept each closed page's views alive (fixed by app.components.session_cleanup), every
#: closed session left ~1.5 MB behind (~75 MB for 50); with the fix 50 sessions added 10-22 MB in all
#: over four runs (allocator slack, caches that fill once). 50 MB, 1 MB per closed session, tells the two
#: apart; the object counts below catch such a leak exactly.
RSS_BUDGET = 50 * 2**20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _register_panel_models() -> None:
    """Import Panel's Bokeh models so a Python client can decode the documents the server sends."""
    import importlib
    import pkgutil

    import panel.models

    for info in pkgutil.iter_modules(panel.models.__path__):
        try:
            importlib.import_module(f"panel.models.{info.name}")
        except ImportError:  # optional models (e.g. needing extra packages) the app does not use
            pass


class ServedApp:
    """``python -m app.diagnostics`` in a subprocess; ``diagnostics()`` reads its memory and sessions."""

    def __init__(self, runs_dir: Path, sweep_ms: int = 250):
        self.port = _free_port()
        self.log_path = runs_dir.parent / f"server-{self.port}.log"
        self._log = open(self.log_path, "w")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.diagnostics", "--port", str(self.port), "--runs-dir", str(runs_dir),
             "--check-unused-sessions-ms", str(sweep_ms), "--unused-session-lifetime-ms", str(sweep_ms)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def url(self, page: str = "he_study") -> str:
        return f"http://127.0.0.1:{self.port}/{page}"

    def diagnostics(self, collect: bool = False, objects: bool = True) -> dict:
        query = f"gc={int(collect)}&objects={int(objects)}"
        with urllib.request.urlopen(self.url(f"_hepml/diagnostics?{query}"), timeout=60) as response:
            return json.load(response)

    def wait_ready(self, timeout: float = 90.0) -> None:
        start = time.time()
        while time.time() - start < timeout:
            if self.proc.poll() is not None:
                break
            try:
                self.diagnostics(objects=False)
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"the app did not start within {timeout:.0f} s:\n{self.log()}")

    def live_sessions(self, route: str = "/he_study") -> int:
        return self.diagnostics(objects=False)["sessions"][route]

    def wait_sessions_closed(self, timeout: float = 30.0) -> float:
        """Wait until the server has discarded every He session; return the seconds it took."""
        start = time.time()
        while time.time() - start < timeout:
            if self.live_sessions() == 0:
                return time.time() - start
            time.sleep(0.2)
        raise AssertionError(f"{self.live_sessions()} He sessions still live {timeout:.0f} s after their "
                             f"clients closed (the sweep runs every 0.25 s)")

    def settled(self, before: dict, timeout: float = 20.0) -> tuple[dict, float]:
        """Diagnostics (after a gc) once no more page objects are alive than in ``before``, or at ``timeout``.

        A discarded session's objects can outlive it by a few seconds: a timer the event loop still
        holds (a debounced change, a poll) keeps its document until it fires. Returns the last
        diagnostics and the seconds waited.
        """
        start = time.time()
        while True:
            after = self.diagnostics(collect=True)
            extra = {n: after["objects"][n] - before["objects"][n] for n in (*PER_SESSION, "Document")}
            if all(v <= 0 for v in extra.values()) or time.time() - start > timeout:
                return after, time.time() - start
            time.sleep(1.0)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def open_session(url: str):
    """Open a real session of ``url`` (the server runs the page factory); return the client session."""
    from bokeh.client import pull_session
    from bokeh.events import DocumentReady
    from tornado.ioloop import IOLoop

    loop = IOLoop(make_current=False)
    session = pull_session(url=url, io_loop=loop)
    # what a browser sends once it has drawn the page (Panel then runs the page's onload work)
    session.document.callbacks.send_event(DocumentReady())
    session.force_roundtrip()
    return session, loop


def close_session(session, loop) -> None:
    """Close the websocket as a browser tab does, and wait until the server acknowledged."""
    loop.add_callback(session.close)  # on the client's own loop: the close frame is written from there
    session._loop_until_closed()  # run that loop until the server has answered the close frame
    loop.close(all_fds=True)


def open_and_close(url: str) -> int:
    """One visit of the He page: open, check the page was built, move the threshold, close.

    Returns:
        The number of Bokeh models in the page the server sent.
    """
    from bokeh.models import Slider

    session, loop = open_session(url)
    try:
        models = list(session.document.models)
        boxes = [m for m in models if "threshold-slider" in (getattr(m, "css_classes", None) or [])]
        assert boxes, "the served He page has no anomaly-threshold slider: the page factory did not run"
        slider = next(m for m in boxes[0].references() if isinstance(m, Slider))
        slider.value = slider.start + 0.3 * (slider.end - slider.start)  # the views update on the server
        session.force_roundtrip()
        return len(models)
    finally:
        close_session(session, loop)


@pytest.fixture(scope="module")
def he_runs(tmp_path_factory) -> Path:
    """A runs folder with one tiny real He study (a few seconds of training)."""
    from app_frames import tiny_settings
    from hepml_core.runs import RunStore
    from hepml_core.studies.ams_he import run_ams_he

    runs_dir = tmp_path_factory.mktemp("memory") / "runs"
    run_ams_he(tiny_settings(), RunStore(runs_dir))
    return runs_dir


@pytest.fixture(scope="module")
def served(he_runs):
    _register_panel_models()
    app = ServedApp(he_runs)
    try:
        app.wait_ready()
    except AssertionError:
        app.stop()
        raise
    yield app
    app.stop()


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MB"


def test_closed_sessions_leave_no_page_objects(served):
    """Every object a He page builds goes when its session is discarded (the quick check of the leak)."""
    url = served.url("he_study")
    open_and_close(url)  # the first visitor also fills the shared caches
    served.wait_sessions_closed()
    before = served.diagnostics(collect=True)
    for _ in range(3):
        open_and_close(url)
    served.wait_sessions_closed()
    after, _ = served.settled(before)
    survivors = {name: after["objects"][name] - before["objects"][name] for name in PER_SESSION}
    assert all(n <= 0 for n in survivors.values()), f"objects of 3 closed He sessions are still alive: {survivors}"
    assert after["objects"]["Document"] <= before["objects"]["Document"]


@pytest.mark.slow
def test_opening_and_closing_sessions_keeps_server_memory_bounded(served):
    url = served.url("he_study")
    for _ in range(WARM_UP):
        open_and_close(url)
    served.wait_sessions_closed()
    before = served.diagnostics(collect=True)

    with ThreadPoolExecutor(PARALLEL) as pool:
        model_counts = list(pool.map(lambda _: open_and_close(url), range(SESSIONS)))
    assert len(model_counts) == SESSIONS and min(model_counts) > 100
    closed_in = served.wait_sessions_closed()
    after, freed_in = served.settled(before)

    growth = after["rss"] - before["rss"]
    survivors = {name: after["objects"][name] - before["objects"][name] for name in PER_SESSION}
    report = (f"server RSS {_mb(before['rss'])} -> {_mb(after['rss'])} after {SESSIONS} more sessions: "
              f"{_mb(growth)} in all, {_mb(growth / SESSIONS)} per closed session; sessions discarded "
              f"{closed_in:.1f} s after the last close, their objects freed {freed_in:.1f} s later; page objects "
              f"left over: {survivors}")
    print("\n" + report)
    assert after["sessions"]["/he_study"] == 0, report
    assert all(n <= 0 for n in survivors.values()), "page objects outlive their sessions: " + report
    assert after["objects"]["Document"] <= before["objects"]["Document"], report
    assert growth < RSS_BUDGET, f"server memory grew by more than {_mb(RSS_BUDGET)}: " + report
