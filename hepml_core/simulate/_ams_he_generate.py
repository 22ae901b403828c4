"""Generation of the ``ams_he`` candidate tracks: spectrum, scattering, interactions, hits (private).

Two passes keep it cheap: every candidate is propagated to the seven inner layers only, to find the
sign of the inner-fit curvature; the ~15 % with negative curvature are then completed (L1, L9, the
truth of the label rule) for the reconstruction in ``_ams_he_reco``.
"""

from __future__ import annotations

import numpy as np

from hepml_core.simulate import _ams_he_tracker as trk

__all__: list[str] = []

_ALL = np.arange(9)
# Highland angle per plane, 13.6 MeV z sqrt(x/X0) (1 + 0.038 ln(x z^2 / (X0 beta^2))) / (beta p) with
# p = Z R: the charge cancels outside the log, and only log(beta) is left to compute per event.
_MS_A = 0.0136 * np.sqrt(trk.PLANE_X0) * (1.0 + 0.038 * np.log(trk.PLANE_X0 * trk.HE_Z**2))
_MS_B = 0.0136 * np.sqrt(trk.PLANE_X0) * (-2 * 0.038)


def power_law(rng: np.random.Generator, n: int, lo: float, hi: float, index: float) -> np.ndarray:
    """Rigidities ~ R^-index on [lo, hi] (inverse transform)."""
    u = rng.random(n)
    if abs(index - 1.0) < 1e-9:
        return lo * (hi / lo) ** u
    a = 1.0 - index
    return (lo**a + u * (hi**a - lo**a)) ** (1.0 / a)


def generate(rng: np.random.Generator, n: int, p, anomaly: bool) -> dict[str, np.ndarray]:
    """Propagate ``n`` candidate tracks and return those whose inner fit has negative curvature."""
    ev: dict[str, np.ndarray] = {}
    rig = power_law(rng, n, p.rig_min_gv, p.rig_max_gv, p.generated_index)
    beta = trk.he_beta(rig)
    mom = trk.HE_Z * rig
    ev["rig_gen"], ev["beta"] = rig, beta
    theta0 = (_MS_A + _MS_B * np.log(beta)[:, None]) / (beta * rig)[:, None]
    ev["theta"] = rng.standard_normal((n, len(trk.PLANES)), dtype=np.float32) * theta0

    # nuclear elastic scattering: one kink, pT from exp(-b|t|) (Gaussian pT_y with <pT_y^2> = 1/(2b))
    ev["el_plane"] = np.full(n, -1)
    ev["el_angle"] = np.zeros(n)
    rows = np.flatnonzero(rng.random(n) < p.p_elastic)
    ev["el_plane"][rows] = rng.choice(trk.INNER_PLANES, rows.size)
    ev["el_angle"][rows] = rng.standard_normal(rows.size) * np.sqrt(0.5 / p.elastic_slope_gev2) / mom[rows]

    # hadronic inelastic interaction: the track goes on as the leading fragment
    ev["in_plane"] = np.full(n, -1)
    ev["in_angle"] = np.zeros(n)
    ev["z_lead"] = np.full(n, trk.HE_Z)
    ev["rig_after"] = rig.copy()
    rows = np.flatnonzero(rng.random(n) < p.p_inelastic)
    m = rows.size
    ev["in_plane"][rows] = rng.choice(trk.INNER_PLANES, m)
    u = rng.random(m)
    a_frag = rng.choice([1, 2, 3], m, p=[0.4, 0.35, 0.25])
    frac = np.where(u < 0.35, 0.75 * rng.uniform(0.95, 1.0, m),  # 4He -> 3He, same momentum per nucleon
                    np.where(u < 0.6, rng.uniform(0.6, 0.98, m),  # 4He survives, loses momentum
                             a_frag / 2.0 * rng.uniform(0.9, 1.0, m)))  # Z = 1 (p, d, t) fragment
    z_lead = np.where(u < 0.6, 2, 1)
    ev["z_lead"][rows] = z_lead
    ev["rig_after"][rows] = rig[rows] * frac
    pt = rng.standard_normal(m) * p.fragment_pt_gev * np.where(u < 0.6, 1.0, 1.2)
    ev["in_angle"][rows] = pt / (z_lead * ev["rig_after"][rows])

    # energetic delta rays (visible) and soft, invisible secondaries: both are "HasSecondary"
    ev["delta"] = rng.random((n, trk.INNER.size), dtype=np.float32) < p.p_delta
    ev["shift"] = np.zeros((n, 9))
    r, c = np.nonzero(ev["delta"])
    ev["shift"][r, c + trk.INNER[0]] = rng.laplace(0.0, p.delta_shift_cm, r.size)
    ev["soft"] = rng.random(n, dtype=np.float32) < p.p_soft_secondary

    ev["comp_sep"] = np.zeros((n, 9, 2))
    ev["comp_mask"] = np.zeros((n, 9), dtype=bool)
    if anomaly:
        ev["comp_sep"], ev["comp_mask"], comp_shift = _companion(rng, rig)
        ev["shift"] += comp_shift

    sigma = np.array([p.hit_sigma_ext_cm] + [p.hit_sigma_y_cm] * 7 + [p.hit_sigma_ext_cm]) * p.resolution_scale
    ev["noise"] = np.zeros((n, 9))
    ev["noise"][:, trk.INNER] = rng.standard_normal((n, trk.INNER.size), dtype=np.float32) * sigma[trk.INNER]
    y_inner = _trajectory(ev, trk.INNER) + ev["noise"][:, trk.INNER] + ev["shift"][:, trk.INNER]
    keep = y_inner @ trk.pinv("inner")[2] < 0.0

    ev = {k: v[keep] for k, v in ev.items()}
    k = int(keep.sum())
    ev["noise"][:, [0, 8]] = rng.standard_normal((k, 2)) * sigma[[0, 8]]
    ev["y_true"] = _trajectory(ev, _ALL)
    ev["y_meas"] = ev["y_true"] + ev["noise"] + ev["shift"]
    ev["fit_inner"], _ = trk.fit_unweighted(ev["y_meas"], "inner")
    # truth deviation from the true-rigidity propagation started at L2: everything that happened at or
    # below L2 (scattering in the inner planes, the elastic kink, the hadronic interaction)
    ev["dev"] = ev["y_true"] - _trajectory(ev, _ALL, upper_only=True)
    for key in ("theta", "noise", "shift"):
        del ev[key]
    return ev


