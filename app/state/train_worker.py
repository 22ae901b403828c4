"""The child side of a training job: what runs inside the spawned worker process, and nothing else.

``TrainingService`` (``app.state.training``) starts one process per job with ``run_child`` as its
target. Two one-way pipes join them: the *control* pipe (server -> child) carries the job's pickled
work, then at most a ``"cancel"``; the *message* pipe (child -> server) carries progress. The process
waits for its work on the control pipe (a standby worker loads torch while it waits, so a Retrain
starts at once). The child stays light and obedient:

- it dies with its parent, three ways: Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; end-of-file on the
  control pipe (the server's end closes when the server dies, however it dies); and a watchdog
  thread comparing ``os.getppid()`` with the server's pid. A killed server never leaves a training
  that keeps writing into the runs folder;
- it runs at a lower CPU priority than the server (``niceness``), so pages answer while it trains;
- it limits torch to its share of the CPU budget (``OMP_NUM_THREADS`` before torch loads,
  ``torch.set_num_threads`` if it already has);
- it streams small messages back over a one-way pipe: ``("fit_start", n_epochs)``,
  ``("epoch_start", epoch, n_batches)``, ``("batch", batch)`` (at most every ``BATCH_INTERVAL`` s),
  ``("epoch_end", batch, row, best_epoch, best_val_loss)``, ``("fit_end", ...)``, ``("stage", text)``
  and finally ``("result", "done" | "cancelled" | "failed", run_id or error, traceback)``;
- it stops at the next batch after a ``"cancel"`` arrives, and turns a SIGTERM (the parent's second,
  firmer request) into ``TrainingCancelled`` so open run writers still remove their temporary folders.

Cancel travels on the pipe, not in a multiprocessing Event: an Event is a set of named semaphores
that a killed server leaks (and Python warns about), while a pipe is only file descriptors.

This module imports no panel, bokeh or torch (its callback and token are duck-typed to the Trainer's
hooks and ``cancelled`` flag): a child pays only for what its work imports.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from hepml_core.exceptions import TrainingCancelled

__all__ = ["run_child", "PipeCancelToken", "StreamCallback", "BATCH_INTERVAL", "WATCHDOG_INTERVAL", "PRELOAD_DELAY"]

#: seconds between two batch messages (the progress bar needs no more; epoch ends are always sent)
BATCH_INTERVAL = 0.1
#: seconds between two checks that the parent is still alive (where prctl is not available)
WATCHDOG_INTERVAL = 0.5
#: seconds a standby worker waits before loading torch: a server's first pages must not compete with it
PRELOAD_DELAY = 10.0

_PR_SET_PDEATHSIG = 1


class PipeCancelToken:
    """A CancelToken (same methods) that a thread sets when ``"cancel"`` arrives on the control pipe.

    The Trainer reads ``cancelled`` before every batch. End-of-file on the pipe means the server is gone:
    the process ends at once (nobody would see the run, and a half-written one stays ``.incomplete-*``).

    Args:
        control: the read end of the control pipe (after the work was read from it).
    """

    def __init__(self, control: Any) -> None:
        self._event = threading.Event()
        self._control = control
        threading.Thread(target=self._listen, name="hepml-cancel-listener", daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                message = self._control.recv()
            except (EOFError, OSError):
                os._exit(1)
            if message == "cancel":
                self._event.set()

    def cancel(self) -> None:
        self._event.set()

    def reset(self) -> None:
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class StreamCallback:
    """A Trainer callback (the five hooks) that sends each call to the parent as a small tuple.

    Args:
        send: ``send(message)``; ends the process when the parent is gone.
    """

    def __init__(self, send: Callable[[tuple], None]) -> None:
        self.send = send
        self._last = 0.0

    def on_fit_start(self, state: Any) -> None:
        self.send(("fit_start", int(state.n_epochs)))

    def on_epoch_start(self, state: Any) -> None:
        self._last = time.monotonic()
        self.send(("epoch_start", int(state.epoch), int(state.n_batches)))

    def on_batch_end(self, state: Any) -> None:
        now = time.monotonic()
        if now - self._last >= BATCH_INTERVAL:
            self._last = now
            self.send(("batch", int(state.batch)))

    def on_epoch_end(self, state: Any) -> None:
        row = {k: _plain(v) for k, v in state.history[-1].items()}
        self.send(("epoch_end", int(state.batch), row, int(state.best_epoch), _plain(state.best_val_loss)))

    def on_fit_end(self, state: Any) -> None:
        self.send(("fit_end", int(state.epoch), bool(state.cancelled), int(state.best_epoch),
                   _plain(state.best_val_loss)))


def _plain(value: Any) -> Any:
    """Numbers as Python floats/ints (numpy and 0-d tensors pickle larger and need numpy/torch to load)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _die_with_parent(parent_pid: int) -> None:
    """End this process when the server process ends, however it ends (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl here: the watchdog below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_INTERVAL)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="hepml-parent-watchdog", daemon=True).start()


def _limit_threads(threads: int) -> None:
    """Give torch (and the BLAS under numpy) this job's share of the cores."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # read when torch / the BLAS first load
    torch = sys.modules.get("torch")  # already loaded by the server's main module, re-imported here
    if torch is not None:
        torch.set_num_threads(threads)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise TrainingCancelled("stopped by the app (the training did not stop at a batch boundary in time)")


