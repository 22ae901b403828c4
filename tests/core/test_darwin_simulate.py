"""The DARWIN toy simulator: NEST yields, triggers, waveforms, WIMP spectra, samples and seeds."""

from __future__ import annotations

import numpy as np
import pytest
from hepml_core.exceptions import ConfigError
from hepml_core.simulate import _darwin_detector as det
from hepml_core.simulate import _darwin_nest as nest
from hepml_core.simulate import _darwin_wimp as wimp
from hepml_core.simulate.darwin import FEATURES, PATTERN_FEATURES, S1_FEATURES, S2_FEATURES, simulate_darwin
from hepml_core.simulate.registry import simulate


@pytest.fixture(scope="module")
def mc():
    return simulate_darwin(3000, seed=11)


def test_columns_labels_and_triggers(mc):
    assert len(FEATURES) == 24 + 32 + 37
    assert set(FEATURES) <= set(mc.columns)
    assert set(mc["label"]) == {"ER", "NR"} and (mc["label"] == "NR").mean() == pytest.approx(0.5, abs=0.04)
    assert (mc.loc[mc["label"] == "ER", "source"] == "er_flat").all()
    assert mc["energy_kev"].between(1, 100).all()
    assert (mc["s2_pe"] >= det.DEFAULT_DETECTOR.s2_threshold_pe).all()
    # The waveforms are the pulses whose areas are S1 and S2.
    np.testing.assert_allclose(mc[list(S1_FEATURES)].sum(axis=1), mc["s1_pe"], rtol=1e-4)
    np.testing.assert_allclose(mc[list(S2_FEATURES)].sum(axis=1), mc["s2_pe"], rtol=1e-4)
    top = mc[list(PATTERN_FEATURES)].sum(axis=1) / mc["s2_pe"]
    assert top.mean() == pytest.approx(det.DEFAULT_DETECTOR.top_fraction, rel=0.02)
    assert set(mc.attrs["acceptance"]) >= {"er_flat", "nr_flat"}


def test_seeded_and_registered(mc):
    again = simulate("darwin", 3000, seed=11)
    assert again.equals(mc)
    assert not simulate_darwin(3000, seed=12)["energy_kev"].equals(mc["energy_kev"])


def test_sampled_quanta_follow_nest_means_and_recombination_anticorrelation():
    rng = np.random.default_rng(0)
    for recoil, energy in (("ER", 20.0), ("NR", 30.0)):
        n_ph, n_e = nest.sample_quanta(np.full(20_000, energy), recoil, rng)
        ph_ref, e_ref = nest.nest_mean_quanta(recoil, energy)  # NEST's GetYields, the reference
        assert n_ph.mean() == pytest.approx(ph_ref, rel=0.03)
        assert n_e.mean() == pytest.approx(e_ref, rel=0.03)
    n_ph, n_e = nest.sample_quanta(np.full(20_000, 20.0), "ER", rng)
    assert np.corrcoef(n_ph, n_e)[0, 1] < -0.3  # recombination moves quanta between light and charge


def test_nr_has_less_charge_per_light_than_er(mc):
    ratio = np.log10(mc["cs2_pe"] / mc["cs1_pe"])
    same_s1 = mc["cs1_pe"].between(20, 60)  # bands are compared at the same light signal
    er, nr = ratio[same_s1 & (mc["label"] == "ER")], ratio[same_s1 & (mc["label"] == "NR")]
    assert er.median() - nr.median() > 1.5 * er.std()  # the ER/NR band separation the classifier uses


def test_corrections_undo_depth_effects(mc):
    er = mc[(mc["label"] == "ER") & mc["energy_kev"].between(40, 60)]
    deep = er["drift_time_us"] > er["drift_time_us"].median()
    raw = er.loc[deep, "s2_pe"].mean() / er.loc[~deep, "s2_pe"].mean()
    corrected = er.loc[deep, "cs2_pe"].mean() / er.loc[~deep, "cs2_pe"].mean()
    assert raw < 0.96 and corrected == pytest.approx(1.0, abs=0.04)
    # Diffusion: deeper events have wider S2 pulses.
    bins = np.arange(len(S2_FEATURES))
    wf = er[list(S2_FEATURES)].to_numpy()
    mean = (wf * bins).sum(1) / wf.sum(1)
    width = np.sqrt((wf * (bins - mean[:, None]) ** 2).sum(1) / wf.sum(1))
    assert np.corrcoef(width, er["drift_time_us"])[0, 1] > 0.5


def _eta_numeric(vmin: float) -> float:
    """Mean inverse speed by brute-force integration of the boosted, truncated Maxwellian (independent check)."""
    v0, vesc, ve = 220.0, 544.0, 232.0
    v = np.linspace(0, vesc + ve, 6001)[:, None]  # speed in the Earth frame
    c = np.linspace(-1, 1, 2001)[None, :]  # cos of the angle to the Earth's motion
    u2 = v * v + ve * ve + 2 * v * ve * c  # galactic-frame speed squared
    f = np.exp(-u2 / v0**2) * (u2 < vesc**2)
    per_v = np.trapezoid(f, c[0], axis=1) * v[:, 0] ** 2
    norm = np.trapezoid(per_v, v[:, 0])
    above = v[:, 0] >= vmin
    return float(np.trapezoid((per_v / v[:, 0].clip(1e-9))[above], v[above, 0]) / norm)


@pytest.mark.parametrize("vmin", [100.0, 400.0, 700.0])
def test_halo_mean_inverse_speed_matches_numerical_integration(vmin):
    assert wimp._eta(np.array([vmin]))[0] == pytest.approx(_eta_numeric(vmin), rel=5e-3)


def test_wimp_spectra_scale_with_sigma_and_are_sampled_right():
    e = np.linspace(1, 60, 50)
    np.testing.assert_allclose(wimp.wimp_rate(e, 50, 2e-47), 2 * wimp.wimp_rate(e, 50, 1e-47))
    assert wimp.wimp_rate(np.array([5.0]), 30)[0] > wimp.wimp_rate(np.array([5.0]), 100)[0]
    assert 1.0 < wimp.wimp_events_per_tonne_year(50.0) < 10.0  # order of the published Xe rates at 1e-47 cm2
    grid = np.linspace(1, 100, 4001)
    pdf = wimp.wimp_rate(grid, 50)
    mean_ref = np.trapezoid(grid * pdf, grid) / np.trapezoid(pdf, grid)
    draws = wimp.sample_wimp_energies(50_000, 50, np.random.default_rng(1))
    assert draws.mean() == pytest.approx(mean_ref, rel=0.02)


def test_data_sample_and_option_errors():
    data = simulate_darwin(2000, seed=3, sample="data", signal_fraction=0.05, wimp_mass=30)
    assert set(data["source"]) == {"er_flat", "wimp30"}
    assert (data["source"] == "wimp30").mean() == pytest.approx(0.05, abs=0.02)
    wimps = simulate_darwin(500, seed=3, recoil="NR", nr_spectrum="wimp", wimp_mass=100)
    assert (wimps["source"] == "wimp100").all()
    with pytest.raises(ConfigError, match="wimp_mass"):
        simulate_darwin(10, wimp_mass=40, recoil="NR", nr_spectrum="wimp")
    with pytest.raises(ConfigError, match="recoil"):
        simulate_darwin(10, recoil="gamma")
    with pytest.raises(ConfigError, match="n_events"):
        simulate_darwin(0)
