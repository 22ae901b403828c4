"""Train panel: hyperparameter form, Retrain and Cancel, progress bar, status, live loss curves and queue.

The training itself runs in a worker process of the TrainingService. This view only runs a periodic
callback on its own session: while a job runs it copies the job's snapshot into the ``TrainControl``
parameters (the progress bar and loss curves follow them), and in a served session it also refreshes
the queue of every unfinished training on the server, so a user sees what their Retrain waits for.
The "when this tab closes" choice says whether closing the tab cancels this session's training.
"""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from app.components.loss_curves import LiveLossCurves
from app.components.polling import quiet_periodic_callback
from app.components.style import ensure_extension, markdown
from app.auth.roles import READ_ONLY_NOTE, can_train
from app.state.train_control import QUEUE_COLUMNS, TrainControl

__all__ = ["TrainPanel", "form_widgets"]

_POLL_MS = 400


def form_widgets(form: param.Parameterized) -> list[pn.widgets.Widget]:
    """A widget per visible parameter of a hyperparameter form, built with ``.from_param``."""
    widgets = []
    for name in form.param:
        # ``form.param[name]`` is bound to this instance; the objects of ``param.objects()`` belong to
        # the class, and a widget made from those would edit the class defaults.
        p = form.param[name]
        if name == "name" or (p.precedence is not None and p.precedence < 0):
            continue
        css = [f"form-{name}"]  # stable hooks for browser tests and custom styling
        if isinstance(p, param.Boolean):
            w = pn.widgets.Checkbox.from_param(p, css_classes=css)
        elif isinstance(p, param.Integer):
            w = pn.widgets.IntInput.from_param(p, width=140, css_classes=css)
        elif isinstance(p, param.Number):
            w = pn.widgets.FloatInput.from_param(p, width=140, format="0.[00000]", css_classes=css)
        elif isinstance(p, param.Selector):
            w = pn.widgets.Select.from_param(p, width=140, css_classes=css)
        else:
            w = pn.widgets.TextInput.from_param(p, width=140, css_classes=css)
        widgets.append(w)
    return widgets


class TrainPanel(pn.viewable.Viewer):
    """Controls and live view of trainings for one session.

    Args:
        control: the session's TrainControl.
        form: the hyperparameter form (a Parameterized whose parameters are the settings).
        models: names of the models a job trains, one loss plot each.
    """

    def __init__(self, control: TrainControl, form: param.Parameterized | None, models=("model",), **params):
        ensure_extension()
        super().__init__(**params)
        self.control = control
        self.models = tuple(models)
        self._callback = None
        retrain = pn.widgets.Button.from_param(control.param.retrain, color="primary", width=120,
                                               css_classes=["retrain-button"])
        cancel = pn.widgets.Button.from_param(control.param.cancel, color="warning", width=120,
                                              css_classes=["cancel-button"])
        progress = pn.indicators.Progress(value=control.param.progress, max=100, bar_color="primary",
                                          sizing_mode="stretch_width", height=22, css_classes=["train-progress"])
        status = markdown(pn.bind(lambda s, p, r: f"**{p} %** — {s}" if r else s, control.param.status,
                                          control.param.progress, control.param.running),
                                  css_classes=["train-status"], sizing_mode="stretch_width")
        curves = [LiveLossCurves(m, control.param.history) for m in self.models]
        on_close = pn.widgets.RadioBoxGroup.from_param(control.param.on_close, inline=True,
                                                       css_classes=["train-on-close"], margin=(0, 10), align="center")
        queue = markdown(pn.bind(_queue_text, control.param.queue), css_classes=["train-queue"],
                         sizing_mode="stretch_width")
        form_box = []
        if form is not None:
            form_box = [markdown("**Hyperparameters** (used by Retrain)", margin=(5, 10, 0, 10)),
                        pn.GridBox(*form_widgets(form), ncols=4, sizing_mode="stretch_width")]
        self._layout = pn.Column(
            *form_box,
            pn.Row(retrain, cancel, progress, align="center", sizing_mode="stretch_width"),
            status,
            pn.Row(markdown("When this tab closes, its training should:", margin=(0, 0, 0, 10), align="center"),
                   on_close),
            queue,
            pn.Row(*curves, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        if not can_train():  # access control (app.auth.roles): reviewers get the panel read-only
            retrain.disabled = cancel.disabled = True
            self._layout.insert(0, markdown(f"*{READ_ONLY_NOTE}*", css_classes=["train-read-only"],
                                            sizing_mode="stretch_width"))
        control.param.watch(self._on_running, "running")
        control.refresh_queue()
        doc = pn.state.curdoc
        # Served: poll always, so other users' trainings show up in the queue. Elsewhere (a notebook,
        # a test without a server) poll only while this control's job runs, as before.
        self._always = doc is not None and doc.session_context is not None
        if control.running or self._always:
            self._start_polling()

    def _on_running(self, event) -> None:
        if event.new:
            self._start_polling()

    def _start_polling(self) -> None:
        if self._callback is None:
            self._callback = quiet_periodic_callback(self._poll, _POLL_MS)  # see app.components.polling

    def _poll(self) -> None:
        if self.control.running:
            self.control.poll()
        self.control.refresh_queue()
        if not self.control.running and not self._always and self._callback is not None:
            self._callback.stop()
            self._callback = None

    def __panel__(self):
        return self._layout


def _queue_text(queue: pd.DataFrame | None) -> str:
    """The queue as a small markdown table (empty: one line saying the trainer is free)."""
    if queue is None or not len(queue):
        return "*Training queue: empty — a Retrain starts at once.*"
    lines = ["**Training queue** (one row per unfinished training on this server)", "",
             "| # | training | status | progress | |", "|---|---|---|---|---|"]
    for row in queue[QUEUE_COLUMNS].itertuples(index=False):
        yours = "**yours**" if row.yours else ""
        training = str(row.training).replace("|", "\\|")  # a description must not split the row
        lines.append(f"| {row.position} | {training} | {row.status} | {row.progress} % | {yours} |")
    return "\n".join(lines)
