"""Session-side state of a training: Retrain / Cancel, progress, status and the live loss history.

``TrainControl`` belongs to one browser session. Pressing ``retrain`` submits a job to the shared
``TrainingService``, which trains in a worker process; the view then calls ``poll()`` from a periodic
callback on the session's event loop, which copies the job's thread-safe snapshot into parameters
(progress, status, history) that the progress bar and live loss curves watch. When the job has saved a
run, ``last_run_id`` changes and the page's run selector picks the new run up. ``refresh_queue()``
copies the service's unfinished jobs into ``queue`` (the table every Train tab shows).

A training outlives nothing by accident: when the browser session ends (the tab is closed), the job
this session started is cancelled, or left running to save its run if ``on_close`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

from app.auth.roles import READ_ONLY_NOTE, can_train
from app.state.training import JobProbe, TrainingJob, TrainingService, Work

__all__ = ["TrainControl", "HISTORY_COLUMNS", "QUEUE_COLUMNS", "ON_CLOSE", "saved_history"]

HISTORY_COLUMNS = ["model", "epoch", "train_loss", "val_loss"]
QUEUE_COLUMNS = ["position", "training", "status", "progress", "yours"]
#: what happens to this session's training when its browser tab closes
ON_CLOSE = ("cancel", "keep running")

#: () -> (work, description, probe): what a Retrain press trains, read from the form at press time
JobFactory = Callable[[], tuple[Work, str, JobProbe]]


def _empty_queue() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in QUEUE_COLUMNS})


def _empty_history() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c != "model" else "object") for c in HISTORY_COLUMNS})


class TrainControl(param.Parameterized):
    """Retrain and Cancel actions plus the progress of the job this session is watching.

    Args:
        service: the server's TrainingService.
        job_factory: builds the work for a Retrain press (raises ValueError for a bad form).
    """

    retrain = param.Event(label="Retrain", doc="Train new models with the settings in the form.")
    cancel = param.Event(label="Cancel", doc="Stop the running training at the next batch.")

    running = param.Boolean(default=False, constant=True)
    progress = param.Integer(default=0, bounds=(0, 100), constant=True, doc="Percent of planned epochs.")
    status = param.String(default="idle", constant=True)
    history = param.DataFrame(default=None, constant=True, precedence=-1,
                              doc="Epoch rows of every model of the watched job (live).")
    last_run_id = param.String(default=None, allow_None=True, constant=True,
                               doc="Run saved by the last job that finished here.")
    on_close = param.Selector(default="cancel", objects=list(ON_CLOSE), label="When this tab closes",
                              doc="Cancel this tab's training, or keep it running so it saves its run.")
    queue = param.DataFrame(default=None, constant=True, precedence=-1,
                            doc="Unfinished trainings of the server, in the order they run (QUEUE_COLUMNS).")

    def __init__(self, service: TrainingService, job_factory: JobFactory, **params):
        self.service = service
        self.job_factory = job_factory
        self.job: TrainingJob | None = None
        self._own: set[int] = set()  # ids of the jobs this session submitted
        self._queue_key: tuple = ()
        super().__init__(**params)
        with param.edit_constant(self):
            self.history = _empty_history()
            self.queue = _empty_queue()
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            # Only with a live session: without one Panel would register the callback for every session.
            pn.state.on_session_destroyed(self._session_destroyed)

    def show_saved(self, history: pd.DataFrame) -> None:
        """Show a saved run's loss history while no training is running (columns as HISTORY_COLUMNS)."""
        if not self.running:
            self._set(history=history[HISTORY_COLUMNS].copy() if len(history) else _empty_history(),
                      status="idle — the curves show the losses saved with the shown run")

    def attach(self, job: TrainingJob) -> None:
        """Watch a job submitted elsewhere (the first-start training, another user's Retrain)."""
        self.job = job
        with param.edit_constant(self):
            self.running = not job.finished
        self.poll()

    @param.depends("retrain", watch=True)
    def _start(self) -> None:
        if not can_train():  # access control (app.auth.roles): a read-only reviewer never trains
            self._set(status=f"not started: {READ_ONLY_NOTE}")
            return
        if self.job is not None and not self.job.finished:
            self._set(status="a training is already running for this page; cancel it first")
            return
        try:
            work, description, probe = self.job_factory()
        except ValueError as err:  # bad form entry: say so, train nothing
            self._set(status=f"not started: {err}")
            return
        self.job = self.service.submit(work, description, probe)
        self._own.add(self.job.id)
        with param.edit_constant(self):
            self.param.update(running=True, progress=0, history=_empty_history())
        self.poll()

    @param.depends("cancel", watch=True)
    def _cancel(self) -> None:
        if not can_train():  # access control (app.auth.roles): a reviewer cannot stop anyone's training
            self._set(status=f"not cancelled: {READ_ONLY_NOTE}")
            return
        if self.job is not None and not self.job.finished:
            self.job.cancel()
            self._set(status="cancelling at the next batch…")

    def poll(self) -> None:
        """Copy the watched job's snapshot into the parameters (call on the session's event loop)."""
        job = self.job
        if job is None:
            return
        snap = job.progress()
        rows = [{"model": model, "epoch": r.get("epoch"), "train_loss": r.get("train_loss"),
                 "val_loss": r.get("val_loss")} for model, hist in snap.histories.items() for r in hist]
        history = pd.DataFrame(rows, columns=HISTORY_COLUMNS) if rows else _empty_history()
        if snap.status == "queued":
            ahead = self.service.queued_before(job)
            text = f"queued behind {ahead} other training(s)" if ahead else "starting…"
        elif snap.status == "running":
            text = f"{snap.stage} — {snap.model} epoch {snap.epoch}/{snap.n_epochs}"
        elif snap.status == "failed":
            text = f"failed: {snap.error}"
        else:
            text = snap.stage
        updates: dict = {"progress": int(round(100 * snap.fraction)), "status": text}
        if len(history) != len(self.history):
            updates["history"] = history  # only when a new epoch arrived: the curves redraw less often
        if job.finished:
            updates["running"] = False
            if snap.status == "done":
                updates["last_run_id"] = snap.run_id
        self._set(**updates)
        self.refresh_queue()

    def refresh_queue(self) -> None:
        """Copy the service's unfinished jobs into ``queue`` (only when something changed).

        Jobs this session started are marked ``yours``; other sessions' jobs show their description,
        status and progress only.
        """
        rows, position = [], 0
        for job in self.service.unfinished():
            if job.status == "queued":
                position += 1
            rows.append(("running" if job.status == "running" else str(position), job.description,
                         job.status, int(round(100 * job.probe.fraction())), "yes" if job.id in self._own else ""))
        key = tuple(rows)
        if key != self._queue_key:
            self._queue_key = key
            self._set(queue=pd.DataFrame(rows, columns=QUEUE_COLUMNS) if rows else _empty_queue())

    def _session_destroyed(self, session_context: Any) -> None:
        """The browser tab closed: cancel this session's unfinished job, unless told to keep it running."""
        job = self.job
        if job is None or job.finished or job.id not in self._own:
            return  # nothing of ours runs (the first-start training is every session's, not this one's)
        if self.on_close == "cancel":
            job.cancel()

    def _set(self, **updates) -> None:
        with param.edit_constant(self):
            self.param.update(**updates)


def saved_history(histories: dict) -> pd.DataFrame:
    """Saved loss histories ``{model: DataFrame}`` in TrainControl's long format (model, epoch, losses)."""
    parts = [h.assign(model=model) for model, h in histories.items() if h is not None and len(h)]
    if not parts:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)
    for col in HISTORY_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    return frame[HISTORY_COLUMNS]