def _trajectory(ev, cols: np.ndarray, *, upper_only: bool = False) -> np.ndarray:
    """True y (cm) on layers ``cols``: bending, multiple scattering, elastic and hadronic kinks."""
    planes = trk.UPPER_PLANES if upper_only else slice(None)
    y = (trk.CURV_GV / ev["rig_gen"])[:, None] * trk.LAYER_F[cols] + ev["theta"][:, planes] @ trk.LEVER[planes][:, cols]
    if upper_only:
        return y
    rows = np.flatnonzero(ev["el_plane"] >= 0)
    y[rows] += ev["el_angle"][rows, None] * trk.LEVER[ev["el_plane"][rows]][:, cols]
    rows = np.flatnonzero(ev["in_plane"] >= 0)
    plane = ev["in_plane"][rows]
    dkappa = trk.CURV_GV / ev["rig_after"][rows] - trk.CURV_GV / ev["rig_gen"][rows]
    y[rows] += (ev["in_angle"][rows, None] * trk.LEVER[plane][:, cols]
                + dkappa[:, None] * trk.CURV_CHANGE[plane][:, cols])
    return y


def _companion(rng, rig: np.ndarray):
    """A second alpha from the break-up of a heavier nucleus above L1 (z = 175) or in the TRD (z = 110).

    Returns the separation (n, 9, [y, x]) in cm, the mask of layers it crosses, and the shift of the
    track hit in y (merged clusters: half the separation; a picked companion hit: all of it).
    """
    n = rig.size
    z_break = np.where(rng.random(n) < 0.5, 175.0, 110.0)
    opening = rng.standard_normal((n, 2)) * (0.075 / rig)[:, None]  # Goldhaber pT ~ 150 MeV / p_alpha
    depth = z_break[:, None] - trk.LAYER_Z[None, :]
    mask = depth > 0
    sep = opening[:, None, :] * np.clip(depth, 0.0, None)[:, :, None] + rng.normal(0, 0.002, (n, 1, 2))
    merged = mask & (np.abs(sep[:, :, 0]) < 0.01)
    picked = mask & ~merged & (np.abs(sep[:, :, 0]) < 0.5) & (rng.random((n, 9)) < 0.15)
    shift = np.where(merged, 0.5 * sep[:, :, 0], 0.0) + np.where(picked, sep[:, :, 0], 0.0)
    return sep, mask, shift
