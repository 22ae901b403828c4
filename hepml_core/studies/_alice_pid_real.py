"""The real ALICE pp 7 TeV PID samples (../shared/data/alice-pid-7tev) as one labelled track table.

Five clean single-species samples (electrons from photon conversions, kaons from kinks, pions from
K0s/Lambda V0s, protons from Lambda, deuterons selected with TOF+TPC), 200k tracks each. There is
no charge and no TOF column, so the species are the five particles (no antiparticles) and the
standard selection is TPC-only: |n_sigma_TPC| < 3, with the TPC response "tuned on data": an ALEPH
Bethe-Bloch curve and a relative resolution fitted to the training tracks of every species.

Features are the momentum, the pseudorapidity and the PID signals with the number of TPC clusters
used for dE/dx (which sets its resolution). The cluster maps and found/crossed/findable TPC rows are
left out: they differ between the samples because of how each was selected (kinks have fewer TPC
clusters), which is topology, not particle identification. Caveat that remains: each sample has its
own momentum spectrum (set by its selection), so p and pT carry some sample information too.
``dEdxITS <= 0`` (no ITS PID signal) and ``dEdxTPC <= 0`` are missing values (NaN).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

from hepml_core.exceptions import DataError, InputFileError
from hepml_core.io.parquet import read_parquet
from hepml_core.simulate._alice_pid_detector import MASSES

__all__ = ["REAL_SPECIES", "REAL_FEATURES", "REAL_FILES", "default_real_dir", "load_real_tracks", "TpcResponse"]

REAL_SPECIES = ("electron", "pion", "kaon", "proton", "deuteron")
REAL_FEATURES = ("p", "pT", "eta", "dEdxITS", "dEdxTPC", "NclusterPIDTPC")
REAL_FILES = {
    "electron": "electrons_fromconversions_data_filtered.parquet.gzip",
    "pion": "pi_fromV0_data_filtered.parquet.gzip",
    "kaon": "kaons_fromkinks_data_filtered.parquet.gzip",
    "proton": "protons_fromL_data_filtered.parquet.gzip",
    "deuteron": "deuterons_fromTOFTPC_data_filtered.parquet.gzip",
}


def default_real_dir() -> Path:
    """``../shared/data/alice-pid-7tev`` next to the repository (or $HEPML_ALICE_PID_DIR)."""
    env = os.environ.get("HEPML_ALICE_PID_DIR")
    if env:
        return Path(env)
    return (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "alice-pid-7tev").resolve()


def load_real_tracks(n_per_species: int | None = None, *, folder: str | Path | None = None, seed: int = 1,
                     its_missing: float = 0.0) -> pd.DataFrame:
    """Read the five samples into one table: REAL_FEATURES (NaN = no signal), ``label``, ``weight``.

    Args:
        n_per_species: tracks drawn at random from each sample (None: all 200k).
        folder: the data folder (default :func:`default_real_dir`).
        seed: seeds the subsampling and ``its_missing``.
        its_missing: extra fraction of tracks whose ITS signal is hidden at random (a stress test of
            the missing-data methods; 0 keeps the data as recorded, ~0.3 % missing).

    Returns:
        DataFrame, rows shuffled.

    Raises:
        InputFileError: the folder or a sample file is absent.
    """
    folder = Path(folder) if folder is not None else default_real_dir()
    if not folder.is_dir():
        raise InputFileError(f"real ALICE PID data folder {str(folder)!r} not found; it holds the hipe4ml "
                             f"PID7TeV samples ({', '.join(REAL_FILES.values())})")
    rng = np.random.default_rng(seed)
    parts = []
    for species, name in REAL_FILES.items():
        path = folder / name
        if not path.is_file():
            raise InputFileError(f"real ALICE PID sample {str(path)!r} not found (species {species})")
        frame = read_parquet(path, columns=list(REAL_FEATURES))
        if n_per_species is not None and n_per_species < len(frame):
            frame = frame.iloc[np.sort(rng.choice(len(frame), n_per_species, replace=False))]
        frame = frame.astype(np.float32).reset_index(drop=True)
        for col in ("dEdxITS", "dEdxTPC"):
            frame.loc[frame[col] <= 0, col] = np.nan
        frame["label"] = species
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True)
    if its_missing > 0:
        out.loc[rng.random(len(out)) < its_missing, "dEdxITS"] = np.nan
    out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
    out["weight"] = 1.0
    return out


# physical ranges of (scale, P2, log P3, P4, P5): keeps the fit away from degenerate corners
_BOUNDS = ((0.1, 1.0, -30.0, 0.5, 0.5), (100.0, 50.0, 0.0, 5.0, 5.0))


def _aleph(bg, scale, p2, log_p3, p4, p5):
    beta = bg / np.sqrt(1.0 + bg * bg)
    aa = beta ** p4
    return scale * (p2 - aa - np.log(np.exp(log_p3) + 1.0 / bg ** p5)) / aa


class TpcResponse:
    """TPC dE/dx response fitted on data: ALEPH Bethe-Bloch mean and a relative resolution per species.

    ``fit`` takes the clean training tracks (the way analyses calibrate with V0s and kinks): the
    median dE/dx in bins of beta*gamma of each species, then a least-squares ALEPH curve through all;
    the relative resolution of each species is the robust spread (1.4826 MAD) of signal / curve - 1.
    """

    def fit(self, p: np.ndarray, signal: np.ndarray, species: np.ndarray) -> TpcResponse:
        """Fit the curve and resolutions.

        Args:
            p: momentum (GeV/c); signal: TPC dE/dx (NaN ignored); species: names in REAL_SPECIES.

        Returns:
            self.

        Raises:
            DataError: fewer than 20 usable tracks.
        """
        ok = np.isfinite(signal) & (p > 0)
        if ok.sum() < 20:
            raise DataError(f"TpcResponse.fit needs at least 20 tracks with a TPC signal; got {int(ok.sum())}")
        bgs, meds = [], []
        for name in REAL_SPECIES:
            sel = ok & (species == name)
            if sel.sum() < 10:
                continue
            bg = p[sel] / MASSES[name]
            edges = np.quantile(bg, np.linspace(0, 1, 26))
            idx = np.clip(np.searchsorted(edges, bg, side="right") - 1, 0, 24)
            for b in range(25):
                in_bin = idx == b
                if in_bin.sum() >= 5:
                    bgs.append(np.median(bg[in_bin]))
                    meds.append(np.median(signal[sel][in_bin]))
        bgs, meds = np.asarray(bgs), np.asarray(meds)
        # ALICE's default shape, scaled so a minimum-ionising track gives ~50 a.u.
        start = (3.9, 10.632, np.log(1.3279e-5), 1.8631, 1.9479)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                self.params_, _ = curve_fit(_aleph, bgs, meds, p0=start, bounds=_BOUNDS, maxfev=20000)
        except (RuntimeError, ValueError):  # a poor fit still orders species; keep the starting curve
            self.params_ = np.asarray(start)
        self.resolution_ = {}
        for name in REAL_SPECIES:
            sel = ok & (species == name)
            if sel.sum() < 10:
                self.resolution_[name] = 0.07
                continue
            rel = signal[sel] / self.expected(p[sel], name) - 1.0
            self.resolution_[name] = float(1.4826 * np.median(np.abs(rel - np.median(rel))))
        return self

    def expected(self, p: np.ndarray, species: str) -> np.ndarray:
        """Expected dE/dx of ``species`` at momentum ``p``."""
        bg = np.maximum(np.asarray(p, dtype=np.float64) / MASSES[species], 1e-3)
        return _aleph(bg, *self.params_)

    def nsigma(self, p: np.ndarray, signal: np.ndarray, species: str) -> np.ndarray:
        """(signal - expected) / (resolution x expected) for ``species``; NaN without a signal."""
        expected = self.expected(p, species)
        return (np.asarray(signal, dtype=np.float64) - expected) / (self.resolution_[species] * expected)
