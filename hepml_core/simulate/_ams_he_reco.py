"""Reconstruction, selection, features and labels of the ``ams_he`` toy (private helpers).

Takes the candidate tracks that ``_ams_he_generate.generate`` kept (inner-fit curvature < 0), runs the
fits, applies the tracking cuts, makes the clusters and charges, applies the charge cuts and labels
the survivors with the talk's rule.
"""

from __future__ import annotations

import numpy as np

from hepml_core.simulate import _ams_he_tracker as trk

__all__: list[str] = []

_INNER_NAMES = [f"L{i}" for i in range(2, 9)]
TRUTH_COLUMNS = ("rig_gen", "chi2_true", "chi2_inner_truth", "chi2_ratio_truth", "has_secondary",
                 "had_inel_inner", "el_scat_inner")
_SIGMA_NOMINAL = np.array([12e-4] + [10e-4] * 7 + [12e-4])  # what the fits assume (the MC resolution)
_LANDAU = 0.08
_SIDES = 2  # y, x


def reconstruct(rng: np.random.Generator, t: dict[str, np.ndarray], p) -> dict[str, np.ndarray]:
    """Features, selection and labels of the candidate tracks ``t``; returns the selected events."""
    fits, attached = _fits(t, p.rig_clip_gv)
    # the tracking cuts first, so that clusters and charges are only made for tracks that can pass
    keep = (attached & (fits["inner_rig"] < 0) & (fits["inner_chi2"] < 10.0)
            & (np.sign(fits["L1_inner_rig"]) == np.sign(fits["inner_L9_rig"])))
    t = {k: v[keep] for k, v in t.items()}
    fits = {k: v[keep] for k, v in fits.items()}
    n = t["rig_gen"].size

    z_layer = _layer_charges_z(t)
    deposit = z_layer**2 * (1.0 + _LANDAU * trk.moyal(rng, (n, 9)))
    maxd, n_near, n_merged, n_sec_tof = _clusters(rng, t, p)
    deposit += n_merged
    charge = np.clip(p.charge_scale * np.sqrt(deposit) + rng.normal(0, 0.03, (n, 9)), 0.0, 10.0)
    f = {f"charge_L{i + 1}": charge[:, i] for i in range(9)}
    f["charge_inner"] = charge[:, trk.INNER].mean(axis=1)
    f["tof_charge_upper"], f["tof_charge_lower"] = _tof_charges(rng, t, p, n_sec_tof)
    f["tof_beta"] = np.clip(t["beta"] * (1.0 + rng.normal(0, 0.02, n)), 0.0, 1.5)

    maxd[:, trk.INNER, 0] = np.maximum(maxd[:, trk.INNER, 0], np.abs(fits["inner_res"]))
    maxd[:, 8, 0] = np.maximum(maxd[:, 8, 0], np.abs(fits["inner_L9_res"][:, -1]))
    maxd = np.minimum(maxd, p.window_cm)
    for j, layer in enumerate(_INNER_NAMES):
        f[f"max_dist_{layer}_y"] = maxd[:, j + 1, 0]
        f[f"max_dist_{layer}_x"] = maxd[:, j + 1, 1]
    f["max_dist_L9_y"] = maxd[:, 8, 0]
    f["n_clusters_2cm"] = n_near.astype(float)
    for span in trk.SPANS:
        f[f"chi2_{span}"] = fits[f"{span}_chi2"]
        f[f"rig_{span}"] = fits[f"{span}_rig"]

    sel = ((f["charge_inner"] >= 1.7) & (f["charge_inner"] <= 2.4)
           & (f["charge_L1"] >= 1.6) & (f["charge_L1"] <= 3.0)
           & (f["tof_charge_upper"] >= 1.5) & (f["tof_charge_upper"] <= 3.0) & (f["tof_charge_lower"] > 1.5))
    out = {k: v[sel] for k, v in f.items()}
    out.update({k: v[sel] for k, v in _truth(t, p).items()})
    return out


def _layer_charges_z(t) -> np.ndarray:
    """(n, 9) charge of the particle the track follows on each layer."""
    n = t["rig_gen"].size
    z = np.full((n, 9), float(trk.HE_Z))
    rows = np.flatnonzero(t["in_plane"] >= 0)
    layer = t["in_plane"][rows] - trk.PLANE_TO_LAYER
    below = np.arange(9)[None, :] > layer[:, None]
    z[rows] = np.where(below, t["z_lead"][rows, None], trk.HE_Z)
    return z


