"""Toy of the DARWIN liquid-xenon TPC events of seed talk 004: S1/S2 summed waveforms and the S2 top pattern.

``simulate_darwin`` produces what the talk's networks see, x = [S1WaveformTotal, S2WaveformTotal,
S2Pattern], for electron recoils (ER, the dominant background) and nuclear recoils (NR: WIMPs, neutrons),
plus the classical summaries cS1/cS2 and the truth (energy, position, source).

Physics assumptions
    * Quanta: NEST via nestpy (``NESTcalc.GetYields`` + ``GetQuanta``; ER as ``beta``, NR as ``NR``) at
      200 V/cm and 2.9 g/cm^3. nestpy is per-event C++, so it is tabulated once on a 160-point energy grid
      (1500 draws each) and events draw (n_ph, n_e) from a bivariate normal with NEST's means and
      covariance (recombination anti-correlation kept) -- see ``_darwin_nest``.
    * Spectra (1-100 keV): ER flat; NR flat, exponential "neutron-like" (15 keV slope), or the SI WIMP
      spectrum of a 30, 50 or 100 GeV WIMP (Standard Halo Model, Helm form factor; ``_darwin_wimp``).
    * Geometry: events uniform in a fiducial cylinder (r < 120 cm, 10-250 cm below the gate) of a TPC of
      130 cm radius; drift velocity from NEST (~0.15 cm/us, max drift ~1.6 ms); electron lifetime 10 ms.
    * S1: binomial detection with g1 = 0.12 times a linear light-collection factor in depth (+-10 %),
      double-PE emission 0.2, SPE resolution 0.4. Pulse: singlet (3.1 ns) / triplet (24 ns) decay with
      singlet fraction 0.20 (ER) or 0.35 (NR), convolved with 6 ns exponential photon transport; 24 bins
      of 5 ns from the interaction time. Trigger: at least 4 detected photons ("4-fold coincidence";
      the per-PMT split is not simulated).
    * S2: electron survival exp(-t/tau), extraction 0.75, 30 PE per extracted electron (25 % width).
      Pulse: Gaussian of width sqrt(0.3^2 + (sigma_diffusion/v)^2 + 1^2/12) us (longitudinal diffusion
      25 cm^2/s; 1 us electroluminescence box as its variance) in 32 bins of 0.5 us, the cloud centre at
      8 us -- the window is aligned on the S2, so the pulse *width* carries the depth. Trigger: S2 >= 200 PE.
    * Top hit pattern: 60 % of the S2 light on a hexagonal array of 37 PMTs (3 rings, 40 cm pitch) with a
      light response (1 + d^2/25cm^2)^-1.5, Poisson per PMT.
    * Corrections: cS1 = S1 / LCE(z), cS2 = S2 exp(t/tau) with the true depth (perfect position
      reconstruction).

Simplified: no PMT-by-PMT S1 pattern or dark counts, no S2 single-electron tails or afterpulses, no
multiple scatters, accidentals, field non-uniformity or position-reconstruction error; waveforms are
aligned on the true interaction / cloud-arrival times; xenon is one isotope (A = 131).

Samples: ``"mc"`` is a labelled ER/NR mixture (``recoil``, ``nr_fraction``, ``nr_spectrum``); ``"data"``
is ER background with an injected WIMP signal (``signal_fraction`` of the events, ``wimp_mass``); its
``label``/``source`` columns are the hidden truth. Only events passing both triggers are returned;
``frame.attrs["acceptance"]`` holds the passing fraction of each source.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hepml_core.exceptions import ConfigError
from hepml_core.simulate import _darwin_detector as det
from hepml_core.simulate import _darwin_nest as nest
from hepml_core.simulate import _darwin_wimp as wimp

__all__ = ["S1_FEATURES", "S2_FEATURES", "PATTERN_FEATURES", "FEATURES", "FEATURE_GROUPS", "CLASS_NAMES",
           "TRUTH_COLUMNS", "SOURCES", "simulate_darwin", "trigger_acceptance"]

_P = det.DEFAULT_DETECTOR
S1_FEATURES = tuple(f"s1_wf_{i:02d}" for i in range(_P.s1_bins))
S2_FEATURES = tuple(f"s2_wf_{i:02d}" for i in range(_P.s2_bins))
PATTERN_FEATURES = tuple(f"s2_top_{i:02d}" for i in range(len(det.top_pmt_positions())))
FEATURES = S1_FEATURES + S2_FEATURES + PATTERN_FEATURES
FEATURE_GROUPS = {"S1WaveformTotal": S1_FEATURES, "S2WaveformTotal": S2_FEATURES, "S2Pattern": PATTERN_FEATURES}
CLASS_NAMES = ("ER", "NR")
TRUTH_COLUMNS = ("label", "source", "energy_kev", "x_cm", "y_cm", "z_cm", "drift_time_us", "n_ph", "n_e",
                 "s1_pe", "s2_pe", "cs1_pe", "cs2_pe")
SOURCES = ("er_flat", "nr_flat", "neutron", "wimp30", "wimp50", "wimp100")
_NR_MIX = {"nr_flat": 0.4, "neutron": 0.2, "wimp30": 0.4 / 3, "wimp50": 0.4 / 3, "wimp100": 0.4 / 3}


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _source_energies(source: str, n: int, rng: np.random.Generator, e_min: float, e_max: float) -> np.ndarray:
    if source in ("er_flat", "nr_flat"):
        return wimp.sample_flat_energies(n, rng, e_min, e_max)
    if source == "neutron":
        return wimp.sample_neutron_energies(n, rng, e_min, e_max)
    return wimp.sample_wimp_energies(n, float(source[4:]), rng, e_min, e_max)


def _generate(source: str, n: int, rng: np.random.Generator, e_min: float, e_max: float, v_drift: float,
              pmts: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Simulate ``n`` events of one source; return their arrays and the trigger mask."""
    is_nr = np.full(n, source != "er_flat")
    energy = _source_energies(source, n, rng, e_min, e_max)
    n_ph, n_e = nest.sample_quanta(energy, np.where(is_nr, "NR", "ER"), rng)
    pos = det.sample_positions(n, rng, v_drift)
    s1 = det.s1_response(n_ph, is_nr, pos["z_cm"], rng)
    s2 = det.s2_response(n_e, pos["drift_time_us"], pos["x_cm"], pos["y_cm"], v_drift, rng, pmts=pmts)
    passed = (s1["n_det"] >= _P.s1_coincidence) & (s2["s2_pe"] >= _P.s2_threshold_pe)
    arrays = {"energy_kev": energy, "n_ph": n_ph, "n_e": n_e, **pos, **s1, **s2}
    return arrays, passed


