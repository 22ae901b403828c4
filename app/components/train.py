"""Train panel: hyperparameter form, Retrain and Cancel, progress bar, status and live loss curves.

The training itself runs on the TrainingService's worker thread. This view only starts a periodic
callback on its own session while a job runs; the callback copies the job's snapshot into the
``TrainControl`` parameters, and the progress bar and loss curves follow those parameters.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from app.components.style import PLOT_OPTS, ensure_extension, markdown
from app.state.train_control import TrainControl

__all__ = ["TrainPanel", "form_widgets"]

_POLL_MS = 400
_LOSS_COLOURS = {"train_loss": "#0072B2", "val_loss": "#D55E00"}
_LOSS_NAMES = {"classifier": "weighted cross-entropy", "autoencoder": "weighted MSE (reconstruction)"}


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
        curves = [
            pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._curves, m, control.param.history)),
                              sizing_mode="stretch_width", min_height=300)
            for m in self.models
        ]
        form_box = []
        if form is not None:
            form_box = [markdown("**Hyperparameters** (used by Retrain)", margin=(5, 10, 0, 10)),
                        pn.GridBox(*form_widgets(form), ncols=4, sizing_mode="stretch_width")]
        self._layout = pn.Column(
            *form_box,
            pn.Row(retrain, cancel, progress, align="center", sizing_mode="stretch_width"),
            status,
            pn.Row(*curves, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        control.param.watch(self._on_running, "running")
        if control.running:
            self._start_polling()

    def _curves(self, model: str, history: pd.DataFrame) -> hv.Overlay:
        loss = _LOSS_NAMES.get(model, "loss")
        rows = history[history["model"] == model] if history is not None and len(history) else history
        elements = []
        for col in ("train_loss", "val_loss"):
            if rows is None or not len(rows) or rows[col].isna().all():
                x, y = np.array([]), np.array([])
            else:
                x, y = rows["epoch"].to_numpy(float), rows[col].to_numpy(float)
            label = "training" if col == "train_loss" else "validation"
            elements.append(hv.Curve((x, y), "epoch", f"{loss} (per event)", label=label).opts(
                color=_LOSS_COLOURS[col], line_width=2))
            elements.append(hv.Scatter((x, y), "epoch", f"{loss} (per event)", label=label).opts(
                color=_LOSS_COLOURS[col], size=5))
        n = 0 if rows is None else len(rows)
        title = f"{model} loss" + ("" if n else " (no epochs yet)")
        # framewise: each new epoch re-fits the axes (losses are far from the default 0..1 range)
        return hv.Overlay(elements).opts(
            hv.opts.Curve(framewise=True, padding=0.1, **PLOT_OPTS),
            hv.opts.Scatter(framewise=True, padding=0.1, **PLOT_OPTS),
            hv.opts.Overlay(title=title, legend_position="top_right"),
        )

    def _on_running(self, event) -> None:
        if event.new:
            self._start_polling()

    def _start_polling(self) -> None:
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self._poll, period=_POLL_MS)

    def _poll(self) -> None:
        self.control.poll()
        if not self.control.running and self._callback is not None:
            self._callback.stop()
            self._callback = None

    def __panel__(self):
        return self._layout