def _lower_priority(niceness: int) -> None:
    """Yield the CPU to the server: raise this process's nice value by ``niceness`` (0 leaves it)."""
    if niceness > 0 and hasattr(os, "nice"):
        try:
            os.nice(niceness)
        except OSError:  # not permitted here: the job still runs, at the server's priority
            pass


def run_child(control: Any, conn: Any, parent_pid: int, threads: int, preload: bool = False,
              niceness: int = 0) -> None:
    """Target of the worker process: wait for one pickled ``work(callbacks, cancel, say)``, run it, report back.

    Args:
        control: the read end of the control pipe: the work as bytes, then ``"cancel"``; EOF = retire / server gone.
        conn: the write end of the message pipe to the server.
        parent_pid: the server's pid (the watchdog ends this process when it changes).
        threads: torch threads for this job (its share of the CPU budget).
        preload: import torch and the training pipeline while waiting (a standby worker), unless the
            work arrives within ``PRELOAD_DELAY`` seconds.
        niceness: how much to lower this process's CPU priority below the server's.
    """
    _die_with_parent(parent_pid)
    _lower_priority(int(niceness))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal: the parent decides
    _limit_threads(max(1, int(threads)))
    if preload and not control.poll(PRELOAD_DELAY):
        try:
            import hepml_core.pipeline  # noqa: F401 - torch, the models and the Trainer, loaded ahead
        except Exception:  # noqa: BLE001 - the job will report the same error when it imports them
            pass
    try:
        payload = control.recv_bytes()
    except (EOFError, OSError):  # retired before it got a job, or the server is gone
        return
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    def send(message: tuple) -> None:
        try:
            conn.send(message)
        except (OSError, ValueError):  # the parent closed its end or died: nobody to train for
            os._exit(1)

    try:
        import cloudpickle

        cancel = PipeCancelToken(control)
        # The payload is the server's own work function, sent by the parent that spawned this worker
        # over a private pipe; nothing read from a run directory or a user ever reaches this call.
        work = cloudpickle.loads(payload)
        run_id = work([StreamCallback(send)], cancel, lambda text: send(("stage", str(text))))
        send(("result", "done", str(run_id), ""))
    except TrainingCancelled:
        send(("result", "cancelled", None, ""))
    except BaseException as err:  # noqa: BLE001 - every failure is reported to the page, then the child ends
        send(("result", "failed", f"{type(err).__name__}: {err}", traceback.format_exc()))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            conn.close()
        except OSError:
            pass
