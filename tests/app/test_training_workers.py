"""TrainingService runs each job in a spawned worker process: progress streams back, cancel and failures end
the process, the queue keeps its order, and no process outlives the server (shutdown, SIGKILL, closed tab)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fake_training import alive, descendants, fake_work, wait_finished

from app.state.training import JobProbe, TrainingService

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(tmp_path):
    s = TrainingService(tmp_path, workers=1, threads_per_job=1, cancel_grace=1.0)
    yield s
    s.shutdown()


def _until(condition, timeout: float = 60.0, what: str = "the condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def test_a_real_study_trains_in_another_process_and_its_run_loads(service, tmp_path):
    from app_frames import tiny_settings

    from app.state.he_study import HeSettingsForm, he_job_factory
    from hepml_core.runs import RunStore
    from hepml_core.studies.ams_he import load_ams_he

    work, text, probe = he_job_factory(HeSettingsForm(tiny_settings()), str(tmp_path))()
    job = service.submit(work, text, probe)
    wait_finished(job, timeout=180)
    assert job.status == "done", job.error
    assert job.pid is not None and job.pid != os.getpid() and not alive(job.pid)
    store = RunStore(tmp_path)
    assert store.load(job.run_id).config["study"] == "ams-he"
    assert load_ams_he(store).study_run_id == job.run_id
    # the live curves saw every epoch of both models (2 + 2 planned, early stopping may end one sooner)
    histories = job.progress().histories
    assert 1 <= len(histories["classifier"]) <= 2 and 1 <= len(histories["autoencoder"]) <= 2
    assert all(r["train_loss"] > 0 for rows in histories.values() for r in rows)


def test_history_rows_arrive_while_the_job_still_runs(service, tmp_path):
    gate = tmp_path / "go"
    job = service.submit(fake_work(epochs=(3,), gate=gate, free_epochs=1), "fake", JobProbe(("a",), (3,)))
    first = _until(lambda: job.progress().histories["a"], what="the first epoch's row")
    assert job.status == "running" and first == [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}]
    assert job.progress().fraction == pytest.approx(1 / 3)  # epoch 2 started, held before its first batch
    gate.touch()
    wait_finished(job)
    assert job.status == "done" and [r["epoch"] for r in job.progress().histories["a"]] == [1, 2, 3]


def test_cancel_ends_the_worker_process_within_seconds(service, tmp_path):
    job = service.submit(fake_work(gate=tmp_path / "never"), "fake", JobProbe(("a", "b"), (3, 2)))
    _until(lambda: job.stage == "training", what="the worker to start")
    pid = job.pid
    assert alive(pid)
    job.cancel()
    wait_finished(job, timeout=10)
    assert job.status == "cancelled" and job.run_id is None
    _until(lambda: not alive(pid), timeout=5, what=f"worker {pid} to end")


def test_a_job_that_ignores_cancel_is_stopped(service):
    job = service.submit(fake_work(hang=True), "stuck", JobProbe(("a",), (1,)))
    _until(lambda: job.stage == "training", what="the worker to start")
    pid = job.pid
    job.cancel()
    wait_finished(job, timeout=15)  # 1 s grace, then SIGTERM (turned into a cancel in the worker)
    assert job.status == "cancelled"
    assert not alive(pid)


def test_one_worker_runs_jobs_in_order_and_queued_ones_cancel_without_starting(service, tmp_path):
    gate = tmp_path / "go"
    pids = [tmp_path / f"pid{i}" for i in range(3)]
    jobs = [service.submit(fake_work(epochs=(1,), gate=gate, pid_file=pids[i]), f"job {i}", JobProbe(("a",), (1,)))
            for i in range(3)]
    _until(lambda: pids[0].exists(), what="the first job's worker")
    assert [j.status for j in jobs] == ["running", "queued", "queued"]
    assert [service.queued_before(j) for j in jobs] == [0, 1, 2]
    assert service.unfinished() == jobs
    jobs[2].cancel()
    assert jobs[2].status == "cancelled" and jobs[2].stage == "cancelled before it started"
    gate.touch()
    wait_finished(jobs[0])
    wait_finished(jobs[1])
    assert [j.status for j in jobs] == ["done", "done", "cancelled"]
    assert pids[0].stat().st_mtime <= pids[1].stat().st_mtime and not pids[2].exists()
    assert jobs[2].pid is None


def test_failures_show_their_error_and_the_queue_goes_on(service):
    broken = service.submit(fake_work(epochs=(1,), fail=True), "fails", JobProbe(("a",), (1,)))
    killed = service.submit(fake_work(epochs=(2,), die=True), "killed", JobProbe(("a",), (2,)))
    after = service.submit(fake_work(epochs=(1,)), "after", JobProbe(("a",), (1,)))
    for job in (broken, killed, after):
        wait_finished(job)
    assert broken.status == "failed" and broken.error == "RuntimeError: disk full"
    assert killed.status == "failed" and "killed by SIGKILL" in killed.error
    assert len(killed.progress().histories["a"]) == 1  # what arrived before the worker died stays shown
    assert after.status == "done"


def test_unpicklable_work_fails_with_a_clear_error(service):
    import threading

    lock = threading.Lock()
    job = service.submit(lambda callbacks, cancel, say: str(lock), "captures a lock", JobProbe(("a",), (1,)))
    assert job.status == "failed" and "not widgets or locks" in job.error


def test_shutdown_leaves_no_worker_process(tmp_path):
    service = TrainingService(tmp_path, workers=1, threads_per_job=1)
    running = service.submit(fake_work(gate=tmp_path / "never"), "running", JobProbe(("a", "b"), (3, 2)))
    queued = service.submit(fake_work(), "queued", JobProbe(("a", "b"), (3, 2)))
    _until(lambda: running.stage == "training", what="the worker to start")
    pid = running.pid
    service.shutdown()
    assert not alive(pid)
    assert running.status == "cancelled" and queued.status == "cancelled" and queued.pid is None
    assert pid not in [p.pid for p in descendants()]
    with pytest.raises(RuntimeError, match="shut down"):
        service.submit(fake_work(), "late", JobProbe(("a",), (1,)))


def test_a_warm_service_runs_the_next_job_in_its_standby_worker(tmp_path):
    service = TrainingService(tmp_path, workers=1, threads_per_job=1, warm=True)
    try:
        worker = service._standby
        _until(lambda: worker.process is not None and worker.process.pid, what="the standby worker")
        standby = worker.process
        job = service.submit(fake_work(epochs=(1,)), "fake", JobProbe(("a",), (1,)))
        wait_finished(job)
        assert job.status == "done" and job.pid == standby.pid
        _until(lambda: service._standby not in (None, worker) and service._standby.process is not None
               and service._standby.process.pid, what="a new standby after the job")
        spare = service._standby.process.pid
    finally:
        service.shutdown()
    assert not alive(spare) and not alive(standby.pid)


_OWNER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from fake_training import fake_work
    from app.state.training import JobProbe, TrainingService

    service = TrainingService(sys.argv[1], workers=1, threads_per_job=1)
    service.submit(fake_work(gate=Path(sys.argv[1]) / "never", pid_file=Path(sys.argv[1]) / "pid"),
                   "long", JobProbe(("a", "b"), (3, 2)))
    time.sleep(600)
""")


