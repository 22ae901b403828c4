"""The nuclei domain-adaptation page: both heads' training curves, MC-vs-data scores, efficiency vs
threshold, before/after-cut distributions by species, per-event attention over the branches, Retrain.

``ams_nuclei_page(runs_dir)`` is the per-session factory ``pn.serve`` calls. Without a saved nuclei
study the page says so and offers a button that trains one at a small size in the background (the
TrainingService); the views appear when it is saved.
"""

from __future__ import annotations

import functools

import panel as pn

from hepml_core.runs import RunStore
from hepml_core.studies.ams_nuclei import MODELS, VARIABLES, AmsNucleiResult, AmsNucleiSettings, load_ams_nuclei
from hepml_core.studies.ams_nuclei_tables import auc_table, domain_table, efficiency_table, efficiency_scan

from app.components.ams_nuclei import (
    AttentionView, CutDistributions, EfficiencyView, ScoreDistributions, TrainingCurves, attention_plot,
    efficiency_plot, head_curves, score_plot, variable_plot,
)
from app.components.export import with_csv
from app.components.runs import RunSelector
from app.components.train import TrainPanel
from app.pages._study_page import StudyPageFrame
from app.pages._layout import make_template, nav_links
from app.state.ams_nuclei import (
    NUCLEI_MODELS, SMALL_SETTINGS, THRESHOLD_GRID, NucleiSettingsForm, NucleiViewState, list_nuclei_studies,
    nuclei_job_factory,
)
from app.state.links import LinkField
from app.state.train_control import TrainControl, saved_history

__all__ = ["AmsNucleiPage", "ams_nuclei_page", "report_sections", "TITLE"]

TITLE = "hepml — nuclei, domain adaptation"


@functools.lru_cache(maxsize=4)
def _load(runs_dir: str, run_id: str) -> AmsNucleiResult:
    # a finished run never changes, so its id is a safe cache key (shared read-only by sessions)
    return load_ams_nuclei(RunStore(runs_dir), run_id)


class AmsNucleiPage(StudyPageFrame):
    """One session's nuclei page.

    Args:
        runs_dir: the run store's folder.
        service: the server's TrainingService (default: the shared one of ``runs_dir``).
        default_settings: Retrain form defaults when no study exists yet (default: ``SMALL_SETTINGS``).
        location: the session's URL ``Location`` (default: the served session's; none in a notebook).
    """

    ROUTE = "ams_nuclei"
    STUDY = "ams-nuclei"

    def __init__(self, runs_dir: str, *, service=None, default_settings: AmsNucleiSettings | None = None,
                 location=None, **params):
        super().__init__(**params)
        self._init_frame(runs_dir, service, list_nuclei_studies, location)
        self.state: NucleiViewState | None = None
        settings = default_settings or SMALL_SETTINGS
        if self.choice.run is not None:
            settings = _load(self.runs_dir, self.choice.run).settings
        self.form = NucleiSettingsForm(settings)
        self.control = TrainControl(self.service, nuclei_job_factory(self.form, self.runs_dir))
        self.train_panel = TrainPanel(self.control, self.form, NUCLEI_MODELS)
        self._start()

    def _show_run(self, *events) -> None:
        if self.choice.run is None:
            text = ("No nuclei study is saved in this runs folder yet. A small one is being trained now; the views "
                    "appear here when it is saved. Progress:" if self.control.running else
                    "No nuclei study is saved in this runs folder yet: press **Retrain** below to train a small one "
                    f"({self.form.events:,} MC + {self.form.data_events:,} data events, a few minutes), or run "
                    "`hepml study ams-nuclei` for the talk's size.")
            self._show_nothing_saved(text)
            return
        try:
            result = _load(self.runs_dir, self.choice.run)
            self.state = NucleiViewState(result)
        except Exception as err:  # a broken run folder: say which and why, keep the page alive
            self._show_broken_run(err)
            return
        s = self.state
        self.control.show_saved(saved_history(result.histories))
        f = result.frame
        acc = result.domain_accuracy
        self._header.object = (
            f"Study **{result.study_run_id}** · {int((f['domain'] == 'mc').sum()):,} MC and "
            f"{int((f['domain'] == 'data').sum()):,} data test events · domain-probe accuracy on the learned "
            f"features: adversarial **{acc['adversarial']:.3f}**, plain **{acc['plain']:.3f}** (goal 0.5)")
        caption = functools.partial(pn.pane.Markdown, margin=(5, 10, -10, 10), styles={"font-size": "0.9em"})
        self._controls[:] = [
            caption("**Event selection**"),
            pn.widgets.RadioButtonGroup.from_param(s.param.selection, color="default"),
            caption("**Network** (cut, attention)"),
            pn.widgets.RadioButtonGroup.from_param(s.param.model, color="default"),
            pn.widgets.FloatSlider.from_param(s.param.threshold, sizing_mode="stretch_width"),
            pn.widgets.Select.from_param(s.param.variable, name="variable (before/after view)",
                                         options={label: name for name, label in VARIABLES.items()}),
            caption("**Domain** (before/after view)"),
            pn.widgets.RadioButtonGroup.from_param(s.param.domain, color="default"),
            pn.widgets.Checkbox.from_param(s.param.log_y),
        ]
        self._tabs[:] = [
            ("Training", TrainingCurves(s)),
            ("Scores", ScoreDistributions(s)),
            ("Efficiency", pn.Column(EfficiencyView(s), _summary_tables(result), sizing_mode="stretch_width")),
            ("Before/after cut", CutDistributions(s)),
            ("Attention", AttentionView(s)),
            ("Train", self.train_panel),
        ]
        self._link_view()

    def _link_fields(self) -> list[LinkField]:
        s = self.state
        return [LinkField(s, "selection", "selection"), LinkField(s, "model", "model"),
                LinkField(s, "threshold", "threshold", "threshold",
                          "signal score of the chosen network (events at or above it pass)"),
                LinkField(s, "variable", "variable"), LinkField(s, "domain", "domain")]

    def _report_result(self, run_id: str) -> AmsNucleiResult:
        return _load(self.runs_dir, run_id)

    def template(self) -> pn.template.FastListTemplate:
        """The page in the app's template."""
        sidebar = [nav_links("ams_nuclei"), RunSelector(self.choice, label="nuclei study run"), self._controls,
                   *self._sidebar_exports(),
                   pn.pane.Markdown("Trained on MC; the data domain's truth is the simulator's hidden truth, "
                                    "which a real analysis never has. The threshold cuts on the chosen network's "
                                    "signal score.", styles={"font-size": "0.85em", "color": "#555"})]
        return make_template(TITLE, sidebar, self._main())



