"""Session-side training state: Retrain / Cancel / progress / queue of a TrainControl over a real TrainingService.

The jobs run in real worker processes (``fake_training.fake_work`` drives the Trainer's hooks without
torch, so a worker starts in about a second); a gate file holds a job mid-epoch until the test lets it go.
"""

from __future__ import annotations

import time

import pytest
from fake_training import fake_work

from app.state.runs import RunChoice
from app.state.train_control import QUEUE_COLUMNS, TrainControl
from app.state.training import JobProbe, TrainingService
from hepml_core.training.callbacks import TrainState


def _wait(control: TrainControl, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while control.running and time.time() < end:
        control.poll()  # what the view's periodic callback does
        time.sleep(0.01)
    control.poll()


@pytest.fixture
def service(tmp_path):
    s = TrainingService(tmp_path, workers=1, threads_per_job=1)
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


def test_retrain_runs_in_the_background_and_reports_the_run(service, tmp_path):
    gate = tmp_path / "go"
    control = TrainControl(service, lambda: (fake_work(gate=gate), "fake", JobProbe(("a", "b"), (3, 2))))
    control.param.trigger("retrain")
    assert control.running  # returned at once: the work waits on the gate in its worker process
    assert control.job.status in ("queued", "running")
    gate.touch()
    _wait(control)
    assert not control.running and control.last_run_id == f"run-{control.job.pid}" and control.progress == 100
    assert set(control.history["model"]) == {"a", "b"} and len(control.history) == 5
    assert control.queue.empty  # nothing left to run


def test_cancel_stops_the_job_and_saves_nothing(service, tmp_path):
    control = TrainControl(service, lambda: (fake_work(gate=tmp_path / "never"), "fake", JobProbe(("a",), (3,))))
    control.param.trigger("retrain")
    control.param.trigger("cancel")
    _wait(control)
    assert control.job.status == "cancelled" and control.last_run_id is None
    assert "cancel" in control.status


def test_failure_is_reported_not_raised(service):
    control = TrainControl(service, lambda: (fake_work(fail=True), "fake", JobProbe(("a", "b"), (3, 2))))
    control.param.trigger("retrain")
    _wait(control)
    assert control.job.status == "failed" and "disk full" in control.status


def test_bad_form_entry_starts_nothing(service):
    def factory():
        raise ValueError("classifier hidden layers must be comma-separated integers")

    control = TrainControl(service, factory)
    control.param.trigger("retrain")
    assert not control.running and control.status.startswith("not started")


def test_second_session_queues_behind_the_first_and_both_see_the_queue(service, tmp_path):
    gate = tmp_path / "go"
    first = TrainControl(service, lambda: (fake_work(gate=gate), "first's", JobProbe(("a", "b"), (3, 2))))
    second = TrainControl(service, lambda: (fake_work(gate=gate), "second's", JobProbe(("a", "b"), (3, 2))))
    first.param.trigger("retrain")
    second.param.trigger("retrain")
    second.poll()
    assert "queued behind 1" in second.status
    first.refresh_queue()
    assert list(first.queue.columns) == QUEUE_COLUMNS
    assert first.queue[["position", "training", "status", "yours"]].values.tolist() == [
        ["running", "first's", "running", "yes"], ["1", "second's", "queued", ""]]
    assert second.queue["yours"].tolist() == ["", "yes"]  # each session marks only its own job
    gate.touch()
    _wait(first)
    _wait(second)
    assert first.last_run_id == f"run-{first.job.pid}" and second.last_run_id == f"run-{second.job.pid}"
    assert first.job.pid != second.job.pid  # one fresh process per job


def test_run_choice_keeps_or_selects_runs():
    items = [("b", "run-b"), ("a", "run-a")]
    choice = RunChoice(lambda: list(items))
    assert choice.run == "run-b" and choice.labels() == ["b", "a"]
    items.insert(0, ("c", "run-c"))
    choice.param.trigger("refresh")
    assert choice.run == "run-b"  # a refresh keeps what the user looks at
    choice.select("run-c")
    assert choice.run == "run-c" and choice.n_runs == 3
