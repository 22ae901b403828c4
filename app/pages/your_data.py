"""The "your data" page: evaluate any classifier run trained with ``hepml train`` on a user's ntuple.

Score distributions per class, ROC, TMVA's cut-efficiency view with the user's expected yields, the
migration matrix at a cut on p_signal, the train-vs-test overtraining check and the loss history,
built from the same components as the He study page.
"""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn

from app.components.distributions import DiscriminantDistributions
from app.components.efficiency import CutEfficiency
from app.components.migration import MigrationMatrix
from app.components.overtraining import OvertrainingCheck
from app.components.roc import RocCurves
from app.components.runs import RunSelector
from app.components.style import PLOT_OPTS, ensure_extension, markdown
from app.pages._layout import make_template, message, nav_links
from app.state.loaders import load_run_data, runs_dir_of
from app.state.runs import RunChoice
from app.state.your_data import YourDataState, list_user_runs

__all__ = ["YourDataPage", "your_data_page", "TITLE"]

TITLE = "hepml — your data"
_HOWTO = """No classifier run from `hepml train` is saved in this runs folder yet.

Write a config naming your ntuple, its feature branches and the label, then train:

```yaml
data:
  source: my_ntuple.root:Events
  features: [jet_pt, jet_eta, met]
  label: is_signal
  weight: weight
model:
  kind: mlp_classifier
```

`hepml train config.yaml --runs-dir RUNS` and press ↻ above.
"""


class YourDataPage(pn.viewable.Viewer):
    """One session's page for user runs.

    Args:
        runs_dir: the run store's folder.
    """

    def __init__(self, runs_dir: str, **params):
        ensure_extension()
        super().__init__(**params)
        self.runs_dir = runs_dir_of(runs_dir)
        self.choice = RunChoice(lambda: list_user_runs(self.runs_dir))
        self.state: YourDataState | None = None
        self._controls = pn.Column(sizing_mode="stretch_width")
        self._tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width")
        self._header = markdown("", sizing_mode="stretch_width", margin=(0, 10))
        self.choice.param.watch(self._show_run, "run")
        self._show_run()

    def _show_run(self, *events) -> None:
        if self.choice.run is None:
            self.state = None
            self._header.object = ""
            self._controls[:] = []
            self._tabs[:] = [("Start here", message(_HOWTO))]
            return
        try:
            self.state = YourDataState(load_run_data(self.runs_dir, self.choice.run))
        except Exception as err:  # broken or non-classifier run: explain, keep the page usable
            self.state = None
            self._controls[:] = []
            self._tabs[:] = [("Error", message(f"Cannot show run {self.choice.run}: {err}", "danger"))]
            return
        s = self.state
        self._header.object = s.describe()
        self._controls[:] = [
            pn.widgets.Select.from_param(s.choice.param.signal, label="signal class", sizing_mode="stretch_width"),
            pn.widgets.EditableFloatSlider.from_param(s.cut.param.threshold, label="cut on p_signal",
                                                      format="0.[000]",
                                                      sizing_mode="stretch_width", css_classes=["threshold-slider"]),
        ]
        tabs = [
            ("Scores", DiscriminantDistributions(s.classifier, show_data=False)),
            ("ROC", RocCurves(s.classifier)),
            ("Cut efficiency", CutEfficiency(s.efficiency)),
            ("Migration", MigrationMatrix(s.migration)),
        ]
        if s.overtraining is not None:
            tabs.append(("Overtraining", OvertrainingCheck(s.overtraining)))
        tabs.append(("Training history", pn.pane.HoloViews(_history_plot(s.history), sizing_mode="stretch_width",
                                                           min_height=340)))
        self._tabs[:] = tabs

    def template(self) -> pn.template.FastListTemplate:
        """The page in the app's template."""
        sidebar = [nav_links("your_data"), RunSelector(self.choice, label="your run"), self._controls,
                   markdown("Background = every class other than the signal class. Efficiencies use "
                                    "the run's test split; the overtraining check compares it with the "
                                    "training split.", styles={"font-size": "0.85em", "color": "#555"})]
        return make_template(TITLE, sidebar, [self._header, self._tabs])

    def __panel__(self):
        return pn.Column(self._header, pn.Row(pn.Column(RunSelector(self.choice), self._controls, width=320),
                                              self._tabs, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")


def _history_plot(history: pd.DataFrame) -> hv.Overlay:
    """Training and validation loss per epoch of a saved run."""
    curves = []
    for col, label, colour in (("train_loss", "training", "#0072B2"), ("val_loss", "validation", "#D55E00")):
        if history is not None and col in history and history[col].notna().any():
            curves.append(hv.Curve((history["epoch"], history[col]), "epoch", "loss per event", label=label)
                          .opts(color=colour, line_width=2))
    if not curves:
        curves = [hv.Curve([], "epoch", "loss per event", label="no history saved")]
    return hv.Overlay(curves).opts(hv.opts.Curve(**PLOT_OPTS),
                                   hv.opts.Overlay(title="Loss per epoch", legend_position="top_right"))


def your_data_page(runs_dir: str):
    """The ``pn.serve`` factory body."""
    return YourDataPage(runs_dir).template()
