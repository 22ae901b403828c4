"""Many users on one served app: threshold round trips of 20 sessions, with and without a training running.

The app is served as users start it (``app.serve.serve`` in a subprocess, through ``python -m
app.diagnostics``, which adds a JSON endpoint giving the server's CPU time and memory) on a runs folder
holding a small He study made first. ``--sessions`` real sessions of the He page (websocket clients
speaking Bokeh's protocol on one asyncio loop: the server builds each page with its factory, and each
says "document ready" as a browser does) then move the anomaly-score threshold ``--moves`` times each,
all at once, waiting ``--pause`` seconds after each round trip. A round trip runs from sending the
slider's new value until the server's resulting change comes back on that session's websocket: the
threshold line on the anomaly histogram at the new value. That line is the last view the threshold's
watchers update, after the migration matrix and the flagged fractions, so its patch arriving means the
page has followed.

Two phases, the second against the first as its named peer, measured in the same run:

* idle: nothing else runs on the server;
* training: one more session opens the Train tab, sets a study of ``--train-events`` MC events and
  ``--epochs`` epochs per model, and presses Retrain; the moves start once that job runs (simulation
  first, then the two fits, in a worker process), and it is cancelled (Cancel button) when they end.

Printed per phase: p50/p95/max round trip, the move rate and the server's CPU use (CPU seconds per
second, which does not depend on how busy the machine is otherwise); then p95_training / p95_idle and
PASS/FAIL against p95 < 500 ms. The clients only decode the page once and then read their patches for
the line's location (browsers draw on their own machines), but they share the machine with the server,
and so does anything else running there: on a loaded machine the latencies say more about it than
about the app.

Run: ``python benchmarks/bench_load_sessions.py [--sessions 20] [--moves 20] [--pause 1.0] [--events 20000]
[--train-events 200000] [--epochs 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import pkgutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

__all__ = ["make_runs", "serve_app", "server_stats", "Visitor", "Mover", "Trainer", "run_phase", "main"]

TARGET_P95 = 0.500
OPEN_TIMEOUT = 120.0


def make_runs(runs_dir: Path, events: int) -> str:
    """Save a small He study (``events`` MC, half as many data events, 2+2 epochs) in ``runs_dir``."""
    from hepml_core.runs import RunStore
    from hepml_core.studies.ams_he import AmsHeSettings, run_ams_he

    settings = AmsHeSettings(events=events, data_events=max(1000, events // 2), classifier_epochs=2, ae_epochs=2)
    return run_ams_he(settings, RunStore(runs_dir)).study_run_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_app(runs_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """The app in a subprocess, as ``hepml serve`` runs it plus ``app.diagnostics``' JSON endpoint (server
    CPU time and memory); returns the process and the He page's URL once it answers."""
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "app.diagnostics", "--port", str(port), "--runs-dir", str(runs_dir)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/he_study"
    start = time.time()
    while time.time() - start < 120:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=30):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"the app did not start; its log:\n{log_path.read_text()}")


def server_stats(url: str) -> dict:
    """The served app's diagnostics (``app.diagnostics``): ``rss`` bytes, ``cpu_s`` seconds, sessions."""
    import json

    base = url.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/_hepml/diagnostics?objects=0", timeout=60) as response:
        return json.load(response)


def _register_panel_models() -> None:
    """Import Panel's Bokeh models so this client can decode the documents the server sends."""
    import panel.models

    for info in pkgutil.iter_modules(panel.models.__path__):
        try:
            importlib.import_module(f"panel.models.{info.name}")
        except ImportError:
            pass


def _css(model) -> list[str]:
    return list(getattr(model, "css_classes", None) or [])