def test_a_killed_server_leaves_no_orphan(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "app")])}
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path)], cwd=ROOT, env=env)
    try:
        pid_file = tmp_path / "pid"
        _until(lambda: pid_file.exists() and pid_file.read_text(), what="the owner's training worker")
        worker = int(pid_file.read_text())
        family = [p.pid for p in descendants(owner.pid)]
        assert worker in family
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        _until(lambda: not any(alive(p) for p in family), timeout=10, what=f"{family} to end with their parent")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_closing_a_served_tab_cancels_or_keeps_its_job(tmp_path):
    """A real Panel server and two real client sessions; Bokeh ends a session 0.1 s after its socket closes."""
    import socket

    import panel as pn
    from bokeh.client import pull_session

    from app.state.train_control import TrainControl

    service = TrainingService(tmp_path, workers=2, threads_per_job=1)
    gate = tmp_path / "go"
    controls: dict[str, TrainControl] = {}

    def app(choice: str):
        def page():
            factory = lambda: (fake_work(epochs=(1,), gate=gate), choice, JobProbe(("a",), (1,)))  # noqa: E731
            control = TrainControl(service, factory, on_close=choice)
            control.param.trigger("retrain")
            controls[choice] = control
            return pn.pane.Markdown(choice)
        return page

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = pn.serve({"cancel": app("cancel"), "keep": app("keep running")}, port=port, address="127.0.0.1",
                      show=False, threaded=True, websocket_origin=[f"localhost:{port}", f"127.0.0.1:{port}"],
                      check_unused_sessions_milliseconds=100, unused_session_lifetime_milliseconds=100,
                      liveness=True)
    try:
        _until(lambda: _answers(f"http://127.0.0.1:{port}/liveness"), timeout=30, what="the server")
        for route in ("cancel", "keep"):
            session = pull_session(url=f"http://localhost:{port}/{route}")
            session.close()  # the tab closes
        leaving = _until(lambda: controls.get("cancel"), timeout=30, what="the first session").job
        staying = _until(lambda: controls.get("keep running"), timeout=30, what="the second session").job
        wait_finished(leaving, timeout=30)
        assert leaving.status == "cancelled"
        assert not staying.finished  # detached: still running after its tab closed
        gate.touch()
        wait_finished(staying)
        assert staying.status == "done"
    finally:
        server.stop()
        service.shutdown()


