"""Ending the server subprocesses that tests start: politely first, then for sure."""

from __future__ import annotations

import subprocess

__all__ = ["stop_process"]


def stop_process(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM ``proc`` (the app shuts its training workers down), SIGKILL it if it is still there after ``grace`` s."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)
