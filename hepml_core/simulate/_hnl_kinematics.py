"""Vectorised four-vector helpers for the HNL toy: build, boost, two-body decays, collinear tau decays.

Four-vectors are float64 arrays of shape ``(n, 4)`` ordered ``(E, px, py, pz)`` in GeV.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "p4_from_pt_eta_phi_m",
    "pt_eta_phi_m",
    "p4_from_mass_pt_y",
    "boost",
    "two_body",
    "breit_wigner",
    "tau_visible",
    "mass_of",
]


def p4_from_pt_eta_phi_m(pt, eta, phi, m) -> np.ndarray:
    """(E, px, py, pz) from collider coordinates."""
    pt, eta, phi, m = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, m))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px ** 2 + py ** 2 + pz ** 2 + m ** 2)
    return np.stack([e, px, py, pz], axis=-1)


def pt_eta_phi_m(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Collider coordinates of four-vectors (pt, eta, phi, mass); the mass is clipped at 0."""
    e, px, py, pz = p4[..., 0], p4[..., 1], p4[..., 2], p4[..., 3]
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    return pt, eta, np.arctan2(py, px), mass_of(p4)


def mass_of(p4: np.ndarray) -> np.ndarray:
    """Invariant mass sqrt(E^2 - p^2), 0 where rounding makes it negative."""
    m2 = p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2 - p4[..., 3] ** 2
    return np.sqrt(np.clip(m2, 0.0, None))


def p4_from_mass_pt_y(m, pt, y, phi) -> np.ndarray:
    """A system of mass ``m`` with transverse momentum ``pt``, rapidity ``y`` and azimuth ``phi``."""
    mt = np.sqrt(np.asarray(m) ** 2 + np.asarray(pt) ** 2)
    return np.stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)], axis=-1)


def boost(p4: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Lorentz-boost ``p4`` (rest-frame momenta) by velocity vectors ``beta`` (n, 3)."""
    b2 = np.einsum("ij,ij->i", beta, beta)
    b2 = np.minimum(b2, 1.0 - 1e-12)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.einsum("ij,ij->i", beta, p4[:, 1:])
    # (gamma - 1)/b2 -> gamma^2/(gamma+1) is the stable form for small b2.
    g2 = gamma ** 2 / (gamma + 1.0)
    e = gamma * (p4[:, 0] + bp)
    p = p4[:, 1:] + (g2 * bp + gamma * p4[:, 0])[:, None] * beta
    return np.column_stack([e, p])


def two_body(parent: np.ndarray, m1, m2, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic two-body decays of ``parent`` (n, 4) into masses ``m1`` and ``m2`` (lab frame).

    ``m1 + m2`` must not exceed the parent mass (callers clip); the daughters share the parent's boost.
    """
    n = parent.shape[0]
    M = mass_of(parent)
    m1 = np.broadcast_to(np.asarray(m1, dtype=np.float64), (n,))
    m2 = np.broadcast_to(np.asarray(m2, dtype=np.float64), (n,))
    arg = (M ** 2 - (m1 + m2) ** 2) * (M ** 2 - (m1 - m2) ** 2)
    p = np.sqrt(np.clip(arg, 0.0, None)) / (2.0 * np.maximum(M, 1e-9))
    cos_t = rng.uniform(-1.0, 1.0, n)
    sin_t = np.sqrt(1.0 - cos_t ** 2)
    phi = rng.uniform(-np.pi, np.pi, n)
    d = np.column_stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t]) * p[:, None]
    d1 = np.column_stack([np.sqrt(p ** 2 + m1 ** 2), d])
    d2 = np.column_stack([np.sqrt(p ** 2 + m2 ** 2), -d])
    beta = parent[:, 1:] / parent[:, :1]
    return boost(d1, beta), boost(d2, beta)


def breit_wigner(rng: np.random.Generator, mass: float, width: float, n: int, low, high) -> np.ndarray:
    """Relativistic-looking Breit-Wigner masses (Cauchy in m) truncated to ``[low, high]`` per event."""
    low = np.broadcast_to(np.asarray(low, dtype=np.float64), (n,))
    high = np.broadcast_to(np.asarray(high, dtype=np.float64), (n,))
    # Inverse CDF of the Cauchy distribution restricted to the interval: no rejection loop needed.
    c_lo = np.arctan((low - mass) / (width / 2)) / np.pi + 0.5
    c_hi = np.arctan((high - mass) / (width / 2)) / np.pi + 0.5
    u = c_lo + (c_hi - c_lo) * rng.uniform(size=n)
    return mass + width / 2 * np.tan(np.pi * (u - 0.5))


def tau_visible(tau: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split tau four-vectors into hadronic visible products and the escaping neutrino (collinear).

    The visible system carries a fraction z ~ Beta(2.2, 1.4) of the tau momentum and a visible mass drawn
    from the pi / rho / a1 mixture; the neutrino takes the rest of the three-momentum (it adds to MET).
    """
    n = tau.shape[0]
    z = rng.beta(2.2, 1.4, n)
    which = rng.choice(3, size=n, p=[0.25, 0.45, 0.30])
    m_vis = np.choose(which, [np.full(n, 0.14), rng.normal(0.77, 0.12, n), rng.normal(1.23, 0.18, n)])
    m_vis = np.clip(m_vis, 0.13, 1.7)
    p_vis = tau[:, 1:] * z[:, None]
    e_vis = np.sqrt(np.einsum("ij,ij->i", p_vis, p_vis) + m_vis ** 2)
    p_nu = tau[:, 1:] - p_vis
    nu = np.column_stack([np.linalg.norm(p_nu, axis=1), p_nu])
    return np.column_stack([e_vis, p_vis]), nu
