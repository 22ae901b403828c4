"""Toy of the AMS-02 He Monte Carlo after the selection with R_inner < 0 (seed talk 000).

The talk trains a classifier on the sources of He charge confusion and searches data for outliers with
an autoencoder. ``simulate_ams_he`` produces the events such a study needs: the 37 features, the
talk's four labels (``CLASS_NAMES``) and a spectrum weight, for a Monte Carlo or a "data" sample.

Physics assumptions
    * 4He (Z = 2) generated as R^-1.4 between 20 GV and 1 TV ("flat-ish" in log R; below 20 GV the
      toy has no charge confusion that survives the chi2 cut). ``weight`` re-weights to an R^-2.7 flux,
      normalised to mean 1 (effective sample size ~30 % of the events).
    * Nine tracker layers in the bending plane (y) at the AMS heights: L1 +158 cm above the TRD, L2 +53,
      L3/L4 +29.2/+25.2, L5/L6 +1.7/-2.3, L7/L8 -25.2/-29.2, L9 -136; a 0.14 T box field for
      |z| < 40 cm (L3-L8), so the inner sagitta is ~1.8 mm / R[GV]. Hit resolution 10 um in y (12 um on
      L1/L9), 30 um in x: the inner-fit MDR is ~360 GV, L1-L9 ~2 TV.
    * Multiple scattering (Highland) in each tracker plane (0.6 % X0) and in the TRD (10 %), upper TOF
      (5 %) and lower TOF + RICH radiator (12 %); the fits' error model adds the expected scattering
      residual per layer, ~1/(beta R), as a GBL fit would.
    * Processes in the inner-tracker planes L2-L8:
      - nuclear elastic scattering: one kink, d(sigma)/dt ~ exp(-b|t|) with b = 400 GeV^-2;
      - hadronic inelastic interactions: the track continues as the leading fragment (3He at the same
        momentum per nucleon, a 4He that lost 2-40 % of its momentum, or a Z = 1 p/d/t) with a 100 MeV
        fragmentation pT kick; Poisson(1.5) charged secondaries (forward or wide-angle) leave clusters
        on the layers below, the vertex often a big deposit and a nearby cluster; the lower TOF sees
        the leading fragment plus the secondaries that cross its paddle;
      - energetic delta rays (10 % per layer): the delta cluster merges with the track hit, shifting
        its centroid (Laplace, 15 um) and adding charge, and usually leaves a separate cluster within a
        few mm; plus invisible secondaries (soft delta rays, recoils: 28 % of events). Both set the
        Monte Carlo's "HasSecondary".
      Rates are enhanced over the real ones (half the tracks interact inelastically, as in a biased
      Monte Carlo; the weights do not undo this) and tuned so that the selected class fractions are
      the talk's: ~14 % spillover, ~53 % had_inel, ~2.5 % el_scat, ~30 % other.
    * Charges: deposits ~ Z^2 (1 + 0.08 Moyal) (a Landau-like tail) plus whatever merges into the
      cluster; charge = sqrt(deposit). TOF: the same with 6 % fluctuations; TOF beta with 2 % resolution.
    * Max cluster distance per layer and side: the largest distance (cm) from the inner-fit track of any
      cluster within the 5 cm search window (the track's own hit included: a few um when nothing else
      is there); noise clusters on 3 % of layer-sides.
    * Reconstruction and selection (the talk's, simplified): a 3-parameter least-squares inner fit
      (L2-L8) gives R_inner; L1 and L9 are attached within 5 sigma + 0.5 mm of its extrapolation;
      weighted fits L1+inner, inner+L9 and L1-L9 give the other rigidities (|R| saturates at 3 TV).
      Selected: R_inner < 0, L1 and L9 attached, chi2_inner/ndf < 10, sign(R_L1_inner) ==
      sign(R_inner_L9), inner charge in [1.7, 2.4], L1 charge in [1.6, 3], upper TOF in [1.5, 3], lower
      TOF > 1.5. About 4 % of the generated tracks pass.
    * Label (the talk's rule): a hadronic inelastic interaction inside the inner tracker -> had_inel;
      otherwise the true rigidity is propagated from the true state at L2 and the inner fit is taken as
      is, and each is compared with the true y on L2-L8 (chi2_true, chi2_inner, sigma = 15 um):
      chi2_true / chi2_inner >= 1.05 -> el_scat, else HasSecondary ? other : spillover. Small elastic
      kinks look like resolution, so the el_scat pairs are the hard ones, as in the talk.

The "data" sample has the same physics with a slightly different response (charges x1.02, hit
resolution x1.15, 20 % more noise clusters; the reconstruction still assumes the MC resolution, so its
chi2s are larger) and a rare injected population (``anomaly_fraction``, label ``anomaly``): He pairs
from the break-up of a heavier nucleus (C, O -> alpha + alpha + ...) above L1 or in the TRD, which a
He-only Monte Carlo cannot contain. The companion alpha leaves a second Z = 2 cluster on every layer
below the break-up, at a distance growing linearly with depth; close clusters merge with the track hit
(charge ~2.8, shifted centroid) or are picked instead of it, which is how these events reach
R_inner < 0; both TOF planes see two nuclei in one paddle. Data labels are the hidden truth; weights
are computed as for the MC.

Simplified relative to the real AMS-02 Monte Carlo: no energy loss or geomagnetic cutoff, no x-y
coupling or track inclination, a box field, linear least-squares fits instead of GBL/Choutko fits,
every layer has a hit (no hit-finding inefficiency, ladder gaps or pattern cuts), no TRD/RICH/ECAL,
interactions only in the inner-tracker planes with fixed fragmentation channels, a constant hit
resolution, and process rates tuned to the talk's class fractions instead of Geant4 cross sections.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from hepml_core.exceptions import ConfigError, DataError
from hepml_core.simulate import _ams_he_generate as gen
from hepml_core.simulate import _ams_he_reco as reco

__all__ = ["CLASS_NAMES", "ANOMALY_LABEL", "FEATURES", "FEATURE_UNITS", "TRUTH_COLUMNS", "DATA_RESPONSE", "AmsHeParams",
           "simulate_ams_he"]

CLASS_NAMES = ("spillover", "had_inel", "el_scat", "other")
ANOMALY_LABEL = "anomaly"
_INNER = [f"L{i}" for i in range(2, 9)]
FEATURES: tuple[str, ...] = (
    *(f"charge_L{i}" for i in range(1, 10)),
    "charge_inner", "tof_charge_upper", "tof_charge_lower", "tof_beta",
    *(f"max_dist_{layer}_{side}" for layer in _INNER for side in ("y", "x")),
    "max_dist_L9_y", "n_clusters_2cm",
    "chi2_inner", "chi2_L1_inner", "chi2_inner_L9", "chi2_full",
    "rig_inner", "rig_L1_inner", "rig_inner_L9", "rig_full",
)
# charges in units of e; chi2s are per degree of freedom; "" = dimensionless (TOF beta, a count)
FEATURE_UNITS: dict[str, str] = {
    name: ("e" if name.startswith(("charge", "tof_charge")) else
           "cm" if name.startswith("max_dist") else
           "GV" if name.startswith("rig") else "")
    for name in FEATURES
}
TRUTH_COLUMNS = reco.TRUTH_COLUMNS
_MIN_ACCEPTANCE = 2e-4  # selected / generated tracks below which generating more is pointless
_MIN_TRIED = 200_000


@dataclass(frozen=True)
class AmsHeParams:
    """Physics and response settings of the toy (defaults: the tuned Monte Carlo); lengths in cm.

    Raises:
        ConfigError: a probability outside [0, 1], a non-positive scale, or rig_min_gv >= rig_max_gv.
    """

    rig_min_gv: float = 20.0
    rig_max_gv: float = 1000.0
    generated_index: float = 1.4  # generated ~ R^-generated_index (1 would be flat in log R)
    spectral_index: float = 2.7  # weight -> R^-spectral_index
    hit_sigma_y_cm: float = 10e-4
    hit_sigma_ext_cm: float = 12e-4  # L1, L9 (alignment)
    hit_sigma_x_cm: float = 30e-4
    label_sigma_cm: float = 15e-4  # the talk's sigma in the two label chi2s (cancels in their ratio)
    p_elastic: float = 0.08
    elastic_slope_gev2: float = 400.0
    p_inelastic: float = 0.51
    fragment_pt_gev: float = 0.10
    secondaries_mean: float = 1.5  # charged secondaries of an inelastic interaction (Poisson, <= 6)
    vertex_deposit_mip: float = 3.0  # mean extra deposit at the vertex (half of the interactions)
    p_delta: float = 0.10  # energetic delta ray, per inner layer
    p_soft_secondary: float = 0.28  # invisible secondaries (soft delta rays, recoils), per event
    delta_shift_cm: float = 15e-4
    p_delta_visible: float = 0.95  # a delta ray also leaves a separate cluster
    delta_distance_cm: float = 0.08
    p_noise_cluster: float = 0.03  # per layer and side
    window_cm: float = 5.0  # cluster search window around the track (max distance is capped here)
    rig_clip_gv: float = 3000.0  # fitted |R| saturates here (beyond the MDR)
    charge_scale: float = 1.0
    resolution_scale: float = 1.0
    noise_scale: float = 1.0


    def __post_init__(self) -> None:
        bad = []
        for f in fields(self):
            value = getattr(self, f.name)
            ok = np.isfinite(value) and value >= 0 and (value <= 1 if f.name.startswith("p_") else True)
            if not ok or (value == 0 and f.name in _POSITIVE):
                bad.append(f"{f.name}={value!r}")
        if not self.rig_min_gv < self.rig_max_gv:
            bad.append(f"rig_min_gv={self.rig_min_gv!r} >= rig_max_gv={self.rig_max_gv!r}")
        if bad:
            raise ConfigError(f"AmsHeParams: bad {', '.join(bad)}; accepted: probabilities p_* in [0, 1], "
                              "rigidities, resolutions, window and scales > 0, other settings >= 0")


_POSITIVE = frozenset({"rig_min_gv", "rig_max_gv", "hit_sigma_y_cm", "hit_sigma_ext_cm", "hit_sigma_x_cm",
                       "label_sigma_cm", "elastic_slope_gev2", "window_cm", "rig_clip_gv", "charge_scale",
                       "resolution_scale", "noise_scale"})
DATA_RESPONSE = {"charge_scale": 1.02, "resolution_scale": 1.15, "noise_scale": 1.2}  # data / MC factors


def simulate_ams_he(
    n_events: int,
    *,
    seed: int | np.random.Generator | None = None,
    sample: str = "mc",
    anomaly_fraction: float = 0.005,
    progress: bool = False,
    keep_truth: bool = False,
    params: AmsHeParams | None = None,
) -> pd.DataFrame:
    """Simulate ``n_events`` He events that pass the selection with R_inner < 0.

    Args:
        n_events: number of selected events to return.
        seed: int, None (fresh entropy) or a numpy Generator; the same int gives the same frame.
        sample: ``"mc"`` (labels are the four classes) or ``"data"`` (different response, hidden truth
            labels plus ``anomaly`` for the injected He pairs).
        anomaly_fraction: fraction of injected anomalies in the data sample (ignored for ``"mc"``).
        progress: show a tqdm bar of selected events.
        keep_truth: also return the truth columns ``TRUTH_COLUMNS`` (R_gen, chi2s of the label rule...).
        params: physics and response settings (default ``AmsHeParams()``).

    Returns:
        DataFrame with the ``FEATURES`` columns (float32), ``label`` (str), ``weight`` (float64, mean 1)
        and, with ``keep_truth``, the truth columns. Events come in random order (the anomalies of a
        data sample are shuffled in).

    Raises:
        ConfigError: bad ``n_events``, ``sample``, ``anomaly_fraction`` or ``params``.
        DataError: the selection accepts too few generated tracks to reach ``n_events``.
    """
    n_events, anomaly_fraction = _check_args(n_events, sample, anomaly_fraction, params)
    params = params or AmsHeParams()
    rng = np.random.default_rng(seed)
    n_anomaly = 0
    if sample == "data":
        params = replace(params, **{k: getattr(params, k) * v for k, v in DATA_RESPONSE.items()})
        n_anomaly = int(round(anomaly_fraction * n_events))
    bar = _progress_bar(n_events, progress)
    parts = []
    try:
        with _one_blas_thread():
            if n_events > n_anomaly:
                parts.append(_collect(rng, n_events - n_anomaly, params, False, bar))
            if n_anomaly:
                parts.append(_collect(rng, n_anomaly, params, True, bar))
    finally:
        if bar is not None:
            bar.close()
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = rng.permutation(n_events) if n_anomaly else np.arange(n_events)
    frame = pd.DataFrame({name: cols[name][order].astype(np.float32) for name in FEATURES})
    labels = np.asarray(CLASS_NAMES + (ANOMALY_LABEL,), dtype=object)[cols["label_code"][order]]
    frame["label"] = pd.array(labels, dtype="str")
    weight = cols["rig_gen"][order] ** (params.generated_index - params.spectral_index)
    frame["weight"] = weight / weight.mean()
    if keep_truth:
        for name in TRUTH_COLUMNS:
            frame[name] = cols[name][order]
    return frame


def _check_args(n_events, sample, anomaly_fraction, params) -> tuple[int, float]:
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"ams-he: n_events must be a positive integer, got {n_events!r}")
    if sample not in ("mc", "data"):
        raise ConfigError(f"ams-he: sample must be 'mc' or 'data', got {sample!r}")
    try:
        anomaly_fraction = float(anomaly_fraction)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"ams-he: anomaly_fraction must be a number in [0, 1), got {anomaly_fraction!r}") from err
    if not 0.0 <= anomaly_fraction < 1.0:
        raise ConfigError(f"ams-he: anomaly_fraction must be in [0, 1), got {anomaly_fraction!r}")
    if params is not None and not isinstance(params, AmsHeParams):
        accepted = ", ".join(f.name for f in fields(AmsHeParams))
        raise ConfigError(f"ams-he: params must be an AmsHeParams({accepted}), got {type(params).__name__}")
    return int(n_events), anomaly_fraction


def _one_blas_thread():
    """The products here are (n, 11) @ (11, 9): threaded BLAS only adds overhead (and stalls badly on a
    busy machine), so it is limited to one thread while simulating."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _progress_bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="ev", desc="ams-he")


