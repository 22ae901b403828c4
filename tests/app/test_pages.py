"""Pages on real (tiny) runs, without a browser: build, render into a Bokeh document, follow the cut."""

from __future__ import annotations

import numpy as np
import pytest
from bokeh.document import Document

from app.components.migration import MigrationMatrix
from app.pages.he_study import HeStudyPage
from app.pages.your_data import YourDataPage
from app.state.he_study import HeSettingsForm
from app.state.loaders import load_study_data
from app.state.training import TrainingService
from hepml_core.studies.ams_he import AmsHeSettings


@pytest.fixture
def service(tiny_runs):
    s = TrainingService(tiny_runs[0])
    yield s
    s.shutdown()


def test_he_page_renders_every_view(tiny_runs, service):
    runs_dir, ids = tiny_runs
    page = HeStudyPage(str(runs_dir), service=service)
    assert page.choice.run == ids["study"]
    assert list(page._tabs._names) == ["Migration & anomalies", "Discriminants", "ROC", "Train"]
    page.template().server_doc(Document())  # the whole page builds its Bokeh models
    # the Retrain form starts from the shown run's settings
    assert page.form.events == 6000 and page.form.classifier_epochs == 2
    assert set(page.control.history["model"]) == {"classifier", "autoencoder"}


def test_he_page_threshold_moves_matrix_and_flagged_fractions(tiny_runs, service):
    page = HeStudyPage(str(tiny_runs[0]), service=service)
    s = page.state
    low, high = s.cut.param.threshold.bounds
    s.cut.threshold = low
    full, flagged = s.migration.counts.copy(), s.anomaly.flagged_fraction("data")
    data = s.data.data
    t = float(np.median(data.extras["anomaly"]))
    s.cut.threshold = t
    assert s.migration.counts.sum() < full.sum()
    above = data.extras["anomaly"] >= t
    assert s.anomaly.flagged_fraction("data") == pytest.approx(data.weight[above].sum() / data.weight.sum())
    assert s.anomaly.flagged_fraction("data") < flagged


def test_migration_view_patches_the_rendered_cells(tiny_runs, service):
    page = HeStudyPage(str(tiny_runs[0]), service=service)
    s = page.state
    view = MigrationMatrix(s.migration)
    view.__panel__().get_root(Document())
    s.migration.normalisation = "counts"  # a re-render with HoloViews ...
    s.cut.threshold = float(np.quantile(s.data.mc.extras["anomaly"], 0.3))
    (heat,) = list(view._heat._entries.values())  # ... then a patch of the same figure's cells
    source, glyph = heat["source"], heat["glyph"]
    xs, ys = source.data[glyph.x], source.data[glyph.y]
    values = source.data[glyph.fill_color.field]
    rows, cols = s.migration.row_names, s.migration.col_names
    for x, y, v in zip(xs, ys, values):
        assert v == pytest.approx(s.migration.shown[rows.index(y), cols.index(x)])


def test_study_data_is_cached_between_sessions(tiny_runs):
    runs_dir, ids = tiny_runs
    assert load_study_data(str(runs_dir), ids["study"]) is load_study_data(str(runs_dir), ids["study"])


def test_your_data_page_uses_the_user_run(tiny_runs):
    runs_dir, ids = tiny_runs
    page = YourDataPage(str(runs_dir))
    assert page.choice.run == ids["user"]
    names = list(page._tabs._names)
    assert names == ["Scores", "ROC", "Cut efficiency", "Migration", "Overtraining", "Training history"]
    page.template().server_doc(Document())
    s = page.state
    s.choice.signal = "wjets"
    assert s.cut.score_label == "p_wjets" and "p_wjets" in s.migration.current.prediction


def test_empty_runs_folder_offers_training(tmp_path):
    service = TrainingService(tmp_path)
    try:
        page = HeStudyPage(str(tmp_path), service=service, default_settings=AmsHeSettings(events=5000))
        assert page.state is None and list(page._tabs._names) == ["Train"]
        assert page.form.events == 5000
        assert list(YourDataPage(str(tmp_path))._tabs._names) == ["Start here"]
    finally:
        service.shutdown()


def test_settings_form_round_trip_and_errors():
    form = HeSettingsForm(AmsHeSettings(events=7000))
    form.classifier_hidden = "20, 12, 6"
    settings = form.to_settings()
    assert settings.events == 7000 and settings.classifier_layers == (37, 20, 12, 6, 4)
    form.ae_hidden = "ten"
    with pytest.raises(ValueError, match="comma-separated integers"):
        form.to_settings()


def test_report_sections_render_the_study(tiny_runs):
    from app.pages.he_study import report_sections
    from hepml_core.runs import RunStore
    from hepml_core.studies.ams_he import load_ams_he

    result = load_ams_he(RunStore(tiny_runs[0]))
    sections = report_sections(result)
    titles = [title for title, _ in sections]
    assert titles[0].startswith("Discriminants") and any("migration" in t for t in titles)
    for _, view in sections:
        view.get_root(Document())
