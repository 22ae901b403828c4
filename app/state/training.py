"""Background training: a per-server service that runs trainings off the event loop, one at a time.

Every browser session (and the first-start bootstrap) submits work to the same ``TrainingService`` of
its runs directory. The service runs jobs on a single worker thread: the Bokeh event loop stays free
to serve other users and other views, and two users pressing Retrain on a small machine queue instead
of fighting over the cores. A job carries a ``JobProbe`` (a Trainer callback that records progress and
per-model loss history under a lock) and a ``CancelToken``; sessions poll ``job.progress()`` from a
periodic callback on their own event loop, so no training-thread code ever touches a widget.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepml_core.exceptions import TrainingCancelled
from hepml_core.training.callbacks import Callback, CancelToken, TrainState

__all__ = ["JobProbe", "JobProgress", "TrainingJob", "TrainingService", "get_service"]

_log = logging.getLogger("hepml.app.training")

#: work(callbacks, cancel, say) -> id of the run it saved
Work = Callable[[Sequence[Callback], CancelToken, Callable[[str], None]], str]


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
    """One submitted training: its probe, cancel token, status and, when done, the saved run id."""

    _ids = itertools.count(1)

    def __init__(self, description: str, probe: JobProbe, shared: bool = False):
        self.id = next(self._ids)
        self.description = description
        #: every session shows it (the first-start training); a user's Retrain is shown to that user only
        self.shared = shared
        self.probe = probe
        self.token = CancelToken()
        self.status = "queued"
        self.stage = "waiting for the trainer"
        self.run_id: str | None = None
        self.error: str | None = None
        self.future: Future | None = None

    def cancel(self) -> None:
        """Stop at the next batch (or never start, if still queued)."""
        self.token.cancel()
        if self.future is not None and self.future.cancel():
            self.status, self.stage = "cancelled", "cancelled before it started"

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


class TrainingService:
    """Runs TrainingJobs one after another on a worker thread (shared by all sessions of a server)."""

    def __init__(self, runs_dir: str | Path):
        self.runs_dir = Path(runs_dir)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hepml-train")
        self._lock = threading.Lock()
        self.jobs: list[TrainingJob] = []

    def submit(self, work: Work, description: str, probe: JobProbe,
               extra_callbacks: Sequence[Callback] = (), say: Callable[[str], None] | None = None,
               shared: bool = False) -> TrainingJob:
        """Queue ``work``; returns at once with the job (its status says when it ran).

        Args:
            work: ``work(callbacks, cancel, say) -> run id``, run on the worker thread.
            description: shown in status lines.
            probe: the job's progress recorder (also passed to ``work`` as the first callback).
            extra_callbacks: more Trainer callbacks (e.g. a terminal progress bar).
            say: also told every stage message (e.g. print to the terminal).
            shared: every session's page shows this job (the first-start training).
        """
        job = TrainingJob(description, probe, shared)

        def stage(text: str) -> None:
            job.stage = text
            if say is not None:
                say(text)

        def run() -> None:
            if job.token.cancelled:
                job.status, job.stage = "cancelled", "cancelled before it started"
                return
            job.status = "running"
            try:
                job.run_id = work([probe, *extra_callbacks], job.token, stage)
                job.status, job.stage = "done", f"saved run {job.run_id}"
            except TrainingCancelled:
                job.status, job.stage = "cancelled", "cancelled; nothing was saved"
            except Exception as err:  # a failed training must show in the page, not kill the worker
                job.status, job.error = "failed", f"{type(err).__name__}: {err}"
                job.stage = "failed"
                _log.exception("training job %s (%s) failed", job.id, job.description)
            if say is not None and job.status != "done":
                say(job.stage)

        with self._lock:
            self.jobs.append(job)
            job.future = self._executor.submit(run)
        return job

    def active(self, shared_only: bool = False) -> TrainingJob | None:
        """The running or oldest queued job, if any (only shared ones if ``shared_only``)."""
        with self._lock:
            pending = [j for j in self.jobs if not j.finished and (j.shared or not shared_only)]
        running = [j for j in pending if j.status == "running"]
        return (running or pending or [None])[0]

    def queued_before(self, job: TrainingJob) -> int:
        """How many unfinished jobs were submitted before ``job``."""
        with self._lock:
            return sum(1 for j in self.jobs if j.id < job.id and not j.finished)

    def shutdown(self) -> None:
        """Cancel everything and stop the worker (tests and server shutdown)."""
        for job in list(self.jobs):
            job.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


_services: dict[Path, TrainingService] = {}
_services_lock = threading.Lock()


def get_service(runs_dir: str | Path) -> TrainingService:
    """The process-wide TrainingService of ``runs_dir`` (created on first use)."""
    key = Path(runs_dir).resolve()
    with _services_lock:
        if key not in _services:
            _services[key] = TrainingService(key)
        return _services[key]
