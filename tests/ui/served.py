"""A patient ``server`` fixture for the session/link/upload browser tests.

Same served app as ``conftest.server`` (``python -m app.serve`` on the tiny runs folder), but it waits for
the first page with a per-request timeout long enough for a first page build on a busy machine: a short
one gives up on a request that is merely slow, and every retry opens one more session to build.
"""

from __future__ import annotations

import time
import urllib.request

import pytest
from conftest import Server

__all__ = ["server", "wait_served"]


def _wait(url: str, timeout: float = 300.0) -> None:
    end, last = time.time() + timeout, None
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                if response.status == 200:
                    return
        except OSError as err:
            last = err
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s (last error: {last})")


def wait_served(srv: Server, page: str = "he_study") -> None:
    """Wait until ``srv`` answers ``page``; stop it and fail with its log if it never does."""
    try:
        _wait(srv.url(page))
    except TimeoutError:
        log = srv.log()
        srv.stop()
        raise AssertionError("the app did not start:\n" + log) from None


@pytest.fixture(scope="module")
def server(ui_runs):
    """The served app on the tiny runs folder, for this module."""
    srv = Server(ui_runs[0])
    wait_served(srv)
    yield srv
    srv.stop()
