"""Detector response of the DARWIN toy TPC: positions, S1/S2 light and charge, waveforms, top hit pattern.

Everything works on whole arrays: photon and electron counts per time bin come from one vectorised
multinomial draw per event batch (bin probabilities from the analytic pulse shapes), so no loop runs
over photons, electrons or events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

__all__ = ["DetectorParams", "DEFAULT_DETECTOR", "top_pmt_positions", "sample_positions", "s1_response",
           "s2_response", "s1_lce"]


@dataclass(frozen=True)
class DetectorParams:
    """Numbers of the toy TPC (DARWIN-like; documented in ``simulate/darwin.py``)."""

    radius_cm: float = 130.0
    fiducial_radius_cm: float = 120.0
    z_min_cm: float = 10.0  # fiducial depth below the gate
    z_max_cm: float = 250.0
    g1: float = 0.12  # detected photons per emitted photon, at the centre of the TPC
    lce_slope: float = 0.20  # relative S1 light collection from top (-10 %) to bottom (+10 %)
    p_dphe: float = 0.2  # double photoelectron emission probability
    spe_resolution: float = 0.4  # single-PE area resolution (relative)
    s1_coincidence: int = 4  # "4-fold coincidence": at least 4 detected photons
    s1_bin_ns: float = 5.0
    s1_bins: int = 24
    singlet_ns: float = 3.1
    triplet_ns: float = 24.0
    transport_ns: float = 6.0  # photon transport in a 2.6 m TPC (exponential)
    singlet_fraction_er: float = 0.20
    singlet_fraction_nr: float = 0.35
    electron_lifetime_us: float = 10_000.0
    extraction_efficiency: float = 0.75
    se_gain_pe: float = 30.0  # PE per extracted electron (all PMTs)
    se_width: float = 0.25  # relative width of the single-electron gain
    s2_threshold_pe: float = 200.0
    diffusion_cm2_s: float = 25.0  # longitudinal diffusion at 200 V/cm
    s2_sigma0_us: float = 0.3
    el_width_us: float = 1.0  # electroluminescence (gas gap crossing) time
    s2_bin_us: float = 0.5
    s2_bins: int = 32
    s2_peak_us: float = 8.0  # where the S2 window places the drifted cloud's centre
    top_fraction: float = 0.6
    pmt_rings: int = 3  # hexagonal top array: 1 + 6 + 12 + 18 = 37 PMTs
    lrf_scale_cm: float = 25.0  # light response function width (gas gap + PMT distance)


DEFAULT_DETECTOR = DetectorParams()


def top_pmt_positions(params: DetectorParams = DEFAULT_DETECTOR) -> np.ndarray:
    """(n_pmt, 2) x, y (cm) of the hexagonal top array, centre first, ring by ring."""
    pitch = params.fiducial_radius_cm / params.pmt_rings
    points = [(0.0, 0.0)]
    corners = [np.array([np.cos(a), np.sin(a)]) for a in np.deg2rad(np.arange(0, 360, 60))]
    for ring in range(1, params.pmt_rings + 1):
        for side in range(6):
            start, end = corners[side] * ring, corners[(side + 1) % 6] * ring
            for step in range(ring):
                points.append(tuple((start + (end - start) * step / ring) * pitch))
    return np.asarray(points)


def sample_positions(n: int, rng: np.random.Generator, drift_velocity_cm_us: float,
                     params: DetectorParams = DEFAULT_DETECTOR) -> dict[str, np.ndarray]:
    """Uniform positions in the fiducial cylinder and their drift times."""
    r = params.fiducial_radius_cm * np.sqrt(rng.random(n))
    phi = rng.uniform(0, 2 * np.pi, n)
    z = rng.uniform(params.z_min_cm, params.z_max_cm, n)
    return {"x_cm": r * np.cos(phi), "y_cm": r * np.sin(phi), "z_cm": z, "drift_time_us": z / drift_velocity_cm_us}


def s1_lce(z_cm: np.ndarray, params: DetectorParams = DEFAULT_DETECTOR) -> np.ndarray:
    """Relative light collection vs depth (1 at mid-height; more light near the bottom PMT array)."""
    mid = (params.z_min_cm + params.z_max_cm) / 2
    half = (params.z_max_cm - params.z_min_cm) / 2
    return 1.0 + params.lce_slope / 2 * (z_cm - mid) / half


def _hypoexp_cdf(t: np.ndarray, tau1: float, tau2: float) -> np.ndarray:
    """CDF of the sum of two exponential times (decay then transport)."""
    t = np.clip(t, 0, None)
    return 1 - (tau1 * np.exp(-t / tau1) - tau2 * np.exp(-t / tau2)) / (tau1 - tau2)


def _s1_bin_probabilities(params: DetectorParams) -> tuple[np.ndarray, np.ndarray]:
    edges = np.arange(params.s1_bins + 1) * params.s1_bin_ns
    singlet = np.diff(_hypoexp_cdf(edges, params.singlet_ns, params.transport_ns))
    triplet = np.diff(_hypoexp_cdf(edges, params.triplet_ns, params.transport_ns))
    return singlet, triplet


def _multinomial_bins(counts: np.ndarray, probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts per bin for each event; what falls outside the window goes into a dropped overflow bin."""
    overflow = np.clip(1 - probs.sum(axis=1, keepdims=True), 0, None)
    full = np.concatenate([probs, overflow], axis=1)
    full /= full.sum(axis=1, keepdims=True)
    return rng.multinomial(counts, full)[:, :-1]