class Visitor:
    """One session of the He page: a Bokeh-protocol websocket client on asyncio, as a browser tab is.

    It connects (the server runs the page factory), pulls the page, says "document ready" as a browser
    does once it has drawn it, then reads the server's messages. With ``apply_patches`` it applies them
    to its copy of the page (the trainer needs the Train tab's widgets once rendered); without, it only
    follows the threshold lines' location: a browser applies patches on its own machine, and the two
    cores here should serve the app, not play twenty browsers.
    """

    def __init__(self, apply_patches: bool):
        self.apply_patches = apply_patches
        self.location: dict[str, float] = {}  # threshold-line id -> location, as the server last sent
        self._waiters: list[tuple] = []

    @classmethod
    async def open(cls, url: str, *args, apply_patches: bool = False):
        from bokeh.client.util import websocket_url_for_server_url
        from bokeh.client.websocket import WebSocketClientConnectionWrapper
        from bokeh.document import Document
        from bokeh.document.events import MessageSentEvent
        from bokeh.events import DocumentReady
        from bokeh.models import Span
        from bokeh.protocol import Protocol
        from bokeh.protocol.receiver import Receiver
        from bokeh.util.token import generate_jwt_token, generate_session_id
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        self = cls(*args, apply_patches=apply_patches)
        self.protocol = Protocol()
        self._receiver = Receiver(self.protocol)
        request = HTTPRequest(websocket_url_for_server_url(url), connect_timeout=OPEN_TIMEOUT,
                              request_timeout=OPEN_TIMEOUT)
        socket = await websocket_connect(request, subprotocols=["bokeh", generate_jwt_token(generate_session_id())],
                                         max_message_size=100 * 2**20)
        # As browsers do (Chromium sets TCP_NODELAY): Bokeh sends a message as several frames, and with
        # Nagle's algorithm on, the second waits for the server's delayed ACK: +40 ms per move, measured.
        socket.protocol.set_nodelay(True)
        self.ws = WebSocketClientConnectionWrapper(socket)
        await self._expect("ACK")
        await self.protocol.create("PULL-DOC-REQ").send(self.ws)
        reply = await self._expect("PULL-DOC-REPLY")
        self.doc = Document()
        reply.push_to_document(self.doc)
        self.n_models = len(self.doc.models)
        self.location = {m.id: float(m.location) for m in self.models(kind=Span) if m.name == "threshold-line"}
        await self.send(MessageSentEvent(self.doc, "bokeh_event", DocumentReady()))
        self._reader = asyncio.ensure_future(self._read())
        return self

    def models(self, css: str | None = None, kind: type | None = None) -> list:
        return [m for m in list(self.doc.models) if (css is None or css in _css(m))
                and (kind is None or isinstance(m, kind))]

    async def _message(self):
        while True:
            fragment = await self.ws.read_message()
            if fragment is None:
                return None
            message = await self._receiver.consume(fragment)
            if message is not None:
                return message

    async def _expect(self, msgtype: str):
        while True:
            message = await self._message()
            if message is None:
                raise RuntimeError(f"the server closed the session while this client waited for {msgtype}")
            if message.msgtype == msgtype:
                return message

    async def send(self, event) -> None:
        """Send one document event (a property change, a click) to the server, as a browser does."""
        await self.protocol.create("PATCH-DOC", [event]).send(self.ws)

    async def set(self, model, attr: str, value) -> None:
        """Change ``model.attr`` here and on the server (a user's edit of a widget)."""
        from bokeh.document.events import ModelChangedEvent

        await self.send(ModelChangedEvent(self.doc, model, attr, value))

    async def click(self, css: str) -> None:
        """Press the button with this CSS class (a ButtonClick event, as a browser sends)."""
        from bokeh.document.events import MessageSentEvent
        from bokeh.events import ButtonClick
        from bokeh.models import Button

        (button,) = self.models(css, Button)
        await self.send(MessageSentEvent(self.doc, "bokeh_event", ButtonClick(button)))

    async def _read(self) -> None:
        while (message := await self._message()) is not None:
            if message.msgtype != "PATCH-DOC":
                continue
            if self.apply_patches:
                message.apply_to_document(self.doc, self)
            for event in message.content.get("events", []):
                if (event.get("kind") == "ModelChanged" and event.get("attr") == "location"
                        and event.get("model", {}).get("id") in self.location):
                    self.location[event["model"]["id"]] = float(event["new"])
            for waiter in list(self._waiters):
                predicate, future = waiter
                if not future.done() and predicate():
                    future.set_result(time.perf_counter())

    async def wait_for(self, predicate, timeout: float) -> float | None:
        """Wait until ``predicate()`` holds after a server message; the time it did (None on timeout)."""
        if predicate():
            return time.perf_counter()
        waiter = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter[1], timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiters.remove(waiter)

    async def close(self) -> None:
        """Close the websocket as a browser tab that goes away."""
        self.ws._socket.close(1000, "closed")
        try:
            await asyncio.wait_for(self._reader, 10)
        except Exception:  # noqa: BLE001 - closing; a reader error changes nothing now
            self._reader.cancel()


