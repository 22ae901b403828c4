"""The HNL page on a tiny real study, without a browser: state, views, the empty first start and Retrain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from bokeh.document import Document

from app.components.hnl import bin_detail_plots, significance_plot
from app.pages.hnl import HnlPage, report_sections
from app.state.hnl import AVERAGE, HnlSettingsForm, HnlSignificanceState, hnl_job_factory
from app.state.training import TrainingService
from hepml_core.runs import RunStore
from hepml_core.studies.hnl import HnlSettings, run_hnl
from hepml_core.studies.hnl_tables import significance_table

TINY = HnlSettings(events=12_000, test_fraction=0.5, validation_fraction=0.15, pnn_epochs=1, bdt_trees=5,
                   regression_width=8, regression_depth=3, regression_events_per_epoch=1000, regression_epochs=1,
                   transfer_epochs=1, transfer_unfreeze_epoch=1, transfer_hidden=(8,),
                   per_mass_masses=(85.0, 300.0), per_mass_epochs=1, per_mass_bdt_trees=5)


@pytest.fixture(scope="module")
def hnl_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("hnl_app") / "runs"
    result = run_hnl(TINY, RunStore(runs))
    return runs, result


@pytest.fixture
def service(hnl_runs):
    s = TrainingService(hnl_runs[0])
    yield s
    s.shutdown()


def test_state_curves_follow_channel_binning_and_bound(hnl_runs):
    _, result = hnl_runs
    s = HnlSignificanceState(result)
    s.max_rel_unc = 0.5  # tiny sample: a loose bound so that bins exist
    ref = significance_table(result, ["pnn"], binning="right_to_left", max_rel_unc=0.5)
    x, z = s.curve("pnn")
    expected = ref.groupby("mass")["z"].mean()
    np.testing.assert_allclose(z, expected.to_numpy())
    s.channel = "tau_mu_e"
    x2, z2 = s.curve("pnn")
    one = ref[ref["channel"] == "tau_mu_e"].set_index("mass")["z"].sort_index()
    np.testing.assert_allclose(z2, one.to_numpy())
    s.binning = "equal_signal"
    assert set(s.table["model"]) == set(s.models)
    s.models = ["mt_tot", "m_3l"]  # classical observables by name
    assert set(s.table["model"]) == {"mt_tot", "m_3l"}
    s.select_mass(310.0)
    assert s.mass == 300.0
    bins, samples = s.detail()
    hist, per_bin = bin_detail_plots(bins, samples, model=s.detail_model, mass=s.mass, channel=s.detail_channel)
    assert hist is not None and per_bin is not None
    plot = significance_plot({m: s.curve(m) for m in s.models}, method=s.method, binning=s.binning, channel=AVERAGE)
    assert "GeV" in plot.get(0).kdims[0].name


def test_per_mass_variants_are_models_to_select_and_retrain(hnl_runs):
    _, result = hnl_runs
    s = HnlSignificanceState(result)
    assert {"dnn_per_mass", "bdt_per_mass"} <= set(s.param.models.objects) and "dnn_per_mass" in s.models
    s.max_rel_unc = 0.5
    x, z = s.curve("dnn_per_mass")
    assert list(x) == [85.0, 300.0] and np.isfinite(z).all()  # only the masses that have a per-mass model
    s.models = ["pnn", "dnn_per_mass"]
    plot = significance_plot({m: s.curve(m) for m in s.models}, method=s.method, binning=s.binning, channel=AVERAGE)
    curves = [e for e in plot if type(e).__name__ == "Curve"]
    assert [c.label for c in curves] == ["parametrised DNN", "per-mass DNN"]
    assert [c.opts.get().kwargs["line_dash"] for c in curves] == ["solid", "dashed"]
    s.detail_model, s.mass = "bdt_per_mass", 85.0
    bins, (xs, ws, xb, wb) = s.detail()
    assert len(xs) and len(xb) and np.isfinite(xb).all()
    s.mass = 100.0  # no per-mass model there: the bin view says so
    bins, samples = s.detail()
    assert bins is None and not len(samples[0]) and not len(samples[2])
    hist, _ = bin_detail_plots(bins, samples, model=s.detail_model, mass=s.mass, channel=s.detail_channel)
    assert "no per-mass BDT score at this mass" in hist.opts.get().kwargs["title"]
    # the Retrain form: per-mass variants are ticked like the others and count as one network fit
    form = HnlSettingsForm(result.settings)
    assert form.retrain_models == ["bdt", "pnn", "transfer", "dnn_per_mass", "bdt_per_mass"]
    form.retrain_models = ["dnn_per_mass"]
    _, text, probe = hnl_job_factory(form, "unused", lambda: result)()
    assert "dnn_per_mass" in text and probe.models == ("dnn_per_mass",) and probe.planned == (2 * 1,)
    # a study made without per-mass variants: not ticked at first, ticking one adds it
    plain = HnlSettingsForm(replace(result.settings, per_mass_models=False))
    assert plain.retrain_models == ["bdt", "pnn", "transfer"]
    plain.retrain_models = ["bdt_per_mass"]
    assert plain.to_settings().per_mass_models


def test_page_renders_and_retrain_keeps_untouched_models(hnl_runs, service):
    runs, result = hnl_runs
    page = HnlPage(str(runs), service=service)
    assert page.choice.run == result.study_run_id
    assert [name for name in page._tabs._names] == ["Significance vs mass", "Table", "Pre-training", "Train"]
    page.template().server_doc(Document())
    assert page.form.events == TINY.events
    page.form.retrain_models = ["bdt"]
    work, text, probe = hnl_job_factory(page.form, str(runs), lambda: page.result)()
    assert "bdt" in text
    new_id = work([], None, lambda s: None)
    new = RunStore(runs).load(new_id)
    assert new.config["runs"]["pnn"] == result.run_ids["pnn"]
    page.form.retrain_models = []
    with pytest.raises(ValueError, match="tick"):
        page.form.to_settings()


def test_empty_runs_folder_offers_training(tmp_path):
    service = TrainingService(tmp_path)
    try:
        page = HnlPage(str(tmp_path), service=service)
        assert page.result is None and page._tabs._names == ["Train"]
        page.template().server_doc(Document())
    finally:
        service.shutdown()


def test_report_sections_have_titles(hnl_runs):
    _, result = hnl_runs
    sections = report_sections(result)
    titles = [t for t, _ in sections]
    assert any("Significance vs mass" in t for t in titles) and any("drop-in" in t for t in titles)


def test_form_round_trip():
    form = HnlSettingsForm(HnlSettings(pnn_hidden=(40, 20)))
    assert form.pnn_hidden == "40, 20"
    form.pnn_hidden = "10; 5"
    assert form.to_settings().pnn_hidden == (10, 5)
    form.pnn_hidden = "ten"
    with pytest.raises(ValueError, match="comma-separated"):
        form.to_settings()
