"""The alice-pid study end to end at a tiny size: every method scores the common test tracks, the
tables equal scikit-learn's metrics, the n-sigma selection is the talk's rule, real data runs too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from hepml_core.config import TrainSettings
from hepml_core.exceptions import ConfigError
from hepml_core.runs import RunStore
from hepml_core.studies.alice_pid import (
    METHODS,
    TALK_EVENTS,
    AlicePidSettings,
    list_alice_pid,
    load_alice_pid,
    nsigma_score,
    run_alice_pid,
)
from hepml_core.studies.alice_pid_tables import (
    auc_table,
    metrics_table,
    pattern_table,
    repeat_table,
    spread_table,
    write_tables,
)
from hepml_core.studies._alice_pid_methods import MAX_EPOCH_SCALE, TrainPlan
from hepml_core.studies._alice_pid_real import REAL_FEATURES, TpcResponse, load_real_tracks
from hepml_core.studies.registry import get_study

TINY = dict(events=3000, fse_epochs=1, mlp_epochs=1, xgb_trees=10, ensemble_min_tracks=100,
            species=("kaon", "antiproton"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("pid_runs"))


@pytest.fixture(scope="module")
def result(store):
    return run_alice_pid(AlicePidSettings(**TINY), store)


def test_registered_with_the_settings_the_cli_needs():
    entry, module, tables = get_study("alice-pid")
    fields = module.AlicePidSettings.__dataclass_fields__
    assert {"events", "seed", "real", "fse_epochs", "mlp_epochs"} <= set(fields)
    defaults = AlicePidSettings()
    # the talk's loop (Adam 5e-4, ExponentialLR 0.98, batch 64); a default sample that runs in minutes
    assert (defaults.batch_size, defaults.lr, defaults.lr_decay, defaults.repeats) == (64, 5e-4, 0.98, 1)
    assert TALK_EVENTS == 2_700_000 and defaults.events < TALK_EVENTS and defaults.patience is not None
    assert tables.write_tables is write_tables


def test_every_method_scores_the_same_test_tracks(result):
    f = result.frame
    assert result.methods == METHODS and result.species == ("kaon", "antiproton")
    assert abs(len(f) - 900) <= 3  # 30 % of 3000 (stratified rounding)
    for m in METHODS:
        for s in result.species:
            score = result.score(m, s)
            if m == "case_deletion":  # complete tracks only
                assert np.isfinite(score[f["complete"]]).all() and np.isnan(score[~f["complete"]]).all()
            else:
                assert np.isfinite(score).all() and ((score >= 0) & (score <= 1)).all(), m
    assert set(result.run_ids["ensemble"]["kaon"]) >= {"complete", "no TRD, no TOF"}
    # the ensemble's complete-track network is the case-deletion network (trained once)
    assert result.run_ids["ensemble"]["kaon"]["complete"] == result.run_ids["case_deletion"]["kaon"]
    complete = f["complete"].to_numpy()
    np.testing.assert_array_equal(result.score("ensemble", "kaon")[complete],
                                  result.score("case_deletion", "kaon")[complete])
    assert (f["pattern"] == "complete").equals(f["complete"])


def test_metrics_equal_sklearn_at_any_threshold(result):
    for threshold in (0.5, 0.2):
        table = metrics_table(result, threshold).set_index(["method", "species", "subset"])
        for m in ("fse_attention", "mean_imputation", "xgboost", "case_deletion", "nsigma"):
            for s in result.species:
                for subset in ("all", "complete"):
                    if m == "case_deletion" and subset == "all":
                        assert (m, s, subset) not in table.index  # the talk's "all tracks" table has no case deletion
                        continue
                    everything = np.ones(len(result.frame), bool)
                    keep = result.frame["complete"].to_numpy() if subset == "complete" else everything
                    t = 0.5 if m == "nsigma" else threshold
                    pred = result.score(m, s)[keep] >= t
                    p, e, f1, _ = precision_recall_fscore_support(result.truth(s)[keep], pred, average="binary",
                                                                  zero_division=0)
                    row = table.loc[(m, s, subset)]
                    assert row["purity"] == pytest.approx(p) and row["efficiency"] == pytest.approx(e)
                    assert row["f1"] == pytest.approx(f1)


def test_auc_and_pattern_tables(result):
    aucs = auc_table(result).set_index(["method", "species"])["auc"]
    y = result.truth("kaon")
    assert aucs[("xgboost", "kaon")] == pytest.approx(roc_auc_score(y, result.score("xgboost", "kaon")))
    patterns = pattern_table(result)
    assert set(patterns["pattern"]) == set(result.frame["pattern"])
    sub = patterns[(patterns["method"] == "nsigma") & (patterns["species"] == "kaon")]
    assert sub["n_tracks"].sum() == len(result.frame)


def test_nsigma_score_is_the_talks_rule():
    frame = pd.DataFrame({"pt": [0.3, 0.3, 0.8, 0.8, 0.8, 0.3], "sign": [1, 1, 1, 1, 1, -1],
                          "nsigma_tpc_kaon": [2.9, 3.1, 2.0, 2.0, 2.0, 0.0],
                          "nsigma_tof_kaon": [np.nan, 0.0, 2.2, 2.3, np.nan, 0.0]})
    score = nsigma_score(frame, "kaon")
    # |n_TPC| < 3 below 0.5 GeV/c; sqrt(n_TPC^2 + n_TOF^2) < 3 above (2.97 yes, 3.05 no; no TOF: no);
    # a negative track is never a kaon (it may be an antikaon)
    np.testing.assert_array_equal(score >= 0.5, [True, False, True, False, False, False])
    assert nsigma_score(frame, "antikaon")[5] == pytest.approx(1.0)


def test_saved_load_and_tables_on_disk(result, store, tmp_path):
    loaded = load_alice_pid(store)
    assert loaded.study_run_id == result.study_run_id and loaded.settings == result.settings
    pd.testing.assert_frame_equal(loaded.frame, result.frame, check_dtype=False)
    assert list_alice_pid(store, real=False) == [result.study_run_id] and list_alice_pid(store, real=True) == []
    paths = write_tables(result, tmp_path)
    assert [p.name for p in paths] == ["pid_metrics.csv", "pid_spread.csv", "pid_roc.csv", "pid_auc.csv",
                                       "pid_patterns.csv"]
    metrics = pd.read_csv(tmp_path / "pid_metrics.csv")
    assert list(metrics.columns[:6]) == ["method", "species", "subset", "purity", "efficiency", "f1"]
    assert set(metrics["subset"]) == {"all", "complete"} and set(metrics["method"]) == set(METHODS)


def test_study_fits_decay_the_learning_rate_as_the_talk(result, store, tmp_path):
    for method in ("fse_attention", "mean_imputation", "case_deletion"):
        history = store.load(result.run_ids[method]["kaon"]).history
        assert history["lr"].iloc[0] == pytest.approx(5e-4)
    # case deletion trains on ~18 % of the pool: more of its own (shorter) epochs, each decaying less
    cd = store.load(result.run_ids["case_deletion"]["kaon"]).history["lr"].to_numpy()
    ratio = cd[1:] / cd[:-1]
    assert len(cd) >= 4 and np.allclose(ratio, ratio[0]) and 0.98 < ratio[0] < 1
    assert ratio[0] ** len(cd) == pytest.approx(0.98, rel=0.01)  # ~one pool pass of decay over its epochs
    own = RunStore(tmp_path)
    long = run_alice_pid(AlicePidSettings(events=1500, mlp_epochs=3, methods=("mean_imputation",),
                                          species=("pion",), patience=None), own)
    lr = own.load(long.run_ids["mean_imputation"]["pion"]).history["lr"].to_numpy()
    np.testing.assert_allclose(lr, 5e-4 * 0.98 ** np.arange(3))


def test_subset_networks_get_the_same_steps_and_learning_rates_as_the_full_pool():
    plan = TrainPlan(epochs=30, batch_size=64, lr=5e-4, seed=1, patience=10, validation=0.3, lr_decay=0.98,
                     pool_size=100_000)
    full = plan.settings()
    assert (full.epochs, full.early_stopping, full.lr_decay) == (30, 10, 0.98)
    assert plan.settings(n_tracks=100_000) == full
    sub = plan.settings(n_tracks=20_000)  # case deletion: a fifth of the pool, five times the epochs
    assert (sub.epochs, sub.early_stopping) == (150, 50)
    # after the same number of optimizer steps (5 of its epochs = 1 pool epoch) the same learning rate
    assert sub.lr_decay ** 5 == pytest.approx(0.98)
    rare = plan.settings(epochs=10, n_tracks=100)
    assert rare.epochs == 10 * MAX_EPOCH_SCALE and rare.lr_decay ** MAX_EPOCH_SCALE == pytest.approx(0.98)
    assert TrainPlan(epochs=3, batch_size=64, lr=1e-3, seed=1, patience=None, validation=0.3).settings(
        n_tracks=10) == TrainSettings(epochs=3, batch_size=64, lr=1e-3, seed=1, early_stopping=None)


def test_repeats_train_again_and_tables_give_mean_and_spread(tmp_path):
    store = RunStore(tmp_path)
    res = run_alice_pid(AlicePidSettings(events=3000, fse_epochs=1, mlp_epochs=2, repeats=2, species=("kaon",),
                                         methods=("fse_attention", "mean_imputation", "case_deletion", "nsigma")),
                        store)
    assert res.repeats == 2 and len(res.repeat_run_ids) == 1
    assert res.repeat_run_ids[0]["mean_imputation"]["kaon"] != res.run_ids["mean_imputation"]["kaon"]
    assert "score_nsigma_kaon_r1" not in res.frame  # a fixed selection is not retrained
    for m in ("fse_attention", "mean_imputation"):
        assert not np.allclose(res.score(m, "kaon", 1), res.score(m, "kaon", 0))  # other seed, other network
    y, complete = res.truth("kaon"), res.frame["complete"].to_numpy()
    f1 = {}
    for r in (0, 1):
        for m in res.methods:
            for subset, rows in (("all", np.ones(len(y), bool)), ("complete", complete)):
                if m == "case_deletion" and subset == "all":
                    continue
                pred = res.score(m, "kaon", r)[rows] >= 0.5
                f1.setdefault((m, subset), []).append(
                    precision_recall_fscore_support(y[rows], pred, average="binary", zero_division=0)[2])
    per_repeat = repeat_table(res).set_index(["method", "species", "subset", "repeat"])["f1"]
    spread = spread_table(res).set_index(["method", "subset"])
    for (m, subset), values in f1.items():
        assert [per_repeat[(m, "kaon", subset, r)] for r in (0, 1)] == pytest.approx(values)
        assert spread.loc[(m, subset), "f1_mean"] == pytest.approx(np.mean(values))
        assert spread.loc[(m, subset), "f1_std"] == pytest.approx(np.std(values, ddof=1))
        assert spread.loc[(m, subset), "n_repeats"] == 2
    assert spread.loc[("nsigma", "all"), "f1_std"] == 0.0
    assert load_alice_pid(store, res.study_run_id).repeat_run_ids == res.repeat_run_ids


def test_bad_settings_are_named(store):
    with pytest.raises(ConfigError, match="unknown method"):
        run_alice_pid(AlicePidSettings(events=500, methods=("fse_attention", "knn")), store)
    with pytest.raises(ConfigError, match="not in the simulation sample"):
        run_alice_pid(AlicePidSettings(events=500, species=("deuteron",)), store)
    with pytest.raises(ConfigError, match="repeats must be an int >= 1"):
        run_alice_pid(AlicePidSettings(events=500, repeats=0), store)


@pytest.fixture(scope="module")
def real_dir(shared_data):
    path = shared_data / "alice-pid-7tev"
    if not path.is_dir():
        pytest.skip(f"real ALICE PID samples {path} are absent")
    return path


def test_real_tracks_and_tpc_response(real_dir):
    tracks = load_real_tracks(3000, folder=real_dir, seed=1)
    assert len(tracks) == 15_000 and list(tracks.columns) == [*REAL_FEATURES, "label", "weight"]
    assert tracks["dEdxITS"].isna().any() and not (tracks["dEdxITS"] <= 0).any()
    response = TpcResponse().fit(tracks["p"].to_numpy(np.float64), tracks["dEdxTPC"].to_numpy(np.float64),
                                 tracks["label"].to_numpy())
    for species in ("pion", "proton"):
        rows = tracks[tracks["label"] == species]
        n = response.nsigma(rows["p"].to_numpy(), rows["dEdxTPC"].to_numpy(), species)
        assert abs(np.nanmedian(n)) < 0.3 and 0.6 < np.nanstd(n[np.abs(n) < 6]) < 1.4


def test_study_runs_on_real_data(real_dir, store, monkeypatch):
    monkeypatch.setenv("HEPML_ALICE_PID_DIR", str(real_dir))
    res = run_alice_pid(AlicePidSettings(events=2500, real=True, fse_epochs=1, mlp_epochs=1, xgb_trees=10,
                                         ensemble_min_tracks=50, species=("kaon", "proton"),
                                         real_its_missing=0.2), store)
    assert res.sample == "real" and res.features == REAL_FEATURES and abs(len(res.frame) - 750) <= 3
    assert res.frame["dEdxITS"].isna().mean() > 0.1
    table = metrics_table(res)
    assert set(table["method"]) == set(METHODS)
    assert load_alice_pid(store, real=True).study_run_id == res.study_run_id