class Mover(Visitor):
    """A visitor that moves the anomaly-score threshold and times each round trip."""

    def __init__(self, seed: int, apply_patches: bool = False):
        super().__init__(apply_patches)
        self.rng = np.random.default_rng(seed)

    @property
    def slider(self):
        from bokeh.models import Slider

        (box,) = self.models("threshold-slider")
        return next(m for m in box.references() if isinstance(m, Slider))

    async def move(self, timeout: float = 60.0) -> float | None:
        """One threshold move; its round trip in seconds (None if the page did not follow in time)."""
        if not self.location:
            raise RuntimeError("the He page shows no threshold line: is the Migration & anomalies tab first?")
        slider = self.slider
        low, high = float(slider.start), float(slider.end)
        current = next(iter(self.location.values()))
        t = float(self.rng.uniform(low, low + 0.5 * (high - low)))
        while abs(t - current) < 1e-6:
            t = float(self.rng.uniform(low, high))
        start = time.perf_counter()
        await self.set(slider, "value", t)
        end = await self.wait_for(lambda: all(abs(v - t) < 1e-9 for v in self.location.values()), timeout)
        return None if end is None else end - start


class Trainer(Visitor):
    """A visitor that opens the Train tab, sets small settings, presses Retrain and watches the job."""

    def __init__(self, apply_patches: bool = True):
        super().__init__(apply_patches)

    async def start_training(self, events: int, epochs: int, timeout: float = 300.0) -> None:
        from bokeh.models import Tabs

        tabs = next(t for t in self.models(kind=Tabs) if any(p.title == "Train" for p in t.tabs))
        await self.set(tabs, "active", next(i for i, p in enumerate(tabs.tabs) if p.title == "Train"))
        if await self.wait_for(lambda: bool(self.models("retrain-button")), 120) is None:
            raise RuntimeError("the Train tab did not render a Retrain button")
        for name, value in (("events", events), ("data_events", max(1000, events // 2)),
                            ("classifier_epochs", epochs), ("ae_epochs", epochs)):
            for model in self.models(f"form-{name}"):
                await self.set(model, "value", value)
        await self.click("retrain-button")
        if await self.wait_for(lambda: "epoch" in self.status() or self.progress() > 0, timeout) is None:
            raise RuntimeError(f"the training did not start within {timeout:.0f} s: {_plain(self.status())!r}")

    def progress(self) -> int:
        bars = self.models("train-progress")
        return int(bars[0].value or 0) if bars else 0

    def status(self) -> str:
        texts = self.models("train-status")
        return str(getattr(texts[0], "text", "")) if texts else ""

    def running(self) -> bool:
        return "%" in _plain(self.status()) and self.progress() < 100


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds of server CPU time during the phase
    client_cpu: float = 0.0  # seconds of CPU time of this process (the twenty clients) during the phase

    def line(self) -> str:
        v = sorted(self.latencies)
        if not v:
            return f"{self.name:9s} no round trip completed ({self.lost} lost)"
        p = lambda q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]  # noqa: E731
        return (f"{self.name:9s} {len(v):4d} moves in {self.seconds:5.1f} s ({len(v) / self.seconds:4.1f}/s): "
                f"p50 {1e3 * statistics.median(v):6.0f} ms  p95 {1e3 * p(0.95):6.0f} ms  max {1e3 * v[-1]:6.0f} ms"
                f"   CPU (% of a core): server {100 * self.server_cpu / self.seconds:3.0f},"
                f" clients {100 * self.client_cpu / self.seconds:3.0f}"
                + (f"   ({self.lost} lost)" if self.lost else ""))

    def p95(self) -> float:
        v = sorted(self.latencies)
        return v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))] if v else float("inf")


async def run_phase(name: str, movers: list[Mover], moves: int, pause: float, url: str) -> Phase:
    """Every mover moves ``moves`` times, all at once, ``pause`` s apart; their round trips, pooled."""
    phase = Phase(name)
    cpu0 = (await asyncio.to_thread(server_stats, url))["cpu_s"]
    client0 = time.process_time()

    async def drive(mover: Mover, k: int) -> None:
        await asyncio.sleep(pause * k / len(movers))  # independent users do not move in step
        for _ in range(moves):
            took = await mover.move()
            if took is None:
                phase.lost += 1
            else:
                phase.latencies.append(took)
            await asyncio.sleep(pause)

    start = time.perf_counter()
    await asyncio.gather(*(drive(m, k) for k, m in enumerate(movers)))
    phase.seconds = time.perf_counter() - start
    phase.client_cpu = time.process_time() - client0
    phase.server_cpu = (await asyncio.to_thread(server_stats, url))["cpu_s"] - cpu0
    print("  " + phase.line(), flush=True)
    return phase


