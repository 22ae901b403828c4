"""The "your data" page: evaluate any classifier run trained with ``hepml train`` on a user's ntuple.

Score distributions per class, ROC, TMVA's cut-efficiency view with the user's expected yields, the
migration matrix at a cut on p_signal, the train-vs-test overtraining check and the loss history,
built from the same components as the He study page. A user may also upload a ROOT or Parquet file:
it is validated (``app.state.upload``), scored with the selected run off the event loop, and shown in
the same views in place of the run's test split.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

import holoviews as hv
import pandas as pd
import panel as pn

from hepml_core.exceptions import HepmlError
from hepml_core.runs import RunStore

from app.components.distributions import DiscriminantDistributions
from app.components.efficiency import CutEfficiency
from app.components.export import ExportBar, cut_section
from app.components.migration import MigrationMatrix
from app.components.overtraining import OvertrainingCheck
from app.components.roc import RocCurves
from app.components.runs import RunSelector
from app.components.session_cleanup import release_links_at_session_end
from app.components.style import PLOT_OPTS, ensure_extension, markdown
from app.pages._layout import link_notice, make_template, message, nav_links
from app.state.links import LinkField, PageLink, session_location
from app.state.loaders import RunData, load_run_data, runs_dir_of
from app.state.runs import RunChoice
from app.state.upload import UploadError, max_upload_bytes, read_upload, score_upload
from app.state.your_data import YourDataState, list_user_runs

__all__ = ["YourDataPage", "Upload", "your_data_page", "report_sections", "TITLE"]

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


@dataclass(frozen=True)
class Upload:
    """An uploaded file scored with one run (private to the session that uploaded it)."""

    run_id: str
    filename: str
    data: RunData


class YourDataPage(pn.viewable.Viewer):
    """One session's page for user runs.

    Args:
        runs_dir: the run store's folder.
        location: the session's URL ``Location`` (default: the served session's; none in a notebook).
    """

    def __init__(self, runs_dir: str, *, location=None, **params):
        ensure_extension()
        super().__init__(**params)
        self.runs_dir = runs_dir_of(runs_dir)
        self.choice = RunChoice(lambda: list_user_runs(self.runs_dir))
        self.link = PageLink("your_data", location=location if location is not None else session_location())
        self.link.bind_run(self.choice)  # before anything reads choice.run: the link may name another run
        self.exports = ExportBar(self.link, self._write_report)
        self.state: YourDataState | None = None
        self.upload: Upload | None = None
        self._controls = pn.Column(sizing_mode="stretch_width")
        self._tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width")
        self._header = markdown("", sizing_mode="stretch_width", margin=(0, 10), css_classes=["your-data-header"])
        self.file_input = pn.widgets.FileInput(accept=".root,.parquet", multiple=False, sizing_mode="stretch_width",
                                               css_classes=["upload-input"])
        self.file_input.param.watch(self._on_file, "value")
        self.upload_message = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width",
                                            css_classes=["upload-message"])
        self._upload_help = markdown("", styles={"font-size": "0.85em", "color": "#555"}, margin=(0, 10))
        self._back = pn.widgets.Button(label="Show the run's test split", color="light", visible=False,
                                       sizing_mode="stretch_width", css_classes=["upload-clear"])
        self._back.on_click(lambda event: self.clear_upload())
        self.choice.param.watch(self._show_run, "run")
        self._show_run()

    # -- the shown run -------------------------------------------------------------------------------
    def _show_run(self, *events) -> None:
        if self.upload is not None and self.upload.run_id != self.choice.run:
            self._say(f"{self.upload.filename} was scored with run {self.upload.run_id}; upload it again to score "
                      "it with the run now selected.", "info")
            self.upload = None
        self._back.visible = self.upload is not None
        if self.choice.run is None:
            self.state = None
            self.link.bind_view([])
            self._header.object = ""
            self._upload_help.object = ""
            self._controls[:] = []
            self._tabs[:] = [("Start here", message(_HOWTO))]
            return
        try:
            data = self.upload.data if self.upload is not None else load_run_data(self.runs_dir, self.choice.run)
            self.state = YourDataState(data)
        except Exception as err:  # broken or non-classifier run: explain, keep the page usable
            self.state = None
            self.link.bind_view([])
            self._controls[:] = []
            self._tabs[:] = [("Error", message(f"Cannot show run {self.choice.run}: {err}", "danger"))]
            return
        s = self.state
        self._header.object = self._describe(s)
        self._upload_help.object = self._needs_text(s)
        self._controls[:] = [
            pn.widgets.Select.from_param(s.choice.param.signal, label="signal class", sizing_mode="stretch_width"),
            release_links_at_session_end(pn.widgets.EditableFloatSlider.from_param(
                s.cut.param.threshold, label="cut on p_signal", format="0.[000]",
                sizing_mode="stretch_width", css_classes=["threshold-slider"])),
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
        self.link.bind_view(self._link_fields(s))

    def _describe(self, s: YourDataState) -> str:
        if self.upload is None:
            return s.describe()
        return (f"Uploaded **{self.upload.filename}**: {len(s.events):,} events scored with run "
                f"**{self.upload.run_id}** · classes: {', '.join(s.data.class_names)}")

    def _needs_text(self, s: YourDataState) -> str:
        """Which columns an upload needs for the selected run, and the size limit."""
        d = s.data.config.get("data", {})
        columns = [*d.get("features", []), *([d["label"]] if d.get("label") else [])]
        weight = f"; optional weight `{d['weight']}`" if d.get("weight") else ""
        return (f"A .root or .parquet file of up to {max_upload_bytes() / 2**20:.3g} MB with the columns "
                f"{', '.join(f'`{c}`' for c in columns)}{weight}. It is scored with the selected run and shown "
                "in place of its test split; it stays in this browser session only.")

    @staticmethod
    def _link_fields(s: YourDataState) -> list[LinkField]:
        """What a shared link carries: the signal class and the cut on its probability."""
        return [LinkField(s.choice, "signal", "signal"),
                LinkField(s.cut, "threshold", "threshold", "threshold",
                          "probability of the signal class (events at or above it are kept)")]

    def _write_report(self, path, cut: dict) -> None:
        """The static report of the run in ``cut`` (runs on the export's worker thread)."""
        from app.report import write_study_report

        write_study_report("user-run", load_run_data(self.runs_dir, cut["run_id"]), path,
                           extra_sections=[cut_section(cut)])

    # -- uploads -------------------------------------------------------------------------------------
    def _say(self, text: str, kind: str) -> None:
        self.upload_message.param.update(object=text, alert_type=kind, visible=bool(text))

    def _on_file(self, event) -> None:
        content, filename = event.new, self.file_input.filename
        if not content:
            return
        self.file_input.value = None  # the bytes are ours now; do not keep a second copy in the widget
        if session_location() is not None:
            # Reading and scoring may take seconds: off the event loop, so other sessions stay responsive.
            pn.state.execute(functools.partial(self._use_upload_async, content, filename))
        else:
            self.use_upload(content, filename)

    def _prepare(self, run_id: str | None, content: bytes, filename: str) -> RunData:
        """Validate, read and score an upload with ``run_id`` (UploadError on any problem)."""
        if run_id is None:
            raise UploadError("no run is selected: an upload is scored with a run trained by `hepml train`")
        try:
            run = RunStore(self.runs_dir).load(run_id)
            classes = load_run_data(self.runs_dir, run_id).class_names
        except (HepmlError, ValueError) as err:
            raise UploadError(f"run {run_id} cannot score uploads: {err}") from err
        table = read_upload(content, filename, run.schema, classes=classes, config=dict(run.config), run_id=run_id)
        return score_upload(run, table, classes, filename)

    def use_upload(self, content: bytes, filename: str) -> bool:
        """Validate, score and show an upload now (on this thread); False and a message if it failed."""
        run_id = self.choice.run
        try:
            data = self._prepare(run_id, content, filename)
        except UploadError as err:
            self._say(str(err), "danger")
            return False
        self._show_upload(Upload(run_id, str(filename), data))
        return True

    async def _use_upload_async(self, content: bytes, filename: str) -> None:
        run_id = self.choice.run
        self._say(f"Reading and scoring {filename} with run {run_id} …", "info")
        self.file_input.disabled = True
        try:
            data = await asyncio.get_running_loop().run_in_executor(None, self._prepare, run_id, content, filename)
        except UploadError as err:
            self._say(str(err), "danger")
            return
        except Exception as err:  # noqa: BLE001 - anything else is still one line in the page
            self._say(f"{filename} could not be used: {type(err).__name__}: {err}", "danger")
            return
        finally:
            self.file_input.disabled = False
        if self.choice.run != run_id:
            self._say(f"{filename} was scored with run {run_id}, but another run is selected now; upload it "
                      "again.", "warning")
            return
        self._show_upload(Upload(run_id, str(filename), data))

    def _show_upload(self, upload: Upload) -> None:
        self.upload = upload
        self._show_run()
        n = len(upload.data.splits["upload"])
        self._say(f"{upload.filename}: {n:,} events scored with run {upload.run_id}; every view now shows them.",
                  "success")

    def clear_upload(self) -> None:
        """Show the run's own test split again."""
        self.upload = None
        self._say("", "info")
        self._show_run()

    def template(self) -> pn.template.FastListTemplate:
        """The page in the app's template."""
        sidebar = [nav_links("your_data"), RunSelector(self.choice, label="your run"), self._controls,
                   self.exports,
                   markdown("**Score your own file**", margin=(10, 10, 0, 10)), self.file_input, self._upload_help,
                   self._back,
                   markdown("Background = every class other than the signal class. Efficiencies use "
                                    "the run's test split; the overtraining check compares it with the "
                                    "training split.", styles={"font-size": "0.85em", "color": "#555"})]
        return make_template(TITLE, sidebar, [link_notice(self.link), self.upload_message, self._header, self._tabs])

    def __panel__(self):
        return pn.Column(link_notice(self.link), self.upload_message, self._header,
                         pn.Row(pn.Column(RunSelector(self.choice), self._controls, self.exports, self.file_input,
                                          self._upload_help, self._back, width=320),
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


def report_sections(data: RunData) -> list[tuple[str, object]]:
    """Titled static views of a user run for ``app.report`` (the page's plots at the best S/√(S+B) cut).

    Args:
        data: the prepared run (``load_run_data``).
    """
    from app.components.migration import MigrationMatrix
    from app.components.overtraining import OvertrainingCheck

    ensure_extension()
    state = YourDataState(data)
    wide = {"sizing_mode": "stretch_width", "height": 380}
    dists = DiscriminantDistributions(state.classifier, show_data=False)
    eff, sig = CutEfficiency(state.efficiency).plot_objects()
    sections: list[tuple[str, object]] = [
        ("Run", markdown(state.describe(), sizing_mode="stretch_width")),
        (f"Class probabilities by true class ({state.eval_split} split)",
         pn.GridBox(*[pn.pane.HoloViews(dists.plot_object(k), **wide) for k in range(len(data.class_names))],
                    ncols=2, sizing_mode="stretch_width")),
        ("One-vs-rest ROC curves", pn.pane.HoloViews(RocCurves(state.classifier).plot_object(), **wide)),
        (f"Cut efficiency for signal = {state.choice.signal}",
         pn.Column(markdown(state.efficiency.summary), pn.pane.HoloViews(eff, **wide), pn.pane.HoloViews(sig, **wide),
                   sizing_mode="stretch_width")),
        (f"Migration matrix at the cut p_{state.choice.signal} ≥ {state.cut.threshold:.3g}",
         pn.Column(markdown(state.migration.summary),
                   pn.pane.HoloViews(MigrationMatrix(state.migration).plot_object(), **wide),
                   sizing_mode="stretch_width")),
    ]
    if state.overtraining is not None:
        sections.append(("Overtraining check (train vs test)",
                         pn.Column(markdown(state.overtraining.summary),
                                   pn.pane.HoloViews(OvertrainingCheck(state.overtraining).plot_object(), **wide),
                                   sizing_mode="stretch_width")))
    sections.append(("Loss per epoch", pn.pane.HoloViews(_history_plot(state.history), **wide)))
    return sections


def your_data_page(runs_dir: str):
    """The ``pn.serve`` factory body."""
    return YourDataPage(runs_dir).template()
