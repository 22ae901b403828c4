"""The ALICE PID page: renders every view, the threshold moves the metrics without rescoring, the
attention view explains one track, and an empty runs folder offers training."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest
from bokeh.document import Document

from app.pages.alice_pid import AlicePidPage, report_sections
from app.state.alice_pid import PidSettingsForm, PidState, list_pid_studies, load_pid_data
from app.state.training import TrainingService
from hepml_core.runs import RunStore
from hepml_core.studies.alice_pid import AlicePidSettings, run_alice_pid
from hepml_core.studies.alice_pid_tables import metrics_table


@pytest.fixture(scope="module")
def pid_runs(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("pid_app") / "runs"
    result = run_alice_pid(AlicePidSettings(events=2500, fse_epochs=1, mlp_epochs=1, xgb_trees=10,
                                            ensemble_min_tracks=100, species=("pion", "kaon")), RunStore(runs_dir))
    return str(runs_dir), result


@pytest.fixture
def service(pid_runs):
    svc = TrainingService(pid_runs[0])
    yield svc
    svc.shutdown()


def test_page_renders_every_view(pid_runs, service):
    runs_dir, result = pid_runs
    page = AlicePidPage(runs_dir, service=service)
    page.template().server_doc(Document())
    assert [name for name, _ in zip(page._tabs._names, page._tabs)] == [
        "Live metrics", "Tables", "ROC", "Missing patterns", "Attention", "Train"]
    for i in range(len(page._tabs)):
        page._tabs.active = i
    assert result.study_run_id in page._header.object


def test_threshold_moves_the_metrics_as_the_tables_say(pid_runs, service):
    runs_dir, result = pid_runs
    state = PidState(load_pid_data(runs_dir, result.study_run_id))
    for t in (0.5, 0.1, 0.9):
        state.threshold = t
        ref = metrics_table(result, t).reset_index(drop=True)
        got = state.metrics.reset_index(drop=True)
        np.testing.assert_allclose(got["f1"], ref["f1"])
    state.species = "kaon"
    rows = state.species_metrics("all")
    assert list(rows["method"]) == [m for m in result.methods if m != "case_deletion"]
    nsigma_before = rows.set_index("method").loc["nsigma", "f1"]
    state.threshold = 0.3
    assert state.species_metrics("all").set_index("method").loc["nsigma", "f1"] == nsigma_before  # fixed 3-sigma cut
    assert set(state.pattern_metrics["pattern"]) == set(result.frame["pattern"])


def test_attention_of_a_track_sums_to_one_over_present_features(pid_runs):
    runs_dir, result = pid_runs
    state = PidState(load_pid_data(runs_dir, result.study_run_id), species="kaon")
    incomplete = int(np.flatnonzero(~result.frame["complete"].to_numpy())[0])
    state.track = incomplete
    att = state.attention()
    assert list(att["feature"]) == list(result.features)
    assert att.loc[~att["present"], "attention"].eq(0).all()
    assert att["attention"].sum() == pytest.approx(1.0, abs=1e-5)
    assert (~att["present"]).any()


def test_report_sections_render(pid_runs):
    _, result = pid_runs
    sections = report_sections(result)
    titles = [t for t, _ in sections]
    assert titles[0].startswith("Purity, efficiency and F1") and "F1 (%) on complete tracks only" in titles
    for _, obj in sections:
        if isinstance(obj, hv.core.Dimensioned):
            hv.render(obj)


def test_empty_runs_folder_offers_training_and_form_round_trip(tmp_path):
    svc = TrainingService(tmp_path)
    try:
        page = AlicePidPage(str(tmp_path), service=svc)
        assert page.state is None and len(page._tabs) == 1
        assert list_pid_studies(str(tmp_path)) == []
    finally:
        svc.shutdown()
    form = PidSettingsForm(AlicePidSettings(events=5000, fse_epochs=3))
    form.real = True
    settings = form.to_settings()
    assert settings.real and settings.events == 5000 and settings.fse_epochs == 3