def _summary_tables(result: AmsNucleiResult, static: bool = False) -> pn.Column:
    """Domain accuracy, AUC and efficiency at the study's thresholds, both models side by side."""
    auc = auc_table(result).pivot_table(index=["selection", "domain"], columns="model", values="auc").reset_index()
    eff = efficiency_table(result)
    eff = eff[eff["selection"] == "all"].pivot_table(index=["threshold", "domain"], columns="model",
                                                     values=["signal_efficiency", "background_fraction"])
    eff.columns = [f"{a} ({b})" for a, b in eff.columns]
    fmt = "{:.4f}".format
    tables = pn.Column(
        pn.pane.Markdown("**Domain-probe accuracy** on the learned features (goal 0.5)"),
        pn.pane.DataFrame(domain_table(result), float_format=fmt, index=False),
        pn.pane.Markdown("**Signal/background AUC** (data: hidden truth)"),
        pn.pane.DataFrame(auc, float_format=fmt, index=False, sizing_mode="stretch_width"),
        pn.pane.Markdown("**All selections at the study's thresholds**"),
        pn.pane.DataFrame(eff.reset_index(), float_format=fmt, index=False, sizing_mode="stretch_width"),
        sizing_mode="stretch_width")
    return tables if static else _with_csvs(tables)


def _with_csvs(tables: pn.Column) -> pn.Column:
    """The summary tables, each with its CSV download (the app; the static report has no buttons)."""
    names = iter(("nuclei-domain-accuracy.csv", "nuclei-auc.csv", "nuclei-efficiency-at-thresholds.csv"))
    return pn.Column(*[with_csv(obj, next(names)) if isinstance(obj, pn.pane.DataFrame) else obj for obj in tables],
                     sizing_mode="stretch_width")




def ams_nuclei_page(runs_dir: str, default_settings: AmsNucleiSettings | None = None):
    """The ``pn.serve`` factory body: a new page (own state and widgets) in its template."""
    return AmsNucleiPage(runs_dir, default_settings=default_settings).template()


def report_sections(result: AmsNucleiResult) -> list[tuple[str, object]]:
    """Titled plots of the static report: training curves, scores, efficiency, L1 charge, attention."""
    from app.components.style import ensure_extension

    ensure_extension()
    state = NucleiViewState(result)

    def hv_pane(obj, height=380):
        return pn.pane.HoloViews(obj, sizing_mode="stretch_width", min_height=height)

    sections = [("Summary: domain accuracy, AUC, efficiency", _summary_tables(result, static=True)),
                ("Training curves of both heads", hv_pane(head_curves(result.histories), 340))]
    sections.append(("MC vs data score distributions (all selections)",
                     pn.Row(*[hv_pane(score_plot(state.score_histograms(m), m)) for m in MODELS],
                            sizing_mode="stretch_width")))
    scan = efficiency_scan(result, THRESHOLD_GRID)
    for selection in ("Si", "P", "S"):
        sections.append((f"Efficiency vs threshold, {selection} selection",
                         hv_pane(efficiency_plot(scan[scan["selection"] == selection], 0.5))))
    for selection in ("P",):
        for domain in ("mc", "data"):
            state.param.update(selection=selection, domain=domain, model="adversarial", threshold=0.5)
            before, after = state.variable_histograms()
            sections.append((f"L1 charge before/after the adversarial cut at 0.5, {selection} selection, {domain}",
                             hv_pane(variable_plot(before, after, "l1_charge", model="adversarial", threshold=0.5,
                                                   domain=domain), 400)))
    state.param.update(selection="all")
    sections.append(("Per-event attention over the four branches (adversarial)",
                     hv_pane(attention_plot(state.attention("adversarial"), "adversarial"), 400)))
    return sections
