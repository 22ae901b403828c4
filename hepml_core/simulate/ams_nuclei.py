"""Toy of AMS-02 Si / P / S events after their event selections, with fragmentation backgrounds (seed talk 001).

The talk trains a multimodal domain-adversarial network on Monte Carlo to remove fragments that pass
the Si, P and S event selections, and wants it to work the same on real data. ``simulate_ams_nuclei``
produces both domains: a labelled Monte Carlo and a "data" sample whose labels are empty (an analyst
never has them) but whose hidden truth is kept in the ``true_*`` columns, so the toy can measure what
a real analysis cannot.

Physics assumptions
    * Selections: Si (Z = 14), P (Z = 15) and S (Z = 16) candidates in the talk's proportions (MC
      125k : 187.5k : 125k, data 100k : 150k : 100k). Signal: the selected nucleus itself.
    * Backgrounds per selection, in the talk's fractions of the MC sample (backup slides), each split
      into "above_l1" (fragmented in the material above L1: every detector sees the fragment) and
      "below_l1" (survived at L1, fragmented between L1 and L2, mostly in the TRD: L1 sees the parent):
      Si: P 40.5 % (26.9 % above L1), S 9.5 % (91.6 %); P: Si 1.1 % (100 %), S 48.9 % (24.2 %);
      S: P 1.36 % (6.7 %), Cl 48.64 % (24.6 %). The MC samples are 50 % signal.
    * Heavier parents fragment into the selected charge plus a light secondary of charge
      Z_parent - Z_selected at a ~40 mrad opening angle (reaching the tracker in 55 % of the cases);
      fragmentation also sprays extra clusters on the layers and TOF planes below it. Back-splash from
      the detectors below the tracker adds clusters on L5-L8 of 15 % of all events. Lighter parents
      (Si in the P selection, P in the S selection) reach the selection by charge spill-over: a merged
      delta electron / overlapping particle raises the measured charge, modelled as a Z_selected
      deposit with a Z = 1 companion.
    * Eight tracker layers L1..L8 at the AMS heights, each with an X and a Y side; per layer and side
      the main track's hit position and charge, the "second track" hit (the fragment's secondary
      where there is one, else a delta ray, a noise cluster, or nothing = position 0, charge 0), and
      the number of clusters. Charges: Gaussian core (2.5 % X, 3.5 % Y relative) plus an exponential
      upper tail. Rigidity spectrum R^-2.7 from 3 GV to 1 TV, identical in both domains; inner and
      inner+L1 rigidities agree to ~1 % unless a kink between L1 and L2 pulls the latter (~10 %); the
      same kink puts the L1 hit off the inner track's extrapolation.
    * Upper TOF (two planes between the TRD and L2): beta (A/Z = 2-ish nuclei), charges per plane and
      combined, on-time cluster counts, and the number of clusters used for the charge (of 4).

The "data" domain has the same physics measured differently (``_ams_nuclei_detector.DATA_RESPONSES``):
tracker charges x1.02, TOF charges x1.015, ~20 % wider resolutions, more noise clusters, delta rays and
noise hits on the second track, more on-time TOF noise; and a different composition
(``data_signal_fraction``, 55 % signal by default instead of the MC's 50 %, the same background mix).
``data_shift`` picks the rest: "residual" (+20 % noise clusters: an MC tuned to data, as the talk's
input choice assumes), "misaligned" (default: the residual noise plus a residual L1 misalignment, 3 mm,
that the MC lacks) or "strong" (twice the noise clusters: an untuned MC). The noise lands on the
quantities that identify fragments, so it mimics background and lowers the signal efficiency on data at
a fixed cut, but it hardly changes the ranking (a BDT trained on the data's own truth ranks "residual"
data no better than one trained on MC). The misalignment does: it gives every data event the offset L1
hit and inner+L1 rigidity that mark a fragmentation below L1 in the MC, so a classifier that trusts them
ranks data worse than one that hides MC from data. This is the case the talk's adversarial branch is for.
Its ``label`` is empty; ``true_label``, ``true_species`` and ``true_category`` hold the hidden truth.

Simplified relative to the real AMS-02 Monte Carlo: no track fit (positions come from a straight line
with a bending term), no energy loss, one secondary per fragmentation, fixed fragmentation points,
no hit inefficiency apart from the secondary's, no TRD/RICH/ECAL, and fractions imposed instead of
Geant4 cross sections.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hepml_core.exceptions import ConfigError
from hepml_core.simulate import _ams_nuclei_detector as det

__all__ = [
    "SELECTIONS", "SPECIES_Z", "SPECIES_A", "COMPOSITION", "CLASS_NAMES", "CATEGORIES",
    "TRACKER_COLUMNS", "MODEL_TRACKER_COLUMNS", "IMAGE_COLUMNS", "RIGIDITY_COLUMNS", "TOF_COLUMNS",
    "FEATURE_UNITS", "TRUTH_COLUMNS", "simulate_ams_nuclei",
]

SELECTIONS: dict[str, int] = {"Si": 14, "P": 15, "S": 16}
SPECIES_Z: dict[str, int] = {"Si": 14, "P": 15, "S": 16, "Cl": 17}
SPECIES_A: dict[str, int] = {"Si": 28, "P": 31, "S": 32, "Cl": 35}
#: selection -> {background species: (fraction of the MC selection sample, share fragmented above L1)}
COMPOSITION: dict[str, dict[str, tuple[float, float]]] = {
    "Si": {"P": (0.405, 0.269), "S": (0.095, 0.916)},
    "P": {"Si": (0.011, 1.0), "S": (0.489, 0.242)},
    "S": {"P": (0.0136, 0.067), "Cl": (0.4864, 0.246)},
}
_MC_SHARE = {"Si": 125.0, "P": 187.5, "S": 125.0}
_DATA_SHARE = {"Si": 100.0, "P": 150.0, "S": 100.0}
CLASS_NAMES = ("background", "signal")  # code 1 = signal, so p_signal is the ML output
CATEGORIES = ("signal", "above_l1", "below_l1")

_LAYERS = range(1, 9)
TRACKER_COLUMNS: tuple[str, ...] = tuple(
    f"trk{t}_l{layer}{side}_{what}" for t in (1, 2) for layer in _LAYERS for side in det.SIDES
    for what in ("pos", "q"))
#: the talk feeds the main track's charge on L2-L8 only (L1 charge is kept for the template fit / cut)
MODEL_TRACKER_COLUMNS: tuple[str, ...] = tuple(c for c in TRACKER_COLUMNS
                                               if c not in ("trk1_l1x_q", "trk1_l1y_q"))
IMAGE_COLUMNS: tuple[str, ...] = tuple(f"ncl_l{layer}{side}" for side in det.SIDES for layer in _LAYERS)
RIGIDITY_COLUMNS = ("rig_inner", "rig_inner_l1")
TOF_COLUMNS = ("tof_beta", "utof_q", "tof_l1_q", "tof_l2_q", "tof_l1_nontime", "tof_l2_nontime",
               "tof_nclusters_q")
FEATURE_UNITS: dict[str, str] = {
    **{c: ("cm" if c.endswith("_pos") else "e") for c in TRACKER_COLUMNS},
    **{c: "clusters" for c in IMAGE_COLUMNS},
    **{c: "GV" for c in RIGIDITY_COLUMNS},
    "tof_beta": "", "utof_q": "e", "tof_l1_q": "e", "tof_l2_q": "e", "tof_l1_nontime": "clusters",
    "tof_l2_nontime": "clusters", "tof_nclusters_q": "clusters", "l1_charge": "e", "z_frag": "cm",
}
TRUTH_COLUMNS = ("true_label", "true_species", "true_category", "z_frag")

_CHUNK = 200_000


def _check(n_events, sample, data_signal_fraction, selections, data_shift) -> list[str]:
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"ams-nuclei: n_events must be a positive int, got {n_events!r}")
    if sample not in ("mc", "data"):
        raise ConfigError(f"ams-nuclei: sample must be 'mc' or 'data', got {sample!r}")
    if not 0.0 < float(data_signal_fraction) < 1.0:
        raise ConfigError(f"ams-nuclei: data_signal_fraction must be in (0, 1), got {data_signal_fraction!r}")
    if data_shift not in det.DATA_RESPONSES:
        raise ConfigError(f"ams-nuclei: data_shift must be one of {list(det.DATA_RESPONSES)}, got {data_shift!r}")
    chosen = list(SELECTIONS) if selections is None else list(selections)
    bad = [s for s in chosen if s not in SELECTIONS]
    if bad or not chosen:
        raise ConfigError(f"ams-nuclei: selections {bad or chosen} not known; accepted: {list(SELECTIONS)}")
    return chosen


def _channels(sample: str, data_signal_fraction: float, selections: list[str]):
    """(selection, species, category, probability) of every event type of the sample."""
    share = _MC_SHARE if sample == "mc" else _DATA_SHARE
    total = sum(share[s] for s in selections)
    out = []
    for sel in selections:
        w_sel = share[sel] / total
        bkg = COMPOSITION[sel]
        bkg_total = sum(f for f, _ in bkg.values())
        signal = 0.5 if sample == "mc" else float(data_signal_fraction)
        out.append((sel, sel, "signal", w_sel * signal))
        for species, (frac, above) in bkg.items():
            f = (1.0 - signal) * frac / bkg_total  # the talk's mix, rescaled to the sample's background
            out.append((sel, species, "above_l1", w_sel * f * above))
            out.append((sel, species, "below_l1", w_sel * f * (1.0 - above)))
    return [c for c in out if c[3] > 0]


def _generate(n: int, rng: np.random.Generator, sample: str, channels, data_shift: str) -> pd.DataFrame:
    response = det.MC_RESPONSE if sample == "mc" else det.DATA_RESPONSES[data_shift]
    probs = np.array([c[3] for c in channels])
    pick = rng.choice(len(channels), size=n, p=probs / probs.sum())
    sel = np.array([c[0] for c in channels], dtype=object)[pick]
    species = np.array([c[1] for c in channels], dtype=object)[pick]
    category = np.array([c[2] for c in channels], dtype=object)[pick]
    z_sel = np.array([SELECTIONS[c[0]] for c in channels], dtype=np.float64)[pick]
    z_par = np.array([SPECIES_Z[c[1]] for c in channels], dtype=np.float64)[pick]
    a_sel = np.array([SPECIES_A[c[0]] for c in channels], dtype=np.float64)[pick]
    above = category == "above_l1"
    below = category == "below_l1"
    frag = above | below

    # Fragmentation height: just above L1 (support structure) or between L1 and L2 (mostly the TRD).
    z_frag = np.full(n, np.nan)
    z_frag[above] = rng.uniform(det.LAYER_Z_CM[0] + 1.0, det.LAYER_Z_CM[0] + 30.0, int(above.sum()))
    z_frag[below] = rng.uniform(det.LAYER_Z_CM[1] + 1.0, det.LAYER_Z_CM[0] - 5.0, int(below.sum()))
    zf = np.nan_to_num(z_frag, nan=-1e3)  # "never": below every detector

    # True charge crossing each tracker layer and TOF plane: the parent above the fragmentation point.
    z_layer = np.where(det.LAYER_Z_CM[None, :] > zf[:, None], z_par[:, None], z_sel[:, None])
    z_layer = np.where(frag[:, None], z_layer, z_sel[:, None])
    z_layer[above] = z_sel[above, None]
    z_tof = np.where(det.TOF_Z_CM[None, :] > zf[:, None], z_par[:, None], z_sel[:, None])
    z_tof[above] = z_sel[above, None]
    z_tof[~frag] = z_sel[~frag, None]

    # Rigidity ~ R^-2.7 in [3, 1000] GV (inverse CDF), the same spectrum in both domains.
    g = 1.7
    lo, hi = 3.0 ** -g, 1000.0 ** -g
    rig_true = (lo - rng.random(n) * (lo - hi)) ** (-1.0 / g)
    mass_over_z = a_sel * 0.9315 / z_sel
    beta_true = rig_true / np.sqrt(rig_true**2 + mass_over_z**2)

    kink = np.where(below[:, None], rng.normal(0.0, 0.004, (n, 2)), 0.0)
    main_pos = det.track_positions(n, rng, rig_true, kink, zf)
    # Drawn in every domain (x 0 where aligned), so that shifts differing only in it share their events.
    l1_offset = response.l1_misalign * rng.standard_normal((n, 2))
    main_pos[:, 0, :] += l1_offset
    sigma = np.array(response.tracker_sigma)[None, None, :]
    main_q = det.measure_charge(np.repeat(z_layer[:, :, None], 2, axis=2), sigma, response.tracker_scale, rng)

    # The secondary: Z_parent - Z_selected for fragmentation, a Z = 1 companion for spill-over.
    charge2 = np.where(z_par > z_sel, z_par - z_sel, 1.0)
    in_accept = rng.random(n) < 0.55
    present = frag[:, None] & (det.LAYER_Z_CM[None, :] < zf[:, None]) & in_accept[:, None]
    showers = np.where(frag[:, None] & (det.LAYER_Z_CM[None, :] < zf[:, None]), 0.3, 0.0)
    # Back-splash from the detectors below the tracker leaves clusters on L5-L8, whatever happened above.
    splash = rng.random(n) < response.splash_prob
    showers[splash, 4:] += response.splash_clusters
    pos2, q2, has2 = det.second_track(main_pos, present, zf, charge2, response, rng)
    ncl = det.cluster_counts(has2, showers, response, rng)
    rig_inner, rig_l1 = det.rigidities(rig_true, below, l1_offset[:, 1], response, rng)
    showers_tof = np.where(frag[:, None] & (det.TOF_Z_CM[None, :] < zf[:, None]), 0.4, 0.0)
    tof = det.tof_response(z_tof, beta_true, showers_tof, response, rng)

    cols: dict[str, np.ndarray] = {}
    for t, (pos, q) in enumerate(((main_pos, main_q), (pos2, q2)), start=1):
        for li in range(8):
            for si, side in enumerate(det.SIDES):
                cols[f"trk{t}_l{li + 1}{side}_pos"] = pos[:, li, si]
                cols[f"trk{t}_l{li + 1}{side}_q"] = q[:, li, si]
    for si, side in enumerate(det.SIDES):
        for li in range(8):
            cols[f"ncl_l{li + 1}{side}"] = ncl[:, li, si].astype(np.float64)
    cols["rig_inner"], cols["rig_inner_l1"] = rig_inner, rig_l1
    cols.update(tof)

    true_label = np.where(category == "signal", "signal", "background").astype(object)
    meta = {
        "domain": np.full(n, sample, dtype=object),
        "selection": sel,
        "label": true_label if sample == "mc" else np.full(n, None, dtype=object),
        "weight": np.ones(n),
        "l1_charge": 0.5 * (main_q[:, 0, 0] + main_q[:, 0, 1]),
        "true_label": true_label,
        "true_species": species,
        "true_category": category,
        "z_frag": z_frag,
    }
    return pd.DataFrame({**meta, **cols})


def simulate_ams_nuclei(n_events: int, *, seed: int | np.random.Generator | None = None, sample: str = "mc",
                        progress: bool = False, data_signal_fraction: float = 0.55,
                        selections=None, data_shift: str = "misaligned") -> pd.DataFrame:
    """Simulate Si/P/S-selected events (signal and fragmentation backgrounds) in the MC or data domain.

    Args:
        n_events: number of selected events.
        seed: int or numpy Generator (None: fresh entropy).
        sample: ``"mc"`` (labelled, 50 % signal per selection) or ``"data"`` (the data response,
            ``data_signal_fraction`` signal, empty ``label``, hidden truth in ``true_*``).
        progress: show a progress bar over chunks of events.
        data_signal_fraction: signal share of each selection in the data sample.
        selections: a subset of ``("Si", "P", "S")`` (default: all three).
        data_shift: how the data's measurement differs from the MC's, a key of
            ``_ams_nuclei_detector.DATA_RESPONSES`` ("residual", "misaligned" or "strong"); ignored
            for MC.

    Returns:
        One row per event: ``domain`` ("mc"/"data"), ``selection``, ``label`` ("signal"/"background";
        empty for data), ``weight``, ``l1_charge`` (e, mean of the L1 X/Y main-track charges), the truth
        columns ``TRUTH_COLUMNS``, and the features: ``TRACKER_COLUMNS`` (cm, e), ``IMAGE_COLUMNS``
        (cluster counts), ``RIGIDITY_COLUMNS`` (GV) and ``TOF_COLUMNS``.

    Raises:
        ConfigError: a bad size, sample name, fraction, selection or data shift.
    """
    chosen = _check(n_events, sample, data_signal_fraction, selections, data_shift)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    channels = _channels(sample, data_signal_fraction, chosen)
    sizes = [min(_CHUNK, n_events - s) for s in range(0, n_events, _CHUNK)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_events, desc=f"ams-nuclei {sample}", unit="ev")
    parts = []
    for size in sizes:
        parts.append(_generate(size, rng, sample, channels, data_shift))
        if bar is not None:
            bar.update(size)
    if bar is not None:
        bar.close()
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return frame
