"""The alice-pid toy: reproducible, the 19 features with NaN for missing detectors, physical responses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepml_core.exceptions import ConfigError
from hepml_core.simulate._alice_pid_detector import MASSES, C_M_PER_NS, bethe_bloch_aleph, track_length
from hepml_core.simulate.alice_pid import (
    CLASS_NAMES,
    DETECTOR_GROUPS,
    FEATURE_UNITS,
    FEATURES,
    NSIGMA_COLUMNS,
    simulate_alice_pid,
)
from hepml_core.simulate.registry import simulate


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    return simulate_alice_pid(60_000, seed=11)


def test_same_seed_same_tracks_and_columns():
    a = simulate_alice_pid(2000, seed=3)
    pd.testing.assert_frame_equal(a, simulate_alice_pid(2000, seed=3))
    pd.testing.assert_frame_equal(a, simulate("alice-pid", 2000, seed=np.random.default_rng(3)))
    assert not a["tpc_signal"].equals(simulate_alice_pid(2000, seed=4)["tpc_signal"])
    assert len(FEATURES) == 19 == len(set(FEATURES)) and set(FEATURE_UNITS) == set(FEATURES)
    assert list(a.columns) == [*FEATURES, "label", "weight", *NSIGMA_COLUMNS]
    assert all(a[c].dtype == np.float32 for c in FEATURES)
    assert set(a["label"]) <= set(CLASS_NAMES)


def test_bad_arguments_say_what_is_accepted():
    with pytest.raises(ConfigError, match="n_events"):
        simulate_alice_pid(0)
    with pytest.raises(ConfigError, match="accepted: .*its_missing"):
        simulate_alice_pid(10, seed=1, its_mising=0.1)
    with pytest.raises(ConfigError, match="'mc' or 'data'"):
        simulate_alice_pid(10, seed=1, sample="real")


def test_abundances_and_missing_patterns_are_realistic(tracks):
    frac = tracks["label"].value_counts(normalize=True)
    assert 0.75 < frac["pion"] + frac["antipion"] < 0.85
    assert 0.09 < frac["kaon"] + frac["antikaon"] < 0.13
    assert 0.05 < frac["proton"] + frac["antiproton"] < 0.08
    missing = {det: tracks[cols[0]].isna() for det, cols in DETECTOR_GROUPS.items()}
    for cols in DETECTOR_GROUPS.values():  # a detector's features go missing together
        assert (tracks[list(cols)].isna().nunique(axis=1) == 1).all()
    assert tracks[[f for f in FEATURES if f not in sum(DETECTOR_GROUPS.values(), ())]].notna().all().all()
    assert 0.03 < missing["ITS"].mean() < 0.12  # "occasionally"
    assert missing["TRD"].mean() > 0.5  # "often absent"
    complete = ~(missing["ITS"] | missing["TRD"] | missing["TOF"])
    assert 0.1 < complete.mean() < 0.35
    # no TOF below the pT where tracks curl before r = 3.7 m: pT < 0.3 * 0.5 T * 3.7 m / 2
    assert missing["TOF"][tracks["pt"] < 0.25].all()
    assert not missing["TOF"][tracks["pt"] > 1.0].all()


def test_tof_beta_and_time_follow_the_track_length(tracks):
    has = tracks["tof_signal"].notna().to_numpy()
    t = tracks.loc[has]
    length = track_length(t["pt"].to_numpy(np.float64), t["eta"].to_numpy(np.float64))
    np.testing.assert_allclose(t["tof_beta"], length / (t["tof_signal"] * C_M_PER_NS), rtol=1e-5)
    # true pions at high momentum fly at ~c; kaons/protons slower, as beta = p / E
    pions = t[(t["label"] == "pion") & (t["p"] > 1.0)]
    protons = t[(t["label"] == "proton") & (t["p"].between(0.8, 1.2))]
    assert np.median(pions["tof_beta"]) > 0.98
    expected = 1.0 / np.sqrt(1 + (MASSES["proton"] / 1.0) ** 2)
    assert abs(np.median(protons["tof_beta"]) - expected) < 0.02


def test_nsigma_of_the_true_species_is_standard_normal(tracks):
    # TPC: true species centred at 0 with unit width (only momentum resolution widens it a little)
    for species, col in (("pion", "nsigma_tpc_pion"), ("kaon", "nsigma_tpc_kaon"), ("proton", "nsigma_tpc_proton")):
        n = tracks.loc[(tracks["label"] == species) & (tracks["p"] < 1.0), col]
        assert abs(n.median()) < 0.15 and 0.85 < n.std() < 1.25, (species, n.median(), n.std())
    # TOF: the core (mismatches excluded by a window) of the true pions is N(0, 1)
    n = tracks.loc[tracks["label"] == "pion", "nsigma_tof_pion"].dropna()
    core = n[n.abs() < 5]
    assert abs(core.median()) < 0.1 and 0.85 < core.std() < 1.2
    assert tracks.loc[tracks["tof_signal"].isna(), "nsigma_tof_pion"].isna().all()


def test_bethe_bloch_shape():
    bg = np.array([0.3, 1.0, 3.6, 100.0, 1e4])
    v = bethe_bloch_aleph(bg)
    assert v[0] > v[1] > v[2]  # 1/beta^2 region
    assert abs(v[2] - 1.0) < 0.01  # normalised at the minimum
    assert 1.3 < v[4] < 1.8 and v[4] > v[3]  # relativistic rise to the Fermi plateau


def test_data_sample_has_a_different_response():
    mc = simulate_alice_pid(20_000, seed=5)
    data = simulate_alice_pid(20_000, seed=5, sample="data")
    pions = lambda d: d.loc[(d["label"] == "pion") & d["p"].between(0.4, 0.6), "nsigma_tpc_pion"]  # noqa: E731
    assert pions(data).median() > pions(mc).median() + 0.1  # 1.5 % higher dE/dx scale
    assert data["tof_signal"].notna().mean() < mc["tof_signal"].notna().mean()
