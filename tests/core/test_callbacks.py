"""Callbacks: hook order, progress bar output, live history, early stopping rule, cancel token."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch

from hepml_core.exceptions import TrainingCancelled
from hepml_core.models.registry import build_model
from hepml_core.training.callbacks import (
    Callback,
    CancelToken,
    EarlyStopping,
    History,
    ProgressBar,
    TrainState,
)
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer


def small_problem(n=30):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return TensorData(x, (x[:, 0] > 0).astype(int))


def model():
    torch.manual_seed(0)
    return build_model("mlp_classifier", 3, 2, layers=[3, 4, 2])


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, state):
        self.calls.append("fit_start")

    def on_epoch_start(self, state):
        self.calls.append(f"epoch_start {state.epoch}")

    def on_batch_end(self, state):
        assert isinstance(state.batch_loss, torch.Tensor)
        self.calls.append(f"batch {state.epoch}.{state.batch}")

    def on_epoch_end(self, state):
        self.calls.append(f"epoch_end {state.epoch} rows={len(state.history)}")

    def on_fit_end(self, state):
        self.calls.append(f"fit_end cancelled={state.cancelled}")


def test_hooks_are_called_in_order():
    rec = Recorder()
    Trainer(epochs=2, batch_size=10, callbacks=[rec]).fit(model(), small_problem(30))
    assert rec.calls == [
        "fit_start",
        "epoch_start 1", "batch 1.1", "batch 1.2", "batch 1.3", "epoch_end 1 rows=1",
        "epoch_start 2", "batch 2.1", "batch 2.2", "batch 2.3", "epoch_end 2 rows=2",
        "fit_end cancelled=False",
    ]


def test_fit_end_runs_after_a_cancel():
    rec, token = Recorder(), CancelToken()
    token.cancel()
    with pytest.raises(TrainingCancelled):
        Trainer(epochs=2, batch_size=10, callbacks=[rec], cancel=token).fit(model(), small_problem())
    assert rec.calls == ["fit_start", "epoch_start 1", "fit_end cancelled=True"]
    token.reset()
    assert not token.cancelled


def test_a_callback_may_implement_only_some_hooks():
    class OnlyEpochEnd:
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, state):
            self.epochs.append(state.epoch)

    cb = OnlyEpochEnd()
    Trainer(epochs=3, batch_size=10, callbacks=[cb]).fit(model(), small_problem())
    assert cb.epochs == [1, 2, 3]


def test_a_callback_can_stop_training():
    class StopAfterTwo(Callback):
        def on_epoch_end(self, state):
            state.stop = state.epoch == 2

    result = Trainer(epochs=9, batch_size=10, callbacks=[StopAfterTwo()]).fit(model(), small_problem())
    assert len(result.history) == 2 and result.stopped_early


def test_progress_bar_writes_one_bar_per_epoch_with_losses():
    out = io.StringIO()
    Trainer(epochs=2, batch_size=10, callbacks=[ProgressBar(file=out)]).fit(model(), small_problem(), small_problem())
    text = out.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text
    assert "train_loss=" in text and "val_loss=" in text and "best epoch" in text


def test_progress_bar_goes_to_stderr_and_quiet_prints_nothing(capsys):
    Trainer(epochs=1, batch_size=10, callbacks=[ProgressBar()]).fit(model(), small_problem())
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.err and captured.out == ""
    Trainer(epochs=1, batch_size=10, callbacks=[ProgressBar(quiet=True)]).fit(model(), small_problem())
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_history_collects_rows_calls_on_update_and_snapshots_are_copies():
    updates = []
    history = History(on_update=updates.append)
    result = Trainer(epochs=3, batch_size=10, callbacks=[history]).fit(model(), small_problem(), small_problem())
    rows = history.snapshot()
    assert rows == result.history == updates and len(history) == 3
    rows[0]["train_loss"] = -1.0
    assert history.snapshot()[0]["train_loss"] != -1.0
    Trainer(epochs=1, batch_size=10, callbacks=[history]).fit(model(), small_problem())
    assert len(history) == 1  # a new fit starts a new history


def test_history_snapshot_from_another_thread_during_training():
    history, seen, done = History(), [], threading.Event()

    def reader():
        while not done.wait(0.001):  # poll like a periodic UI refresh would
            seen.append(len(history.snapshot()))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        Trainer(epochs=10, batch_size=10, callbacks=[history]).fit(model(), small_problem(60))
    finally:
        done.set()
        thread.join()
    assert len(history) == 10 and seen == sorted(seen)


def _state_with(val_losses):
    state = TrainState(n_epochs=len(val_losses))
    return state, [{"epoch": i + 1, "train_loss": 1.0, "val_loss": v} for i, v in enumerate(val_losses)]


@pytest.mark.parametrize(
    "patience, min_delta, losses, stops_at",
    [
        (2, 0.0, [1.0, 0.9, 0.95, 0.97, 0.5], 4),
        (2, 0.0, [1.0, 0.9, 0.8, 0.7, 0.6], None),
        (1, 0.15, [1.0, 0.9, 0.8], 2),  # 0.9 is not 0.15 better than 1.0
        (1, 0.0, [1.0, float("nan")], 2),
        (1, 0.0, [None, None, None], None),  # no validation: never stops
    ],
)
def test_early_stopping_rule(patience, min_delta, losses, stops_at):
    stopper = EarlyStopping(patience=patience, min_delta=min_delta)
    state, rows = _state_with(losses)
    stopper.on_fit_start(state)
    for row in rows:
        state.epoch = row["epoch"]
        state.history.append(row)
        stopper.on_epoch_end(state)
        if state.stop:
            break
    assert (state.epoch if state.stop else None) == stops_at


def test_early_stopping_validates_its_settings():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
