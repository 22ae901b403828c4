"""The AMS nuclei toy: the talk's composition, the two domains, hidden truth, and the physics signatures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepml_core.exceptions import ConfigError
from hepml_core.simulate._ams_nuclei_detector import LAYER_Z_CM
from hepml_core.simulate.ams_nuclei import (COMPOSITION, IMAGE_COLUMNS, MODEL_TRACKER_COLUMNS, RIGIDITY_COLUMNS,
                                            TOF_COLUMNS, TRACKER_COLUMNS, simulate_ams_nuclei)
from hepml_core.simulate.registry import simulate


@pytest.fixture(scope="module")
def mc() -> pd.DataFrame:
    return simulate_ams_nuclei(40_000, seed=3)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate_ams_nuclei(40_000, seed=4, sample="data")


def test_columns_and_seeded_repeatability(mc):
    for col in (*TRACKER_COLUMNS, *IMAGE_COLUMNS, *RIGIDITY_COLUMNS, *TOF_COLUMNS, "l1_charge", "domain", "label"):
        assert col in mc
    assert len(TRACKER_COLUMNS) == 64 and len(MODEL_TRACKER_COLUMNS) == 62 and len(IMAGE_COLUMNS) == 16
    again = simulate_ams_nuclei(500, seed=3)
    pd.testing.assert_frame_equal(again, simulate_ams_nuclei(500, seed=3))
    assert not again.equals(simulate_ams_nuclei(500, seed=5))
    assert np.isfinite(mc[list(TRACKER_COLUMNS) + list(TOF_COLUMNS) + list(RIGIDITY_COLUMNS)].to_numpy()).all()
    # the registry and the CLI reach the same function
    pd.testing.assert_frame_equal(simulate("ams-nuclei", 300, seed=9), simulate_ams_nuclei(300, seed=9))


def test_mc_composition_follows_the_talk(mc):
    for selection, backgrounds in COMPOSITION.items():
        sub = mc[mc["selection"] == selection]
        assert (sub["label"] == "signal").mean() == pytest.approx(0.5, abs=0.02)
        total = sum(f for f, _ in backgrounds.values())
        for species, (fraction, above) in backgrounds.items():
            bkg = sub[(sub["true_species"] == species) & (sub["label"] == "background")]
            assert len(bkg) / len(sub) == pytest.approx(0.5 * fraction / total, abs=0.015)
            if len(bkg) > 300:
                assert (bkg["true_category"] == "above_l1").mean() == pytest.approx(above, abs=0.05)
    # the talk's MC proportions of the three selections: 125k : 187.5k : 125k
    assert (mc["selection"] == "P").mean() == pytest.approx(187.5 / 437.5, abs=0.01)


def test_data_domain_hides_labels_and_keeps_truth(data):
    assert data["label"].isna().all()
    assert set(data["domain"]) == {"data"}
    assert (data["true_label"] == "signal").mean() == pytest.approx(0.55, abs=0.01)
    assert set(data["true_category"]) == {"signal", "above_l1", "below_l1"}


def test_data_response_differs_from_mc(mc, data):
    def signal_inner(frame):
        cols = [f"trk1_l{layer}{side}_q" for layer in range(2, 9) for side in "xy"]
        sel = (frame["true_label"] == "signal") & (frame["selection"] == "P")
        return frame.loc[sel, cols].to_numpy()

    # shifted charge scale (x1.02) and wider resolution, same physics
    ratio = np.median(signal_inner(data)) / np.median(signal_inner(mc))
    assert ratio == pytest.approx(1.02, abs=0.005)
    assert np.std(signal_inner(data)[:, 0]) > 1.1 * np.std(signal_inner(mc)[:, 0])
    # extra noise clusters: +20 % of the noise by default (also in "residual"), twice the noise when "strong"
    per_layer = lambda f: f[list(IMAGE_COLUMNS)].to_numpy().mean()  # noqa: E731
    assert per_layer(data) > per_layer(mc) + 0.05
    strong = simulate_ams_nuclei(10_000, seed=4, sample="data", data_shift="strong")
    assert per_layer(strong) > per_layer(data) + 0.2
    # the data shift changes the measurement only: same composition and truth as the residual sample
    assert (strong["true_label"] == "signal").mean() == pytest.approx(0.55, abs=0.02)
    pd.testing.assert_frame_equal(simulate_ams_nuclei(300, seed=1, data_shift="strong"),
                                  simulate_ams_nuclei(300, seed=1))  # MC ignores the data shift
    # same rigidity spectrum (the talk: similar rigidity distributions)
    assert np.median(data["rig_inner"]) == pytest.approx(np.median(mc["rig_inner"]), rel=0.05)


def test_fragmentation_signatures(mc):
    p = mc[mc["selection"] == "P"]
    below = p[p["true_category"] == "below_l1"]
    above = p[p["true_category"] == "above_l1"]
    signal = p[p["true_category"] == "signal"]
    # below L1 the parent (S, Z = 16) crosses L1; above L1 every layer sees the fragment (Z = 15)
    assert below["l1_charge"].median() == pytest.approx(16.0, abs=0.3)
    assert above["l1_charge"].median() == pytest.approx(signal["l1_charge"].median(), abs=0.05)
    # a kink between L1 and L2 spreads R(inner+L1)/R(inner); fragments leave more clusters
    spread = lambda f: np.std(f["rig_inner_l1"] / f["rig_inner"])  # noqa: E731
    assert spread(below) > 3 * spread(signal)
    ncl = lambda f: f[list(IMAGE_COLUMNS)].to_numpy().sum(axis=1).mean()  # noqa: E731
    assert ncl(above) > ncl(signal) + 1.0


def _l1_residual_x(frame: pd.DataFrame) -> np.ndarray:
    """L1 x hit minus the straight line through the L2 and L3 x hits (x has no magnetic bending), cm."""
    z1, z2, z3 = LAYER_Z_CM[:3]
    x1, x2, x3 = (frame[f"trk1_l{layer}x_pos"].to_numpy() for layer in (1, 2, 3))
    return x1 - (x2 + (x2 - x3) * (z1 - z2) / (z2 - z3))


def test_l1_misalignment_mimics_a_below_l1_kink(mc, data):
    # The default data shift ("misaligned") moves every data event's L1 hit off the inner track and
    # pulls R(inner+L1) / R(inner): in the MC only a fragmentation below L1 does that.
    residual = simulate_ams_nuclei(40_000, seed=4, sample="data", data_shift="residual")
    signal = lambda f: f[f["true_category"] == "signal"]  # noqa: E731
    below = mc[mc["true_category"] == "below_l1"]
    spread = lambda f: np.std(f["rig_inner_l1"] / f["rig_inner"])  # noqa: E731
    assert np.std(_l1_residual_x(signal(mc))) < 0.02
    assert np.std(_l1_residual_x(signal(residual))) < 0.02
    assert np.std(_l1_residual_x(below)) > 0.1
    assert np.std(_l1_residual_x(signal(data))) == pytest.approx(0.3, rel=0.1)
    assert spread(signal(residual)) < 1.5 * spread(signal(mc))
    assert spread(signal(data)) > 3 * spread(signal(mc))
    # the misalignment is a measurement effect: the same events and truth as the residual sample
    for col in ("true_category", "true_species", "l1_charge", "trk1_l2x_q"):
        pd.testing.assert_series_equal(data[col], residual[col])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_events": 0}, "positive int"),
    ({"n_events": 10, "sample": "real"}, "'mc' or 'data'"),
    ({"n_events": 10, "data_signal_fraction": 1.5}, r"\(0, 1\)"),
    ({"n_events": 10, "selections": ["Ar"]}, "accepted"),
    ({"n_events": 10, "sample": "data", "data_shift": "huge"}, "data_shift.*residual"),
])
def test_bad_arguments_are_config_errors(kwargs, match):
    n = kwargs.pop("n_events")
    with pytest.raises(ConfigError, match=match):
        simulate_ams_nuclei(n, seed=1, **kwargs)
