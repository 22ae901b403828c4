"""Periodic callbacks of a session that do not mark the whole server busy.

Panel counts every run of a periodic callback as server-wide "busy" work (``pn.state.busy``), and every
change of that flag updates the busy indicator of *every* live session's template. A page that polls
(the Train panel refreshes the training queue every 0.4 s) therefore costs each other session an
indicator update per poll: with N sessions open that is N polls times N updates, which on two cores
took a 20-session server to seconds per threshold move. A poll is bookkeeping, not work the user
waits for, so it runs as a background callback: same schedule, same session, no busy flag.
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
