"""The HNL study end to end at a tiny size: runs, scores at every mass, per-mass variants, tables, reload and
partial retrain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hepml_core.exceptions import ConfigError
from hepml_core.runs import RunStore
from hepml_core.metrics.roc import roc_auc
from hepml_core.studies._hnl_per_mass import load_per_mass, per_mass_inputs
from hepml_core.studies.hnl import MODELS, PER_MASS_MODELS, HnlSettings, _transfer_x, load_hnl, run_hnl
from hepml_core.studies.hnl_tables import comparison_table, significance_table, write_tables
from hepml_core.simulate.hnl import MASSES

TINY = HnlSettings(events=12_000, test_fraction=0.5, validation_fraction=0.15, pnn_epochs=2, bdt_trees=10,
                   regression_width=16, regression_depth=3, regression_events_per_epoch=2000, regression_epochs=2,
                   transfer_epochs=2, transfer_unfreeze_epoch=2, transfer_hidden=(16,),
                   per_mass_masses=(85.0, 300.0, 1000.0), per_mass_epochs=3, per_mass_bdt_trees=10)
PER_MASS = TINY.per_mass_masses


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("hnl") / "runs")
    return store, run_hnl(TINY, store)


def test_scores_cover_every_mass_for_background_and_own_mass_for_signal(study):
    _, r = study
    assert r.models == MODELS
    n_sig = int((r.events["label"] == 1).sum())
    n_bkg = int((r.events["label"] == 0).sum())
    assert len(r.events) == 6000 and len(r.scores) == n_sig + n_bkg * len(MASSES)
    bkg = r.scores[r.scores["label"] == 0]
    assert bkg.groupby("mass_hyp").size().tolist() == [n_bkg] * len(MASSES)
    # a parametrised score depends on the hypothesis; the talk's own-hypothesis score sits in events
    one = bkg[bkg["event"] == bkg["event"].iloc[0]]
    assert one["pnn"].nunique() > 1 and one["transfer"].nunique() > 1
    ev = r.events.set_index("event")
    own = bkg.merge(ev[["mass_hyp"]], left_on="event", right_index=True, suffixes=("", "_own"))
    own = own[own["mass_hyp"] == own["mass_hyp_own"]].set_index("event")
    np.testing.assert_allclose(own["pnn"], ev.loc[own.index, "pnn"], rtol=1e-5)
    # test yields stand for the whole sample (test fraction 0.5: weights doubled)
    from hepml_core.simulate.hnl import YIELDS
    bkg_yield = r.events.loc[r.events["label"] == 0, "weight"].sum()
    assert bkg_yield == pytest.approx(sum(YIELDS.values()), rel=0.05)
    assert set(r.residuals["drop_in"]) == {True, False}


def test_saved_transfer_run_rebuilds_the_same_scores(study):
    store, r = study
    run = store.load(r.run_ids["transfer"])
    model = run.model()
    from hepml_core.simulate.hnl import simulate_hnl
    frame = simulate_hnl(TINY.events, seed=TINY.seed)
    test = frame.iloc[r.events["event"].to_numpy()[:200]]
    import torch
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(_transfer_x(test, run.preprocessor))), 1)[:, 1].numpy()
    np.testing.assert_allclose(p, r.events["transfer"].to_numpy()[:200], rtol=1e-4, atol=1e-6)


def test_tables_reload_and_partial_retrain(study, tmp_path):
    store, r = study
    paths = write_tables(r, tmp_path)
    sig = pd.read_csv(tmp_path / "significance.csv")
    assert list(sig.columns) == ["model", "mass", "channel", "z"]
    # one row per model and (mass, channel) holding test signal (a tiny sample may miss a few)
    assert set(sig["model"]) == set(MODELS)
    sizes = sig.groupby("model").size()
    full = [m for m in MODELS if m not in PER_MASS_MODELS]
    assert 0.9 * 80 < sizes["mt_tot"] <= 80 and (sizes[full] == sizes["mt_tot"]).all()
    # the per-mass variants only at their few masses
    for name in PER_MASS_MODELS:
        assert set(sig.loc[sig["model"] == name, "mass"]) == set(PER_MASS)
    assert {p.name for p in paths} >= {"significance.csv", "comparison.csv", "significance_all.csv"}
    loose = significance_table(r, max_rel_unc=0.5)
    assert loose["z"].notna().mean() > 0.8
    comp = comparison_table(loose)
    assert {"z_pnn", "z_mt_tot", "pnn_beats_mt_tot", "z_dnn_per_mass", "bdt_per_mass_beats_mt_tot"} <= set(comp.columns)
    untrained = ~comp["mass"].isin(PER_MASS)
    assert comp.loc[untrained, "z_dnn_per_mass"].isna().all()
    assert comp.loc[untrained, "dnn_per_mass_beats_mt_tot"].isna().all()  # unknown, not False
    assert comp.loc[~untrained, "dnn_per_mass_beats_mt_tot"].notna().all()
    loaded = load_hnl(store)
    assert loaded.study_run_id == r.study_run_id
    pd.testing.assert_frame_equal(loaded.scores, r.scores)
    # retrain the BDT only: the other models' scores are kept from the base study
    again = run_hnl(replace(TINY, models=("bdt",), bdt_trees=5), store, base=loaded)
    np.testing.assert_array_equal(again.scores["pnn"], r.scores["pnn"])
    assert not np.allclose(again.scores["bdt"], r.scores["bdt"])
    assert again.run_ids["pnn"] == r.run_ids["pnn"] and again.run_ids["bdt"] != r.run_ids["bdt"]
    with pytest.raises(ConfigError, match="base"):
        run_hnl(replace(TINY, models=("bdt",)), store)
    with pytest.raises(ConfigError, match="differs"):
        run_hnl(replace(TINY, models=("bdt",), seed=9), store, base=loaded)


def test_per_mass_variants_score_each_mass_with_its_own_model(study):
    store, r = study
    sc = r.scores
    for name in PER_MASS_MODELS:
        has = sc[name].notna()
        assert set(sc.loc[has, "mass_hyp"]) == set(PER_MASS)
        assert has.to_numpy().sum() == (sc["mass_hyp"].isin(PER_MASS)).sum()
        ev = r.events
        assert ev.loc[~ev["mass_hyp"].isin(PER_MASS), name].isna().all()
    bkg = sc[sc["label"] == 0]
    # background scored by each mass's own model: different per mass, and the same model as the events' own
    wide = bkg[bkg["mass_hyp"].isin(PER_MASS)].pivot(index="event", columns="mass_hyp", values="dnn_per_mass")
    assert not np.allclose(wide[85.0], wide[1000.0])
    # each per-mass DNN separates the signal of its mass from the background (test events, weighted)
    for m in PER_MASS:
        at = sc[np.isclose(sc["mass_hyp"], m)]
        assert roc_auc(at["label"].to_numpy(), at["dnn_per_mass"].to_numpy(), at["weight"].to_numpy()) > 0.75
        assert roc_auc(at["label"].to_numpy(), at["bdt_per_mass"].to_numpy(), at["weight"].to_numpy()) > 0.75


def test_saved_per_mass_runs_rebuild_the_same_scores(study):
    store, r = study
    from hepml_core.simulate.hnl import simulate_hnl
    frame = simulate_hnl(TINY.events, seed=TINY.seed)
    test = frame.iloc[r.events["event"].to_numpy()].reset_index(drop=True)
    for name in PER_MASS_MODELS:
        run = store.load(r.run_ids[name])
        assert run.config["masses"] == list(PER_MASS) and run.config["study"] == "hnl"
        scorer = load_per_mass(run)
        assert scorer.masses == PER_MASS
        np.testing.assert_allclose(scorer(test), r.events[name].to_numpy(), rtol=1e-4, atol=1e-6)
        assert len(store.load(r.run_ids[name]).history) > 0
    # no mass hypothesis among the inputs: background hypotheses are random, signal's all one value
    assert "mass_hyp" not in store.load(r.run_ids["dnn_per_mass"]).schema.features
    assert list(per_mass_inputs(test.iloc[:2]).columns) == list(store.load(r.run_ids["dnn_per_mass"]).schema.features)
    with pytest.raises(ValueError, match="not a per-mass"):
        load_per_mass(store.load(r.run_ids["pnn"]))


def test_retrain_one_per_mass_variant_or_study_without_them(study):
    store, r = study
    again = run_hnl(replace(TINY, models=("dnn_per_mass",), per_mass_masses=(300.0,)), store, base=r)
    np.testing.assert_array_equal(again.scores["pnn"], r.scores["pnn"])
    np.testing.assert_array_equal(again.scores["bdt_per_mass"], r.scores["bdt_per_mass"])
    assert set(again.scores.loc[again.scores["dnn_per_mass"].notna(), "mass_hyp"]) == {300.0}
    assert again.run_ids["dnn_per_mass"] != r.run_ids["dnn_per_mass"]
    with pytest.raises(ConfigError, match="per_mass_masses"):
        run_hnl(replace(TINY, per_mass_masses=(86.0,)), store)
    with pytest.raises(ConfigError, match="per_mass_models=True"):
        run_hnl(replace(TINY, per_mass_models=False, models=("dnn_per_mass",)), store, base=r)
    with pytest.raises(ConfigError, match="base"):  # a new study needs every one of its models
        run_hnl(replace(TINY, models=("bdt", "pnn", "transfer")), store)
