"""Background training: a per-server service that runs each training job in its own worker process.

Every browser session (and the first-start bootstrap) submits work to the same ``TrainingService`` of
its runs directory. Why processes and not a thread of the server:

- torch's Python-side work holds the GIL: on a thread it slows every page of every user; in a
  process the server's event loop only forwards a few small messages a second;
- a process can always be stopped: a job that ignores the cancel flag (stuck in a long scoring step)
  is terminated, then killed, and a crash (out of memory, a native library's segfault) ends that
  job (shown as ``failed``), not the server;
- the CPU budget is explicit (``app.state.train_budget``): at most ``workers`` jobs run at once, each
  with ``threads_per_job`` torch threads at a lower priority than the server; the rest wait in order,
  and every page can show the queue.

A new process needs seconds to load torch; a served app therefore keeps one idle *standby* worker with
torch loaded (``warm=True`` / ``keep_warm()``), which the next job takes, so a Retrain starts at once.

Processes are *spawned*, never forked: the server runs Tornado and torch threads, and a fork copies
their locks mid-use. The work function travels with cloudpickle, so job factories must close over
plain values (settings dataclasses, paths, results), never widgets or locks. The child
(``app.state.train_worker``) streams fit/epoch/batch/stage messages over a pipe; one thread per job in
the server applies them to the job's ``JobProbe`` and to the ``extra_callbacks`` (a terminal progress
bar) in the parent, so ``job.progress()`` and the live loss curves read exactly what they read when
training ran in-process. A child dies with the server (``PR_SET_PDEATHSIG``, end-of-file on its
control pipe, and a watchdog), and ``shutdown()`` plus an atexit hook stop every child on a clean exit:
no orphans either way.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepml_core.training.callbacks import Callback, CancelToken, TrainState

from app.state.train_budget import default_budget, default_niceness  # re-exported: the service's defaults
from app.state.train_worker import run_child

__all__ = ["JobProbe", "JobProgress", "TrainingJob", "TrainingService", "get_service", "default_budget",
           "default_niceness"]

_log = logging.getLogger("hepml.app.training")

#: work(callbacks, cancel, say) -> id of the run it saved; runs in the worker process
Work = Callable[[Sequence[Callback], CancelToken, Callable[[str], None]], str]

_STOP_WAIT = 3.0  # seconds between terminate and kill of a child that does not stop


@dataclass(frozen=True)
class JobProgress:
    """A consistent snapshot of a job, safe to read on the event loop."""

    status: str  # queued | running | done | cancelled | failed
    stage: str
    fraction: float  # 0..1 of the planned epochs
    model: str  # name of the model being trained now
    epoch: int
    n_epochs: int
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # model -> epoch rows
    run_id: str | None = None
    error: str | None = None


class JobProbe(Callback):
    """Records batch progress and each model's epoch rows; read with ``snapshot()`` from any thread.

    In the server it is fed by the job's message thread (the hooks replayed from the worker process).

    Args:
        models: names of the models the job trains, in order (one ``fit`` each), e.g.
            ``("classifier", "autoencoder")``.
        planned_epochs: the epochs each fit may run (early stopping can end one sooner).
    """

    def __init__(self, models: Sequence[str], planned_epochs: Sequence[int]):
        self.models = tuple(models)
        self.planned = tuple(int(e) for e in planned_epochs)
        self._lock = threading.Lock()
        self._fit = -1
        self._epoch = self._batch = self._n_batches = 0
        self._histories: dict[str, list[dict[str, Any]]] = {m: [] for m in self.models}

    def _model(self) -> str:
        i = min(max(self._fit, 0), len(self.models) - 1)
        return self.models[i]

    def on_fit_start(self, state: TrainState) -> None:
        with self._lock:
            self._fit += 1
            self._epoch = self._batch = 0

    def on_epoch_start(self, state: TrainState) -> None:
        with self._lock:
            self._epoch, self._batch, self._n_batches = state.epoch, 0, state.n_batches

    def on_batch_end(self, state: TrainState) -> None:
        # Plain int stores; the lock would cost more than the rare torn read it prevents.
        self._batch = state.batch

    def on_epoch_end(self, state: TrainState) -> None:
        row = dict(state.history[-1])
        with self._lock:
            self._histories[self._model()].append(row)

    def fraction(self) -> float:
        """Share of the planned epochs done so far (0..1)."""
        with self._lock:
            fit, epoch, batch, nb = self._fit, self._epoch, self._batch, self._n_batches
        if fit < 0:
            return 0.0
        total = sum(self.planned) or 1
        done = sum(self.planned[: min(fit, len(self.planned))])
        within = max(epoch - 1, 0) + (batch / nb if nb else 0.0)
        return min(1.0, (done + within) / total)

    def snapshot(self) -> tuple[str, int, int, dict[str, list[dict[str, Any]]]]:
        """(model, epoch, planned epochs of that model, copies of the histories)."""
        with self._lock:
            i = min(max(self._fit, 0), len(self.models) - 1)
            return (self.models[i], self._epoch, self.planned[i] if self.planned else 0,
                    {m: [dict(r) for r in rows] for m, rows in self._histories.items()})


class TrainingJob:
    """One submitted training: its probe, status, worker process and, when done, the saved run id."""

    _ids = itertools.count(1)

    def __init__(self, description: str, probe: JobProbe, shared: bool = False):
        self.id = next(self._ids)
        self.description = description
        #: every session watches it (the first-start training); a user's Retrain is watched by that user's
        #: page only (the others see its description in the queue)
        self.shared = shared
        self.probe = probe
        #: set when cancel() was called (the worker process gets a "cancel" on its control pipe)
        self.token = CancelToken()
        self.status = "queued"
        self.stage = "waiting for a free training worker"
        self.run_id: str | None = None
        self.error: str | None = None
        #: the worker process's pid once it started (None while queued)
        self.pid: int | None = None
        self._lock = threading.Lock()
        self._cancel_at: float | None = None
        self._process: Any = None
        self._worker: _Worker | None = None

    def cancel(self) -> None:
        """Stop at the next batch (or never start, if still queued); the server stops a slow child."""
        with self._lock:
            self.token.cancel()
            if self.status == "queued":
                self.status, self.stage = "cancelled", "cancelled before it started"
            elif self.status == "running" and self._cancel_at is None:
                self._cancel_at = time.monotonic()  # the job's thread tells the worker within 0.2 s

    @property
    def finished(self) -> bool:
        """Whether the job has ended (any way)."""
        return self.status in ("done", "cancelled", "failed")

    def progress(self) -> JobProgress:
        """Snapshot for the views."""
        model, epoch, n_epochs, histories = self.probe.snapshot()
        fraction = 1.0 if self.status == "done" else self.probe.fraction()
        return JobProgress(self.status, self.stage, fraction, model, epoch, n_epochs, histories, self.run_id,
                           self.error)


class _Replay:
    """Calls the parent-side callbacks as the worker's Trainer called its stream callback."""

    def __init__(self, callbacks: Sequence[Callback], job: TrainingJob):
        self.callbacks = list(callbacks)
        self.job = job
        self.state = TrainState(n_epochs=0)

    def _call(self, hook: str) -> None:
        for cb in self.callbacks:
            try:
                getattr(cb, hook)(self.state)
            except Exception:  # noqa: BLE001 - a broken progress bar must not end the training
                _log.exception("callback %s.%s of job %s failed", type(cb).__name__, hook, self.job.id)

    def _catch_up(self, batch: int) -> None:
        # Batch messages are throttled: replay every skipped batch so counting callbacks (tqdm) stay exact.
        while self.state.batch < batch:
            self.state.batch += 1
            self._call("on_batch_end")

    def apply(self, msg: tuple) -> None:
        kind, s = msg[0], self.state
        if kind == "fit_start":
            self.state = TrainState(n_epochs=msg[1])
            self._call("on_fit_start")
        elif kind == "epoch_start":
            s.epoch, s.n_batches, s.batch = msg[1], msg[2], 0
            self._call("on_epoch_start")
        elif kind == "batch":
            self._catch_up(msg[1])
        elif kind == "epoch_end":
            self._catch_up(msg[1])
            s.history.append(msg[2])
            s.best_epoch, s.best_val_loss = msg[3], msg[4]
            self._call("on_epoch_end")
        elif kind == "fit_end":
            s.epoch, s.cancelled, s.best_epoch, s.best_val_loss = msg[1], msg[2], msg[3], msg[4]
            self._call("on_fit_end")