def _source_counts(n_events: int, sample: str, recoil: str, nr_fraction: float, nr_spectrum: str,
                   wimp_mass: float, signal_fraction: float, rng: np.random.Generator) -> dict[str, int]:
    if sample == "data":
        if not 0 <= signal_fraction < 1:
            raise ConfigError(f"signal_fraction must be in [0, 1), got {signal_fraction!r}")
        n_sig = int(rng.binomial(n_events, signal_fraction))
        return {"er_flat": n_events - n_sig, _wimp_source(wimp_mass): n_sig}
    if recoil not in ("mixed", "ER", "NR"):
        raise ConfigError(f"recoil must be 'mixed', 'ER' or 'NR', got {recoil!r}")
    if not 0 <= nr_fraction <= 1:
        raise ConfigError(f"nr_fraction must be in [0, 1], got {nr_fraction!r}")
    frac_nr = {"mixed": nr_fraction, "ER": 0.0, "NR": 1.0}[recoil]
    n_nr = int(rng.binomial(n_events, frac_nr)) if recoil == "mixed" else int(n_events * frac_nr)
    spectra = {"mixed": _NR_MIX, "flat": {"nr_flat": 1.0}, "neutron": {"neutron": 1.0},
               "wimp": {_wimp_source(wimp_mass): 1.0}}
    if nr_spectrum not in spectra:
        raise ConfigError(f"nr_spectrum must be one of {', '.join(map(repr, spectra))}, got {nr_spectrum!r}")
    mix = spectra[nr_spectrum]
    split = rng.multinomial(n_nr, np.array(list(mix.values())) / sum(mix.values()))
    return {"er_flat": n_events - n_nr, **{s: int(k) for s, k in zip(mix, split)}}


def _wimp_source(mass: float) -> str:
    allowed = {int(m): f"wimp{int(m)}" for m in wimp.WIMP_MASSES_GEV}
    if float(mass) not in wimp.WIMP_MASSES_GEV:
        raise ConfigError(f"wimp_mass must be one of {', '.join(str(m) for m in allowed)} GeV, got {mass!r}")
    return allowed[int(mass)]


