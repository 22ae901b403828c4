"""The DARWIN anomaly-search page: TS distributions, p-value vs R, classifier, latent space, PPC, Retrain.

``darwin_page(runs_dir)`` is the per-session factory ``pn.serve`` calls: every session gets its own
state and widgets; only the cached, read-only study data and the TrainingService are shared. Without a
saved study the page says so and offers a Retrain at a small size (about a minute on a laptop).
"""

from __future__ import annotations

import panel as pn

from hepml_core.studies.darwin import DarwinResult, DarwinSettings

from app.components.darwin import PValueVsR, SearchControls, TSDistributions, pvalue_curve_plot, ts_distributions_plot
from app.components.darwin_model import ModelViews, classifier_table, latent_plot, ppc_plot, roc_plot
from app.components.runs import RunSelector
from app.components.train import TrainPanel
from app.pages._study_page import StudyPageFrame
from app.pages._layout import make_template, nav_links
from app.state.darwin import (DARWIN_MODELS, SMALL_SETTINGS, DarwinSearchState, DarwinSettingsForm,
                              darwin_job_factory, data_from_result, list_darwin_studies, load_darwin_data)
from app.state.links import LinkField
from app.state.train_control import TrainControl, saved_history
from app.state.training import TrainingService

__all__ = ["DarwinPage", "darwin_page", "report_sections", "TITLE"]

TITLE = "hepml — DARWIN anomaly-aware search"


class DarwinPage(StudyPageFrame):
    """One session's DARWIN page.

    Args:
        runs_dir: the run store's folder.
        service: the server's TrainingService (default: the shared one of ``runs_dir``).
        default_settings: Retrain form defaults when no study exists yet (default: ``SMALL_SETTINGS``).
        location: the session's URL ``Location`` (default: the served session's; none in a notebook).
    """

    ROUTE = "darwin"
    STUDY = "darwin"

    def __init__(self, runs_dir: str, *, service: TrainingService | None = None,
                 default_settings: DarwinSettings | None = None, location=None, **params):
        super().__init__(**params)
        self._init_frame(runs_dir, service, list_darwin_studies, location)
        self.state: DarwinSearchState | None = None
        settings = default_settings or SMALL_SETTINGS
        if self.choice.run is not None:
            settings = load_darwin_data(self.runs_dir, self.choice.run).settings
        self.form = DarwinSettingsForm(settings)
        self.control = TrainControl(self.service, darwin_job_factory(self.form, self.runs_dir))
        self.train_panel = TrainPanel(self.control, self.form, DARWIN_MODELS)
        self._start()

    def _show_run(self, *events) -> None:
        if self.choice.run is None:
            self._show_nothing_saved(
                "No DARWIN study is saved in this runs folder yet. Press **Retrain** to simulate and "
                "train one at the small size in the form (about a minute); the views appear when it "
                "is saved." if not self.control.running else
                "No DARWIN study is saved yet; a training is running now — the views appear when it is "
                "saved. Progress:")
            return
        try:
            data = load_darwin_data(self.runs_dir, self.choice.run)
            self.state = DarwinSearchState(data)
        except Exception as err:  # a broken run folder: say which and why, keep the page alive
            self._show_broken_run(err)
            return
        r = data.result
        self.control.show_saved(saved_history(data.histories))
        self._header.object = (
            f"Study **{r.study_run_id}** · classifier `{r.classifier_run_id}` · VAE `{r.vae_run_id}` · "
            f"{len(r.mc_test):,} labelled test events · exposure {r.settings.exposure_t_yr:g} t·y, "
            f"σ_SI = {r.settings.sigma_cm2:.2g} cm² · B = {r.expected['background_total']:,.0f} ER events")
        self._controls[:] = [SearchControls(self.state)]
        self._tabs[:] = [
            ("Anomaly search", pn.Column(TSDistributions(self.state), PValueVsR(self.state),
                                         sizing_mode="stretch_width")),
            ("Classifier & VAE", ModelViews(data)),
            ("Train", self.train_panel),
        ]
        self._link_view()

    def _link_fields(self) -> list[LinkField]:
        s = self.state
        return [LinkField(s, "R", "R"), LinkField(s, "mass", "mass"), LinkField(s, "strength", "strength"),
                LinkField(s, "cut_quantile", "cut_quantile", "threshold",
                          "TS threshold as a quantile of the ER null TS (events above it are kept)")]

    def _report_result(self, run_id: str) -> DarwinResult:
        return load_darwin_data(self.runs_dir, run_id).result

    def template(self) -> pn.template.FastListTemplate:
        """The page in the app's template (sidebar: run, R, mass, strength, threshold)."""
        sidebar = [
            nav_links("darwin"),
            RunSelector(self.choice, label="DARWIN study run"),
            self._controls,
            *self._sidebar_exports(),
            pn.pane.Markdown(
                "TS = −ELBO + R·H_B with H_B = −log(1 − p_NR). The threshold keeps the ER events above a "
                "quantile of the null TS; the median p-value of H0 comes from the extended unbinned "
                "likelihood of pseudo-experiments with the injected WIMP signal.",
                styles={"font-size": "0.85em", "color": "#555"}),
        ]
        return make_template(TITLE, sidebar, self._main())





def darwin_page(runs_dir: str, default_settings: DarwinSettings | None = None):
    """The ``pn.serve`` factory body: a new page (own state and widgets) in its template."""
    return DarwinPage(runs_dir, default_settings=default_settings).template()


def report_sections(result: DarwinResult) -> list[tuple[str, object]]:
    """Titled plots of a DARWIN result for the static HTML report (at the optimum R for 50 GeV)."""
    data = data_from_result(result)
    state = DarwinSearchState(data)
    opt = result.pvalues.loc[result.pvalues.groupby("wimp_mass")["median_p_value"].idxmin(), ["wimp_mass", "R",
                                                                                             "median_p_value"]]
    return [
        ("Classifier: ER vs NR", pn.Column(pn.pane.DataFrame(classifier_table(data), index=False),
                                           pn.pane.HoloViews(roc_plot(data), sizing_mode="stretch_width", height=380))),
        ("TS distributions", _pane(ts_distributions_plot(state))),
        ("Median p-value vs R", _pane(pvalue_curve_plot(state))),
        ("Optimal R per WIMP mass and the (cS1, cS2) baseline",
         pn.Column(pn.pane.DataFrame(opt.reset_index(drop=True), index=False),
                   pn.pane.DataFrame(result.baseline[["wimp_mass", "method", "median_p_value"]], index=False))),
        ("VAE latent space", _pane(latent_plot(data), 440)),
        ("Posterior predictive check", _pane(ppc_plot(data), 360)),
    ]


def _pane(element, height: int = 420) -> pn.pane.HoloViews:
    """A fixed-height pane: responsive plots in a static page would otherwise collapse onto each other."""
    return pn.pane.HoloViews(element, sizing_mode="stretch_width", height=height)
