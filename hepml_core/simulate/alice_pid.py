"""Toy of ALICE central-barrel tracks for particle identification with missing detector signals (seed talk 002).

``simulate_alice_pid`` produces tracks of pions, kaons, protons and their antiparticles (plus a few
electrons and muons, label ``other``) with the 19 track features the talk's models read, NaN where a
detector gives no signal, the true species as ``label`` and the n-sigma values of the standard
selection (``nsigma_tpc_<species>``, ``nsigma_tof_<species>``), computed from the same
parametrisations (``_alice_pid_detector``) at the reconstructed momentum.

Physics assumptions
    * pp at 13 TeV, |eta| < 0.8, full azimuth, pT > 0.1 GeV/c. Abundances per track: pi+- 80 %,
      K+- 11 %, p 3.5 %, pbar 3.0 %, e+- 1.5 %, mu+- 1 %; particles and antiparticles equally likely
      except the protons (baryon transport and secondaries from material).
    * pT spectra: Levy-Tsallis dN/dpT ~ pT (1 + (mT - m)/(n T))^-n with (T, n) = (0.12, 7.0) for
      pi/e/mu, (0.19, 7.0) for K and (0.21, 8.5) for p; sampled by inverse CDF on a fine grid.
    * Momentum resolution sigma(pT)/pT = 0.8 % + 0.4 % pT (the features are reconstructed momenta).
    * TPC: truncated-mean dE/dx from the ALEPH Bethe-Bloch parametrisation (MIP = 50 a.u.), Gaussian
      resolution 5.5 % x sqrt(130 / clusters), 60-159 clusters found, a few shared clusters. Always present.
    * ITS: dE/dx (MIP ~ 84 keV/300 um) with a log-normal 11 % spread (Landau-like tail); the PID
      signal needs >= 3 clusters in the four outer layers, which fails for ~7 % of the tracks (more at
      low pT): then ``its_signal`` is NaN and ``its_ncls`` is 1-2.
    * TRD: truncated-mean signal (hadrons: a Bethe-Bloch shape; electrons: +60 % transition
      radiation), resolution 22 % / sqrt(tracklets / 6), 1-6 tracklets. Present only above
      pT ~ 0.3 GeV/c and for ~70 % of the tracks there (supermodule coverage, efficiency).
    * TOF at r = 3.7 m: track length from the helix (tracks below pT ~ 0.28 GeV/c never reach it),
      80 ps time resolution, beta = L / (c t). Matching efficiency rises to 75 % above pT ~ 0.6
      GeV/c; pions and kaons that decay in flight before TOF (c tau = 7.8 m / 3.7 m) lose their
      match; 3 % of matches are mismatches (a time from another track). Without a match
      ``tof_signal`` and ``tof_beta`` are NaN.
    * DCA to the primary vertex: Gaussian with sigma_xy = 20 um + 35 um / pT^1.1 (z: x 1.3); 12 % of
      protons, 4 % of antiprotons and 30 % of electrons are secondaries (weak decays, material,
      conversions) with exponential DCA tails of ~0.3 cm.
    * The resulting missing-signal patterns (the talk's four: complete, no TOF, no TRD, neither):
      complete ~ 19 %, no TRD ~ 12 %, no TOF ~ 15 %, no TOF and no TRD ~ 54 %; ~7 % of the tracks
      also lack the ITS signal, spread over the four.

The ``"data"`` sample has the same physics with a slightly different response (TPC resolution 6.2 %,
a 1.5 % higher dE/dx scale, TOF resolution 95 ps, TOF matching x0.9); its labels are the hidden truth.

Simplified relative to a Geant4 simulation: no energy loss or multiple scattering in the momentum,
no track-quality cuts or fake tracks, independent detectors (no correlated inefficiency), no muon
decays, one global TOF mismatch rate, straight-line decay probabilities, and unit weights.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from hepml_core.exceptions import ConfigError
from hepml_core.simulate import _alice_pid_detector as det

__all__ = [
    "CLASS_NAMES",
    "SPECIES",
    "FEATURES",
    "FEATURE_UNITS",
    "DETECTOR_GROUPS",
    "NSIGMA_COLUMNS",
    "AlicePidParams",
    "DATA_RESPONSE",
    "species_charge",
    "species_mass_name",
    "simulate_alice_pid",
]

#: the identified species (one-vs-all models and tables) and the full label list (+ e and mu as "other")
SPECIES = ("pion", "kaon", "proton", "antipion", "antikaon", "antiproton")
CLASS_NAMES = (*SPECIES, "other")

FEATURES = (
    "p", "pt", "px", "py", "pz", "sign", "eta", "phi", "dca_xy", "dca_z",
    "tpc_signal", "tpc_ncls", "tpc_ncls_shared", "its_signal", "its_ncls",
    "trd_signal", "trd_ntracklets", "tof_signal", "tof_beta",
)
FEATURE_UNITS = {
    "p": "GeV/c", "pt": "GeV/c", "px": "GeV/c", "py": "GeV/c", "pz": "GeV/c", "sign": "e", "eta": "",
    "phi": "rad", "dca_xy": "cm", "dca_z": "cm", "tpc_signal": "a.u.", "tpc_ncls": "clusters",
    "tpc_ncls_shared": "clusters", "its_signal": "keV/300 um", "its_ncls": "clusters", "trd_signal": "a.u.",
    "trd_ntracklets": "tracklets", "tof_signal": "ns", "tof_beta": "",
}
#: features that go missing together, by detector
DETECTOR_GROUPS = {"ITS": ("its_signal",), "TRD": ("trd_signal", "trd_ntracklets"), "TOF": ("tof_signal", "tof_beta")}
NSIGMA_COLUMNS = tuple(f"nsigma_{d}_{s}" for d in ("tpc", "tof") for s in ("pion", "kaon", "proton"))

_KINDS = ("pion", "kaon", "proton", "electron", "muon")
# (kind, charge sign, fraction of tracks)
_POPULATION = (
    ("pion", +1, 0.400), ("pion", -1, 0.400), ("kaon", +1, 0.055), ("kaon", -1, 0.055),
    ("proton", +1, 0.035), ("proton", -1, 0.030), ("electron", +1, 0.0075), ("electron", -1, 0.0075),
    ("muon", +1, 0.005), ("muon", -1, 0.005),
)
_TSALLIS = {"pion": (0.12, 7.0), "kaon": (0.19, 7.0), "proton": (0.21, 8.5), "electron": (0.12, 7.0),
            "muon": (0.12, 7.0)}
_CTAU_M = {"pion": 7.8045, "kaon": 3.712}
_SECONDARY = {("proton", +1): 0.12, ("proton", -1): 0.04, ("electron", +1): 0.30, ("electron", -1): 0.30}


@dataclass(frozen=True)
class AlicePidParams:
    """Detector response knobs (the MC defaults; ``DATA_RESPONSE`` for the "data" sample)."""

    tpc_resolution: float = det.TPC_RESOLUTION
    tpc_scale: float = 1.0
    tof_resolution_ns: float = det.TOF_RESOLUTION_NS
    tof_match_scale: float = 1.0
    tof_mismatch: float = 0.03
    its_missing: float = 0.05
    trd_coverage: float = 0.70
    pt_min: float = 0.1
    pt_max: float = 10.0
    eta_max: float = 0.8


DATA_RESPONSE = AlicePidParams(tpc_resolution=0.062, tpc_scale=1.015, tof_resolution_ns=0.095, tof_match_scale=0.9)


def species_charge(name: str) -> int:
    """+1 for pion/kaon/proton, -1 for their antiparticles."""
    return -1 if name.startswith("anti") else +1


def species_mass_name(name: str) -> str:
    """The mass hypothesis of a species name ("antikaon" -> "kaon")."""
    return name.removeprefix("anti")


def _label(kind: str, sign: int) -> str:
    if kind in ("electron", "muon"):
        return "other"
    return kind if sign > 0 else f"anti{kind}"


def _sample_pt(rng: np.random.Generator, n: int, kind: str, p: AlicePidParams) -> np.ndarray:
    temperature, n_exp = _TSALLIS[kind]
    mass = det.MASSES[kind]
    grid = np.geomspace(p.pt_min, p.pt_max, 4000)
    mt = np.sqrt(grid ** 2 + mass ** 2)
    density = grid * (1.0 + (mt - mass) / (n_exp * temperature)) ** (-n_exp)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    return np.interp(rng.random(n) * cdf[-1], cdf, grid)


def _population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    fractions = np.array([f for _, _, f in _POPULATION])
    which = rng.choice(len(_POPULATION), size=n, p=fractions / fractions.sum())
    kinds = np.array([_KINDS.index(k) for k, _, _ in _POPULATION])[which]
    signs = np.array([s for _, s, _ in _POPULATION])[which]
    return kinds, signs


def _resolve(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ConfigError(f"seed must be an int, a numpy Generator or None; got {rng!r}")


def simulate_alice_pid(n_events: int, *, seed: int | np.random.Generator | None = None, sample: str = "mc",
                       progress: bool = False, **options) -> pd.DataFrame:
    """Simulate ``n_events`` ALICE tracks with the 19 PID features, NaN for missing detector signals.

    Args:
        n_events: number of tracks (>= 1).
        seed: int or numpy Generator (None: fresh entropy).
        sample: ``"mc"`` or ``"data"`` (``DATA_RESPONSE``; labels are the hidden truth).
        progress: accepted for the simulator interface; the toy is one vectorised pass.
        **options: fields of :class:`AlicePidParams` to override (e.g. ``its_missing=0.1``).

    Returns:
        DataFrame with the ``FEATURES`` (float32, NaN = no signal), ``label`` (one of ``CLASS_NAMES``),
        ``weight`` (1.0) and the ``NSIGMA_COLUMNS`` (float32; TOF ones NaN without TOF).

    Raises:
        ConfigError: bad ``n_events``, ``sample``, seed or option name.
    """
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"simulate_alice_pid: n_events must be a positive int, got {n_events!r}")
    if sample not in ("mc", "data"):
        raise ConfigError(f"simulate_alice_pid: sample must be 'mc' or 'data', got {sample!r}")
    base = DATA_RESPONSE if sample == "data" else AlicePidParams()
    accepted = {f.name for f in fields(AlicePidParams)}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"simulate_alice_pid: unknown option(s) {unknown}; accepted: {', '.join(sorted(accepted))}")
    params = replace(base, **options)
    rng = _resolve(seed)
    n = int(n_events)
    kinds, signs = _population(rng, n)
    masses = np.array([det.MASSES[k] for k in _KINDS])[kinds]

    pt_true = np.empty(n)
    for i, kind in enumerate(_KINDS):
        sel = kinds == i
        pt_true[sel] = _sample_pt(rng, int(sel.sum()), kind, params)
    eta = rng.uniform(-params.eta_max, params.eta_max, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    p_true = pt_true * np.cosh(eta)

    # Reconstructed kinematics: what the features (and the n-sigma expectations) use.
    pt = pt_true * (1.0 + rng.normal(0.0, 0.008 + 0.004 * pt_true))
    p = pt * np.cosh(eta)

    # TPC: always present in the toy (the tracks are TPC tracks)
    tpc_ncls = np.clip(np.round(rng.normal(135, 15, n) - 20 * np.exp(-pt_true / 0.3)), 60, 159)
    tpc_shared = rng.poisson(0.8, n).astype(np.float64)
    tpc_mean = params.tpc_scale * det.tpc_expected(p_true, masses)
    tpc_signal = tpc_mean + rng.normal(0.0, 1.0, n) * det.tpc_sigma(tpc_mean, tpc_ncls, params.tpc_resolution)

    # ITS: PID signal needs >= 3 clusters in SDD+SSD; more failures at low pT (tracks leave the layers).
    its_mean = 84.0 * det.bethe_bloch_aleph(p_true / masses)
    its_signal = its_mean * np.exp(rng.normal(0.0, 0.11, n))
    its_missing = rng.random(n) < params.its_missing + 0.08 * np.exp(-pt_true / 0.25)
    its_ncls = np.where(its_missing, rng.integers(1, 3, n), rng.choice([3, 4, 5, 6], n, p=[0.05, 0.15, 0.35, 0.45]))
    its_signal[its_missing] = np.nan

    # TRD: above pT ~ 0.3 GeV/c, in the covered azimuth/efficiency fraction
    trd_present = (pt_true > 0.3) & (rng.random(n) < params.trd_coverage * (1 - np.exp(-(pt_true - 0.3) / 0.1)))
    tracklets = np.clip(rng.binomial(6, 0.85, n), 1, 6).astype(np.float64)
    is_electron = kinds == _KINDS.index("electron")
    trd_mean = 1.0 * det.bethe_bloch_aleph(p_true / masses) * np.where(is_electron, 1.6, 1.0)
    trd_signal = trd_mean * (1.0 + rng.normal(0.0, 1.0, n) * 0.22 / np.sqrt(tracklets / 6.0))
    trd_signal = np.where(trd_present, np.maximum(trd_signal, 0.05), np.nan)
    tracklets = np.where(trd_present, tracklets, np.nan)

    # TOF: the helix must reach r = 3.7 m, survive decays, be matched; a few matches are wrong.
    length = det.track_length(pt_true, eta)
    reaches = np.isfinite(length)
    match_eff = params.tof_match_scale * 0.75 * (1 - np.exp(-np.clip(pt_true - 0.28, 0, None) / 0.12))
    survive = np.ones(n)
    for kind, ctau in _CTAU_M.items():
        sel = (kinds == _KINDS.index(kind)) & reaches
        survive[sel] = np.exp(-length[sel] * masses[sel] / (p_true[sel] * ctau))
    tof_present = reaches & (rng.random(n) < match_eff * survive)
    t_true = det.tof_expected_time(np.where(reaches, length, 1.0), p_true, masses)
    mismatch = rng.random(n) < params.tof_mismatch
    light_time = np.where(reaches, length, 1.0) / det.C_M_PER_NS
    t_meas = np.where(mismatch, light_time * rng.uniform(1.0, 1.8, n), t_true)
    t_meas = t_meas + rng.normal(0.0, params.tof_resolution_ns, n)
    tof_signal = np.where(tof_present, t_meas, np.nan)
    # The reconstructed length uses the reconstructed pT (what the analysis knows).
    length_reco = det.track_length(pt, eta)
    tof_beta = np.where(tof_present, length_reco / (tof_signal * det.C_M_PER_NS), np.nan)

    # DCA: primaries with pT-dependent resolution; secondaries with wide tails
    sigma_xy = 0.0020 + 0.0035 / pt_true ** 1.1
    dca_xy = rng.normal(0.0, sigma_xy)
    dca_z = rng.normal(0.0, 1.3 * sigma_xy)
    secondary_p = np.zeros(n)
    for (kind, sign), fraction in _SECONDARY.items():
        secondary_p[(kinds == _KINDS.index(kind)) & (signs == sign)] = fraction
    secondary = rng.random(n) < secondary_p
    n_sec = int(secondary.sum())
    dca_xy[secondary] += rng.choice([-1.0, 1.0], n_sec) * rng.exponential(0.3, n_sec)
    dca_z[secondary] += rng.choice([-1.0, 1.0], n_sec) * rng.exponential(0.3, n_sec)

    frame = {
        "p": p, "pt": pt, "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
        "sign": signs.astype(np.float64), "eta": eta, "phi": phi, "dca_xy": dca_xy, "dca_z": dca_z,
        "tpc_signal": tpc_signal, "tpc_ncls": tpc_ncls, "tpc_ncls_shared": tpc_shared,
        "its_signal": its_signal, "its_ncls": its_ncls.astype(np.float64),
        "trd_signal": trd_signal, "trd_ntracklets": tracklets, "tof_signal": tof_signal, "tof_beta": tof_beta,
    }
    out = pd.DataFrame({name: np.asarray(frame[name], dtype=np.float32) for name in FEATURES})
    out["label"] = _labels(kinds, signs)
    out["weight"] = 1.0
    for hypothesis in ("pion", "kaon", "proton"):
        mass = det.MASSES[hypothesis]
        out[f"nsigma_tpc_{hypothesis}"] = det.nsigma_tpc(tpc_signal, p, tpc_ncls, mass).astype(np.float32)
    for hypothesis in ("pion", "kaon", "proton"):
        mass = det.MASSES[hypothesis]
        out[f"nsigma_tof_{hypothesis}"] = det.nsigma_tof(tof_signal, length_reco, p, mass).astype(np.float32)
    return out


def _labels(kinds: np.ndarray, signs: np.ndarray) -> np.ndarray:
    table = np.empty((len(_KINDS), 2), dtype=object)
    for i, kind in enumerate(_KINDS):
        table[i, 0] = _label(kind, -1)
        table[i, 1] = _label(kind, +1)
    return table[kinds, (signs > 0).astype(int)]