def simulate_darwin(n_events: int, *, seed: int | np.random.Generator | None = None, sample: str = "mc",
                    progress: bool = False, recoil: str = "mixed", nr_fraction: float = 0.5,
                    nr_spectrum: str = "mixed", wimp_mass: float = 50.0, signal_fraction: float = 0.01,
                    e_min: float = 1.0, e_max: float = 100.0) -> pd.DataFrame:
    """Simulate DARWIN-like TPC events that pass the S1 and S2 triggers.

    Args:
        n_events: number of events returned (after the triggers).
        seed: int or numpy Generator.
        sample: ``"mc"`` (labelled ER/NR mixture) or ``"data"`` (ER with an injected WIMP signal).
        progress: show a progress bar over sources.
        recoil: mc only: ``"mixed"``, ``"ER"`` or ``"NR"``.
        nr_fraction: mc, mixed: fraction of NR events.
        nr_spectrum: NR energies: ``"mixed"`` (40 % flat, 20 % neutron-like, 40 % WIMPs of 30/50/100 GeV),
            ``"flat"``, ``"neutron"`` or ``"wimp"`` (of ``wimp_mass``).
        wimp_mass: 30, 50 or 100 (GeV), for ``nr_spectrum="wimp"`` and the data sample's signal.
        signal_fraction: data only: expected fraction of injected WIMP events.
        e_min: lowest recoil energy (keV).
        e_max: highest recoil energy (keV).

    Returns:
        DataFrame: the feature columns (``FEATURES``, PE per bin or per PMT), ``TRUTH_COLUMNS``,
        ``weight`` (1) and ``sample``; rows shuffled.

    Raises:
        ConfigError: bad option values, or nestpy not installed.
    """
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"n_events must be a positive integer, got {n_events!r}")
    if sample not in ("mc", "data"):
        raise ConfigError(f"sample must be 'mc' or 'data', got {sample!r}")
    if not 0 <= e_min < e_max:
        raise ConfigError(f"need 0 <= e_min < e_max (keV), got e_min={e_min!r}, e_max={e_max!r}")
    rng = _rng(seed)
    counts = _source_counts(int(n_events), sample, recoil, nr_fraction, nr_spectrum, wimp_mass,
                            signal_fraction, rng)
    v_drift = nest.drift_velocity_cm_per_us()
    pmts = det.top_pmt_positions()
    items = [(s, k) for s, k in counts.items() if k > 0]
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="darwin sources", unit="source")
    parts, acceptance = [], {}
    for source, need in items:
        frame, acceptance[source] = _simulate_source(source, need, rng, e_min, e_max, v_drift, pmts)
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
    out["sample"] = sample
    out.attrs["acceptance"] = acceptance
    return out


def _simulate_source(source: str, need: int, rng, e_min, e_max, v_drift, pmts) -> tuple[pd.DataFrame, float]:
    """Generate batches until ``need`` events of ``source`` pass; return them and the passing fraction."""
    chunks, n_pass, n_gen, accept = [], 0, 0, 0.5
    while n_pass < need:
        batch = int(min(50_000, max(256, 1.15 * (need - n_pass) / max(accept, 0.02))))
        arrays, passed = _generate(source, batch, rng, e_min, e_max, v_drift, pmts)
        n_gen += batch
        chunks.append({k: v[passed] for k, v in arrays.items()})
        n_pass += int(passed.sum())
        accept = max(n_pass / n_gen, 1e-3)
    cat = {k: np.concatenate([c[k] for c in chunks])[:need] for k in chunks[0]}
    columns = {}
    for names, key in ((S1_FEATURES, "s1_wf"), (S2_FEATURES, "s2_wf"), (PATTERN_FEATURES, "pattern")):
        columns.update({name: cat[key][:, i].astype(np.float32) for i, name in enumerate(names)})
    columns.update(label="ER" if source == "er_flat" else "NR", source=source)
    for name in TRUTH_COLUMNS[2:]:
        columns[name] = cat[name]
    columns["weight"] = 1.0
    return pd.DataFrame(columns), n_pass / n_gen


def trigger_acceptance(source: str, n: int = 20_000, seed: int = 7, e_min: float = 1.0,
                       e_max: float = 100.0) -> float:
    """Fraction of events of ``source`` (see ``SOURCES``) that pass the S1 and S2 triggers.

    Raises:
        ConfigError: unknown source.
    """
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    _, passed = _generate(source, n, _rng(seed), e_min, e_max, nest.drift_velocity_cm_per_us(), det.top_pmt_positions())
    return float(passed.mean())
