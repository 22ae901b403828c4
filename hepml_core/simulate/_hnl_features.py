"""The HNL feature set: 17 raw lepton/MET quantities and 68 derived kinematic features (85 in all).

``derived_features`` computes every derived feature from the raw ones, so the simulator, the unlimited
generator of the regression pre-training and any user ntuple with the raw columns share one definition.
``GEV_FEATURES`` lists the derived features measured in GeV (the regression divides them by E_tot);
``CHARGE_FEATURES`` the two that need charges (not regressed: the regression sees no charges).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RAW_FEATURES",
    "DERIVED_FEATURES",
    "FEATURES",
    "GEV_FEATURES",
    "CHARGE_FEATURES",
    "REGRESSION_INPUTS",
    "REGRESSION_TARGETS",
    "PAIRS",
    "Z_MASS",
    "derived_features",
    "feature_unit",
]

Z_MASS = 91.1876
PAIRS = ((1, 2), (1, 3), (2, 3))

RAW_FEATURES: tuple[str, ...] = tuple(
    f"l{i}_{q}" for i in (1, 2, 3) for q in ("pt", "eta", "phi", "mass", "charge")
) + ("met", "met_phi")

_PER_LEPTON = ("px", "py", "pz", "E", "mt", "dphi_met", "pt_frac")
_PER_PAIR = ("m", "pt", "dr", "dphi", "deta", "mt", "mt_met", "dphi_met", "cos")
_THREE = ("m_3l", "pt_3l", "eta_3l", "phi_3l", "mt_3l_met", "dphi_3l_met", "pt_3l_met")
_EVENT = ("met_px", "met_py", "ht", "lt_met", "e_tot", "mt_tot", "met_over_ht", "min_dr", "max_dr",
          "min_mll", "max_mll")
CHARGE_FEATURES: tuple[str, ...] = ("q_sum", "m_os_z")

DERIVED_FEATURES: tuple[str, ...] = (
    tuple(f"l{i}_{q}" for i in (1, 2, 3) for q in _PER_LEPTON)
    + tuple(f"{q}_{i}{j}" for i, j in PAIRS for q in _PER_PAIR)
    + _THREE + _EVENT + CHARGE_FEATURES
)
FEATURES: tuple[str, ...] = RAW_FEATURES + DERIVED_FEATURES

_GEV_PREFIXES = ("m_", "pt_", "mt_", "min_mll", "max_mll")
GEV_FEATURES: tuple[str, ...] = tuple(
    f for f in DERIVED_FEATURES
    if f.startswith(_GEV_PREFIXES) or f.endswith(("_px", "_py", "_pz", "_E", "_mt"))
    or f in ("met_px", "met_py", "ht", "lt_met", "e_tot", "mt_tot", "m_os_z")
)

#: regression inputs: kinematics without charges (the classifier head gets charges separately)
REGRESSION_INPUTS: tuple[str, ...] = tuple(f for f in RAW_FEATURES if not f.endswith("_charge"))
#: regression targets: every derived feature that does not need charges; e_tot first
REGRESSION_TARGETS: tuple[str, ...] = ("e_tot",) + tuple(
    f for f in DERIVED_FEATURES if f not in CHARGE_FEATURES and f != "e_tot")


def feature_unit(name: str) -> str:
    """Unit of a feature for axis labels ("GeV", "rad" or "")."""
    if name in GEV_FEATURES or name.endswith("_pt") or name.endswith("_mass") or name == "met":
        return "GeV"
    if "phi" in name:
        return "rad"
    return ""


def _dphi(a, b):
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def _mt(pt1, phi1, pt2, phi2):
    return np.sqrt(np.clip(2 * pt1 * pt2 * (1 - np.cos(phi1 - phi2)), 0.0, None))


def derived_features(pt, eta, phi, mass, charge, met, met_phi) -> dict[str, np.ndarray]:
    """Every derived feature of ``DERIVED_FEATURES`` from the raw lepton and MET quantities.

    Args:
        pt, eta, phi, mass: (n, 3) arrays, leptons in channel order (GeV, -, rad, GeV).
        charge: (n, 3) lepton charges (+-1); only ``q_sum`` and ``m_os_z`` use them (may be None:
            those two are then left out).
        met, met_phi: (n,) missing transverse momentum and its azimuth.

    Returns:
        name -> float64 array (n,), in ``DERIVED_FEATURES`` order.
    """
    pt, eta, phi, mass = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, mass))
    met = np.asarray(met, dtype=np.float64)
    met_phi = np.asarray(met_phi, dtype=np.float64)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px ** 2 + py ** 2 + pz ** 2 + mass ** 2)
    ht = pt.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    mt_lep = _mt(pt, phi, met[:, None], met_phi[:, None])
    for k in range(3):
        i = k + 1
        out[f"l{i}_px"], out[f"l{i}_py"], out[f"l{i}_pz"], out[f"l{i}_E"] = px[:, k], py[:, k], pz[:, k], e[:, k]
        out[f"l{i}_mt"] = mt_lep[:, k]
        out[f"l{i}_dphi_met"] = np.abs(_dphi(phi[:, k], met_phi))
        out[f"l{i}_pt_frac"] = pt[:, k] / ht
    met_px, met_py = met * np.cos(met_phi), met * np.sin(met_phi)
    mt_pairs, dr_pairs, m_pairs = [], [], []
    for i, j in PAIRS:
        a, b = i - 1, j - 1
        se, sx, sy, sz = e[:, a] + e[:, b], px[:, a] + px[:, b], py[:, a] + py[:, b], pz[:, a] + pz[:, b]
        m = np.sqrt(np.clip(se ** 2 - sx ** 2 - sy ** 2 - sz ** 2, 0.0, None))
        spt = np.hypot(sx, sy)
        sphi = np.arctan2(sy, sx)
        dphi = _dphi(phi[:, a], phi[:, b])
        deta = eta[:, a] - eta[:, b]
        dr = np.hypot(dphi, deta)
        mt = _mt(pt[:, a], phi[:, a], pt[:, b], phi[:, b])
        # transverse mass of the pair + MET system (massless-MET convention)
        et_pair = np.sqrt(spt ** 2 + m ** 2)
        mt_met = np.sqrt(np.clip((et_pair + met) ** 2 - (sx + met_px) ** 2 - (sy + met_py) ** 2, 0.0, None))
        p_a = np.sqrt(px[:, a] ** 2 + py[:, a] ** 2 + pz[:, a] ** 2)
        p_b = np.sqrt(px[:, b] ** 2 + py[:, b] ** 2 + pz[:, b] ** 2)
        cos = (px[:, a] * px[:, b] + py[:, a] * py[:, b] + pz[:, a] * pz[:, b]) / np.maximum(p_a * p_b, 1e-12)
        tag = f"{i}{j}"
        out.update({f"m_{tag}": m, f"pt_{tag}": spt, f"dr_{tag}": dr, f"dphi_{tag}": np.abs(dphi),
                    f"deta_{tag}": np.abs(deta), f"mt_{tag}": mt, f"mt_met_{tag}": mt_met,
                    f"dphi_met_{tag}": np.abs(_dphi(sphi, met_phi)), f"cos_{tag}": cos})
        mt_pairs.append(mt)
        dr_pairs.append(dr)
        m_pairs.append(m)
    se, sx, sy, sz = e.sum(axis=1), px.sum(axis=1), py.sum(axis=1), pz.sum(axis=1)
    m3 = np.sqrt(np.clip(se ** 2 - sx ** 2 - sy ** 2 - sz ** 2, 0.0, None))
    pt3 = np.hypot(sx, sy)
    phi3 = np.arctan2(sy, sx)
    et3 = np.sqrt(pt3 ** 2 + m3 ** 2)
    out["m_3l"] = m3
    out["pt_3l"] = pt3
    out["eta_3l"] = np.arcsinh(np.divide(sz, pt3, out=np.zeros_like(sz), where=pt3 > 0))
    out["phi_3l"] = phi3
    out["mt_3l_met"] = np.sqrt(np.clip((et3 + met) ** 2 - (sx + met_px) ** 2 - (sy + met_py) ** 2, 0.0, None))
    out["dphi_3l_met"] = np.abs(_dphi(phi3, met_phi))
    out["pt_3l_met"] = np.hypot(sx + met_px, sy + met_py)
    out["met_px"], out["met_py"] = met_px, met_py
    out["ht"] = ht
    out["lt_met"] = ht + met
    out["e_tot"] = se + met
    # CMS's Mt_tot: all pairwise transverse masses of the three leptons and MET, in quadrature.
    out["mt_tot"] = np.sqrt(sum(m ** 2 for m in mt_pairs) + (mt_lep ** 2).sum(axis=1))
    out["met_over_ht"] = met / ht
    drs, ms = np.column_stack(dr_pairs), np.column_stack(m_pairs)
    out["min_dr"], out["max_dr"] = drs.min(axis=1), drs.max(axis=1)
    out["min_mll"], out["max_mll"] = ms.min(axis=1), ms.max(axis=1)
    if charge is not None:
        q = np.asarray(charge, dtype=np.float64)
        out["q_sum"] = q.sum(axis=1)
        os_pair = np.column_stack([q[:, i - 1] * q[:, j - 1] < 0 for i, j in PAIRS])
        dist = np.where(os_pair, np.abs(ms - Z_MASS), np.inf)
        best = dist.argmin(axis=1)
        # no opposite-sign pair: 0 GeV, a value no real pair has
        out["m_os_z"] = np.where(np.isfinite(dist.min(axis=1)), ms[np.arange(len(ms)), best], 0.0)
    order = [f for f in DERIVED_FEATURES if f in out]
    return {f: out[f] for f in order}
