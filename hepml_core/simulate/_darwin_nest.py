"""NEST quanta for the DARWIN toy: nestpy tabulated once on an energy grid, fluctuations drawn in numpy.

nestpy calls the NEST C++ model one event at a time (~1.5 us per ``GetQuanta``), which is fast enough to
*tabulate* the model but slow for 100k events with waveforms on top. So for each recoil type we call
``NESTcalc.GetYields`` and ``NESTcalc.GetQuanta`` ``_SAMPLES`` times at each of ``_N_GRID`` energies
(log-spaced, 0.5-120 keV; drift field 200 V/cm, liquid density 2.9 g/cm^3) and keep the mean numbers of
photons and electrons and their 2x2 covariance (NEST's Fano-like and recombination fluctuations; the
negative photon-electron correlation of recombination is kept). Events then draw (n_ph, n_e) from a
bivariate normal with the moments interpolated in log-energy, rounded and clipped at zero. Below ~2 keV
(a handful of quanta) the normal approximation is coarse; such events rarely pass the S1 threshold.

The table is computed with a fixed nestpy seed, so it is the same in every process and independent of
the caller's seed; it is cached per process.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass

import numpy as np

from hepml_core.exceptions import ConfigError

__all__ = ["DRIFT_FIELD_V_CM", "LXE_DENSITY", "QuantaTable", "quanta_table", "sample_quanta",
           "drift_velocity_cm_per_us", "nest_mean_quanta"]

DRIFT_FIELD_V_CM = 200.0  # the talk's drift field
LXE_DENSITY = 2.9  # g/cm^3
_N_GRID = 160
_SAMPLES = 1500
_E_MIN, _E_MAX = 0.5, 120.0  # keV; the study generates 1-100 keV
_TABLE_SEED = 20240626  # fixed: the table is detector calibration, not part of an event's randomness


@dataclass(frozen=True)
class QuantaTable:
    """Moments of NEST's (photons, electrons) on an energy grid for one recoil type.

    Attributes:
        energy_kev: grid energies (increasing).
        mean: (n_grid, 2) mean photons and electrons.
        cov: (n_grid, 2, 2) covariance of (photons, electrons).
    """

    energy_kev: np.ndarray
    mean: np.ndarray
    cov: np.ndarray


def _nestpy():
    try:
        import nestpy
    except ImportError as err:  # pragma: no cover - exercised only where nestpy is missing
        raise ConfigError(
            "the darwin simulator needs nestpy (NEST for liquid xenon); install it with "
            "'pip install nestpy==2.1.3'"
        ) from err
    return nestpy


@contextlib.contextmanager
def _quiet_native():
    """NEST prints warnings from C++ ("m5 is slightly energy dependent"); keep the CLI output clean."""
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # pragma: no cover - no real stdout/stderr (some notebook kernels)
        yield
        return
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()):
        try:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
        finally:
            for fd, target in zip(saved, (1, 2)):
                os.dup2(fd, target)
                os.close(fd)


@functools.lru_cache(maxsize=1)
def _calculator():
    nestpy = _nestpy()
    detector = nestpy.detectors.VDetector()
    detector.Initialization()
    return nestpy, nestpy.NESTcalc(detector), detector


def _interaction(nestpy, recoil: str):
    # ER: beta (the flat ER background of the talk is betas and pp-neutrino electron scatters).
    return {"ER": nestpy.interactions.beta, "NR": nestpy.interactions.NR}[recoil]


@functools.lru_cache(maxsize=4)
def quanta_table(recoil: str) -> QuantaTable:
    """NEST's photon/electron moments on the energy grid for ``recoil`` ("ER" or "NR"), cached.

    Raises:
        ConfigError: unknown recoil type, or nestpy not installed.
    """
    if recoil not in ("ER", "NR"):
        raise ConfigError(f"recoil must be 'ER' or 'NR', got {recoil!r}")
    nestpy, calc, _ = _calculator()
    grid = np.geomspace(_E_MIN, _E_MAX, _N_GRID)
    mean = np.empty((_N_GRID, 2))
    cov = np.empty((_N_GRID, 2, 2))
    interaction = _interaction(nestpy, recoil)
    with _quiet_native():
        nestpy.RandomGen.rndm().set_seed(_TABLE_SEED + (recoil == "NR"))
        for i, energy in enumerate(grid):
            yields = calc.GetYields(interaction, float(energy), LXE_DENSITY, DRIFT_FIELD_V_CM)
            draws = np.empty((_SAMPLES, 2))
            for k in range(_SAMPLES):
                q = calc.GetQuanta(yields, LXE_DENSITY)
                draws[k] = (q.photons, q.electrons)
            mean[i] = draws.mean(axis=0)
            cov[i] = np.cov(draws, rowvar=False)
    return QuantaTable(energy_kev=grid, mean=mean, cov=cov)


def nest_mean_quanta(recoil: str, energy_kev: float) -> tuple[float, float]:
    """NEST's mean (photon, electron) yields at one energy, straight from ``GetYields`` (for checks)."""
    nestpy, calc, _ = _calculator()
    with _quiet_native():
        y = calc.GetYields(_interaction(nestpy, recoil), float(energy_kev), LXE_DENSITY, DRIFT_FIELD_V_CM)
    return float(y.PhotonYield), float(y.ElectronYield)


def drift_velocity_cm_per_us() -> float:
    """Electron drift velocity in liquid xenon at 200 V/cm from NEST (~0.15 cm/us)."""
    _, calc, detector = _calculator()
    with _quiet_native():
        v_mm_us = calc.SetDriftVelocity(detector.get_T_Kelvin(), LXE_DENSITY, DRIFT_FIELD_V_CM, 0.0)
    return float(v_mm_us) / 10.0


def _interp(table: QuantaTable, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.log(table.energy_kev)
    le = np.log(np.clip(energy, _E_MIN, _E_MAX))
    mean = np.stack([np.interp(le, x, table.mean[:, j]) for j in range(2)], axis=1)
    cov = np.empty((len(energy), 2, 2))
    for a in range(2):
        for b in range(2):
            cov[:, a, b] = np.interp(le, x, table.cov[:, a, b])
    return mean, cov


def sample_quanta(energy_kev: np.ndarray, recoil: np.ndarray | str,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw NEST-like (photons, electrons) for each event.

    Args:
        energy_kev: recoil energies (keV).
        recoil: per-event "ER"/"NR" strings (or a single string for all).
        rng: numpy Generator.

    Returns:
        (n_ph, n_e): int64 arrays, >= 0.
    """
    energy = np.asarray(energy_kev, dtype=np.float64)
    kinds = np.broadcast_to(np.asarray(recoil), energy.shape)
    mean = np.empty((len(energy), 2))
    cov = np.empty((len(energy), 2, 2))
    for kind in ("ER", "NR"):
        sel = kinds == kind
        if sel.any():
            mean[sel], cov[sel] = _interp(quanta_table(kind), energy[sel])
    # Cholesky of each 2x2 covariance by hand (vectorised); the correlation is clipped to stay PSD.
    s0 = np.sqrt(np.clip(cov[:, 0, 0], 1e-9, None))
    s1 = np.sqrt(np.clip(cov[:, 1, 1], 1e-9, None))
    rho = np.clip(cov[:, 0, 1] / (s0 * s1), -0.999, 0.999)
    z = rng.standard_normal((len(energy), 2))
    n_ph = mean[:, 0] + s0 * z[:, 0]
    n_e = mean[:, 1] + s1 * (rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1])
    return (np.clip(np.rint(n_ph), 0, None).astype(np.int64), np.clip(np.rint(n_e), 0, None).astype(np.int64))
