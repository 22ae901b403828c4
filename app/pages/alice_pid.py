"""The ALICE PID page: species, threshold, live purity/efficiency/F1 of every method, the talk's tables,
ROC overlay, performance by missing-signal pattern and the attention weights of a chosen track.

``alice_pid_page(runs_dir)`` is the per-session factory ``pn.serve`` calls. When no study is saved yet
the page says so and offers a button that trains the study at a small size in the background (the
server's TrainingService), then shows it. ``report_sections(result)`` gives the static report's views.
"""

from __future__ import annotations

import panel as pn

from hepml_core.studies.alice_pid import AlicePidResult

from app.components.alice_pid import (
    PidAttentionView,
    PidLiveMetrics,
    PidMetricsTable,
    PidPatternView,
    PidRocOverlay,
    live_metrics_plot,
    metrics_pivot,
    pattern_plot,
    roc_overlay_plot,
)
from app.components.runs import RunSelector
from app.components.style import ensure_extension
from app.components.train import TrainPanel
from app.pages._study_page import StudyPageFrame
from app.pages._layout import make_template, nav_links
from app.state.alice_pid import (
    PidData,
    PidSettingsForm,
    PidState,
    list_pid_studies,
    load_pid_data,
    pid_job_factory,
)
from app.state.links import LinkField
from app.state.train_control import TrainControl
from app.state.training import TrainingService

__all__ = ["AlicePidPage", "alice_pid_page", "report_sections", "TITLE", "ROUTE"]

TITLE = "hepml — ALICE PID with missing data"
ROUTE = "alice_pid"


class AlicePidPage(StudyPageFrame):
    """One session's PID page.

    Args:
        runs_dir: the run store's folder.
        service: the server's TrainingService (default: the shared one of ``runs_dir``).
        location: the session's URL ``Location`` (default: the served session's; none in a notebook).
    """

    ROUTE = ROUTE
    STUDY = "alice-pid"

    def __init__(self, runs_dir: str, *, service: TrainingService | None = None, location=None, **params):
        ensure_extension()
        super().__init__(**params)
        self._init_frame(runs_dir, service, list_pid_studies, location)
        self.state: PidState | None = None
        settings = self._data(self.choice.run).result.settings if self.choice.run else None
        self.form = PidSettingsForm(settings)
        self.control = TrainControl(self.service, pid_job_factory(self.form, self.runs_dir))
        self.train_panel = TrainPanel(self.control, self.form, ("FSE · pion",))
        self._start()

    def _data(self, run_id: str) -> PidData:
        return load_pid_data(self.runs_dir, run_id)

    def _show_run(self, *events) -> None:
        if self.choice.run is None:
            self._show_nothing_saved(
                "No ALICE PID study is saved in this runs folder yet. Press **Retrain** to train one at "
                        "the small size below (about 20k simulated tracks, 5 epochs: minutes on a laptop); tick "
                        "**real** to use the real ALICE pp 7 TeV samples. The views appear when it is saved.")
            return
        try:
            data = self._data(self.choice.run)
            self.state = PidState(data)
        except Exception as err:  # a broken run folder: say which and why, keep the page alive
            self._show_broken_run(err)
            return
        s, r = self.state, data.result
        self._header.object = (
            f"Study **{r.study_run_id}** · {r.sample} sample · {len(r.frame):,} test tracks · "
            f"{r.frame['complete'].mean():.0%} complete · methods: {', '.join(r.methods)}")
        self._controls[:] = [
            pn.widgets.Select.from_param(s.param.species, sizing_mode="stretch_width", css_classes=["pid-species"]),
            pn.widgets.FloatSlider.from_param(s.param.threshold, label="certainty threshold", step=0.01,
                                              sizing_mode="stretch_width", css_classes=["threshold-slider"]),
            pn.widgets.IntInput.from_param(s.param.track, label="test track (attention tab)",
                                           sizing_mode="stretch_width"),
        ]
        self._tabs[:] = [
            ("Live metrics", PidLiveMetrics(s)),
            ("Tables", PidMetricsTable(s)),
            ("ROC", PidRocOverlay(s)),
            ("Missing patterns", PidPatternView(s)),
            ("Attention", PidAttentionView(s)),
            ("Train", self.train_panel),
        ]
        self._link_view()

    def _link_fields(self) -> list[LinkField]:
        s = self.state
        return [LinkField(s, "species", "species"),
                LinkField(s, "threshold", "threshold", "threshold",
                          "certainty of the learned models (tracks at or above it are identified)"),
                LinkField(s, "track", "track")]

    def _report_result(self, run_id: str) -> AlicePidResult:
        return self._data(run_id).result

    def template(self) -> pn.template.FastListTemplate:
        """The page in the app's template (sidebar: run, species, threshold, track)."""
        sidebar = [
            nav_links(ROUTE),
            RunSelector(self.choice, label="PID study run"),
            self._controls,
            *self._sidebar_exports(),
            pn.pane.Markdown(
                "One model per species (one vs all). The threshold is the models' certainty cut; the "
                "n-sigma selection keeps its 3σ cut. F1 = 2PE/(P+E).",
                styles={"font-size": "0.85em", "color": "#555"}),
        ]
        return make_template(TITLE, sidebar, self._main())



def alice_pid_page(runs_dir: str):
    """The ``pn.serve`` factory body: a new page (own state and widgets) in its template."""
    return AlicePidPage(runs_dir).template()


def report_sections(result: AlicePidResult) -> list[tuple[str, object]]:
    """Titled views of a result for the static HTML report (default threshold, first species, track 0)."""
    from hepml_core.studies.alice_pid_tables import MetricScans, pattern_table, roc_table

    ensure_extension()
    metrics = MetricScans(result).at(result.threshold)
    species = result.species[0]
    rows = metrics[(metrics["species"] == species) & (metrics["subset"] == "all")]
    sections: list[tuple[str, object]] = [
        (f"Purity, efficiency and F1 of every method ({species})", live_metrics_plot(rows, species, result.threshold)),
    ]
    for subset, title in (("all", "all test tracks"), ("complete", "complete tracks only")):
        table = metrics_pivot(metrics, subset, "f1", result.methods)
        # a plain HTML table: it renders in a static file without the Tabulator scripts
        sections.append((f"F1 (%) on {title}", pn.pane.DataFrame(table, sizing_mode="stretch_width")))
    rocs = roc_table(result)
    for s in result.species:
        sections.append((f"ROC: {s} vs all", roc_overlay_plot(rocs, s, None, result.methods)))
    sections.append((f"F1 by missing-signal pattern ({species})", pattern_plot(pattern_table(result), species)))
    return sections

