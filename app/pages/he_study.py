"""The He charge-confusion page: discriminants, ROC, migration matrix and anomaly scores, and Retrain.

``he_study_page(runs_dir)`` is the per-session factory ``pn.serve`` calls: every browser session gets
its own states and widgets; only the cached, read-only study data and the TrainingService are shared.
While no study is saved yet (the first start), the page shows the bootstrap training's progress and
swaps in the views as soon as that run is saved.
"""

from __future__ import annotations

import panel as pn
import param

from hepml_core.studies.ams_he import STUDY_NAME, AmsHeSettings

from app.components.anomaly import AnomalyScores
from app.components.distributions import DiscriminantDistributions
from app.components.export import ExportBar, cut_section
from app.components.fractions import ClassFractionsEditor
from app.components.migration import MigrationMatrix
from app.components.roc import RocCurves
from app.components.runs import RunSelector
from app.components.session_cleanup import release_links_at_session_end
from app.components.style import markdown
from app.components.train import TrainPanel
from app.pages._layout import link_notice, make_template, message, nav_links
from app.state.he_study import HE_MODELS, HeSettingsForm, HeStudyState, he_job_factory, list_he_studies
from app.state.links import LinkField, PageLink, session_location
from app.state.loaders import load_study_data, runs_dir_of
from app.state.runs import RunChoice
from app.state.train_control import TrainControl, saved_history
from app.state.training import TrainingService, get_service

__all__ = ["HeStudyPage", "he_study_page", "report_sections", "TITLE"]

TITLE = "hepml — He charge confusion"