class _Worker:
    """One worker process and the server thread that spawned it, follows it and outlives it.

    The process starts at once and waits for its job's pickled work on a pipe, so a *standby* worker
    (``TrainingService(warm=True)``) has torch loaded before anyone presses Retrain. The thread matters:
    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, so the forking thread is the
    one that lives until the child is gone.
    """

    def __init__(self, service: TrainingService, preload: bool):
        self.service = service
        self.process: Any = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()  # one (job, payload, extra, say), or None: retire
        self.thread = threading.Thread(target=self._life, args=(preload,), name="hepml-train-worker", daemon=True)
        self.thread.start()

    def give(self, item: tuple | None) -> None:
        """Hand over the job to run (or None: end the process without running anything)."""
        self._jobs.put(item)

    @property
    def dead(self) -> bool:
        """Whether the process has already ended (e.g. an idle standby killed by the OS)."""
        return self.process is not None and self.process.exitcode is not None

    def _life(self, preload: bool) -> None:
        service, ctx = self.service, self.service._ctx
        item = result = None
        try:
            control_out, control = ctx.Pipe(duplex=False)  # server -> child: the pickled work, then "cancel"
            receive, send = ctx.Pipe(duplex=False)  # child -> server: progress messages
            self.process = ctx.Process(target=run_child, name="hepml-train", daemon=True,
                                       args=(control_out, send, os.getpid(), service.threads_per_job, preload,
                                             service.niceness))
            try:
                self.process.start()
            finally:
                control_out.close()
                send.close()  # the child holds the only write end now: its exit reads as EOF here
            item = self._jobs.get()
            if item is None:
                control.close()  # the idle child reads EOF and ends
                return
            job, payload, extra, say = item
            job._process, job.pid = self.process, self.process.pid
            control.send_bytes(payload)
            # Kept open while the child runs: its end-of-file tells the child that the server is gone.
            result = service._follow(job, self.process, receive, control, extra, say)
            receive.close()
            control.close()
        except Exception as err:  # noqa: BLE001 - e.g. no more processes: the job fails, the queue goes on
            result = ("result", "failed", f"could not run a training process: {type(err).__name__}: {err}", "")
            if item is not None:
                _log.exception("training job %s (%s) could not run", item[0].id, item[0].description)
        finally:
            if self.process is not None and self.process.pid is not None:
                _stop(self.process, wait=_STOP_WAIT)
            if item is not None:
                try:
                    service._finish(item[0], result, self.process, item[3])
                finally:  # whatever happened, the slot is free again and the queue moves on
                    service._ended(item[0])