def _collect(rng, n_wanted: int, params: AmsHeParams, anomaly: bool, bar) -> dict[str, np.ndarray]:
    """Generate batches of candidate tracks until ``n_wanted`` pass the selection."""
    parts, got, tried, acceptance = [], 0, 0, 0.05
    while got < n_wanted:
        batch = int(np.clip((n_wanted - got) / acceptance * 1.1, 5_000, 400_000))
        tracks = gen.generate(rng, batch, params, anomaly)
        selected = reco.reconstruct(rng, tracks, params)
        n_sel = len(selected["rig_gen"])
        tried, got = tried + batch, got + n_sel
        acceptance = max(got / tried, _MIN_ACCEPTANCE)
        if tried >= _MIN_TRIED and got / tried < _MIN_ACCEPTANCE:
            kind = "anomaly" if anomaly else "He"
            raise DataError(
                f"ams-he: only {got} of {tried:,} generated {kind} tracks passed the R_inner < 0 selection "
                f"(acceptance {got / tried:.1e} < {_MIN_ACCEPTANCE:.0e}); {n_wanted:,} events would take too "
                f"long. Raise the process rates or the rigidity range in AmsHeParams."
            )
        parts.append(selected)
        if bar is not None:
            bar.update(min(n_sel, n_wanted - (got - n_sel)))
    out = {k: np.concatenate([p[k] for p in parts])[:n_wanted] for k in parts[0]}
    if anomaly:
        out["label_code"] = np.full(n_wanted, len(CLASS_NAMES), dtype=np.int64)
    return out
