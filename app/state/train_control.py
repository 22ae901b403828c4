"""Session-side state of a training: Retrain / Cancel, progress, status and the live loss history.

``TrainControl`` belongs to one browser session. Pressing ``retrain`` submits a job to the shared
``TrainingService``; the view then calls ``poll()`` from a periodic callback on the session's event
loop, which copies the job's thread-safe snapshot into parameters (progress, status, history) that
the progress bar and live loss curves watch. When the job has saved a run, ``last_run_id`` changes and
the page's run selector picks the new run up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import param

from app.state.training import JobProbe, TrainingJob, TrainingService, Work

__all__ = ["TrainControl", "HISTORY_COLUMNS", "saved_history"]

HISTORY_COLUMNS = ["model", "epoch", "train_loss", "val_loss"]

#: () -> (work, description, probe): what a Retrain press trains, read from the form at press time
JobFactory = Callable[[], tuple[Work, str, JobProbe]]


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

    def __init__(self, service: TrainingService, job_factory: JobFactory, **params):
        self.service = service
        self.job_factory = job_factory
        self.job: TrainingJob | None = None
        super().__init__(**params)
        with param.edit_constant(self):
            self.history = _empty_history()

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
        if self.job is not None and not self.job.finished:
            self._set(status="a training is already running for this page; cancel it first")
            return
        try:
            work, description, probe = self.job_factory()
        except ValueError as err:  # bad form entry: say so, train nothing
            self._set(status=f"not started: {err}")
            return
        self.job = self.service.submit(work, description, probe)
        with param.edit_constant(self):
            self.param.update(running=True, progress=0, history=_empty_history())
        self.poll()

    @param.depends("cancel", watch=True)
    def _cancel(self) -> None:
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