def _add(maxd, near, rows, layers, dy, dx, window):
    """Register extra clusters at (rows, layers) with distances (dy, dx) from the track."""
    dy, dx = np.abs(dy), np.abs(dx)
    ok = dy < window
    np.maximum.at(maxd, (rows[ok], layers[ok], 0), dy[ok])
    ok = dx < window
    np.maximum.at(maxd, (rows[ok], layers[ok], 1), dx[ok])
    ok = (dy < 2.0) & (layers >= 1) & (layers <= 7)
    np.add.at(near, rows[ok], 1)


def _clusters(rng, t, p):
    """Max cluster distance (n, 9, side), number of extra inner clusters within 2 cm, deposits merged
    into the track hit (MIP units), and the number of secondaries crossing the lower TOF paddle."""
    n, w = t["rig_gen"].size, p.window_cm
    maxd = np.zeros((n, 9, _SIDES))
    maxd[:, :, 1] = np.abs(rng.normal(0, p.hit_sigma_x_cm * p.resolution_scale * 1.3, (n, 9)))
    near = np.zeros(n, dtype=np.int64)
    merged = np.zeros((n, 9))
    n_sec_tof = np.zeros(n)

    noise = rng.random((n, 9, _SIDES)) < p.p_noise_cluster * p.noise_scale
    r, c, s = np.nonzero(noise)
    d = rng.uniform(0, w, r.size)
    _add(maxd, near, r, c, np.where(s == 0, d, w), np.where(s == 1, d, w), w)

    r, c = np.nonzero(t["delta"])
    c = c + trk.INNER[0]
    merged[r, c] += rng.exponential(2.0, r.size)  # MIP units; the delta ray's own deposit
    vis = rng.random(r.size) < p.p_delta_visible
    d, phi = rng.exponential(p.delta_distance_cm, r.size), rng.uniform(0, 2 * np.pi, r.size)
    _add(maxd, near, r[vis], c[vis], (d * np.cos(phi))[vis], (d * np.sin(phi))[vis], w)

    rows = np.flatnonzero(t["in_plane"] >= 0)
    if rows.size:
        plane = t["in_plane"][rows]
        layer = plane - trk.PLANE_TO_LAYER
        # nuclear fragments at the vertex: sometimes a big deposit on the track hit, often a cluster nearby
        merged[rows, layer] += (rng.random(rows.size) < 0.5) * rng.exponential(p.vertex_deposit_mip, rows.size)
        vertex = rng.random(rows.size) < 0.5
        d, phi = rng.exponential(0.05, rows.size), rng.uniform(0, 2 * np.pi, rows.size)
        _add(maxd, near, rows[vertex], layer[vertex], (d * np.cos(phi))[vertex], (d * np.sin(phi))[vertex], w)
        # charged secondaries: a third forward (fragments, leading pions), the rest wide-angle
        n_sec = np.minimum(rng.poisson(p.secondaries_mean, rows.size), 6)
        spread = np.where(rng.random((rows.size, 6, 1)) < 0.3, 0.08, 0.4)
        angle = rng.normal(0, 1.0, (rows.size, 6, 2)) * spread
        exists = np.arange(6)[None, :] < n_sec[:, None]
        lever = trk.LEVER[plane]  # (m, 9): zero above the vertex
        sep = angle[:, :, None, :] * lever[:, None, :, None]  # (m, 6, 9, 2)
        hit = exists[:, :, None] & (lever[:, None, :] > 0)
        close = hit & (np.hypot(sep[..., 0], sep[..., 1]) < 0.01)
        merged[rows] += close.sum(axis=1)
        far = hit & ~close
        i, _, j = np.nonzero(far)
        _add(maxd, near, rows[i], j, sep[..., 0][far], sep[..., 1][far], w)
        at_tof = exists & (np.hypot(angle[..., 0], angle[..., 1]) * (trk.PLANE_Z[plane] - trk.TOF_Z[1])[:, None] < 6.0)
        n_sec_tof[rows] = at_tof.sum(axis=1)

    sep, mask = t["comp_sep"], t["comp_mask"]
    comp_merged = mask & (np.abs(sep[:, :, 0]) < 0.01)
    merged += 4.0 * comp_merged * (1.0 + _LANDAU * trk.moyal(rng, (n, 9)))
    r, c = np.nonzero(mask & ~comp_merged)
    _add(maxd, near, r, c, sep[r, c, 0], sep[r, c, 1], w)
    return maxd, near, merged, n_sec_tof


