"""The He study end to end on a small sample: runs saved, result reloadable, tables consistent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepml_core.runs import RunStore
from hepml_core.scoring.discriminants import discriminants
from hepml_core.studies.ams_he import AmsHeSettings, load_ams_he, run_ams_he
from hepml_core.studies.ams_he_tables import (
    auc_table,
    discriminant_summary,
    migration_table,
    roc_table,
    write_tables,
)

SMALL = AmsHeSettings(events=8000, data_events=3000, classifier_epochs=4, ae_epochs=2, ae_batch_size=200,
                      classifier_lr=3e-3, ae_lr=1e-3)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    steps = []
    result = run_ams_he(SMALL, store, progress=steps.append)
    return store, result, steps


def test_the_study_saves_two_model_runs_and_a_study_record(study):
    store, result, steps = study
    kinds = sorted(info.kind for info in store.list())
    assert kinds == ["autoencoder", "mlp_classifier", "study"]
    assert len(steps) >= 4  # the stages are reported to whoever shows progress
    ae = store.load(result.autoencoder_run_id)
    assert ae.config["upstream"]["classifier_run"] == result.classifier_run_id
    assert ae.config["model"]["layers"] == [41, 10, 5, 10, 41]  # 37 features + 4 discriminants, as in the talk


def test_the_result_frame_follows_the_contract_and_reloads_identically(study):
    store, result, _ = study
    frame = result.frame
    assert set(frame["sample"]) == {"mc", "data"}
    assert (frame["sample"] == "data").sum() == SMALL.data_events
    for c in result.class_names:
        assert {f"p_{c}", f"D_{c}"} <= set(frame.columns)
    assert frame["anomaly"].between(0, 1).all()
    np.testing.assert_allclose(frame[[f"p_{c}" for c in result.class_names]].sum(axis=1), 1, atol=1e-5)
    # D_k are the talk's class-fraction discriminants at the training fractions.
    recomputed = discriminants(result.proba, result.fractions)
    np.testing.assert_allclose(frame[[f"D_{c}" for c in result.class_names]].to_numpy(), recomputed, rtol=1e-6)
    assert result.fractions.sum() == pytest.approx(1.0)
    again = load_ams_he(store)
    assert again.study_run_id == result.study_run_id
    pd.testing.assert_frame_equal(again.frame, result.frame)


def test_tables_are_consistent_with_the_frame(study, tmp_path):
    _, result, _ = study
    aucs = auc_table(result)
    assert (aucs["auc"] > 0.6).all(), aucs  # the classifier learned something for every class
    roc = roc_table(result)
    assert set(roc["class"]) == set(result.class_names)
    mig = migration_table(result)
    assert sorted(mig["threshold"].unique()) == [0.0, 0.08, 0.10]
    # At threshold 0 every test-MC event is in the matrix: its sum is the total MC weight.
    mc = result.frame[result.frame["sample"] == "mc"]
    total0 = mig[mig["threshold"] == 0.0]["weighted_events"].sum()
    assert total0 == pytest.approx(mc["weight"].sum())
    # Higher thresholds keep fewer events.
    sums = mig.groupby("threshold")["weighted_events"].sum()
    assert sums[0.0] >= sums[0.08] >= sums[0.10]
    summary = discriminant_summary(result)
    assert len(summary) == 16
    paths = write_tables(result, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["auc.csv", "discriminants.csv", "migration.csv", "roc.csv"]
    assert pd.read_csv(tmp_path / "out" / "migration.csv").shape[0] == 3 * 16