class TrainingService:
    """Runs TrainingJobs in spawned worker processes, at most ``workers`` at once, the rest queued in order.

    Args:
        runs_dir: the run store's folder (what the jobs save into).
        workers: jobs at once (default: ``default_budget()``).
        threads_per_job: torch threads of each worker (default: ``default_budget()``).
        cancel_grace: seconds a cancelled job may take to reach its next batch before it is terminated.
        warm: keep one idle worker process with torch loaded while a worker slot is free, so a Retrain
            starts training at once instead of after the seconds a new process needs (``keep_warm()``).
    """

    def __init__(self, runs_dir: str | Path, workers: int | None = None, threads_per_job: int | None = None,
                 cancel_grace: float = 5.0, warm: bool = False):
        budget_workers, budget_threads = default_budget()
        self.runs_dir = Path(runs_dir)
        self.workers = int(workers or budget_workers)
        self.threads_per_job = int(threads_per_job or budget_threads)
        self.niceness = default_niceness()
        self.cancel_grace = float(cancel_grace)
        self.warm = bool(warm)
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pending: deque[tuple[TrainingJob, bytes, tuple, Callable[[str], None] | None]] = deque()
        self._running: set[TrainingJob] = set()
        self._standby: _Worker | None = None
        self._closed = False
        self.jobs: list[TrainingJob] = []
        _live_services.add(self)
        if self.warm:
            self._dispatch()

    def keep_warm(self) -> None:
        """From now on keep an idle worker ready (what ``hepml serve`` does)."""
        self.warm = True
        self._dispatch()

    def submit(self, work: Work, description: str, probe: JobProbe,
               extra_callbacks: Sequence[Callback] = (), say: Callable[[str], None] | None = None,
               shared: bool = False) -> TrainingJob:
        """Queue ``work``; returns at once with the job (its status says when it ran).

        Args:
            work: ``work(callbacks, cancel, say) -> run id``, run in a worker process; it must be
                picklable by cloudpickle (close over settings and paths, not widgets or locks).
            description: shown in status lines and in the queue of every page.
            probe: the job's progress recorder (fed in the server from the worker's messages).
            extra_callbacks: more Trainer callbacks (e.g. a terminal progress bar); they run in the
                server process on the same replayed hooks as the probe, so they need not be picklable.
            say: also told every stage message (e.g. print to the terminal), in the server process.
            shared: every session's page shows this job (the first-start training).

        Raises:
            RuntimeError: the service was shut down.
        """
        job = TrainingJob(description, probe, shared)
        payload = b""
        try:
            import cloudpickle

            payload = cloudpickle.dumps(work)
        except Exception as err:  # noqa: BLE001 - shown on the page like any other failure
            job.status, job.stage = "failed", "failed"
            job.error = (f"the training cannot be sent to a worker process ({type(err).__name__}: {err}); "
                         f"its work function must close over plain settings and paths, not widgets or locks")
            _log.error("training job %s (%s): %s", job.id, description, job.error)
        with self._lock:
            if self._closed:
                raise RuntimeError("the training service is shut down; use get_service(runs_dir) for a new one")
            self.jobs.append(job)
            if not job.finished:
                self._pending.append((job, payload, tuple(extra_callbacks), say))
        self._dispatch()
        return job

    def _dispatch(self) -> None:
        """Start queued jobs while worker slots are free, then keep a standby if warm (on submit and job end)."""
        with self._lock:
            while not self._closed and self._pending and len(self._running) < self.workers:
                job, payload, extra, say = self._pending.popleft()
                with job._lock:
                    if job.status != "queued":  # cancelled while waiting
                        continue
                    worker, self._standby = self._standby, None
                    if worker is not None and worker.dead:  # an idle standby the OS ended
                        worker.give(None)
                        worker = None
                    if worker is None:
                        worker = _Worker(self, preload=False)
                    job._worker = worker
                    job.status, job.stage = "running", "starting a training process"
                self._running.add(job)
                worker.give((job, payload, extra, say))
            if self._standby is not None and self._standby.dead:
                self._standby.give(None)
                self._standby = None
            if self.warm and not self._closed and len(self._running) < self.workers and self._standby is None:
                self._standby = _Worker(self, preload=True)

    def _ended(self, job: TrainingJob) -> None:
        with self._lock:
            self._running.discard(job)
        self._dispatch()

    def _follow(self, job: TrainingJob, process: Any, receive: Any, control: Any, extra: tuple,
                say: Callable[[str], None] | None) -> tuple | None:
        """Apply the child's messages until its pipe closes; pass a cancel on, and stop a child that ignores it."""
        replay = _Replay([job.probe, *extra], job)
        result = None
        told = False
        terminated_at = None
        while True:
            if job._cancel_at is not None and process.is_alive():
                now = time.monotonic()
                if not told:
                    told = True
                    try:
                        control.send("cancel")
                    except OSError:  # the child is already gone
                        pass
                if terminated_at is None and now - job._cancel_at > self.cancel_grace:
                    terminated_at = now
                    process.terminate()  # the child turns SIGTERM into TrainingCancelled
                elif terminated_at is not None and now - terminated_at > _STOP_WAIT:
                    process.kill()
            if not receive.poll(0.2):
                if not process.is_alive() and not receive.poll(0):
                    break
                continue
            try:
                msg = receive.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "stage":
                job.stage = msg[1]
                if say is not None:
                    _safe_say(say, msg[1])
            elif msg[0] == "result":
                result = msg
            else:
                replay.apply(msg)
        return result

    def _finish(self, job: TrainingJob, result: tuple | None, process: Any,
                say: Callable[[str], None] | None) -> None:
        with job._lock:
            if result is not None and result[1] == "done":
                job.run_id = result[2]  # before the status: a reader that sees "done" finds the id
                job.status, job.stage = "done", f"saved run {job.run_id}"
            elif result is not None and result[1] == "cancelled":
                job.status, job.stage = "cancelled", "cancelled; nothing was saved"
            elif result is None and job.token.cancelled:
                job.status, job.stage = "cancelled", "cancelled; the training process was stopped"
            else:
                if result is not None:
                    job.error = result[2]
                    if result[3]:
                        _log.error("training job %s (%s) failed in its worker process:\n%s", job.id,
                                   job.description, result[3])
                else:
                    job.error = f"the training process ended without a result ({_exit_text(process)})"
                    _log.error("training job %s (%s): %s", job.id, job.description, job.error)
                job.status, job.stage = "failed", "failed"
            job._process = None
        if say is not None and job.status != "done":
            _safe_say(say, job.stage if job.status != "failed" else f"training failed: {job.error}")

    def active(self, shared_only: bool = False) -> TrainingJob | None:
        """The running or oldest queued job, if any (only shared ones if ``shared_only``)."""
        with self._lock:
            pending = [j for j in self.jobs if not j.finished and (j.shared or not shared_only)]
        running = [j for j in pending if j.status == "running"]
        return (running or pending or [None])[0]

    def unfinished(self) -> list[TrainingJob]:
        """Running jobs, then queued jobs in the order they will start."""
        with self._lock:
            pending = [j for j in self.jobs if not j.finished]
        return [j for j in pending if j.status == "running"] + [j for j in pending if j.status == "queued"]

    def queued_before(self, job: TrainingJob) -> int:
        """How many unfinished jobs were submitted before ``job``."""
        with self._lock:
            return sum(1 for j in self.jobs if j.id < job.id and not j.finished)

    def shutdown(self, timeout: float = 3.0) -> None:
        """Cancel everything and end every worker process before returning (tests and server exit).

        Args:
            timeout: seconds the running jobs get to stop at their next batch before they are terminated.
        """
        with self._lock:
            self._closed = True
            jobs = list(self.jobs)
            self._pending.clear()
            standby, self._standby = self._standby, None
        if standby is not None:
            standby.give(None)
        for job in jobs:
            job.cancel()
        workers = [w for w in [standby, *(job._worker for job in jobs)] if w is not None]
        end = time.monotonic() + timeout
        for worker in workers:
            if worker.thread is not threading.current_thread():
                worker.thread.join(max(0.0, end - time.monotonic()))
        for worker in workers:  # still running: stop the processes here, then let their threads record it
            if worker.process is not None and worker.process.pid is not None:
                _stop(worker.process, wait=_STOP_WAIT)
            if worker.thread is not threading.current_thread():
                worker.thread.join(_STOP_WAIT)


