"""Toy of the CMS heavy-neutral-lepton search with three leptons, at least one a hadronic tau (seed talk 003).

``simulate_hnl`` produces what the talk's classifiers see: three reconstructed leptons in one of five
channels (tau-tau-mu, tau-tau-e, tau-mu-mu, tau-mu-e, tau-e-e), MET, 85 features (17 raw, 68 derived:
pairwise masses, delta-R, delta-phi, transverse masses, Mt_tot, E_tot ...), the channel, the HNL mass
hypothesis, a 0/1 label (1 = signal), the process and an event weight.

Physics assumptions
    * Signal for 16 mass hypotheses (``MASSES``, 85-1000 GeV): W* -> l N with an off-shell W* of mass
      m_N + 2 GeV + Exp(0.12 m_N), N -> l W(*) with W(*) -> l nu (a Breit-Wigner W truncated below
      m_N - 3 GeV), isotropic two-body decays in each rest frame; the W* system gets pT ~ Exp(15 GeV)
      and rapidity ~ N(0, 1.2). N is Majorana: the charge of its first lepton is random.
    * Backgrounds: WZ -> l nu ll, ZZ -> llll with the softer lepton of one Z lost (its pT adds to MET),
      ttbar dilepton with a b jet faking the tau, and Drell-Yan (Z/gamma* -> ll) plus a jet faking the
      tau ("fake_tau"). Boson masses are Breit-Wigner, system masses exponential above threshold.
    * Flavours: each event's channel is drawn with process-dependent probabilities; leptons from one Z
      take the channel's repeated flavour (80 %), jet fakes are always the tau. Real taus decay
      hadronically in the collinear approximation: the visible system takes z ~ Beta(2.2, 1.4) of the
      momentum and a pi/rho/a1-like mass, the neutrino the rest (it enters MET).
    * Detector: pT resolution 1.5 % (mu), 2 % (e), 7 % (tau_h); MET = invisible pT + N(0, 10 GeV) per
      component. Selection: pT > 20 GeV (tau) and > 10 GeV (e, mu), |eta| < 2.5, delta-R > 0.3 between
      leptons. Leptons are stored in channel order (taus first), same flavours by decreasing pT.
    * Weights: each process's expected yield after selection (``YIELDS``, a 2018-like luminosity) shared
      equally by its events; signal yields fall as (100 GeV / m)^1.5 from 60 events at 100 GeV, so the
      signal is rare in weight although ~13.5 % of the events (the talk: 216k of 1.6M).
    * Background events receive a mass hypothesis drawn at random from the 16 values, as in the talk.

Simplified relative to the real analysis: no jets, pile-up, b-tagging, trigger or DeepTau scores, no
spin correlations or matrix elements (phase space only), no leptonic tau decays, constant resolutions,
toy cross sections.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hepml_core.exceptions import ConfigError
from hepml_core.simulate._hnl_features import (
    DERIVED_FEATURES, FEATURES, RAW_FEATURES, derived_features, feature_unit,
)
from hepml_core.simulate._hnl_generator import HnlKinematicsGenerator, regression_targets
from hepml_core.simulate._hnl_kinematics import pt_eta_phi_m, tau_visible
from hepml_core.simulate._hnl_processes import (
    CHANNEL_FLAVOURS, E, MU, PROCESS_GENERATORS, SIGNAL_GENERATOR, TAU, Objects,
)

__all__ = [
    "MASSES", "CHANNELS", "BACKGROUNDS", "FEATURES", "RAW_FEATURES", "DERIVED_FEATURES", "YIELDS",
    "signal_yield", "simulate_hnl", "feature_unit", "HnlKinematicsGenerator", "regression_targets",
]

MASSES: tuple[float, ...] = (85.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0, 600.0,
                             700.0, 800.0, 900.0, 1000.0)
CHANNELS: tuple[str, ...] = tuple(CHANNEL_FLAVOURS)
BACKGROUNDS: tuple[str, ...] = tuple(PROCESS_GENERATORS)

#: expected background events after selection (toy numbers for ~60 fb^-1)
YIELDS = {"wz": 1200.0, "zz": 250.0, "ttbar": 900.0, "fake_tau": 3500.0}
#: share of the background *events* (not weight) of each process in a sample
_BKG_SHARE = {"wz": 0.30, "zz": 0.10, "ttbar": 0.25, "fake_tau": 0.35}
#: channel probabilities per process, in CHANNELS order
_CHANNEL_P = {
    "signal": (0.2, 0.2, 0.2, 0.2, 0.2),
    "wz": (0.10, 0.10, 0.30, 0.20, 0.30),
    "zz": (0.10, 0.10, 0.30, 0.20, 0.30),
    "ttbar": (0.15, 0.15, 0.20, 0.30, 0.20),
    "fake_tau": (0.30, 0.30, 0.15, 0.10, 0.15),
}
_RESOLUTION = {E: 0.02, MU: 0.015, TAU: 0.07}
_PT_MIN = {E: 10.0, MU: 10.0, TAU: 20.0}
_MET_SIGMA = 10.0


def signal_yield(mass: float) -> float:
    """Expected signal events after selection at one mass hypothesis (toy: 60 (100 GeV / m)^1.5)."""
    return 60.0 * (100.0 / float(mass)) ** 1.5


def _reconstruct(obj: Objects, rng: np.random.Generator):
    """Tau decays, smearing, selection and channel ordering; returns arrays of the passing events."""
    n = obj.p4.shape[0]
    p4 = obj.p4.copy()
    invisible = obj.invisible.copy()
    real_tau = (obj.flavour == TAU) & ~obj.fake
    if real_tau.any():
        vis, nu = tau_visible(p4[real_tau], rng)
        p4[real_tau] = vis
        rows = np.nonzero(real_tau)[0]
        np.add.at(invisible, rows, nu[:, 1:3])
    pt, eta, phi, m = pt_eta_phi_m(p4)
    m = np.where(obj.flavour == TAU, m, np.where(obj.flavour == MU, 0.10566, 0.000511))
    res = np.choose(obj.flavour, [_RESOLUTION[E], _RESOLUTION[MU], _RESOLUTION[TAU]])
    pt = pt * np.clip(1.0 + res * rng.standard_normal((n, 3)), 0.5, None)
    # MET: truth invisible pT plus the resolution of the hadronic recoil
    met_x = invisible[:, 0] + rng.normal(0.0, _MET_SIGMA, n)
    met_y = invisible[:, 1] + rng.normal(0.0, _MET_SIGMA, n)
    threshold = np.choose(obj.flavour, [_PT_MIN[E], _PT_MIN[MU], _PT_MIN[TAU]])
    ok = ((pt > threshold) & (np.abs(eta) < 2.5)).all(axis=1)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        dphi = (phi[:, i] - phi[:, j] + np.pi) % (2 * np.pi) - np.pi
        ok &= np.hypot(dphi, eta[:, i] - eta[:, j]) > 0.3
    # channel order: taus first, then mu, then e; within a flavour by decreasing pT
    rank = np.choose(obj.flavour, [2, 1, 0])
    order = np.argsort(rank * 1e6 - pt, axis=1, kind="stable")

    def take(a):
        return np.take_along_axis(a, order, axis=1)[ok]

    return (take(pt), take(eta), take(phi), take(m), take(obj.charge), take(obj.flavour),
            np.hypot(met_x, met_y)[ok], np.arctan2(met_y, met_x)[ok])


def _channel_flavours(rng, process: str, n: int) -> np.ndarray:
    codes = rng.choice(len(CHANNELS), size=n, p=_CHANNEL_P[process])
    table = np.array([CHANNEL_FLAVOURS[c] for c in CHANNELS])
    return table[codes]


def _generate(rng, process: str, n: int, mass: float | None) -> dict[str, np.ndarray]:
    """Exactly ``n`` selected events of one process (generating in batches until enough pass)."""
    parts, have, eff = [], 0, 0.3
    while have < n:
        batch = int(min(max(1000, 1.3 * (n - have) / max(eff, 0.02)), 2_000_000))
        chans = _channel_flavours(rng, process, batch)
        if process == "signal":
            obj = SIGNAL_GENERATOR(rng, batch, mass, chans)
        else:
            obj = PROCESS_GENERATORS[process](rng, batch, chans)
        rec = _reconstruct(obj, rng)
        got = len(rec[0])
        eff = max(got / batch, 1e-3)
        parts.append(rec)
        have += got
    cols = [np.concatenate([p[k] for p in parts])[:n] for k in range(8)]
    keys = ("pt", "eta", "phi", "mass", "charge", "flavour", "met", "met_phi")
    return dict(zip(keys, cols))


def _frame(ev: dict[str, np.ndarray]) -> pd.DataFrame:
    cols: dict[str, np.ndarray] = {}
    for k in range(3):
        for q in ("pt", "eta", "phi", "mass", "charge"):
            cols[f"l{k + 1}_{q}"] = ev[q][:, k].astype(np.float64)
    cols["met"], cols["met_phi"] = ev["met"], ev["met_phi"]
    cols.update(derived_features(ev["pt"], ev["eta"], ev["phi"], ev["mass"], ev["charge"], ev["met"],
                                 ev["met_phi"]))
    frame = pd.DataFrame({f: cols[f] for f in FEATURES})
    flav = ev["flavour"]
    lut = np.full(27, -1, dtype=np.int64)
    for i, (a, b, c) in enumerate(CHANNEL_FLAVOURS.values()):
        lut[a * 9 + b * 3 + c] = i
    codes = lut[flav[:, 0] * 9 + flav[:, 1] * 3 + flav[:, 2]]
    frame["channel"] = pd.Categorical.from_codes(codes, categories=list(CHANNELS))
    return frame


def simulate_hnl(n_events: int, *, seed: int | np.random.Generator | None = None, sample: str = "mc",
                 progress: bool = False, signal_fraction: float = 0.135,
                 masses: tuple[float, ...] = MASSES) -> pd.DataFrame:
    """Simulate selected three-lepton events: HNL signal at every mass hypothesis and the backgrounds.

    Args:
        n_events: number of selected events (signal and background together).
        seed: int or numpy Generator.
        sample: only ``"mc"`` (the talk has no data sample).
        progress: accepted for the simulator interface; generation takes seconds.
        signal_fraction: share of signal *events* (weights keep the signal rare).
        masses: HNL mass hypotheses in GeV (signal is shared equally between them).

    Returns:
        One row per event: the 85 ``FEATURES``, ``channel`` (categorical, ``CHANNELS``), ``mass_hyp``
        (GeV; random for background), ``label`` (1 signal, 0 background), ``process`` and ``weight``
        (expected events), shuffled.

    Raises:
        ConfigError: a bad argument (what was received and what is accepted).
    """
    if sample != "mc":
        raise ConfigError(f"simulate_hnl: sample={sample!r} is not available; the HNL toy has only sample='mc'")
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"simulate_hnl: n_events must be a positive int, got {n_events!r}")
    if not 0.0 <= signal_fraction < 1.0:
        raise ConfigError(f"simulate_hnl: signal_fraction must be in [0, 1), got {signal_fraction!r}")
    masses = tuple(float(m) for m in masses)
    if not masses or min(masses) <= 82.0:
        raise ConfigError(f"simulate_hnl: masses must be HNL masses above 82 GeV (the W* -> l N threshold of "
                          f"the toy); got {masses!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n_sig = int(round(n_events * signal_fraction))
    n_bkg = n_events - n_sig
    sig_counts = np.full(len(masses), n_sig // len(masses))
    sig_counts[: n_sig % len(masses)] += 1
    shares = np.array([_BKG_SHARE[p] for p in BACKGROUNDS])
    bkg_counts = np.floor(shares / shares.sum() * n_bkg).astype(int)
    bkg_counts[0] += n_bkg - bkg_counts.sum()

    parts = []
    for mass, count in zip(masses, sig_counts):
        if count:
            f = _frame(_generate(rng, "signal", int(count), mass))
            parts.append(f.assign(mass_hyp=mass, label=1, process="signal",
                                  weight=signal_yield(mass) / count))
    for process, count in zip(BACKGROUNDS, bkg_counts):
        if count:
            f = _frame(_generate(rng, process, int(count), None))
            parts.append(f.assign(mass_hyp=rng.choice(np.asarray(masses), size=int(count)), label=0,
                                  process=process, weight=YIELDS[process] / count))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    frame["channel"] = pd.Categorical(frame["channel"], categories=list(CHANNELS))
    frame["process"] = pd.Categorical(frame["process"], categories=["signal", *BACKGROUNDS])
    frame["label"] = frame["label"].astype(np.int64)
    frame["mass_hyp"] = frame["mass_hyp"].astype(np.float64)
    return frame