def _pe_area(counts: np.ndarray, rng: np.random.Generator, p_dphe: float, resolution: float) -> np.ndarray:
    """Area in PE of ``counts`` photoelectron-producing photons: double-PE emission and SPE smearing."""
    pe = counts + rng.binomial(counts, p_dphe)
    return np.clip(pe + resolution * np.sqrt(pe) * rng.standard_normal(pe.shape), 0, None)


def s1_response(n_ph: np.ndarray, is_nr: np.ndarray, z_cm: np.ndarray, rng: np.random.Generator,
                params: DetectorParams = DEFAULT_DETECTOR) -> dict[str, np.ndarray]:
    """Detected S1 photons, the summed S1 waveform (PE per time bin), S1 area and cS1."""
    lce = s1_lce(z_cm, params)
    n_det = rng.binomial(n_ph, np.clip(params.g1 * lce, 0, 1))
    singlet, triplet = _s1_bin_probabilities(params)
    f_s = np.where(is_nr, params.singlet_fraction_nr, params.singlet_fraction_er)
    probs = f_s[:, None] * singlet[None, :] + (1 - f_s)[:, None] * triplet[None, :]
    wf = _pe_area(_multinomial_bins(n_det, probs, rng), rng, params.p_dphe, params.spe_resolution)
    s1 = wf.sum(axis=1)
    return {"s1_wf": wf, "n_det": n_det, "s1_pe": s1, "cs1_pe": s1 / lce}


def _s2_bin_probabilities(drift_time_us: np.ndarray, v_cm_us: float, params: DetectorParams) -> np.ndarray:
    sigma_z_cm = np.sqrt(2 * params.diffusion_cm2_s * drift_time_us * 1e-6)
    sigma_t = np.sqrt(params.s2_sigma0_us**2 + (sigma_z_cm / v_cm_us) ** 2 + params.el_width_us**2 / 12)
    edges = np.arange(params.s2_bins + 1) * params.s2_bin_us - params.s2_peak_us
    return np.diff(ndtr(edges[None, :] / sigma_t[:, None]), axis=1)


def s2_response(n_e: np.ndarray, drift_time_us: np.ndarray, x_cm: np.ndarray, y_cm: np.ndarray,
                v_cm_us: float, rng: np.random.Generator, params: DetectorParams = DEFAULT_DETECTOR,
                pmts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Extracted electrons, the summed S2 waveform (PE per bin), the top-array hit pattern, S2 and cS2."""
    survival = np.exp(-drift_time_us / params.electron_lifetime_us)
    n_ext = rng.binomial(rng.binomial(n_e, survival), params.extraction_efficiency)
    per_bin = _multinomial_bins(n_ext, _s2_bin_probabilities(drift_time_us, v_cm_us, params), rng)
    gain = params.se_gain_pe
    wf = np.clip(gain * per_bin + gain * params.se_width * np.sqrt(per_bin) * rng.standard_normal(per_bin.shape),
                 0, None)
    s2 = wf.sum(axis=1)
    pmts = top_pmt_positions(params) if pmts is None else pmts
    d2 = (x_cm[:, None] - pmts[None, :, 0]) ** 2 + (y_cm[:, None] - pmts[None, :, 1]) ** 2
    lrf = (1 + d2 / params.lrf_scale_cm**2) ** -1.5
    lrf /= lrf.sum(axis=1, keepdims=True)
    # Each top PMT sees a Poisson share of the S2 photons (the S2 area is already in PE).
    pattern = rng.poisson(params.top_fraction * s2[:, None] * lrf).astype(np.float64)
    return {"s2_wf": wf, "pattern": pattern, "n_ext": n_ext, "s2_pe": s2, "cs2_pe": s2 / survival}
