"""The HNL toy: selection, channels, feature definitions, weights, and the regression event generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepml_core.exceptions import ConfigError, NotFittedError
from hepml_core.simulate._hnl_features import REGRESSION_INPUTS, REGRESSION_TARGETS
from hepml_core.simulate.hnl import (
    CHANNELS, FEATURES, MASSES, HnlKinematicsGenerator, signal_yield, simulate_hnl,
)
from hepml_core.simulate.registry import simulate


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return simulate_hnl(20_000, seed=3)


def _p4(df, i):
    pt, eta, phi, m = (df[f"l{i}_{q}"].to_numpy() for q in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.sqrt(px ** 2 + py ** 2 + pz ** 2 + m ** 2), px, py, pz


def test_columns_selection_and_channels(events):
    assert len(FEATURES) == 85 and len(events) == 20_000
    assert list(events.columns[:85]) == list(FEATURES)
    assert {"channel", "mass_hyp", "label", "process", "weight"} <= set(events.columns)
    assert list(events["channel"].cat.categories) == list(CHANNELS)
    assert set(events["mass_hyp"].unique()) == set(MASSES)
    assert events[list(FEATURES)].notna().all().all()
    for ch in CHANNELS:
        flavours = ch.split("_")
        sel = events[events["channel"] == ch]
        for i, flav in enumerate(flavours, start=1):
            threshold = 20.0 if flav == "tau" else 10.0
            assert (sel[f"l{i}_pt"] > threshold).all()
        # same flavours stored by decreasing pT
        for i in (1, 2):
            if flavours[i - 1] == flavours[i]:
                assert (sel[f"l{i}_pt"] >= sel[f"l{i + 1}_pt"]).all()
    for i in (1, 2, 3):
        assert (events[f"l{i}_eta"].abs() < 2.5).all()
        assert set(np.unique(events[f"l{i}_charge"])) <= {-1.0, 1.0}


def test_derived_features_match_independent_formulas(events):
    e1, x1, y1, z1 = _p4(events, 1)
    e2, x2, y2, z2 = _p4(events, 2)
    m12 = np.sqrt(np.clip((e1 + e2) ** 2 - (x1 + x2) ** 2 - (y1 + y2) ** 2 - (z1 + z2) ** 2, 0, None))
    np.testing.assert_allclose(events["m_12"], m12, rtol=1e-9, atol=1e-9)
    # Mt_tot: the six transverse masses of the leptons and MET in quadrature (CMS HNL definition)
    pts = [events[f"l{i}_pt"].to_numpy() for i in (1, 2, 3)] + [events["met"].to_numpy()]
    phis = [events[f"l{i}_phi"].to_numpy() for i in (1, 2, 3)] + [events["met_phi"].to_numpy()]
    total = sum(2 * pts[a] * pts[b] * (1 - np.cos(phis[a] - phis[b])) for a in range(4) for b in range(a + 1, 4))
    np.testing.assert_allclose(events["mt_tot"], np.sqrt(total), rtol=1e-9)
    e3 = _p4(events, 3)[0]
    np.testing.assert_allclose(events["e_tot"], e1 + e2 + e3 + events["met"], rtol=1e-12)
    dphi = np.abs((events["l1_phi"] - events["l2_phi"] + np.pi) % (2 * np.pi) - np.pi)
    np.testing.assert_allclose(events["dphi_12"], dphi, atol=1e-12)


def test_signal_is_rare_in_weight_and_grows_with_the_mass(events):
    sig = events[events["label"] == 1]
    assert 0.12 < len(sig) / len(events) < 0.15  # the talk: 216k of 1.6M
    assert sig["weight"].sum() < 0.2 * events.loc[events["label"] == 0, "weight"].sum()
    totals = sig.groupby("mass_hyp")["weight"].sum()
    np.testing.assert_allclose(totals.to_numpy(), [signal_yield(m) for m in totals.index], rtol=1e-9)
    # heavier HNLs give larger Mt_tot
    med = sig.groupby("mass_hyp")["mt_tot"].median()
    assert med.loc[1000.0] > med.loc[400.0] > med.loc[100.0]


def test_seeded_and_registered():
    a = simulate("hnl", 500, seed=5)
    b = simulate_hnl(500, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate_hnl(500, seed=6))
    with pytest.raises(ConfigError, match="sample='mc'"):
        simulate_hnl(100, seed=1, sample="data")
    with pytest.raises(ConfigError, match="positive int"):
        simulate_hnl(0, seed=1)


def test_generator_draws_fresh_events_within_the_real_limits(events):
    gen = HnlKinematicsGenerator(seed=1)
    with pytest.raises(NotFittedError, match="fit"):
        gen.sample(10)
    gen.fit(events)
    x1, t1 = gen.sample(5000)
    x2, _ = gen.sample(5000)
    assert x1.shape == (5000, len(REGRESSION_INPUTS)) and t1.shape == (5000, len(REGRESSION_TARGETS))
    assert not np.allclose(x1, x2)  # fresh events on every call
    cols = list(REGRESSION_INPUTS)
    eta = x1[:, [cols.index(f"l{i}_eta") for i in (1, 2, 3)]]
    phi = x1[:, [cols.index(f"l{i}_phi") for i in (1, 2, 3)]]
    assert np.abs(eta).max() <= 2.5 and np.abs(phi).max() <= np.pi
    assert (x1[:, cols.index("l1_pt")] > 20.0).all()  # the first lepton is always a tau
    # targets inside the real sample's percentile window (E_tot column unstandardised, in 100 GeV)
    e_tot = t1[:, 0] * 100.0
    assert e_tot.min() >= np.percentile(events["e_tot"], 0.03) - 1e-3
    assert e_tot.max() <= np.percentile(events["e_tot"], 99.7) + 1e-3
    assert 0.2 < gen.acceptance() < 1.0
