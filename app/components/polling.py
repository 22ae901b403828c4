"""Periodic callbacks of a session that do not mark the whole server busy.

Panel counts every run of a periodic callback as server-wide "busy" work (``pn.state.busy``), and each
flip of that flag sets the busy indicator of *every* live session's template (one update per session,
~1 ms each). A page that polls (the Train panel refreshes the training queue every 0.4 s) therefore
costs the server work proportional to the number of open pages at every poll of every page: N² per
poll period. Measured with 8 open He pages on 2 cores: 88 ms of server CPU per threshold move with the
busy-flagging polls, 46 ms without. A poll is bookkeeping, not work a user waits for, so it runs as a
background callback: same schedule, same session, no busy flag.
"""

from __future__ import annotations

from collections.abc import Callable

from panel.io.callbacks import PeriodicCallback

__all__ = ["quiet_periodic_callback"]


def quiet_periodic_callback(callback: Callable[[], None], period_ms: int) -> PeriodicCallback:
    """Start ``callback`` every ``period_ms`` on the current session, without flagging the server busy.

    Like ``pn.state.add_periodic_callback`` (stop it with ``.stop()``; the server drops it with the
    session), except that its runs leave ``pn.state.busy`` and every session's busy indicator alone.
    """
    cb = PeriodicCallback(callback=callback, period=int(period_ms), background=True)
    cb.start()
    return cb
