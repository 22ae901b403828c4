"""Work functions for TrainingService tests: they drive the Trainer's hooks like real fits, in a worker process.

They import no torch (a spawned child starts in about a second) and are picklable by cloudpickle: they
close over plain values and paths only. A *gate file* stands in for "the training is busy": the work
waits before each batch until the file exists, so a test decides when it may go on.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import psutil

from hepml_core.exceptions import TrainingCancelled

__all__ = ["fake_work", "wait_finished", "alive", "descendants"]


def fake_work(epochs=(3, 2), gate: Path | None = None, free_epochs: int = 0, fail: bool = False, die: bool = False,
              hang: bool = False, pid_file: Path | None = None):
    """Work that drives the callbacks like ``len(epochs)`` Trainer fits (4 batches an epoch), then 'saves' a run.

    Args:
        gate: wait (up to 60 s) before every batch until this file exists.
        free_epochs: epochs of each fit that run before the gate is looked at.
        fail: raise RuntimeError("disk full") after training.
        die: SIGKILL itself after the first epoch (the OS killing a worker).
        hang: ignore the cancel flag and sleep (a job stuck outside the batch loop).
        pid_file: write the worker's pid here when it starts.

    Returns:
        ``work(callbacks, cancel, say) -> "run-<pid of the worker>"``.
    """

    def work(callbacks, cancel, say):
        if pid_file is not None:
            Path(pid_file).write_text(str(os.getpid()))
        say("training")
        for n_epochs in epochs:
            state = SimpleNamespace(n_epochs=n_epochs, n_batches=4, epoch=0, batch=0, history=[], best_epoch=0,
                                    best_val_loss=None, cancelled=False)
            for cb in callbacks:
                cb.on_fit_start(state)
            for epoch in range(1, n_epochs + 1):
                state.epoch, state.batch = epoch, 0
                for cb in callbacks:
                    cb.on_epoch_start(state)
                for batch in range(1, 5):
                    if hang:
                        time.sleep(600)
                    if cancel.cancelled:
                        raise TrainingCancelled("cancelled")
                    end = time.monotonic() + 60
                    held = gate is not None and epoch > free_epochs
                    while held and not Path(gate).exists() and time.monotonic() < end:
                        if cancel.cancelled:
                            raise TrainingCancelled("cancelled")
                        time.sleep(0.01)
                    state.batch = batch
                    for cb in callbacks:
                        cb.on_batch_end(state)
                state.history.append({"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch})
                for cb in callbacks:
                    cb.on_epoch_end(state)
                if die:
                    os.kill(os.getpid(), signal.SIGKILL)
            for cb in callbacks:
                cb.on_fit_end(state)
        if fail:
            raise RuntimeError("disk full")
        return f"run-{os.getpid()}"

    return work


def wait_finished(job, timeout: float = 60.0) -> None:
    """Wait until ``job`` has ended; fail the test with its state if it has not."""
    end = time.time() + timeout
    while not job.finished and time.time() < end:
        time.sleep(0.02)
    assert job.finished, f"job still {job.status} ({job.stage}) after {timeout} s"


def alive(pid: int | None) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def descendants(pid: int | None = None) -> list[psutil.Process]:
    """Live descendants of ``pid`` (default: this process), leaving out multiprocessing's resource tracker."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE or "resource_tracker" in " ".join(child.cmdline()):
                continue
        except psutil.NoSuchProcess:
            continue
        out.append(child)
    return out