def test_every_page_job_factory_makes_work_a_worker_can_receive(tmp_path):
    import cloudpickle

    from app.state.alice_pid import PidSettingsForm, pid_job_factory
    from app.state.ams_nuclei import NucleiSettingsForm, nuclei_job_factory
    from app.state.darwin import DarwinSettingsForm, darwin_job_factory
    from app.state.he_study import HeSettingsForm, he_job_factory
    from app.state.hnl import HnlSettingsForm, hnl_job_factory

    runs = str(tmp_path)
    factories = [he_job_factory(HeSettingsForm(), runs), darwin_job_factory(DarwinSettingsForm(), runs),
                 nuclei_job_factory(NucleiSettingsForm(), runs), pid_job_factory(PidSettingsForm(), runs),
                 hnl_job_factory(HnlSettingsForm(), runs)]
    for factory in factories:
        work, text, probe = factory()
        assert callable(cloudpickle.loads(cloudpickle.dumps(work))), text


def test_the_cpu_budget_follows_the_environment(monkeypatch):
    from app.state.training import default_budget

    monkeypatch.setenv("HEPML_TRAIN_WORKERS", "3")
    monkeypatch.setenv("HEPML_TRAIN_THREADS", "2")
    assert default_budget() == (3, 2)
    assert TrainingService("unused", workers=None, threads_per_job=None).workers == 3
    monkeypatch.setenv("HEPML_TRAIN_WORKERS", "two")
    with pytest.raises(ValueError, match="HEPML_TRAIN_WORKERS='two' is not a whole number"):
        default_budget()


def test_workers_run_at_a_lower_cpu_priority_than_the_server(monkeypatch, tmp_path):
    import psutil

    from app.state.training import default_niceness

    monkeypatch.setenv("HEPML_TRAIN_NICE", "7")
    assert default_niceness() == 7
    s = TrainingService(tmp_path, workers=1, threads_per_job=1, cancel_grace=1.0)
    try:
        job = s.submit(fake_work(gate=tmp_path / "never"), "fake", JobProbe(("a",), (3,)))
        _until(lambda: job.stage == "training", what="the worker to start")
        assert psutil.Process(job.pid).nice() == min(19, os.nice(0) + 7)
        job.cancel()
        wait_finished(job, timeout=10)
    finally:
        s.shutdown()
    monkeypatch.setenv("HEPML_TRAIN_NICE", "25")
    with pytest.raises(ValueError, match="HEPML_TRAIN_NICE=25 must be between 0 and 19"):
        default_niceness()
    monkeypatch.delenv("HEPML_TRAIN_NICE")
    assert default_niceness() == 10
