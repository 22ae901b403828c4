"""Class fractions drive the discriminants, their histograms and the one-vs-rest ROC curves."""

from __future__ import annotations

import numpy as np
import pytest
from app_frames import CLASSES, FRACTIONS
from sklearn.metrics import roc_auc_score

from app.state.classifier import ClassifierScores
from app.state.fractions import class_fractions_state
from app.state.samples import scored_events
from hepml_core.scoring.discriminants import discriminants


@pytest.fixture
def state(study_frame):
    mc = scored_events(study_frame[study_frame["sample"] == "mc"], CLASSES, extras=["anomaly"])
    data = scored_events(study_frame[study_frame["sample"] == "data"], CLASSES, extras=["anomaly"])
    return ClassifierScores(mc, class_fractions_state(CLASSES, FRACTIONS), data)


def test_fraction_parameters_are_labelled_per_class():
    f = class_fractions_state(CLASSES, FRACTIONS)
    assert [f.param[n].label for n in f.names] == [f"f_{c}" for c in CLASSES]
    np.testing.assert_allclose(f.values(), FRACTIONS)
    f.set_values([1, 1, 1, 1])
    np.testing.assert_allclose(f.normalised(), 0.25)
    f.param.trigger("reset")
    np.testing.assert_allclose(f.values(), FRACTIONS)


def test_fraction_instances_do_not_share_values():
    a, b = class_fractions_state(CLASSES, FRACTIONS), class_fractions_state(CLASSES, FRACTIONS)
    a.f0 = 0.9
    assert b.f0 == pytest.approx(FRACTIONS[0])


def test_scores_are_the_core_discriminants(state):
    np.testing.assert_allclose(state.scores, discriminants(state.events.proba, FRACTIONS))


def test_editing_a_fraction_recomputes_discriminants_and_auc(state):
    before = dict(state.aucs)
    state.fractions.f3 = 0.01  # "other" almost absent from the expected sample
    f = state.fractions.normalised()
    np.testing.assert_allclose(state.scores, discriminants(state.events.proba, f))
    assert state.aucs != before
    # AUCs agree with scikit-learn on the recomputed D_k (weighted, one vs rest)
    ev = state.events
    for k, name in enumerate(CLASSES):
        ref = roc_auc_score(ev.truth == k, state.scores[:, k], sample_weight=ev.weight)
        assert state.aucs[name] == pytest.approx(ref, abs=1e-9)
    # the D of "other" does not use f_other, so only the other classes' curves moved
    assert state.aucs["other"] == pytest.approx(before["other"], abs=1e-12)


def test_histograms_hold_every_weighted_event(state):
    ev = state.events
    for k, h in enumerate(state.histograms):
        assert h.names == CLASSES
        for j in range(len(CLASSES)):
            assert h.counts[j].sum() == pytest.approx(ev.weight[ev.truth == j].sum())
    assert state.data_histograms[0].counts.sum() == pytest.approx(len(state.data))


def test_probability_mode_and_rejection_axes(state):
    state.score_kind = "p"
    np.testing.assert_allclose(state.scores, state.events.proba)
    curve = state.rocs[0]
    state.roc_mode = "background rejection"
    x, y = state.roc_points(curve)
    np.testing.assert_allclose(x, curve.y)  # signal efficiency
    np.testing.assert_allclose(y, 1 - curve.x)  # background rejection
    assert all(len(c.x) <= 1200 for c in state.rocs)