class HeStudyPage(pn.viewable.Viewer):
    """One session's He study page.

    Args:
        runs_dir: the run store's folder.
        service: the server's TrainingService (default: the shared one of ``runs_dir``).
        default_settings: Retrain form defaults when no study exists yet.
        location: the session's URL ``Location`` (default: the served session's; none in a notebook).
    """

    def __init__(self, runs_dir: str, *, service: TrainingService | None = None,
                 default_settings: AmsHeSettings | None = None, location=None, **params):
        super().__init__(**params)
        self.runs_dir = runs_dir_of(runs_dir)
        self.service = service or get_service(self.runs_dir)
        self.choice = RunChoice(lambda: list_he_studies(self.runs_dir))
        self.link = PageLink("he_study", study=STUDY_NAME,
                             location=location if location is not None else session_location())
        self.link.bind_run(self.choice)  # before anything reads choice.run: the link may name another run
        self.exports = ExportBar(self.link, self._write_report)
        self.state: HeStudyState | None = None
        settings = default_settings
        if self.choice.run is not None:
            settings = self._data(self.choice.run).settings
        self.form = HeSettingsForm(settings)
        self.control = TrainControl(self.service, he_job_factory(self.form, self.runs_dir))
        active = self.service.active(shared_only=True)
        if active is not None:
            self.control.attach(active)  # the first-start training: every visitor sees its progress
        self.train_panel = TrainPanel(self.control, self.form, HE_MODELS)
        self._controls = pn.Column(sizing_mode="stretch_width")
        self._tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width")
        self._header = markdown("", sizing_mode="stretch_width", margin=(0, 10), css_classes=["study-header"])
        self.choice.param.watch(self._show_run, "run")
        self.control.param.watch(self._on_trained, "last_run_id")
        self._show_run()

    def _data(self, run_id: str):
        return load_study_data(self.runs_dir, run_id)

    def _on_trained(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.choice.select(event.new)

    def _show_run(self, *events) -> None:
        active = self._tabs.active
        if self.choice.run is None:
            self.state = None
            self.link.bind_view([])
            self._header.object = ""
            self._controls[:] = []
            self._tabs[:] = [("Train", pn.Column(
                message("No He study is saved in this runs folder yet. The default models are being trained "
                        "now (first start): the views appear here when the run is saved. Progress:"
                        if self.control.running else
                        "No He study is saved in this runs folder yet: press **Retrain** to train one."),
                self.train_panel, sizing_mode="stretch_width"))]
            return
        try:
            self.state = HeStudyState(self._data(self.choice.run))
        except Exception as err:  # a broken run folder: say which and why, keep the page alive
            self.state = None
            self.link.bind_view([])
            self._controls[:] = []
            self._tabs[:] = [("Error", message(f"Cannot show run {self.choice.run}: {err}", "danger")),
                             ("Train", self.train_panel)]
            return
        s = self.state
        d = s.data
        self.control.show_saved(saved_history(d.histories))
        self._header.object = (
            f"Study **{d.study_run_id}** · classifier `{d.classifier_run_id}` · autoencoder "
            f"`{d.autoencoder_run_id}` · {len(d.mc):,} MC test and {len(d.data):,} data events")
        self._controls[:] = [
            release_links_at_session_end(pn.widgets.EditableFloatSlider.from_param(
                s.cut.param.threshold, label="anomaly-score threshold", format="0.[0000]",
                sizing_mode="stretch_width", css_classes=["threshold-slider"])),
            ClassFractionsEditor(s.fractions),
        ]
        # The threshold views open first: they are what the sidebar's slider drives, and two plots
        # draw faster than the four discriminant histograms (tabs render when first shown).
        self._tabs[:] = [
            ("Migration & anomalies", self._threshold_tab(s)),
            ("Discriminants", DiscriminantDistributions(s.classifier)),
            ("ROC", RocCurves(s.classifier)),
            ("Train", self.train_panel),
        ]
        if events and isinstance(active, int) and active < len(self._tabs):
            self._tabs.active = active
        self.link.bind_view(self._link_fields(s))

    @staticmethod
    def _link_fields(s: HeStudyState) -> list[LinkField]:
        """What a shared link carries: the anomaly-score threshold and the class fractions."""
        fields = [LinkField(s.cut, "threshold", "threshold", "threshold",
                            "anomaly score (events at or above it are flagged)")]
        fields += [LinkField(s.fractions, name, f"f_{cls}", "fraction", cls)
                   for name, cls in zip(s.fractions.names, s.fractions.class_names)]
        return fields

    def _write_report(self, path, cut: dict) -> None:
        """The static report of the run in ``cut`` (runs on the export's worker thread)."""
        from hepml_core.runs import RunStore
        from hepml_core.studies.ams_he import load_ams_he

        from app.report import write_study_report

        result = load_ams_he(RunStore(self.runs_dir), cut["run_id"])
        write_study_report(STUDY_NAME, result, path, extra_sections=[cut_section(cut)])

    def _training_line(self) -> pn.pane.Markdown:
        """A one-line training status, visible from every tab while a job runs."""
        c = self.control
        text = pn.bind(lambda running, p, status: f"**Training {p} %** — {status}" if running else "",
                       c.param.running, c.param.progress, c.param.status)
        return markdown(text, visible=c.param.running, css_classes=["sidebar-train-status"],
                                styles={"font-size": "0.85em"}, sizing_mode="stretch_width")

    @staticmethod
    def _threshold_tab(s: HeStudyState) -> pn.Column:
        """Migration matrix and anomaly scores side by side (both follow the threshold), table below."""
        anomaly = AnomalyScores(s.anomaly, show_table=False)
        return pn.Column(pn.Row(MigrationMatrix(s.migration), anomaly, sizing_mode="stretch_width"),
                         anomaly.table_view, sizing_mode="stretch_width")

    def template(self) -> pn.template.FastListTemplate:
        """The page in the app's template (sidebar: run, threshold, fractions)."""
        sidebar = [
            nav_links("he_study"),
            RunSelector(self.choice, label="He study run"),
            self._training_line(),
            self._controls,
            self.exports,
            markdown(
                "D_k = log10(p_k / Σ_j≠k f_j p_j) uses the class fractions f_j; the threshold selects "
                "events by the autoencoder's anomaly score. Both are shared by every view.",
                styles={"font-size": "0.85em", "color": "#555"}),
        ]
        return make_template(TITLE, sidebar, [link_notice(self.link), self._header, self._tabs])

    def __panel__(self):
        return pn.Column(link_notice(self.link), self._header,
                         pn.Row(pn.Column(RunSelector(self.choice), self._controls, self.exports, width=320),
                                self._tabs, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")




def report_sections(result) -> list[tuple[str, object]]:
    """Titled static views of a He study result for ``app.report`` (the page's plots, frozen).

    Args:
        result: an ``AmsHeResult`` (from ``run_ams_he`` or ``load_ams_he``).
    """
    from app.components.style import ensure_extension
    from app.state.loaders import study_from_result

    ensure_extension()
    state = HeStudyState(study_from_result(result))
    wide = {"sizing_mode": "stretch_width", "min_height": 380}
    dists = DiscriminantDistributions(state.classifier)
    sections: list[tuple[str, object]] = [
        ("Discriminants D_k by true class (MC test; data scaled to MC)",
         pn.GridBox(*[pn.pane.HoloViews(dists.plot_object(k), **wide) for k in range(len(state.data.class_names))],
                    ncols=2, sizing_mode="stretch_width")),
        ("One-vs-rest ROC curves", pn.pane.HoloViews(RocCurves(state.classifier).plot_object(), **wide)),
    ]
    thresholds = [float(t) for t in result.settings.thresholds] or [state.cut.threshold]
    sections.append(("Anomaly score: MC classes and data (dashed: the thresholds below)",
                     pn.pane.HoloViews(AnomalyScores(state.anomaly, show_table=False).plot_object(thresholds),
                                       **wide)))
    matrices = []
    for t in thresholds:
        state.cut.threshold = min(max(t, state.cut.param.threshold.bounds[0]), state.cut.param.threshold.bounds[1])
        view = MigrationMatrix(state.migration)
        matrices.append(pn.Column(markdown(state.migration.summary),
                                  pn.pane.HoloViews(view.plot_object().opts(
                                      title=f"MC migration matrix, anomaly score ≥ {t:g} (row %)"), **wide)))
    sections.append(("MC migration matrices above the talk's anomaly-score thresholds",
                     pn.Column(*matrices, sizing_mode="stretch_width")))
    top = state.anomaly.top_events
    sections.append(("Most anomalous data events", pn.pane.DataFrame(top, index=False, float_format="{:.4f}".format,
                                                                       sizing_mode="stretch_width")))
    return sections


def he_study_page(runs_dir: str, default_settings: AmsHeSettings | None = None):
    """The ``pn.serve`` factory body: a new page (own state and widgets) in its template."""
    return HeStudyPage(runs_dir, default_settings=default_settings).template()
