"""The nuclei study end to end at a tiny size, and its tables against independent references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from hepml_core.runs import RunStore
from hepml_core.studies.ams_nuclei import MODELS, AmsNucleiSettings, load_ams_nuclei, run_ams_nuclei
from hepml_core.studies.ams_nuclei_tables import (auc_table, below_l1_table, domain_table, efficiency_table,
                                                  l1_window, variable_histograms, write_tables)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("nuclei") / "runs")
    settings = AmsNucleiSettings(events=2000, data_events=1500, adversarial_epochs=1, plain_epochs=1, probe_epochs=2,
                                 batch_size=256, branch_dim=8, gnn_hidden=8, gnn_rounds=1, heads=2, fused_dim=16)
    steps = []
    result = run_ams_nuclei(settings, store, progress=steps.append)
    return store, result, steps


def test_result_holds_both_models_and_domains(study):
    store, result, steps = study
    f = result.frame
    assert set(f["domain"]) == {"mc", "data"}
    assert len(f) == pytest.approx(0.2 * 3500, abs=3)  # the test split of both samples
    for model in MODELS:
        assert f[f"score_{model}"].between(0, 1).all()
        att = f[[c for c in f.columns if c.startswith(f"att_{model}_")]].to_numpy()
        assert att.shape[1] == 4
        np.testing.assert_allclose(att.sum(axis=1), 1.0, atol=1e-5)
        assert 0 <= result.domain_accuracy[model] <= 1
    assert "lambda" in result.histories["adversarial"] and "lambda" not in result.histories["plain"]
    assert any("adversarial" in s for s in steps)
    loaded = load_ams_nuclei(store)
    assert loaded.study_run_id == result.study_run_id
    pd.testing.assert_frame_equal(loaded.frame, result.frame)
    assert loaded.settings == result.settings and loaded.domain_accuracy == result.domain_accuracy


def test_auc_table_matches_sklearn(study):
    _, result, _ = study
    table = auc_table(result)
    f = result.frame
    for model in MODELS:
        for domain in ("mc", "data"):
            sub = f[f["domain"] == domain]
            want = roc_auc_score(sub["true_label"] == "signal", sub[f"score_{model}"])
            got = table.query("model == @model and domain == @domain and selection == 'all'")["auc"].item()
            assert got == pytest.approx(want, abs=1e-9)


def test_efficiency_table_matches_direct_counts(study):
    _, result, _ = study
    table = efficiency_table(result)
    assert sorted(table["threshold"].unique()) == sorted(result.thresholds) and 0.5 in result.thresholds
    f = result.frame
    for _, row in table.sample(12, random_state=1).iterrows():
        sub = f[f["domain"] == row["domain"]]
        if row["selection"] != "all":
            sub = sub[sub["selection"] == row["selection"]]
        sig = sub["true_label"] == "signal"
        passed = sub[f"score_{row['model']}"] >= row["threshold"]
        assert row["signal_efficiency"] == pytest.approx((passed & sig).sum() / sig.sum())
        if passed.any():
            assert row["background_fraction"] == pytest.approx((passed & ~sig).sum() / passed.sum())
        else:
            assert np.isnan(row["background_fraction"])


def test_histograms_and_below_l1(study, tmp_path):
    _, result, _ = study
    h = variable_histograms(result, "plain", 0.0, value_range=(-1e3, 1e3), bins=5)
    before = h[(h["stage"] == "before") & (h["selection"] == "all")]
    after = h[(h["stage"] == "after") & (h["selection"] == "all")]
    # threshold 0 keeps every event; the stacks add up to the weighted number of events
    assert before["weighted_events"].sum() == pytest.approx(result.frame["weight"].sum())
    np.testing.assert_allclose(before["weighted_events"].to_numpy(), after["weighted_events"].to_numpy())
    lo, hi = l1_window(result.frame[result.frame["domain"] == "mc"], "P")
    assert lo < 15 < hi and hi - lo == pytest.approx(1.0, abs=0.1)
    b = below_l1_table(result)
    assert ((b["below_l1_before"] >= 0) & (b["below_l1_before"] <= 1)).all()
    assert set(domain_table(result)["model"]) == set(MODELS)
    names = {p.name for p in write_tables(result, tmp_path)}
    assert {"domain.csv", "auc.csv", "efficiency.csv"} <= names
    assert list(pd.read_csv(tmp_path / "efficiency.csv").columns) == [
        "model", "selection", "domain", "threshold", "signal_efficiency", "background_fraction"]
    assert list(pd.read_csv(tmp_path / "auc.csv").columns) == ["model", "selection", "domain", "auc"]
    domain = pd.read_csv(tmp_path / "domain.csv").set_index("model")
    assert list(domain.columns) == ["domain_accuracy", "domain_head_accuracy"]
    assert domain.loc["adversarial", "domain_head_accuracy"] == pytest.approx(result.domain_head_accuracy)
    assert np.isnan(domain.loc["plain", "domain_head_accuracy"])
