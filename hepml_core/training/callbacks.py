"""Callbacks: objects whose hook methods the Trainer calls at named points of the loop.

The terminal's progress bar, the app's live loss curve and early stopping are all callbacks on the
same five hooks, called in this order::

    on_fit_start
    for each epoch:  on_epoch_start, on_batch_end (once per batch), on_epoch_end
    on_fit_end       (also after a cancel or an error, so bars get closed)

Every hook receives the shared :class:`TrainState`; a callback stops training by setting
``state.stop = True``. Hooks run on the training thread: anything that touches a UI must hand the
data over (``History.snapshot()`` is safe to call from another thread).
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch

__all__ = [
    "Callback",
    "CancelToken",
    "EarlyStopping",
    "History",
    "ProgressBar",
    "TrainState",
]


@dataclass
class TrainState:
    """What the loop knows, shared with every callback.

    Epochs count from 1 (``epoch == 0`` before the first one); ``batch`` counts from 1 inside an
    epoch. ``history`` rows are ``{"epoch", "train_loss", "val_loss", "seconds", "lr"}`` with
    ``val_loss`` ``None`` when there is no validation set. ``batch_loss`` is the last batch's loss
    as a detached tensor on the device: reading it with ``.item()`` forces a device sync, which the
    Trainer itself avoids, so only do it when you need the number.
    """

    n_epochs: int
    n_batches: int = 0
    epoch: int = 0
    batch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float | None = None
    stop: bool = False
    cancelled: bool = False
    batch_loss: torch.Tensor | None = None
    device: str = "cpu"


class Callback:
    """Base class: override the hooks you need; the others do nothing."""

    def on_fit_start(self, state: TrainState) -> None:
        """Called once before the first epoch."""

    def on_epoch_start(self, state: TrainState) -> None:
        """Called at the start of every epoch (``state.epoch`` already set)."""

    def on_batch_end(self, state: TrainState) -> None:
        """Called after every optimizer step (``state.batch``, ``state.batch_loss`` set)."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after validation; ``state.history[-1]`` is this epoch's row."""

    def on_fit_end(self, state: TrainState) -> None:
        """Called once at the end, also when training was cancelled or failed."""


class CancelToken:
    """A thread-safe flag the app sets to stop a training running in another thread.

    The Trainer checks it before every batch and raises ``TrainingCancelled``.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the training to stop at the next batch boundary."""
        self._event.set()

    def reset(self) -> None:
        """Clear the flag so the token can be reused for a new training."""
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (and not reset since)."""
        return self._event.is_set()


class EarlyStopping(Callback):
    """Stop when the validation loss has not improved for ``patience`` epochs.

    Restoring the best epoch's weights is the Trainer's job (it keeps that checkpoint whether or
    not this callback is used); this callback only decides when to stop.

    Args:
        patience: epochs without improvement before stopping (>= 1).
        min_delta: an epoch counts as an improvement only if it lowers the best loss by more
            than this.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.patience = patience
        self.min_delta = float(min_delta)

    def on_fit_start(self, state: TrainState) -> None:
        self.best_ = math.inf
        self.wait_ = 0
        self.stopped_epoch_: int | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        val = state.history[-1].get("val_loss")
        if val is None:  # no validation set: nothing to watch
            return
        if val < self.best_ - self.min_delta:
            self.best_, self.wait_ = val, 0
            return
        self.wait_ += 1  # NaN compares False above, so it counts as "no improvement"
        if self.wait_ >= self.patience:
            state.stop = True
            self.stopped_epoch_ = state.epoch


class History(Callback):
    """Collect one row per epoch; readable from another thread while training runs.

    Args:
        on_update: optional function called with each new row (on the training thread), e.g. to
            schedule a plot refresh on the app's event loop.
    """

    def __init__(self, on_update: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.on_update = on_update
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def on_fit_start(self, state: TrainState) -> None:
        with self._lock:
            self._rows = []

    def on_epoch_end(self, state: TrainState) -> None:
        row = dict(state.history[-1])
        with self._lock:
            self._rows.append(row)
        if self.on_update is not None:
            self.on_update(dict(row))

    def snapshot(self) -> list[dict[str, Any]]:
        """Return a copy of the rows so far (safe to call from any thread)."""
        with self._lock:
            return [dict(r) for r in self._rows]

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr, with the epoch's losses as postfix.

    Args:
        quiet: print nothing at all (for tests and batch jobs).
        file: stream to write to; default ``sys.stderr`` at the time of fitting.
        leave: keep each finished epoch's bar on screen.
    """

    def __init__(self, quiet: bool = False, *, file: TextIO | None = None, leave: bool = True) -> None:
        self.quiet = quiet
        self.file = file
        self.leave = leave
        self._bar: Any = None

    def _stream(self) -> TextIO:
        return self.file if self.file is not None else sys.stderr

    def on_epoch_start(self, state: TrainState) -> None:
        if self.quiet:
            return
        from tqdm import tqdm  # imported here so that a quiet or unused bar costs nothing

        width = len(str(state.n_epochs))
        self._bar = tqdm(total=state.n_batches, desc=f"epoch {state.epoch:>{width}}/{state.n_epochs}",
                         unit="batch", file=self._stream(), leave=self.leave, dynamic_ncols=True)

    def on_batch_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, state: TrainState) -> None:
        if self._bar is None:
            return
        row = state.history[-1]
        postfix = {"train_loss": f"{row['train_loss']:.4g}"}
        if row.get("val_loss") is not None:
            postfix["val_loss"] = f"{row['val_loss']:.4g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.close()
        self._bar = None

    def on_fit_end(self, state: TrainState) -> None:
        if self._bar is not None:  # cancelled or failed mid-epoch
            self._bar.close()
            self._bar = None
        if self.quiet:
            return
        if state.cancelled:
            msg = f"training cancelled in epoch {state.epoch}/{state.n_epochs}"
        elif state.best_val_loss is not None:
            msg = f"best epoch {state.best_epoch}/{state.n_epochs}: val_loss {state.best_val_loss:.4g}"
        else:
            return
        print(msg, file=self._stream())
