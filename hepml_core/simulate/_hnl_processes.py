"""Parton-level toys of the HNL signal and its backgrounds: three lepton candidates per event plus MET.

Each generator returns a ``_Objects`` batch: four-vectors of three lepton candidates, their flavour
(0 e, 1 mu, 2 tau), charge and whether the candidate is a jet faking a tau, and the truth
invisible transverse momentum (neutrinos, lost leptons). Detector effects and the selection are applied
afterwards by the simulator, for all processes alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepml_core.simulate._hnl_kinematics import breit_wigner, p4_from_mass_pt_y, two_body

__all__ = ["E", "MU", "TAU", "LEPTON_MASS", "CHANNEL_FLAVOURS", "Objects", "PROCESS_GENERATORS", "SIGNAL_GENERATOR"]

E, MU, TAU = 0, 1, 2
LEPTON_MASS = {E: 0.000511, MU: 0.10566, TAU: 1.77686}
W_MASS, W_WIDTH, Z_MASS, Z_WIDTH, TOP_MASS = 80.379, 2.085, 91.1876, 2.4952, 172.5

#: flavours of each channel, in the order the reconstructed leptons are stored
CHANNEL_FLAVOURS = {
    "tau_tau_mu": (TAU, TAU, MU),
    "tau_tau_e": (TAU, TAU, E),
    "tau_mu_mu": (TAU, MU, MU),
    "tau_mu_e": (TAU, MU, E),
    "tau_e_e": (TAU, E, E),
}


@dataclass
class Objects:
    """Three lepton candidates per event (before tau decays, smearing and selection)."""

    p4: np.ndarray  # (n, 3, 4)
    flavour: np.ndarray  # (n, 3) int
    charge: np.ndarray  # (n, 3) +-1
    fake: np.ndarray  # (n, 3) bool: a jet reconstructed as a hadronic tau
    invisible: np.ndarray  # (n, 2) px, py of neutrinos and lost leptons


def _system(rng, m, n, pt_scale, y_sigma=1.2):
    pt = rng.exponential(pt_scale, n)
    return p4_from_mass_pt_y(m, pt, rng.normal(0.0, y_sigma, n), rng.uniform(-np.pi, np.pi, n))


def _flavours(rng, channel_flavours: np.ndarray, pair: tuple[int, int] | None, must_be_tau: int | None):
    """Assign the channel's flavours to the three candidates.

    ``pair``: candidates from one boson decay; they get the repeated flavour of the channel when it has one
    (Z -> ll is same-flavour). ``must_be_tau``: a candidate that can only be a tau (a jet fake).
    """
    n = channel_flavours.shape[0]
    out = np.empty((n, 3), dtype=np.int64)
    perm = np.argsort(rng.uniform(size=(n, 3)), axis=1)
    shuffled = np.take_along_axis(channel_flavours, perm, axis=1)
    out[:] = shuffled
    if must_be_tau is not None:
        # the channel has at least one tau: move one to the fake slot
        others = [k for k in range(3) if k != must_be_tau]
        tau_pos = np.argmax(shuffled == TAU, axis=1)
        rows = np.arange(n)
        out[:, must_be_tau] = TAU
        rest = shuffled.copy()
        rest[rows, tau_pos] = -1
        rest_sorted = np.sort(rest, axis=1)[:, 1:]  # drop the -1
        swap = rng.uniform(size=n) < 0.5
        out[:, others[0]] = np.where(swap, rest_sorted[:, 1], rest_sorted[:, 0])
        out[:, others[1]] = np.where(swap, rest_sorted[:, 0], rest_sorted[:, 1])
        return out
    if pair is not None:
        a, b = pair
        lone = 3 - a - b
        s = np.sort(channel_flavours, axis=1)
        repeated = np.where(s[:, 0] == s[:, 1], s[:, 0], np.where(s[:, 1] == s[:, 2], s[:, 1], -1))
        single = np.where(s[:, 0] == s[:, 1], s[:, 2], s[:, 0])
        # a Z -> ll pair is same-flavour in 80 % of the events (the rest: Z -> tau tau -> l tau_h etc.)
        use = (repeated >= 0) & (rng.uniform(size=n) < 0.8)
        out[use, a] = repeated[use]
        out[use, b] = repeated[use]
        out[use, lone] = single[use]
    return out


def _signal(rng, n, mass, channels):
    """W* -> l N, N -> l W(*), W(*) -> l nu (Majorana N: the second lepton's charge is random)."""
    m_star = mass + 2.0 + rng.exponential(0.12 * mass, n)
    parent = _system(rng, m_star, n, pt_scale=15.0)
    l1, hnl = two_body(parent, 0.0, mass, rng)
    m_w = breit_wigner(rng, W_MASS, W_WIDTH, n, 1.0, mass - 3.0)
    l2, w = two_body(hnl, 0.0, m_w, rng)
    l3, nu = two_body(w, 0.0, 0.0, rng)
    q1 = rng.choice([-1, 1], n)
    q2 = rng.choice([-1, 1], n)
    charge = np.column_stack([q1, q2, -q2])
    flav = _flavours(rng, channels, None, None)
    return Objects(np.stack([l1, l2, l3], axis=1), flav, charge, np.zeros((n, 3), bool), nu[:, 1:3])


def _wz(rng, n, channels):
    m_sys = W_MASS + Z_MASS + rng.exponential(120.0, n)
    parent = _system(rng, m_sys, n, pt_scale=25.0)
    m_z = breit_wigner(rng, Z_MASS, Z_WIDTH, n, 70.0, 110.0)
    m_w = breit_wigner(rng, W_MASS, W_WIDTH, n, 40.0, m_sys - m_z - 0.5)
    w, z = two_body(parent, m_w, m_z, rng)
    lw, nu = two_body(w, 0.0, 0.0, rng)
    za, zb = two_body(z, 0.0, 0.0, rng)
    qw = rng.choice([-1, 1], n)
    qz = rng.choice([-1, 1], n)
    flav = _flavours(rng, channels, (1, 2), None)
    return Objects(np.stack([lw, za, zb], axis=1), flav, np.column_stack([qw, qz, -qz]),
                   np.zeros((n, 3), bool), nu[:, 1:3])


def _zz(rng, n, channels):
    m_sys = 2 * Z_MASS + rng.exponential(130.0, n)
    parent = _system(rng, m_sys, n, pt_scale=20.0)
    m1 = breit_wigner(rng, Z_MASS, Z_WIDTH, n, 70.0, 110.0)
    m2 = breit_wigner(rng, Z_MASS, Z_WIDTH, n, 60.0, np.minimum(110.0, m_sys - m1 - 0.5))
    z1, z2 = two_body(parent, m1, m2, rng)
    a, b = two_body(z1, 0.0, 0.0, rng)
    c, d = two_body(z2, 0.0, 0.0, rng)
    # One lepton of the second Z is lost (outside the acceptance or not identified): the softer one.
    c_soft = np.hypot(c[:, 1], c[:, 2]) < np.hypot(d[:, 1], d[:, 2])
    kept = np.where(c_soft[:, None], d, c)
    lost = np.where(c_soft[:, None], c, d)
    q1, q2 = rng.choice([-1, 1], n), rng.choice([-1, 1], n)
    flav = _flavours(rng, channels, (0, 1), None)
    return Objects(np.stack([a, b, kept], axis=1), flav, np.column_stack([q1, -q1, q2]),
                   np.zeros((n, 3), bool), lost[:, 1:3])


def _fake_from(rng, jet):
    """A jet reconstructed as a hadronic tau: 50-95 % of its momentum, a tau-like visible mass."""
    frac = rng.uniform(0.5, 0.95, jet.shape[0])
    p = jet[:, 1:] * frac[:, None]
    m = rng.uniform(0.14, 1.5, jet.shape[0])
    return np.column_stack([np.sqrt(np.einsum("ij,ij->i", p, p) + m ** 2), p])


def _ttbar(rng, n, channels):
    m_sys = 2 * TOP_MASS + 5.0 + rng.exponential(150.0, n)
    parent = _system(rng, m_sys, n, pt_scale=40.0, y_sigma=1.0)
    t1, t2 = two_body(parent, TOP_MASS, TOP_MASS, rng)
    leptons, nus, bs = [], [], []
    for t in (t1, t2):
        m_w = breit_wigner(rng, W_MASS, W_WIDTH, n, 40.0, 160.0)
        b, w = two_body(t, 4.8, m_w, rng)
        lep, nu = two_body(w, 0.0, 0.0, rng)
        leptons.append(lep)
        nus.append(nu)
        bs.append(b)
    pick = rng.uniform(size=n) < 0.5
    fake = _fake_from(rng, np.where(pick[:, None], bs[0], bs[1]))
    flav = _flavours(rng, channels, None, must_be_tau=2)
    charge = np.column_stack([np.ones(n, int), -np.ones(n, int), rng.choice([-1, 1], n)])
    invisible = nus[0][:, 1:3] + nus[1][:, 1:3]
    return Objects(np.stack([leptons[0], leptons[1], fake], axis=1), flav, charge,
                   np.column_stack([np.zeros((n, 2), bool), np.ones(n, bool)]), invisible)


def _fake_tau(rng, n, channels):
    """Drell-Yan (Z/gamma* -> ll) plus a jet that fakes a hadronic tau."""
    on_z = rng.uniform(size=n) < 0.7
    m_ll = np.where(on_z, breit_wigner(rng, Z_MASS, Z_WIDTH, n, 50.0, 150.0), 15.0 + rng.exponential(40.0, n))
    jet_pt = 15.0 + rng.exponential(30.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    dy = p4_from_mass_pt_y(m_ll, jet_pt, rng.normal(0.0, 1.3, n), phi)
    jet = p4_from_mass_pt_y(np.full(n, 5.0), jet_pt, rng.normal(0.0, 1.5, n), phi + np.pi)
    a, b = two_body(dy, 0.0, 0.0, rng)
    q = rng.choice([-1, 1], n)
    flav = _flavours(rng, channels, None, must_be_tau=2)
    charge = np.column_stack([q, -q, rng.choice([-1, 1], n)])
    return Objects(np.stack([a, b, _fake_from(rng, jet)], axis=1), flav, charge,
                   np.column_stack([np.zeros((n, 2), bool), np.ones(n, bool)]), np.zeros((n, 2)))


#: background name -> generator(rng, n, channel_flavours (n, 3)) -> Objects
PROCESS_GENERATORS = {"wz": _wz, "zz": _zz, "ttbar": _ttbar, "fake_tau": _fake_tau}
SIGNAL_GENERATOR = _signal