def _tof_charges(rng, t, p, n_sec_tof):
    n = t["rig_gen"].size
    sep, mask = t["comp_sep"], t["comp_mask"]
    # a companion alpha shares the TOF paddle when it is within ~6 cm at L2 (upper) / L8 (lower)
    comp_up = mask[:, 1] & (np.abs(sep[:, 1, 0]) < 6.0)
    comp_low = mask[:, 7] & (np.abs(sep[:, 7, 0]) < 6.0)
    up = trk.HE_Z**2 * (1 + 0.06 * trk.moyal(rng, n)) + comp_up * 4.0 * (1 + 0.06 * trk.moyal(rng, n))
    lead = np.where(t["in_plane"] >= 0, t["z_lead"], trk.HE_Z).astype(float)
    low = (lead**2 * (1 + 0.06 * trk.moyal(rng, n)) + n_sec_tof
           + comp_low * 4.0 * (1 + 0.06 * trk.moyal(rng, n)))
    q = [np.clip(p.charge_scale * np.sqrt(x) + rng.normal(0, 0.04, n), 0.0, 10.0) for x in (up, low)]
    return q[0], q[1]


def _fits(t, rig_clip: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Inner fit (unweighted), L1/L9 association, and the weighted fits of the other spans."""
    y = t["y_meas"]
    params_in, res_in = trk.fit_unweighted(y, "inner")
    r_in = trk.rigidity(params_in[:, 2], np.inf)
    ms = 1.0 / (trk.he_beta(r_in) * np.abs(r_in))  # multiple-scattering error per unit scale

    def sigma(span):
        scale = trk.ms_residual_scale(span)
        return np.sqrt(_SIGMA_NOMINAL[trk.SPANS[span]] ** 2 + (scale[None, :] * ms[:, None]) ** 2)

    out = {"inner_res": res_in}
    sig_in = sigma("inner")
    out["inner_chi2"] = np.sum((res_in / sig_in) ** 2, axis=1) / (trk.INNER.size - 3)
    extrap = params_in @ trk.design(np.array([0, 8])).T
    sig_ext = sigma("full")[:, [0, 8]]
    attached = np.all(np.abs(y[:, [0, 8]] - extrap) < 5 * sig_ext + 0.05, axis=1)
    for span in ("L1_inner", "inner_L9", "full"):
        s = sigma(span)
        par, res = trk.fit_weighted(y, span, s)
        out[f"{span}_chi2"] = np.sum((res / s) ** 2, axis=1) / (trk.SPANS[span].size - 3)
        out[f"{span}_res"] = res
        out[f"{span}_kappa"] = par[:, 2]
    out["inner_kappa"] = params_in[:, 2]
    for span in trk.SPANS:
        out[f"{span}_rig"] = trk.rigidity(out[f"{span}_kappa"], rig_clip)
    return out, attached


def _truth(t, p) -> dict[str, np.ndarray]:
    """The talk's label rule from the Monte Carlo truth."""
    inner = trk.INNER
    s = p.label_sigma_cm
    chi2_true = np.sum((t["dev"][:, inner] / s) ** 2, axis=1)
    y_fit = t["fit_inner"] @ trk.design(inner).T
    chi2_inner = np.sum(((y_fit - t["y_true"][:, inner]) / s) ** 2, axis=1)
    ratio = chi2_true / np.maximum(chi2_inner, 1e-12)
    had = t["in_plane"] >= 0
    has_secondary = t["delta"].any(axis=1) | t["soft"] | had
    code = np.where(had, 1, np.where(ratio >= 1.05, 2, np.where(has_secondary, 3, 0)))
    return {"rig_gen": t["rig_gen"], "chi2_true": chi2_true, "chi2_inner_truth": chi2_inner,
            "chi2_ratio_truth": ratio, "has_secondary": has_secondary, "had_inel_inner": had,
            "el_scat_inner": t["el_plane"] >= 0, "label_code": code.astype(np.int64)}
