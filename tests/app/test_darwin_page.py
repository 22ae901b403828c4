"""DARWIN page logic without a browser: the search state's p-value follows R and the injected signal."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import pytest

from hepml_core.runs import RunStore
from hepml_core.studies.darwin import DarwinSettings, run_darwin

from app.components.darwin import pvalue_curve_plot, ts_distributions_plot
from app.pages.darwin import DarwinPage, report_sections
from app.state.darwin import DarwinSearchState, DarwinSettingsForm, data_from_result, list_darwin_studies

TINY = DarwinSettings(events=2500, data_events=3000, signal_events=600, classifier_epochs=3, vae_epochs=3,
                      n_toys=150, n_signal_toys=50, r_values=(0.0, 10.0, 1e4))


@pytest.fixture(scope="module")
def darwin_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("darwin") / "runs"
    result = run_darwin(TINY, RunStore(runs))
    return runs, result


def test_state_follows_strength_mass_and_r(darwin_runs):
    _, result = darwin_runs
    state = DarwinSearchState(data_from_result(result))
    assert state.R in TINY.r_values and state.mass == 50.0
    assert len(state.curve) == len(TINY.r_values)
    state.strength = 0.0
    p_none = state.median_p
    state.strength = 5.0
    assert state.median_p < p_none  # more injected signal, stronger rejection of H0
    assert state.point["expected_signal"] > 0
    state.R = 0.0
    before = state.point["ts_cut"]
    state.R = 1e4
    assert state.point["ts_cut"] > before  # the threshold is a quantile of the new TS
    assert state.ts_threshold() == pytest.approx(state.point["ts_cut"])
    data_ts = state.pseudo_data_ts()
    expected = result.expected["background_total"] + state.expected_signal_total()
    assert abs(len(data_ts) - expected) < 5 * np.sqrt(expected)


def test_plots_and_report_sections_render(darwin_runs):
    _, result = darwin_runs
    state = DarwinSearchState(data_from_result(result))
    for element in (ts_distributions_plot(state), pvalue_curve_plot(state)):
        assert isinstance(element, hv.Overlay)
        hv.render(element)  # bokeh figure builds (labels, log axes) without errors
    sections = report_sections(result)
    titles = [t for t, _ in sections]
    assert "Median p-value vs R" in titles and "VAE latent space" in titles
    assert all(isinstance(t, str) and obj is not None for t, obj in sections)


def test_page_lists_studies_and_shows_a_message_without_one(darwin_runs, tmp_path):
    runs, result = darwin_runs
    assert [rid for _, rid in list_darwin_studies(str(runs))] == [result.study_run_id]
    page = DarwinPage(str(runs))
    assert page.state is not None and len(page._tabs) == 3
    empty = DarwinPage(str(tmp_path / "none"))
    assert empty.state is None and "No DARWIN study" in empty._tabs[0][0].object
    assert isinstance(empty.template(), pn.template.FastListTemplate)
    form = DarwinSettingsForm(TINY, events=4000)
    assert form.to_settings().events == 4000 and form.to_settings().r_values == TINY.r_values
