"""Geometry, magnetic field, material and track fits of the ``ams_he`` toy tracker (private helpers).

Everything is in the bending plane: ``y`` (cm) as a function of the height ``z`` (cm), particles going
down. A track is ``y(z) = a + b z + kappa F(z)`` plus kinks, where ``F`` is the double integral of the
(box-shaped) field profile, so the curvature ``kappa`` (1/cm) is a linear fit parameter and every fit
below is a (weighted) linear least-squares problem solved for all events at once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__: list[str] = []

# --- detector ---------------------------------------------------------------------------------------
LAYER_Z = np.array([158.0, 53.0, 29.2, 25.2, 1.7, -2.3, -25.2, -29.2, -136.0])
INNER = np.arange(1, 8)  # L2..L8: the inner tracker (column indices into LAYER_Z)
SPANS = {  # track fits used by the reconstruction: name -> layer indices
    "inner": INNER,
    "L1_inner": np.arange(0, 8),
    "inner_L9": np.arange(1, 9),
    "full": np.arange(0, 9),
}
FIELD_T = 0.14  # permanent magnet, uniform for |z| < FIELD_HALF_CM (a box: no fringe field)
FIELD_HALF_CM = 40.0
CURV_GV = 0.003 * FIELD_T  # kappa [1/cm] = CURV_GV / R [GV]
HE_MASS_GEV = 3.7274
HE_Z = 2
TOF_Z = (63.0, -63.0)  # upper / lower TOF planes

# Thin scatterers: (name, z in cm, thickness in radiation lengths). A kink at a plane bends every layer
# below it. The tracker planes carry ~300 um Si plus support; TRD and the lower TOF + RICH radiator are
# the thick ones, which is why the external layers L1 and L9 carry a large multiple-scattering error.
PLANES = (
    ("L1", 158.0, 0.006), ("TRD", 110.0, 0.10), ("UTOF", 63.0, 0.05),
    ("L2", 53.0, 0.006), ("L3", 29.2, 0.006), ("L4", 25.2, 0.006), ("L5", 1.7, 0.006),
    ("L6", -2.3, 0.006), ("L7", -25.2, 0.006), ("L8", -29.2, 0.006), ("LTOF+RICH", -75.0, 0.12),
)
PLANE_Z = np.array([p[1] for p in PLANES])
PLANE_X0 = np.array([p[2] for p in PLANES])
INNER_PLANES = np.arange(3, 10)  # planes L2..L8 ("inside the inner tracker")
UPPER_PLANES = np.arange(0, 3)  # above L2: part of the true state at L2
PLANE_TO_LAYER = 2  # inner plane index - 2 = its layer index (plane 3 is L2, layer index 1)
# LEVER[p, j]: displacement at layer j per unit kink angle at plane p.
LEVER = np.clip(PLANE_Z[:, None] - LAYER_Z[None, :], 0.0, None)


def field_integral(z: np.ndarray) -> np.ndarray:
    """F(z) with F'' = B(z)/B0 and F = F' = 0 above the field: the curvature term of a trajectory."""
    z = np.asarray(z, dtype=float)
    h = FIELD_HALF_CM
    inside = 0.5 * (h - z) ** 2
    below = 2 * h * (-z)
    return np.where(z >= h, 0.0, np.where(z >= -h, inside, below))


def field_slope(z: np.ndarray) -> np.ndarray:
    """dF/dz."""
    z = np.asarray(z, dtype=float)
    h = FIELD_HALF_CM
    return np.where(z >= h, 0.0, np.where(z >= -h, z - h, -2 * h))


LAYER_F = field_integral(LAYER_Z)
# CURV_CHANGE[p, j]: displacement at layer j per unit curvature change at plane p (rigidity loss in a
# hadronic interaction): F(z) - F(z_p) - F'(z_p) (z - z_p) for z below the plane.
CURV_CHANGE = np.where(
    LAYER_Z[None, :] < PLANE_Z[:, None],
    LAYER_F[None, :] - field_integral(PLANE_Z)[:, None]
    - field_slope(PLANE_Z)[:, None] * (LAYER_Z[None, :] - PLANE_Z[:, None]),
    0.0,
)


def design(layers: np.ndarray) -> np.ndarray:
    """Design matrix (m, 3) of the fit parameters (a, b, kappa) on the given layers."""
    z = LAYER_Z[layers]
    return np.stack([np.ones_like(z), z, LAYER_F[layers]], axis=1)


@lru_cache(maxsize=None)
def pinv(span: str) -> np.ndarray:
    """Pseudo-inverse (3, m) of the design matrix of ``span``: unweighted fit = hits @ pinv.T."""
    return np.linalg.pinv(design(SPANS[span]))


# --- physics helpers --------------------------------------------------------------------------------
def he_beta(rigidity: np.ndarray) -> np.ndarray:
    """Velocity of a 4He nucleus of rigidity R (GV)."""
    p = HE_Z * np.abs(rigidity)
    return p / np.sqrt(p * p + HE_MASS_GEV**2)


def moyal(rng: np.random.Generator, size) -> np.ndarray:
    """Moyal (Landau-like) variates, mode 0: -ln(N(0,1)^2)."""
    g = rng.standard_normal(size)
    return -np.log(g * g + 1e-300)


# --- fits --------------------------------------------------------------------------------------------
def fit_unweighted(y: np.ndarray, span: str) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (a, b, kappa) of hits ``y`` (n, 9) on ``span``; returns (params (n,3), residuals)."""
    layers = SPANS[span]
    ys = y[:, layers]
    params = ys @ pinv(span).T
    return params, ys - params @ design(layers).T


def fit_weighted(y: np.ndarray, span: str, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares with per-event, per-layer errors ``sigma`` (n, m); (params, residuals)."""
    layers = SPANS[span]
    a = design(layers)
    ys = y[:, layers]
    w = 1.0 / (sigma * sigma)
    normal = np.einsum("nj,jk,jl->nkl", w, a, a)
    rhs = np.einsum("nj,jk->nk", w * ys, a)
    params = np.linalg.solve(normal, rhs[..., None])[..., 0]
    return params, ys - params @ a.T


@lru_cache(maxsize=None)
def ms_residual_scale(span: str) -> np.ndarray:
    """RMS multiple-scattering residual (cm) per layer of ``span`` at beta*R = 1 GV.

    This is the fit's error model (the reconstruction's analogue of a GBL fit): the hit error of layer
    j at rigidity R is sqrt(sigma_hit^2 + (scale_j / (beta R))^2). Estimated once from a fixed-seed
    sample of noise-free tracks that only multiple-scatter.
    """
    rng = np.random.default_rng(20241127)
    n = 4000
    theta = 0.0136 * np.sqrt(PLANE_X0) * (1.0 + 0.038 * np.log(PLANE_X0 * HE_Z**2))
    y = (rng.standard_normal((n, len(PLANES))) * theta) @ LEVER
    _, res = fit_unweighted(y, span)
    return np.sqrt(np.mean(res * res, axis=0))


def rigidity(kappa: np.ndarray, clip: float) -> np.ndarray:
    """Signed rigidity (GV) of a fitted curvature, saturated at +-``clip`` (beyond any MDR)."""
    with np.errstate(divide="ignore"):
        r = CURV_GV / kappa
    return np.clip(np.nan_to_num(r, nan=clip, posinf=clip, neginf=-clip), -clip, clip)
