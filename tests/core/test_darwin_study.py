"""The DARWIN study end to end on a tiny sample, and the VAE's -ELBO against torch.distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score
from torch.distributions import Normal, kl_divergence

from hepml_core.models.registry import build_model
from hepml_core.runs import RunStore
from hepml_core.studies.darwin import DarwinSettings, load_darwin, log_features, run_darwin
from hepml_core.studies.darwin_tables import anomaly_function, optimum_table, write_tables
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer

TINY = DarwinSettings(events=3000, data_events=3000, signal_events=600, classifier_epochs=4, vae_epochs=4,
                      n_toys=200, n_signal_toys=60, r_values=(0.0, 10.0, 1e4))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    steps = []
    return store, run_darwin(TINY, store, progress=steps.append), steps


def test_vae_neg_elbo_matches_torch_distributions():
    vae = build_model("vae", 6, 2, seed=0, layers=[6, 8, 2], beta=0.5)
    x = torch.randn(5, 6)
    mu, logvar = vae.encode(x)
    mu_d, logvar_d = vae.decode(mu)
    nll = -Normal(mu_d, torch.exp(0.5 * logvar_d)).log_prob(x).sum(1)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(vae.neg_elbo(x), nll + 0.5 * kl)
    # The sampled estimate averages to the same neighbourhood and the training loss is one draw of it.
    assert vae.event_losses(x).shape == (5,)
    gen = torch.Generator().manual_seed(0)
    assert torch.isfinite(vae.neg_elbo(x, n_samples=4, generator=gen)).all()
    assert vae.posterior_predictive(x, generator=gen).shape == x.shape


def test_vae_trains_on_custom_task_and_separates_an_outlier_population():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 1))
    x = np.hstack([z, 2 * z, -z]) + 0.05 * rng.normal(size=(4000, 3))  # a 1-D manifold in 3-D
    vae = build_model("vae", 3, 1, seed=1, layers=[3, 16, 1])
    res = Trainer(epochs=30, batch_size=128, lr=3e-3, seed=1, early_stopping=None).fit(
        vae, TensorData(x[:3000]), TensorData(x[3000:]))
    assert res.history[-1]["val_loss"] < res.history[0]["val_loss"] - 2
    off = rng.normal(size=(500, 3)).astype(np.float32)  # off the manifold
    with torch.no_grad():
        on_score = vae.neg_elbo(torch.from_numpy(x[3000:].astype(np.float32))).numpy()
        off_score = vae.neg_elbo(torch.from_numpy(off)).numpy()
    assert roc_auc_score(np.r_[np.zeros(len(on_score)), np.ones(500)], np.r_[on_score, off_score]) > 0.95


def test_study_saves_runs_and_reloads(study):
    store, result, steps = study
    assert sorted(i.kind for i in store.list()) == ["mlp_classifier", "study", "vae"]
    assert len(steps) >= 5
    vae_run = store.load(result.vae_run_id)
    assert vae_run.config["model"]["kind"] == "vae" and vae_run.config["model"]["layers"][0] == 93
    loaded = load_darwin(store)
    assert loaded.study_run_id == result.study_run_id and loaded.settings == TINY
    pd.testing.assert_frame_equal(loaded.pvalues, result.pvalues)
    pd.testing.assert_frame_equal(loaded.frame.reset_index(drop=True), result.frame.reset_index(drop=True),
                                  check_categorical=False)
    assert set(result.frame["pool"].astype(str)) == {"mc_test", "null_fit", "null_toy", "wimp30", "wimp50",
                                                     "wimp100"}


def test_classifier_metrics_match_sklearn_and_scores_are_consistent(study):
    _, result, _ = study
    test = result.mc_test
    y = (test["label"] == "NR").to_numpy()
    pred = test["p_nr"].to_numpy() >= 0.5
    c = result.classifier
    assert c["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert c["recall"] == pytest.approx(recall_score(y, pred))
    assert c["precision"] == pytest.approx(precision_score(y, pred))
    assert c["auc"] == pytest.approx(roc_auc_score(y, test["p_nr"]))
    assert c["accuracy"] > 0.85  # even 4 epochs on 1.2k events separate the bands
    # H_B = -log(1 - p_NR), computed without float32 saturation.
    ok = test["p_nr"] < 0.999
    np.testing.assert_allclose(test.loc[ok, "h_b"], -np.log1p(-test.loc[ok, "p_nr"]), rtol=1e-6)
    np.testing.assert_allclose(anomaly_function(test["neg_elbo"], test["h_b"], 3.0), test["neg_elbo"] + 3 * test["h_b"])


def test_saved_vae_rescores_the_frame(study):
    store, result, _ = study
    run = store.load(result.vae_run_id)
    frame = result.frame
    assert np.isfinite(frame["neg_elbo"]).all() and np.isfinite(frame["h_b"]).all()
    # Unseen NR looks anomalous to a VAE that only saw ER.
    test = result.mc_test
    assert test.loc[test["label"] == "NR", "neg_elbo"].median() > test.loc[test["label"] == "ER", "neg_elbo"].median()
    assert run.preprocessor is not None and log_features(pd.DataFrame(
        {c: [0.0] for c in run.schema.features})).shape == (1, 93)


def test_pvalue_scan_and_tables(study, tmp_path):
    _, result, _ = study
    pv = result.pvalues
    assert len(pv) == len(TINY.r_values) * len(TINY.wimp_masses)
    assert pv["median_p_value"].between(0, 1).all()
    assert (pv["expected_background"] > 0).all()
    assert set(result.baseline["wimp_mass"]) == {30.0, 50.0, 100.0}
    opt = optimum_table(pv)
    assert set(opt.columns) >= {"wimp_mass", "R_optimal", "median_p_value_optimal"}
    paths = write_tables(result, tmp_path)
    names = {p.name for p in paths}
    assert {"classifier.csv", "pvalue_vs_R.csv"} <= names
    clf = pd.read_csv(tmp_path / "classifier.csv")
    assert list(clf.columns) == ["accuracy", "recall", "precision", "auc"]
    table = pd.read_csv(tmp_path / "pvalue_vs_R.csv")
    assert list(table.columns[:3]) == ["wimp_mass", "R", "median_p_value"]
    assert len(pd.read_csv(tmp_path / "ppc.csv")) == 93
