"""The nuclei domain-adaptation page: state numbers against direct counts, the page with and without a study."""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest

from hepml_core.runs import RunStore
from hepml_core.studies.ams_nuclei import AmsNucleiSettings, run_ams_nuclei
from hepml_core.studies.ams_nuclei_tables import efficiency_table

from app.pages.ams_nuclei import AmsNucleiPage, report_sections
from app.state.ams_nuclei import NucleiSettingsForm, NucleiViewState, list_nuclei_studies
from app.state.training import TrainingService


@pytest.fixture(scope="module")
def nuclei_study(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("nuclei_app") / "runs"
    settings = AmsNucleiSettings(events=2000, data_events=1600, adversarial_epochs=1, plain_epochs=1, probe_epochs=1,
                                 batch_size=256, branch_dim=8, gnn_hidden=8, gnn_rounds=1, heads=2, fused_dim=16)
    result = run_ams_nuclei(settings, RunStore(runs_dir))
    return str(runs_dir), result


def test_efficiency_at_threshold_matches_direct_counts(nuclei_study):
    _, result = nuclei_study
    state = NucleiViewState(result, selection="P", threshold=0.5)
    got = state.at_threshold().set_index(["model", "domain"])
    f = result.frame[result.frame["selection"] == "P"]
    for (model, domain), row in got.iterrows():
        sub = f[f["domain"] == domain]
        sig = sub["true_label"] == "signal"
        passed = sub[f"score_{model}"] >= 0.5
        assert row["signal_efficiency"] == pytest.approx((sig & passed).sum() / sig.sum())
    table = efficiency_table(result, [0.5]).query("selection == 'P'").set_index(["model", "domain"])
    np.testing.assert_allclose(got["signal_efficiency"].sort_index(), table["signal_efficiency"].sort_index())


def test_before_after_histograms_count_the_events(nuclei_study):
    _, result = nuclei_study
    state = NucleiViewState(result, selection="P", domain="mc", variable="l1_charge", threshold=0.5,
                            model="plain")
    before, after = state.variable_histograms()
    f = result.frame
    sel = (f["selection"] == "P") & (f["domain"] == "mc")
    lo, hi = before.edges[0], before.edges[-1]
    inside = sel & (f["l1_charge"] >= lo) & (f["l1_charge"] <= hi)
    assert before.counts.sum() == pytest.approx(f.loc[inside, "weight"].sum())
    assert after.counts.sum() == pytest.approx(f.loc[inside & (f["score_plain"] >= 0.5), "weight"].sum())
    assert (after.counts <= before.counts + 1e-9).all()
    assert before.names[0].endswith("signal")  # signal stacks first, backgrounds on top
    att = state.attention("adversarial")
    np.testing.assert_allclose(att[["tracker_gnn", "cluster_cnn", "rigidity_mlp", "tof_mlp"]].sum(axis=1), 1.0,
                               atol=1e-5)


def test_page_with_and_without_a_study(nuclei_study, tmp_path):
    runs_dir, result = nuclei_study
    service = TrainingService(tmp_path / "svc")
    try:
        empty = AmsNucleiPage(str(tmp_path / "empty"), service=service)
        assert len(empty._tabs) == 1 and "No nuclei study" in empty._tabs[0][0].object
        page = AmsNucleiPage(runs_dir, service=service)
        assert page.choice.run == result.study_run_id == list_nuclei_studies(runs_dir)[0][1]
        assert [t for t in page._tabs._names] == ["Training", "Scores", "Efficiency", "Before/after cut", "Attention",
                                                  "Train"]
        assert "domain-probe accuracy" in page._header.object
        assert isinstance(page.template(), pn.template.FastListTemplate)
    finally:
        service.shutdown()


def test_report_sections_and_form(nuclei_study):
    _, result = nuclei_study
    sections = report_sections(result)
    assert len(sections) >= 6 and all(isinstance(title, str) and title for title, _ in sections)
    form = NucleiSettingsForm(result.settings)
    form.lambda_max = 0.4
    assert form.to_settings().lambda_max == 0.4 and form.to_settings().events == result.settings.events
