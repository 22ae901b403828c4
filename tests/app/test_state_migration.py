"""Migration matrix at a threshold: binary-search answers equal a boolean-mask recomputation."""

from __future__ import annotations

import numpy as np
import pytest
from app_frames import CLASSES

from app.state.cut import ThresholdCut
from app.state.migration import FlipMigration, MigrationState, SelectedMigration
from app.state.samples import scored_events
from hepml_core.metrics.migration import migration_matrix


@pytest.fixture
def mc(study_frame):
    return scored_events(study_frame[study_frame["sample"] == "mc"], CLASSES, extras=["anomaly"])


@pytest.fixture
def data(study_frame):
    return scored_events(study_frame[study_frame["sample"] == "data"], CLASSES, extras=["anomaly"])


def _reference(ev, mask):
    """The matrix recomputed from scratch with a mask: the naive peer of the scan."""
    r, k = len(ev.truth_names), ev.n_classes
    return np.bincount(ev.truth[mask] * k + ev.predicted[mask], weights=ev.weight[mask],
                       minlength=r * k).reshape(r, k)


@pytest.mark.parametrize("t", [0.0, 0.01, 0.02, 0.05, 0.2, 0.99])
def test_selected_migration_equals_mask_recompute(mc, data, t):
    for ev in (mc, data):
        table = SelectedMigration(ev, ev.extras["anomaly"], "x")
        above = ev.extras["anomaly"] >= t
        np.testing.assert_allclose(table.counts(t, above=True), _reference(ev, above), atol=1e-9)
        np.testing.assert_allclose(table.counts(t, above=False), _reference(ev, ~above), atol=1e-9)


def test_selected_migration_agrees_with_core_migration_matrix(mc):
    table = SelectedMigration(mc, mc.extras["anomaly"], "x")
    mask = mc.extras["anomaly"] >= 0.02
    ref = migration_matrix(mc.truth[mask], mc.predicted[mask], 4, sample_weight=mc.weight[mask])
    np.testing.assert_allclose(table.counts(0.02), ref, atol=1e-9)


@pytest.mark.parametrize("t", [0.1, 0.3, 0.5, 0.8])
def test_flip_migration_equals_mask_recompute(mc, t):
    signal = 1
    table = FlipMigration(mc, signal, "x")
    others = mc.proba.copy()
    others[:, signal] = -np.inf
    pred = np.where(mc.proba[:, signal] >= t, signal, others.argmax(axis=1))
    ref = migration_matrix(mc.truth, pred, 4, sample_weight=mc.weight)
    np.testing.assert_allclose(table.counts(t), ref, atol=1e-9)


def test_state_follows_the_threshold_and_normalisation(mc, data):
    cut = ThresholdCut(threshold=0.01)
    state = MigrationState(cut, {"MC test": SelectedMigration(mc, mc.extras["anomaly"], "MC test events"),
                                 "data (toy truth)": SelectedMigration(data, data.extras["anomaly"], "data")},
                           normalisation="counts")
    before, summary = state.counts.copy(), state.summary
    cut.threshold = 0.05  # the trigger: one parameter of the shared cut
    assert state.counts.sum() < before.sum()
    assert state.summary != summary and "0.05 " in state.summary
    np.testing.assert_allclose(state.shown, state.counts)

    state.normalisation = "row %"
    rows = state.shown.sum(axis=1)
    assert np.all((np.isclose(rows, 100.0)) | (rows == 0))
    state.normalisation = "column %"
    cols = state.shown.sum(axis=0)
    assert np.all((np.isclose(cols, 100.0)) | (cols == 0))

    state.table = "data (toy truth)"
    assert state.row_names == [*CLASSES, "anomaly"] and state.shown.shape == (5, 4)
    state.selection = state.param.selection.objects[1]  # kept: below the threshold
    kept = (data.extras["anomaly"] < cut.threshold)
    np.testing.assert_allclose(state.counts, _reference(data, kept), atol=1e-9)


def test_threshold_cut_range_is_per_instance():
    a, b = ThresholdCut(), ThresholdCut()
    a.set_range(0.0, 0.2)
    assert a.param.threshold.bounds == (0.0, 0.2)
    assert b.param.threshold.bounds == (0.0, 1.0)
    assert a.threshold <= 0.2
