"""The HNL page: significance vs mass hypothesis per model, the adaptive bins of a clicked mass, pre-training.

``hnl_page(runs_dir)`` is the per-session factory ``pn.serve`` calls. Without a saved HNL study the page
says so and offers a button that trains one at a small size in the background (the TrainingService);
the views appear when it is saved.
"""

from __future__ import annotations

import functools

import pandas as pd
import panel as pn

from hepml_core.runs import RunStore
from hepml_core.studies.hnl import HnlResult, HnlSettings, load_hnl
from hepml_core.studies.hnl_tables import comparison_table, significance_table

from app.components.export import with_csv
from app.components.hnl import (
    BinDetail, RegressionResiduals, SignificanceVsMass, bin_detail_plots, residual_plot, significance_plot,
)
from app.components.runs import RunSelector
from app.components.train import TrainPanel
from app.pages._study_page import StudyPageFrame
from app.pages._layout import make_template, nav_links
from app.state.hnl import (
    AVERAGE, HNL_NN_MODELS, HnlSettingsForm, HnlSignificanceState, hnl_job_factory, list_hnl_studies,
)
from app.state.links import LinkField
from app.state.train_control import TrainControl, saved_history

__all__ = ["HnlPage", "hnl_page", "report_sections", "SMALL_SETTINGS", "TITLE"]

TITLE = "hepml — heavy neutral leptons"

#: the first-start study: small enough for a few minutes on two cores
SMALL_SETTINGS = HnlSettings(events=120_000, test_fraction=0.5, validation_fraction=0.15, pnn_epochs=8,
                             bdt_trees=100, regression_width=64, regression_depth=6,
                             regression_events_per_epoch=20_000, regression_epochs=5, transfer_epochs=6,
                             transfer_unfreeze_epoch=4, transfer_max_train=60_000)


@functools.lru_cache(maxsize=4)
def _load(runs_dir: str, run_id: str) -> HnlResult:
    # a finished run never changes, so its id is a safe cache key (shared read-only by sessions)
    return load_hnl(RunStore(runs_dir), run_id)


class HnlPage(StudyPageFrame):
    """One session's HNL page.

    Args:
        runs_dir: the run store's folder.
        service: the server's TrainingService (default: the shared one of ``runs_dir``).
        default_settings: Retrain form defaults when no study exists yet (default: ``SMALL_SETTINGS``).
        location: the session's URL ``Location`` (default: the served session's; none in a notebook).
    """

    ROUTE = "hnl"
    STUDY = "hnl"

    def __init__(self, runs_dir: str, *, service=None, default_settings: HnlSettings | None = None, location=None,
                 **params):
        super().__init__(**params)
        self._init_frame(runs_dir, service, list_hnl_studies, location)
        self.result: HnlResult | None = None
        self.state: HnlSignificanceState | None = None
        settings = default_settings or SMALL_SETTINGS
        if self.choice.run is not None:
            settings = _load(self.runs_dir, self.choice.run).settings
        self.form = HnlSettingsForm(settings)
        self.control = TrainControl(self.service, hnl_job_factory(self.form, self.runs_dir, lambda: self.result))
        self.train_panel = pn.Column(
            pn.pane.Markdown("**Models to retrain** (the others keep the shown study's scores; the same events are "
                             "simulated again)", margin=(5, 10, 0, 10)),
            pn.widgets.CheckBoxGroup.from_param(self.form.param.retrain_models, inline=True),
            TrainPanel(self.control, self.form, HNL_NN_MODELS), sizing_mode="stretch_width")
        self._start()

    def _show_run(self, *events) -> None:
        if self.choice.run is None:
            text = ("No HNL study is saved in this runs folder yet. A small one is being trained now; the views "
                    "appear here when it is saved. Progress:" if self.control.running else
                    "No HNL study is saved in this runs folder yet: press **Retrain** below to train a small one "
                    f"({self.form.events:,} events, a few minutes), or run `hepml study hnl` for the full size.")
            self.result = None
            self._show_nothing_saved(text)
            return
        try:
            self.result = _load(self.runs_dir, self.choice.run)
            self.state = HnlSignificanceState(self.result)
        except Exception as err:  # a broken run folder: say which and why, keep the page alive
            self.result = None
            self._show_broken_run(err)
            return
        r, s = self.result, self.state
        self.control.show_saved(saved_history(r.histories))
        n_sig = int((r.events["label"] == 1).sum())
        self._header.object = (
            f"Study **{r.study_run_id}** · {len(r.events):,} test events ({n_sig:,} signal) · models: "
            f"{', '.join(r.models)} · click a point to see that mass's bins")
        self._controls[:] = [
            pn.widgets.CheckBoxGroup.from_param(s.param.models, name="models / observables", inline=False),
            pn.widgets.RadioBoxGroup.from_param(s.param.binning, inline=True),
            pn.widgets.RadioBoxGroup.from_param(s.param.method, inline=True),
            pn.widgets.Select.from_param(s.param.channel),
            pn.widgets.FloatSlider.from_param(s.param.max_rel_unc, sizing_mode="stretch_width"),
        ]
        self._tabs[:] = [
            ("Significance vs mass", pn.Column(SignificanceVsMass(s), BinDetail(s), sizing_mode="stretch_width")),
            ("Table", with_csv(pn.pane.DataFrame(pn.bind(lambda table: _summary(s), s.param.table), index=False,
                                                 sizing_mode="stretch_width", float_format="{:.3g}".format),
                               "hnl-z-per-mass.csv")),
            ("Pre-training", RegressionResiduals(r.residuals)),
            ("Train", self.train_panel),
        ]
        self._link_view()

    def _link_fields(self) -> list[LinkField]:
        s = self.state
        return [LinkField(s, "binning", "binning"), LinkField(s, "method", "method"),
                LinkField(s, "channel", "channel"), LinkField(s, "mass", "mass"),
                LinkField(s, "max_rel_unc", "max_rel_unc", "threshold",
                          "bound on the relative statistical uncertainty of signal and background per bin")]

    def _report_result(self, run_id: str) -> HnlResult:
        return _load(self.runs_dir, run_id)

    def template(self) -> pn.template.FastListTemplate:
        """The page in the app's template."""
        sidebar = [nav_links("hnl"), RunSelector(self.choice, label="HNL study run"), self._controls,
                   *self._sidebar_exports(),
                   pn.pane.Markdown("Z: per-bin S/√B (or Asimov Z) in quadrature, bins with relative "
                                    "statistical uncertainty below the bound for signal and background; "
                                    "signal of each mass against all background of the channel.",
                                    styles={"font-size": "0.85em", "color": "#555"})]
        return make_template(TITLE, sidebar, self._main())