def _stop(process: Any, wait: float) -> None:
    """End a worker process: wait briefly, then terminate, then kill; reap it either way."""
    process.join(0.5)
    if process.is_alive():
        process.terminate()
        process.join(wait)
    if process.is_alive():
        process.kill()
        process.join(wait)


def _exit_text(process: Any) -> str:
    code = None if process is None else process.exitcode
    if code is None:
        return "it did not start"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = "; out of memory?" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


def _safe_say(say: Callable[[str], None], text: str) -> None:
    try:
        say(text)
    except Exception:  # noqa: BLE001 - a closed terminal must not stop the job's bookkeeping
        _log.exception("stage message %r could not be shown", text)


_live_services: weakref.WeakSet[TrainingService] = weakref.WeakSet()
_services: dict[Path, TrainingService] = {}
_services_lock = threading.Lock()


def get_service(runs_dir: str | Path) -> TrainingService:
    """The process-wide TrainingService of ``runs_dir`` (created on first use, or again after a shutdown)."""
    key = Path(runs_dir).resolve()
    with _services_lock:
        service = _services.get(key)
        if service is None or service._closed:
            service = _services[key] = TrainingService(key)
        return service


@atexit.register
def _shutdown_all() -> None:
    """No orphans on a clean exit: stop every service's worker processes."""
    for service in list(_live_services):
        try:
            service.shutdown(timeout=1.0)
        except Exception:  # noqa: BLE001 - exiting anyway; the children also watch for the parent's death
            _log.exception("could not shut the training service of %s down", service.runs_dir)
