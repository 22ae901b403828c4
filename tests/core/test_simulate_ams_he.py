"""The ams-he toy: reproducible, the talk's class fractions and label rule, physical and learnable features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from hepml_core.exceptions import ConfigError, DataError
from hepml_core.simulate.ams_he import (
    ANOMALY_LABEL,
    CLASS_NAMES,
    FEATURE_UNITS,
    FEATURES,
    TRUTH_COLUMNS,
    AmsHeParams,
    simulate_ams_he,
)
from hepml_core.simulate.registry import SIMULATORS, simulate, simulator_names

N = 20_000
TALK_FRACTIONS = {"spillover": 0.14, "had_inel": 0.53, "el_scat": 0.025, "other": 0.30}


@pytest.fixture(scope="module")
def mc() -> pd.DataFrame:
    return simulate_ams_he(N, seed=7, keep_truth=True)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate_ams_he(N, seed=8, sample="data", keep_truth=True)


def test_same_seed_same_frame_and_generators_accepted():
    a = simulate_ams_he(3000, seed=3)
    pd.testing.assert_frame_equal(a, simulate_ams_he(3000, seed=3))
    pd.testing.assert_frame_equal(simulate_ams_he(3000, seed=np.random.default_rng(3)),
                                  simulate_ams_he(3000, seed=np.random.default_rng(3)))
    assert not a["rig_inner"].equals(simulate_ams_he(3000, seed=4)["rig_inner"])


def test_columns_dtypes_and_units():
    df = simulate_ams_he(2000, seed=1)
    assert len(FEATURES) == 37 == len(set(FEATURES))
    assert list(df.columns) == [*FEATURES, "label", "weight"]
    assert all(df[c].dtype == np.float32 for c in FEATURES)
    assert df["weight"].dtype == np.float64
    assert set(df["label"].astype(str)) <= set(CLASS_NAMES)
    assert set(FEATURE_UNITS) == set(FEATURES)
    assert (FEATURE_UNITS["charge_L1"], FEATURE_UNITS["max_dist_L3_y"], FEATURE_UNITS["rig_inner"]) == ("e", "cm", "GV")
    for name in ("charge_L1", "max_dist_L3_y", "chi2_inner", "rig_inner", "rig_L1_inner", "tof_charge_upper"):
        assert name in FEATURES


def test_class_fractions_are_the_talks(mc):
    fractions = mc["label"].value_counts(normalize=True)
    assert set(fractions.index) == set(CLASS_NAMES)
    for name in ("spillover", "had_inel", "other"):
        assert abs(fractions[name] - TALK_FRACTIONS[name]) < 0.04, (name, fractions[name])
    assert 0.01 <= fractions["el_scat"] <= 0.05


def test_weights_positive_mean_one_and_follow_the_falling_spectrum(mc):
    w, r = mc["weight"].to_numpy(), mc["rig_gen"].to_numpy()
    assert np.all(w > 0) and np.isclose(w.mean(), 1.0)
    p = AmsHeParams()
    slope = np.polyfit(np.log(r), np.log(w), 1)[0]
    assert slope == pytest.approx(p.generated_index - p.spectral_index, abs=1e-6)  # R^-2.7 / R^-1.4


def test_label_follows_the_talks_rule(mc):
    ratio = mc["chi2_ratio_truth"].to_numpy()
    assert np.allclose(ratio, mc["chi2_true"] / mc["chi2_inner_truth"])
    had, sec = mc["had_inel_inner"].to_numpy(), mc["has_secondary"].to_numpy()
    expected = np.where(had, "had_inel", np.where(ratio >= 1.05, "el_scat", np.where(sec, "other", "spillover")))
    assert np.array_equal(mc["label"].to_numpy(dtype=str), expected)
    # every source feeds its class: elastic kinks make most el_scat, resolution-only events are spillover
    assert mc.loc[mc["label"] == "el_scat", "el_scat_inner"].mean() > 0.5
    assert not mc.loc[mc["label"] == "spillover", "has_secondary"].any()


def test_features_look_physical(mc):
    x = mc[list(FEATURES)]
    assert np.isfinite(x.to_numpy()).all()
    charges = [c for c in FEATURES if FEATURE_UNITS[c] == "e"]
    assert (x[charges] > 0).all().all() and (x[charges] <= 10).all().all()
    assert x[charges].median().between(1.9, 2.3).all()  # He
    assert x["charge_L8"].quantile(0.99) > 2.8 and x["charge_L8"].quantile(0.001) < 1.3  # Landau tail, Z=1 fragments
    assert x["charge_inner"].between(1.7, 2.4).all()
    dist = [c for c in FEATURES if c.startswith("max_dist")]
    assert (x[dist] >= 0).all().all() and (x[dist] <= AmsHeParams().window_cm).all().all()
    assert (x[[c for c in FEATURES if c.startswith("chi2")]] >= 0).all().all() and (x["chi2_inner"] < 10).all()
    assert (x["rig_inner"] < 0).all() and (x["rig_inner"] >= -AmsHeParams().rig_clip_gv).all()
    for name in ("rig_L1_inner", "rig_inner_L9", "rig_full"):
        assert (x[name] < 0).mean() > 0.05 and (x[name] > 0).mean() > 0.05
    assert (np.sign(x["rig_L1_inner"]) == np.sign(x["rig_inner_L9"])).all()  # the talk's selection


def test_data_sample_has_anomalies_and_a_different_response(mc, data):
    labels = data["label"].astype(str)
    assert (labels == ANOMALY_LABEL).sum() == round(0.005 * N)
    assert set(labels) == {*CLASS_NAMES, ANOMALY_LABEL}
    normal = data[labels != ANOMALY_LABEL]
    ratio = normal["charge_L3"].median() / mc["charge_L3"].median()
    assert ratio == pytest.approx(1.02, abs=0.01)
    assert normal["chi2_inner"].median() > 1.1 * mc["chi2_inner"].median()  # worse resolution than assumed
    anomalies = data[labels == ANOMALY_LABEL]
    # a second alpha in every layer: two nuclei in the upper TOF paddle, extra clusters near the track
    assert anomalies["tof_charge_upper"].median() > mc["tof_charge_upper"].quantile(0.99)
    assert anomalies["n_clusters_2cm"].median() > mc["n_clusters_2cm"].quantile(0.95)
    assert not simulate_ams_he(500, seed=1, sample="data", anomaly_fraction=0.0)["label"].eq(ANOMALY_LABEL).any()
    assert not simulate_ams_he(500, seed=1, anomaly_fraction=0.5)["label"].eq(ANOMALY_LABEL).any()  # MC: ignored


def test_classes_are_learnable_but_not_trivially(mc):
    x = mc[list(FEATURES)].to_numpy()
    y = pd.Categorical(mc["label"], categories=CLASS_NAMES).codes
    half = len(y) // 2
    with threadpool_limits(limits=1):  # OpenMP threads stall on a busy shared machine
        clf = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x[:half], y[:half])
        proba, truth = clf.predict_proba(x[half:]), y[half:]
    auc = roc_auc_score(truth, proba, multi_class="ovr", average="macro")
    assert 0.7 < auc < 0.99

    def pair(a, b):
        ia, ib = CLASS_NAMES.index(a), CLASS_NAMES.index(b)
        m = (truth == ia) | (truth == ib)
        return roc_auc_score(truth[m] == ib, proba[m, ib] / (proba[m, ia] + proba[m, ib]))

    # as in the talk, elastic scattering is hard to tell from spillover; hadronic interactions are not
    assert pair("spillover", "el_scat") < pair("spillover", "had_inel")
    assert pair("spillover", "el_scat") < 0.95


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match="n_events"):
        simulate_ams_he(0, seed=1)
    with pytest.raises(ConfigError, match="'mc' or 'data'"):
        simulate_ams_he(10, seed=1, sample="MC-data")
    with pytest.raises(ConfigError, match="anomaly_fraction"):
        simulate_ams_he(10, seed=1, sample="data", anomaly_fraction=1.5)
    with pytest.raises(ConfigError, match="p_elastic"):
        AmsHeParams(p_elastic=2.0)


def test_hopeless_acceptance_stops_with_a_clear_error():
    # 20-21 GV, no interactions: nothing can flip its charge sign
    params = AmsHeParams(rig_min_gv=20, rig_max_gv=21, p_elastic=0, p_inelastic=0, p_delta=0, p_soft_secondary=0)
    with pytest.raises(DataError, match="acceptance"):
        simulate_ams_he(1000, seed=1, params=params)


def test_registry_resolves_names_and_lists_the_accepted_ones():
    assert "ams-he" in simulator_names()
    assert SIMULATORS["ams-he"] is simulate_ams_he and "ams_he" in SIMULATORS
    pd.testing.assert_frame_equal(simulate("ams_he", 500, seed=2), simulate_ams_he(500, seed=2))
    with pytest.raises(ConfigError, match=r"unknown simulator 'ams-hee'.*'ams-he'"):
        simulate("ams-hee", 10, seed=1)
    with pytest.raises(ConfigError, match=r"accepted: .*'ams-he'"):
        simulate("nosuchstudy", 10, seed=1)


def test_truth_columns_only_on_request():
    assert not set(TRUTH_COLUMNS) & set(simulate_ams_he(200, seed=1).columns)
