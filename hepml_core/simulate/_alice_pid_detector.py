"""Detector response parametrisations of the alice-pid toy, shared by the simulator and the n-sigma selection.

The simulator draws signals from these functions with the *true* momentum; the standard n-sigma
selection evaluates the same expectations and resolutions at the *reconstructed* momentum, as an
analysis does with the calibrated response of its detector.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MASSES",
    "C_M_PER_NS",
    "B_FIELD_T",
    "R_TOF_M",
    "TOF_RESOLUTION_NS",
    "TPC_RESOLUTION",
    "TPC_MIP",
    "bethe_bloch_aleph",
    "tpc_expected",
    "tpc_sigma",
    "track_length",
    "tof_expected_time",
    "nsigma_tpc",
    "nsigma_tof",
]

#: particle masses in GeV/c^2 (PDG)
MASSES = {"electron": 0.000511, "muon": 0.10566, "pion": 0.13957, "kaon": 0.49368, "proton": 0.93827,
          "deuteron": 1.87561}
C_M_PER_NS = 0.299792458  # speed of light in m/ns
B_FIELD_T = 0.5  # ALICE solenoid
R_TOF_M = 3.7  # radius of the TOF barrel
TOF_RESOLUTION_NS = 0.080  # 80 ps overall (intrinsic + event time)
TPC_RESOLUTION = 0.055  # relative dE/dx resolution for a track with the reference number of clusters
TPC_REFERENCE_CLUSTERS = 130.0
TPC_MIP = 50.0  # ALICE convention: a minimum-ionising track gives 50 a.u.

# ALEPH-type Bethe-Bloch parameters of the ALICE TPC (AliExternalTrackParam::BetheBlochAleph defaults).
_ALEPH = (0.0762, 10.632, 1.3279e-5, 1.8631, 1.9479)


def _aleph_raw(bg: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    p1, p2, p3, p4, p5 = params
    beta = bg / np.sqrt(1.0 + bg * bg)
    aa = beta ** p4
    return (p2 - aa - np.log(p3 + 1.0 / bg ** p5)) * p1 / aa


# The minimum of the default curve: the MIP normalisation (so the signal of a MIP is TPC_MIP).
_ALEPH_MIN = float(_aleph_raw(np.geomspace(1.0, 20.0, 4000), _ALEPH).min())


def bethe_bloch_aleph(bg: np.ndarray, params: tuple[float, ...] = _ALEPH) -> np.ndarray:
    """ALEPH Bethe-Bloch shape of <dE/dx> versus beta*gamma, normalised to 1 at the minimum (bg ~ 4).

    Args:
        bg: beta*gamma = p/m (positive).
        params: (P1..P5) of the ALEPH parametrisation.

    Returns:
        <dE/dx> in units of the minimum-ionising value (the Fermi plateau is ~1.6).
    """
    bg = np.maximum(np.asarray(bg, dtype=np.float64), 1e-3)
    return _aleph_raw(bg, params) / _ALEPH_MIN


def tpc_expected(p: np.ndarray, mass: float | np.ndarray) -> np.ndarray:
    """Expected TPC dE/dx (a.u., MIP = 50) of a particle of mass ``mass`` at momentum ``p`` (GeV/c)."""
    return TPC_MIP * bethe_bloch_aleph(np.asarray(p) / mass)


def tpc_sigma(expected: np.ndarray, n_clusters: np.ndarray, resolution: float = TPC_RESOLUTION) -> np.ndarray:
    """Gaussian width of the truncated-mean dE/dx: the resolution scales as 1/sqrt(clusters)."""
    return resolution * expected * np.sqrt(TPC_REFERENCE_CLUSTERS / np.maximum(n_clusters, 1.0))


def track_length(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Helix length (m) from the vertex to the TOF radius; NaN where the track curls before reaching it.

    The transverse arc to radius r on a circle of radius R = pT / (0.3 B) is 2R asin(r / 2R); the
    longitudinal motion stretches it by cosh(eta).
    """
    radius = np.asarray(pt, dtype=np.float64) / (0.3 * B_FIELD_T)
    ratio = R_TOF_M / (2.0 * radius)
    with np.errstate(invalid="ignore"):
        arc = np.where(ratio <= 1.0, 2.0 * radius * np.arcsin(np.minimum(ratio, 1.0)), np.nan)
    return arc * np.cosh(eta)


def tof_expected_time(length_m: np.ndarray, p: np.ndarray, mass: float | np.ndarray) -> np.ndarray:
    """Time of flight (ns) over ``length_m`` for momentum ``p`` and mass ``mass``."""
    p = np.asarray(p, dtype=np.float64)
    beta = p / np.sqrt(p * p + np.asarray(mass) ** 2)
    return length_m / (beta * C_M_PER_NS)


def nsigma_tpc(signal: np.ndarray, p: np.ndarray, n_clusters: np.ndarray, mass: float) -> np.ndarray:
    """(measured - expected) / sigma of the TPC dE/dx for the mass hypothesis ``mass``."""
    expected = tpc_expected(p, mass)
    return (signal - expected) / tpc_sigma(expected, n_clusters)


def nsigma_tof(time_ns: np.ndarray, length_m: np.ndarray, p: np.ndarray, mass: float) -> np.ndarray:
    """(measured - expected) / sigma of the TOF time for ``mass``; NaN where TOF has no signal."""
    return (time_ns - tof_expected_time(length_m, p, mass)) / TOF_RESOLUTION_NS