def _summary(state: HnlSignificanceState) -> pd.DataFrame:
    """Channel-averaged Z per mass, one column per selected model."""
    if not len(state.table):
        return pd.DataFrame()
    out = comparison_table(state.table)
    out["mass"] = out["mass"].astype(int).astype(str) + " GeV"  # exact masses, not 1e+03
    return out




def hnl_page(runs_dir: str, default_settings: HnlSettings | None = None):
    """The ``pn.serve`` factory body: a new page (own state and widgets) in its template."""
    return HnlPage(runs_dir, default_settings=default_settings).template()


def report_sections(result: HnlResult) -> list[tuple[str, object]]:
    """Titled plots of the static report: Z vs mass (both binnings), the bins at one mass, residuals."""
    from app.components.style import ensure_extension

    ensure_extension()
    sections = []
    for binning in ("right_to_left", "equal_signal"):
        table = significance_table(result, binning=binning)
        curves = {}
        for model in result.models:
            g = table[table["model"] == model].groupby("mass")["z"].mean().sort_index()
            curves[model] = (g.index.to_numpy(float), g.to_numpy(float))
        sections.append((f"Significance vs mass ({binning.replace('_', '-')} binning, channel average)",
                         pn.pane.HoloViews(significance_plot(curves, method="s_over_sqrt_b", binning=binning,
                                                             channel=AVERAGE), sizing_mode="stretch_width",
                                           min_height=420)))
        if binning == "right_to_left":
            comp = comparison_table(table)
            sections.append(("Channel-averaged Z per mass", pn.pane.DataFrame(comp, float_format="{:.3g}".format,
                                                                              sizing_mode="stretch_width")))
    state = HnlSignificanceState(result)
    state.mass = 300.0 if 300.0 in result.masses else result.masses[len(result.masses) // 2]
    state.detail_channel = "tau_mu_e" if "tau_mu_e" in result.channels else result.channels[0]
    bins, samples = state.detail()
    hist, per_bin = bin_detail_plots(bins, samples, model=state.detail_model, mass=state.mass,
                                     channel=state.detail_channel)
    sections.append((f"Bins of {state.detail_model} at m_N = {state.mass:g} GeV, {state.detail_channel}",
                     pn.Column(pn.pane.HoloViews(hist, sizing_mode="stretch_width", min_height=360),
                               pn.pane.HoloViews(per_bin, sizing_mode="stretch_width", min_height=260),
                               sizing_mode="stretch_width")))
    if result.residuals is not None and len(result.residuals):
        sections.append(("Regression pre-training: delta-phi(l1, l2) residual with and without drop-in",
                         pn.pane.HoloViews(residual_plot(result.residuals, "dphi_12"), sizing_mode="stretch_width",
                                           min_height=360)))
    return sections