async def _at_rest(url: str, seconds: float = 5.0) -> float:
    """The server's CPU use (share of one core) while every session sits open and nobody moves."""
    cpu0 = (await asyncio.to_thread(server_stats, url))["cpu_s"]
    await asyncio.sleep(seconds)
    return ((await asyncio.to_thread(server_stats, url))["cpu_s"] - cpu0) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent sessions moving the threshold")
    parser.add_argument("--moves", type=int, default=20, help="threshold moves per session and phase")
    parser.add_argument("--events", type=int, default=20_000,
                        help="MC events of the saved study the sessions show (data: half as many)")
    parser.add_argument("--train-events", type=int, default=200_000,
                        help="MC events of the Retrain (data: half as many): enough to outlast the moves")
    parser.add_argument("--epochs", type=int, default=200,
                        help="epochs per model of the Retrain (early stopping may end it sooner; it is "
                             "cancelled when the moves end)")
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds from one round trip of a session to its next move")
    parser.add_argument("--runs-dir", help="serve this runs folder (must hold a He study) instead of a new one")
    args = parser.parse_args(argv)
    _register_panel_models()

    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tmp) / "runs"
        if not args.runs_dir:
            t0 = time.perf_counter()
            make_runs(runs_dir, args.events)
            print(f"saved a He study of {args.events:,} MC events in {time.perf_counter() - t0:.1f} s", flush=True)
        proc, url = serve_app(runs_dir, Path(tmp) / "server.log")
        try:
            return asyncio.run(_bench(url, args))
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _bench(url: str, args: argparse.Namespace) -> int:
    movers: list[Mover] = []
    trainer: Trainer | None = None
    try:
        t0 = time.perf_counter()
        for i in range(args.sessions):  # one at a time: the server builds one page at a time anyway
            movers.append(await Mover.open(url, i))
        trainer = await Trainer.open(url, apply_patches=True)
        stats = await asyncio.to_thread(server_stats, url)
        print(f"opened {len(movers) + 1} sessions of {url} in {time.perf_counter() - t0:.1f} s "
              f"({movers[0].n_models} Bokeh models each); server RSS {stats['rss'] / 2**20:.0f} MB, "
              f"CPU at rest {100 * await _at_rest(url):.0f} % of a core", flush=True)
        print(f"threshold round trips, {len(movers)} sessions x {args.moves} moves, {args.pause:.2f} s from a "
              f"session's round trip to its next move:", flush=True)
        idle = await run_phase("idle", movers, args.moves, args.pause, url)

        t0 = time.perf_counter()
        await trainer.start_training(args.train_events, args.epochs)
        print(f"  (Retrain pressed; the training runs after {time.perf_counter() - t0:.1f} s: "
              f"{_plain(trainer.status())}; server CPU while it runs and nobody moves: "
              f"{100 * await _at_rest(url):.0f} % of a core)", flush=True)
        training = await run_phase("training", movers, args.moves, args.pause, url)
        still = trainer.running()
        print(f"  (training {'still running' if still else 'ENDED'} when the moves ended: "
              f"{_plain(trainer.status())})", flush=True)
        if still:
            await trainer.click("cancel-button")
            await trainer.wait_for(lambda: not trainer.running(), 60)

        ratio = training.p95() / idle.p95() if idle.latencies else float("nan")
        print(f"p95 with a training running / p95 idle (the named peer, same run): {ratio:.2f}x")
        ok = training.p95() < TARGET_P95 and idle.p95() < TARGET_P95 and not (idle.lost or training.lost)
        print(f"target p95 < {1e3 * TARGET_P95:.0f} ms in both phases: {'PASS' if ok else 'FAIL'}"
              + ("" if still else "  (the training ended before the moves did: rerun with more --epochs)"))
        return 0 if ok else 1
    finally:
        for visitor in [*movers, *([trainer] if trainer else [])]:
            await visitor.close()


def _plain(html_text: str) -> str:
    """A status line without its HTML (the page renders it as markdown)."""
    import html
    import re

    return re.sub(r"<[^>]+>", "", html.unescape(html.unescape(html_text))).strip()


if __name__ == "__main__":
    sys.exit(main())
