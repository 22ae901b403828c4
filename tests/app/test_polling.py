"""A page's poll runs as background work: it never flips Panel's server-wide busy flag (app.components.polling)."""

from __future__ import annotations

import asyncio

import panel as pn

from app.components.polling import quiet_periodic_callback


async def _busy_flips_while_polling(start) -> tuple[int, list[bool]]:
    """Run a 10 ms poll until it has run three times; return its run count and the busy flag's changes."""
    flips: list[bool] = []
    watcher = pn.state.param.watch(lambda event: flips.append(event.new), "busy")
    runs: list[int] = []
    callback = start(lambda: runs.append(1), 10)
    try:
        for _ in range(1000):  # up to 10 s on a loaded machine; three runs are enough
            if len(runs) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        callback.stop()
        pn.state.param.unwatch(watcher)
    return len(runs), flips


def test_a_quiet_poll_leaves_the_busy_flag_alone():
    runs, flips = asyncio.run(_busy_flips_while_polling(quiet_periodic_callback))
    assert runs >= 3, "the poll did not run"
    assert flips == []


def test_panels_own_periodic_callback_flips_it_each_run():
    # the behaviour the quiet poll avoids (if Panel stops flagging polls, the workaround can go)
    runs, flips = asyncio.run(_busy_flips_while_polling(
        lambda cb, period: pn.state.add_periodic_callback(cb, period=period)))
    assert runs >= 3
    assert True in flips
