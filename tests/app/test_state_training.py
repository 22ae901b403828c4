"""Background training: jobs run off the calling thread, report progress, can be cancelled or fail."""

from __future__ import annotations

import threading
import time

import pytest

from app.state.runs import RunChoice
from app.state.train_control import TrainControl
from app.state.training import JobProbe, TrainingService
from hepml_core.exceptions import TrainingCancelled
from hepml_core.training.callbacks import TrainState


def _fake_work(epochs=(3, 2), gate: threading.Event | None = None, fail: bool = False):
    """Work that drives the callbacks like two Trainer fits would, then 'saves' a run."""

    def work(callbacks, cancel, say):
        say("training")
        for n_epochs in epochs:
            state = TrainState(n_epochs=n_epochs, n_batches=4)
            for cb in callbacks:
                cb.on_fit_start(state)
            for epoch in range(1, n_epochs + 1):
                state.epoch = epoch
                for cb in callbacks:
                    cb.on_epoch_start(state)
                for batch in range(1, 5):
                    if cancel.cancelled:
                        raise TrainingCancelled("cancelled")
                    if gate is not None:
                        gate.wait(5)
                    state.batch = batch
                    for cb in callbacks:
                        cb.on_batch_end(state)
                state.history.append({"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch})
                for cb in callbacks:
                    cb.on_epoch_end(state)
            for cb in callbacks:
                cb.on_fit_end(state)
        if fail:
            raise RuntimeError("disk full")
        return "run-42"

    return work


def _wait(control: TrainControl, timeout: float = 10.0) -> None:
    end = time.time() + timeout
    while control.running and time.time() < end:
        control.poll()  # what the view's periodic callback does
        time.sleep(0.01)
    control.poll()


@pytest.fixture
def service(tmp_path):
    s = TrainingService(tmp_path)
    yield s
    s.shutdown()


def test_probe_progress_counts_planned_epochs():
    probe = JobProbe(("classifier", "autoencoder"), (3, 2))
    assert probe.fraction() == 0.0
    state = TrainState(n_epochs=3, n_batches=4)
    probe.on_fit_start(state)
    state.epoch = 2
    probe.on_epoch_start(state)
    state.batch = 2
    probe.on_batch_end(state)
    assert probe.fraction() == pytest.approx((1 + 0.5) / 5)


def test_retrain_runs_in_the_background_and_reports_the_run(service):
    gate = threading.Event()
    control = TrainControl(service, lambda: (_fake_work(gate=gate), "fake", JobProbe(("a", "b"), (3, 2))))
    control.param.trigger("retrain")
    assert control.running  # returned at once: the work waits on the gate in the worker thread
    assert control.job.status in ("queued", "running")
    gate.set()
    _wait(control)
    assert not control.running and control.last_run_id == "run-42" and control.progress == 100
    assert set(control.history["model"]) == {"a", "b"} and len(control.history) == 5


def test_cancel_stops_the_job_and_saves_nothing(service):
    gate = threading.Event()
    control = TrainControl(service, lambda: (_fake_work(gate=gate), "fake", JobProbe(("a",), (3,))))
    control.param.trigger("retrain")
    control.param.trigger("cancel")
    gate.set()
    _wait(control)
    assert control.job.status == "cancelled" and control.last_run_id is None
    assert "cancel" in control.status


def test_failure_is_reported_not_raised(service):
    control = TrainControl(service, lambda: (_fake_work(fail=True), "fake", JobProbe(("a", "b"), (3, 2))))
    control.param.trigger("retrain")
    _wait(control)
    assert control.job.status == "failed" and "disk full" in control.status


def test_bad_form_entry_starts_nothing(service):
    def factory():
        raise ValueError("classifier hidden layers must be comma-separated integers")

    control = TrainControl(service, factory)
    control.param.trigger("retrain")
    assert not control.running and control.status.startswith("not started")


def test_second_session_queues_behind_the_first(service):
    gate = threading.Event()
    make = lambda: (_fake_work(gate=gate), "fake", JobProbe(("a", "b"), (3, 2)))  # noqa: E731
    first, second = TrainControl(service, make), TrainControl(service, make)
    first.param.trigger("retrain")
    second.param.trigger("retrain")
    second.poll()
    assert "queued behind 1" in second.status
    gate.set()
    _wait(first)
    _wait(second)
    assert first.last_run_id == second.last_run_id == "run-42"


def test_run_choice_keeps_or_selects_runs():
    items = [("b", "run-b"), ("a", "run-a")]
    choice = RunChoice(lambda: list(items))
    assert choice.run == "run-b" and choice.labels() == ["b", "a"]
    items.insert(0, ("c", "run-c"))
    choice.param.trigger("refresh")
    assert choice.run == "run-b"  # a refresh keeps what the user looks at
    choice.select("run-c")
    assert choice.run == "run-c" and choice.n_runs == 3
