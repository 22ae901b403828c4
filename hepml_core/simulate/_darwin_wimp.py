"""Recoil energy spectra for the DARWIN toy: spin-independent WIMP-xenon scattering, neutron-like NR, flat.

WIMP rate (Lewin & Smith 1996 conventions): dR/dE = rho0 sigma_A F^2(E) eta(v_min) / (2 m_chi mu_A^2)
per unit target mass, with sigma_A = sigma_n A^2 (mu_A / mu_n)^2 (isospin-conserving SI coupling),
the Helm form factor (s = 0.9 fm, a = 0.52 fm, c = 1.23 A^(1/3) - 0.6 fm), and the Standard Halo Model
mean inverse speed eta(v_min) in closed form (truncated Maxwellian: v0 = 220 km/s, v_esc = 544 km/s,
Earth speed 232 km/s, no annual modulation), rho0 = 0.3 GeV/cm^3. Xenon is taken as a single isotope,
A = 131. A 50 GeV WIMP at 1e-47 cm^2 gives ~3.4 recoils per tonne-year in 1-100 keV before detector
efficiency.

Neutron-like background: an exponential NR spectrum with a 15 keV slope (single-scatter radiogenic
neutrons, shape only). Flat spectra: uniform in [e_min, e_max].
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, spherical_jn

from hepml_core.exceptions import ConfigError

__all__ = ["wimp_rate", "wimp_events_per_tonne_year", "sample_wimp_energies", "sample_neutron_energies",
           "sample_flat_energies", "WIMP_MASSES_GEV"]

WIMP_MASSES_GEV = (30.0, 50.0, 100.0)  # the talk's three benchmark masses

_A = 131.0
_AMU_GEV = 0.931494
_M_P_GEV = 0.938272
_HBARC_GEV_FM = 0.1973269804
_C_KM_S = 299792.458
_RHO0 = 0.3  # GeV/cm^3
_V0, _VESC, _VE = 220.0, 544.0, 232.0  # km/s
_GEV_PER_C2_KG = 1.78266192e-27
_SECONDS_PER_YEAR = 3.15576e7
_NEUTRON_SLOPE_KEV = 15.0


def _helm_f2(energy_kev: np.ndarray) -> np.ndarray:
    m_n = _A * _AMU_GEV
    q_fm = np.sqrt(2 * m_n * energy_kev * 1e-6) / _HBARC_GEV_FM  # momentum transfer in fm^-1
    s, a = 0.9, 0.52
    c = 1.23 * _A ** (1 / 3) - 0.6
    rn = np.sqrt(c**2 + 7 / 3 * np.pi**2 * a**2 - 5 * s**2)
    qr = np.clip(q_fm * rn, 1e-9, None)
    f = 3 * spherical_jn(1, qr) / qr * np.exp(-((q_fm * s) ** 2) / 2)
    return f**2


def _eta(vmin_km_s: np.ndarray) -> np.ndarray:
    """Mean inverse speed of the truncated, boosted Maxwellian, in (km/s)^-1."""
    x, y, z = vmin_km_s / _V0, _VE / _V0, _VESC / _V0
    n_esc = erf(z) - 2 * z * np.exp(-(z**2)) / np.sqrt(np.pi)
    norm = 1 / (2 * n_esc * _V0 * y)
    low = erf(x + y) - erf(x - y) - 4 / np.sqrt(np.pi) * y * np.exp(-(z**2))
    mid = erf(z) - erf(x - y) - 2 / np.sqrt(np.pi) * (z + y - x) * np.exp(-(z**2))
    out = np.where(x < z - y, low, np.where(x < z + y, mid, 0.0))
    return np.clip(norm * out, 0.0, None)


def _check_mass(mass_gev: float) -> float:
    if not np.isfinite(mass_gev) or mass_gev <= 0:
        raise ConfigError(f"wimp_mass must be a positive mass in GeV (e.g. 30, 50, 100), got {mass_gev!r}")
    return float(mass_gev)


def wimp_rate(energy_kev: np.ndarray, mass_gev: float, sigma_cm2: float = 1e-47) -> np.ndarray:
    """Differential SI WIMP rate on xenon.

    Args:
        energy_kev: nuclear recoil energies (keV).
        mass_gev: WIMP mass (GeV).
        sigma_cm2: WIMP-nucleon cross-section (cm^2).

    Returns:
        dR/dE in events / (tonne * year * keV).
    """
    mass = _check_mass(mass_gev)
    e = np.asarray(energy_kev, dtype=np.float64)
    m_n = _A * _AMU_GEV
    mu_a = mass * m_n / (mass + m_n)
    mu_p = mass * _M_P_GEV / (mass + _M_P_GEV)
    sigma_a = sigma_cm2 * _A**2 * (mu_a / mu_p) ** 2
    vmin = np.sqrt(m_n * e * 1e-6 / (2 * mu_a**2)) * _C_KM_S
    eta_s_per_cm = _eta(vmin) * 1e-5  # (km/s)^-1 -> s/cm
    c_cm_s = _C_KM_S * 1e5
    # per nucleus: (rho0/m_chi) sigma_A m_N c^2 /(2 mu^2) eta [1/(s GeV)]; divide by m_N in kg -> per kg
    per_kg_s_gev = _RHO0 * sigma_a * c_cm_s**2 * _helm_f2(e) * eta_s_per_cm / (2 * mass * mu_a**2 * _GEV_PER_C2_KG)
    return per_kg_s_gev * 1e-6 * 1000.0 * _SECONDS_PER_YEAR


def wimp_events_per_tonne_year(mass_gev: float, sigma_cm2: float = 1e-47, e_min: float = 1.0,
                               e_max: float = 100.0) -> float:
    """Recoils per tonne-year between ``e_min`` and ``e_max`` keV (no detector efficiency)."""
    grid = np.linspace(e_min, e_max, 4001)
    return float(np.trapezoid(wimp_rate(grid, mass_gev, sigma_cm2), grid))


def _sample_from_density(density, n: int, rng: np.random.Generator, e_min: float, e_max: float) -> np.ndarray:
    grid = np.linspace(e_min, e_max, 4001)
    pdf = np.clip(density(grid), 0.0, None)
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(grid))])
    if cdf[-1] <= 0:
        raise ConfigError(f"the recoil spectrum is empty between {e_min} and {e_max} keV")
    return np.interp(rng.random(n) * cdf[-1], cdf, grid)


def sample_wimp_energies(n: int, mass_gev: float, rng: np.random.Generator, e_min: float = 1.0,
                         e_max: float = 100.0) -> np.ndarray:
    """``n`` recoil energies (keV) drawn from the SI WIMP spectrum of ``mass_gev``."""
    mass = _check_mass(mass_gev)
    return _sample_from_density(lambda e: wimp_rate(e, mass), n, rng, e_min, e_max)


def sample_neutron_energies(n: int, rng: np.random.Generator, e_min: float = 1.0, e_max: float = 100.0) -> np.ndarray:
    """``n`` recoil energies (keV) from the exponential neutron-like NR spectrum."""
    return _sample_from_density(lambda e: np.exp(-e / _NEUTRON_SLOPE_KEV), n, rng, e_min, e_max)


def sample_flat_energies(n: int, rng: np.random.Generator, e_min: float = 1.0, e_max: float = 100.0) -> np.ndarray:
    """``n`` energies (keV) uniform in [e_min, e_max]."""
    return rng.uniform(e_min, e_max, n)
