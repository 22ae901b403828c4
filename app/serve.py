"""Serve the app: ``hepml serve`` calls ``serve(...)``; ``python -m app.serve`` does the same.

One factory per page goes to ``pn.serve`` so each browser session builds its own state and widgets.
On the first start (no He study saved in the runs folder) the default models are trained in a
TrainingService worker process, with a tqdm bar in the terminal and a progress bar in the page; the
server itself is up at once, and later starts reuse the saved runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import panel as pn
from tornado.web import RedirectHandler

from hepml_core.runs import RunStore
from hepml_core.studies.ams_he import AmsHeSettings, run_ams_he
from hepml_core.training.callbacks import ProgressBar

from app.auth.settings import AuthSettings, add_auth_arguments, auth_from_args, configure_auth
from app.state.he_study import HE_MODELS, list_he_studies
from app.state.loaders import runs_dir_of
from app.state.training import JobProbe, TrainingJob, get_service

__all__ = ["serve", "app_routes", "start_bootstrap", "warm_caches", "DEFAULT_RUNS_DIR", "main"]

DEFAULT_RUNS_DIR = os.environ.get("HEPML_RUNS_DIR", "hepml-runs")


def _disconnected_text() -> str:
    limit_mb = importlib.import_module("app.state.upload").max_upload_bytes() / 2**20
    return (f"Connection to the hepml server lost: reload the page. (Uploads are limited to {limit_mb:,.0f} MB; "
            "a larger file closes the connection.)")


def _say(text: str) -> None:
    print(f"[hepml] {text}", file=sys.stderr, flush=True)


def start_bootstrap(runs_dir: str, settings: AmsHeSettings | None = None, *, quiet: bool = False) -> TrainingJob | None:
    """Train the He study's default models in the background if none is saved yet.

    Also turns on the training service's standby worker (``keep_warm``), saved studies or not.

    Returns:
        The submitted job, or None when a saved study exists (nothing to do).
    """
    runs_dir = runs_dir_of(runs_dir)
    service = get_service(runs_dir)
    service.keep_warm()  # a served app keeps a worker with torch loaded: a Retrain starts at once
    if list_he_studies(runs_dir):
        return None
    if service.active(shared_only=True) is not None:
        return service.active(shared_only=True)
    settings = settings or AmsHeSettings()
    probe = JobProbe(HE_MODELS, (settings.classifier_epochs, settings.ae_epochs))

    def work(callbacks, cancel, say) -> str:
        return run_ams_he(settings, RunStore(runs_dir), callbacks=callbacks, cancel=cancel,
                          progress=say).study_run_id

    say = (lambda text: None) if quiet else _say
    say(f"first start: no He study in {runs_dir}; training the default models in the background")
    return service.submit(work, "He study (first start)", probe,
                          extra_callbacks=[ProgressBar(quiet=quiet)], say=say, shared=True)


def warm_caches(runs_dir: str) -> None:
    """Load the newest saved study and user run into the shared caches before the first visitor.

    The first session would otherwise pay for reading the parquet files and sorting the scans; with
    this, a page load only builds the session's own (cheap) state and draws.
    """
    from app.state.he_study import HeStudyState
    from app.state.loaders import load_run_data, load_study_data
    from app.state.your_data import YourDataState, list_user_runs

    try:
        studies = list_he_studies(runs_dir)
        if studies:
            HeStudyState(load_study_data(runs_dir, studies[0][1]))
        users = list_user_runs(runs_dir)
        if users:
            YourDataState(load_run_data(runs_dir, users[0][1]))
    except Exception as err:  # noqa: BLE001 - a warm-up failure only costs the first visitor time
        _say(f"cache warm-up skipped: {type(err).__name__}: {err}")


def app_routes(runs_dir: str, default_settings: AmsHeSettings | None = None) -> dict[str, Callable]:
    """``{route: factory}`` for ``pn.serve``: every call builds a fresh page for one session.

    Every page listed in ``app.pages._layout.PAGES`` whose module imports is served, with its factory
    ``app.pages.<route>.<route>_page(runs_dir)``; a page that fails to import is left out with a warning
    (one broken study page must not take the app down).
    """
    from app.pages._layout import PAGES

    runs_dir = runs_dir_of(runs_dir)
    routes: dict[str, Callable] = {}
    for route in PAGES:
        try:
            module = importlib.import_module(f"app.pages.{route}")
            factory = getattr(module, f"{route}_page")
        except Exception as err:  # noqa: BLE001 - reported, and the other pages still serve
            _say(f"page {route!r} not served: {type(err).__name__}: {err}")
            continue
        args = (runs_dir, default_settings) if route == "he_study" else (runs_dir,)
        routes[route] = _bind(factory, args)
    return routes


def _bind(factory: Callable, args: tuple) -> Callable:
    # A plain function, not functools.partial: pn.serve calls FunctionType apps once per session.
    def page():
        return factory(*args)

    page.__name__ = getattr(factory, "__name__", "page")
    return page


def serve(port: int = 5006, runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR, show: bool = False,
          address: str = "127.0.0.1", *, events: int | None = None, epochs: int | None = None,
          bootstrap_settings: AmsHeSettings | None = None, quiet: bool = False, start: bool = True,
          auth: AuthSettings | None = None,
          check_unused_sessions: int = 17_000, unused_session_lifetime: int = 15_000):
    """Start the app's Bokeh server and print its URL.

    Args:
        port: TCP port (0 picks a free one).
        runs_dir: the run store's folder (created if missing).
        show: open a browser tab.
        address: interface to listen on ("0.0.0.0" to share with colleagues on the network).
        events: MC events of the first-start training (``hepml serve --events``; default: the talk's).
        epochs: epochs of both first-start models (``hepml serve --epochs``).
        bootstrap_settings: full settings of the first-start training (``events``/``epochs`` override).
        quiet: no terminal progress bar.
        start: block serving (False returns the server object, for embedding and tests).
        auth: access control (``hepml serve --auth ...``); None: localhost only, no sign-in.
        check_unused_sessions: milliseconds between sweeps for closed sessions (Bokeh's default).
        unused_session_lifetime: milliseconds a closed session is kept before it is discarded.

    Returns:
        The Panel/Bokeh server (when ``start`` is False, or after it stops).

    Raises:
        ConfigError: a non-loopback ``address`` without ``auth``, or an incomplete ``auth`` setup.
    """
    from app.components.style import ensure_extension

    auth = auth or AuthSettings()
    port = port or _free_port(address)
    # Before anything starts: sharing without a login is refused, and an incomplete --auth setup too.
    # Only pages from an exact allow-list of origins may open a session's websocket (default: this
    # server's own host:port); with --auth every page and websocket also needs a login.
    access = configure_auth(auth, address, port)
    runs_dir = runs_dir_of(runs_dir)
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    bootstrap_settings = _first_start_settings(bootstrap_settings, events, epochs)
    ensure_extension()
    # Tabulator may sit in a tab rendered later (dynamic tabs): load its JS with every page up front.
    # The only notice the page shows is the lost connection (e.g. after an upload over the WebSocket's
    # size limit, which the server answers by closing it): without it the page just stops responding.
    pn.extension("tabulator", disconnect_notification=_disconnected_text())
    server = pn.serve(
        app_routes(runs_dir, bootstrap_settings),
        port=port, address=address, show=False, start=False, title="hepml",
        **access.serve_kwargs, check_unused_sessions_milliseconds=check_unused_sessions,
        unused_session_lifetime_milliseconds=unused_session_lifetime,
        websocket_max_message_size=importlib.import_module("app.state.upload").websocket_message_limit(),
        extra_patterns=[(r"/", RedirectHandler, {"url": "/he_study", "permanent": False})],
    )
    real_port = server.port
    url = f"http://{'localhost' if address in ('127.0.0.1', '0.0.0.0') else address}:{real_port}/he_study"
    base = url.rsplit("/", 1)[0]
    print(f"hepml app running at {url}  (your data: {base}/your_data; runs folder: {runs_dir}) — {access.note}",
          flush=True)
    # Training and cache warm-up start once the server listens, so the page is up first; both are
    # queued before the event loop runs, so even the first visitor sees the training's progress.
    start_bootstrap(runs_dir, bootstrap_settings, quiet=quiet)
    threading.Thread(target=warm_caches, args=(runs_dir,), name="hepml-warmup", daemon=True).start()
    if not start:
        return server
    server.start()
    if show:
        server.io_loop.add_callback(server.show, "/he_study")
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        print("hepml app stopped", flush=True)
    finally:
        get_service(runs_dir).shutdown()
    return server


def _first_start_settings(settings: AmsHeSettings | None, events: int | None,
                          epochs: int | None) -> AmsHeSettings | None:
    """The first-start settings with the CLI's ``--events``/``--epochs`` applied."""
    if events is None and epochs is None:
        return settings
    settings = settings or AmsHeSettings()
    changes: dict = {}
    if events is not None:
        # keep the talk's data-to-MC proportion for the data sample
        changes.update(events=int(events),
                       data_events=max(1000, int(events * settings.data_events / settings.events)))
    if epochs is not None:
        changes.update(classifier_epochs=int(epochs), ae_epochs=int(epochs))
    return dataclasses.replace(settings, **changes)


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address if address != "localhost" else "127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    """``python -m app.serve [--port P] [--runs-dir DIR] [--address A] [--show] [--events N] [--epochs E]
    [--auth basic|oauth --users FILE ...]`` (the access options of ``hepml serve``)."""
    parser = argparse.ArgumentParser(prog="python -m app.serve", description="Serve the hepml app.")
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--events", type=int, default=None, help="MC events of the first-start training")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the first-start training")
    add_auth_arguments(parser)
    args = parser.parse_args(argv)
    from hepml_core.exceptions import HepmlError

    try:
        serve(port=args.port, runs_dir=args.runs_dir, show=args.show, address=args.address, events=args.events,
              epochs=args.epochs, auth=auth_from_args(args))
    except HepmlError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    main()
