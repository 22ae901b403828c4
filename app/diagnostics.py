"""Serve the app with a diagnostics endpoint: memory, CPU time, live sessions and live page objects.

``GET /_hepml/diagnostics`` answers, as JSON, ``{"rss": bytes, "cpu_s": seconds, "sessions": {route: n},
"objects": {class name: n}, "gc": bool}``: the server process's resident memory and CPU time so far,
its live Bokeh sessions per page, and how many objects of each tracked class are alive. With ``?gc=1``
the server runs a full garbage collection first, so the counts say which page objects outlive their
sessions; ``?objects=0`` skips the counting (a cheap poll of memory and CPU time). The memory test and the load benchmark start the app this way (``python -m app.diagnostics
--port P --runs-dir D --unused-session-lifetime-ms 500``); a plain ``hepml serve`` has no such endpoint.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from collections import Counter

from tornado.web import RequestHandler

__all__ = ["add_diagnostics", "snapshot", "TRACKED", "ROUTE", "main"]

ROUTE = "/_hepml/diagnostics"

#: class names counted in the answer: one per session of the He page, and Bokeh's per-session objects
TRACKED = ("HeStudyPage", "HeStudyState", "TrainControl", "TrainPanel", "MigrationMatrix", "AnomalyScores",
           "Document", "ServerSession")


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # psutil is a test dependency; fall back to /proc on Linux
        with open(f"/proc/{os.getpid()}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _count_objects(names: tuple[str, ...]) -> dict[str, int]:
    wanted = set(names)
    counts: Counter = Counter()
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in wanted:
            counts[name] += 1
    return {n: counts.get(n, 0) for n in names}


def snapshot(server, *, collect: bool = False, objects: bool = True) -> dict:
    """RSS, CPU time, live sessions per route and live tracked objects of ``server`` (on its event loop).

    Args:
        server: the Panel/Bokeh server (``serve(..., start=False)``).
        collect: run ``gc.collect()`` first (the counts then exclude unreachable garbage).
        objects: count the tracked objects (a walk over every object: ~0.1-1 s; off for cheap polls).
    """
    if collect:
        gc.collect()
    sessions = {route: len(ctx.sessions) for route, ctx in server._tornado.applications.items()}
    times = os.times()
    return {"rss": _rss(), "cpu_s": times.user + times.system, "sessions": sessions,
            "objects": _count_objects(TRACKED) if objects else {}, "gc": collect}


def add_diagnostics(server) -> None:
    """Add ``GET /_hepml/diagnostics`` to a (not yet started) Panel/Bokeh server."""

    class _Diagnostics(RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(snapshot(server, collect=self.get_argument("gc", "0") == "1",
                                           objects=self.get_argument("objects", "1") == "1")))

    server._tornado.add_handlers(r".*", [(ROUTE, _Diagnostics)])


def main(argv: list[str] | None = None) -> None:
    """``python -m app.diagnostics --port P --runs-dir D [--check-unused-sessions-ms N] [...]``."""
    from app.serve import serve

    parser = argparse.ArgumentParser(prog="python -m app.diagnostics", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--check-unused-sessions-ms", type=int, default=17_000)
    parser.add_argument("--unused-session-lifetime-ms", type=int, default=15_000)
    args = parser.parse_args(argv)
    server = serve(port=args.port, runs_dir=args.runs_dir, quiet=True, start=False,
                   check_unused_sessions=args.check_unused_sessions_ms,
                   unused_session_lifetime=args.unused_session_lifetime_ms)
    add_diagnostics(server)
    server.start()
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
