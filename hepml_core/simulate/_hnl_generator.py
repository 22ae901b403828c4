"""Unlimited raw kinematic configurations for the HNL regression pre-training (seed talk 003).

The talk pre-trains a regression network on generated events whose inputs are physically possible and
whose targets resemble the real sample: eta in [-2.5, 2.5], phi in [-pi, pi], pT from an exponential
fitted to the real data above each lepton's threshold, and every generated event whose targets fall
outside the [0.03 %, 99.7 %] percentiles of the real sample removed. ``HnlKinematicsGenerator`` learns
those limits from a sample (``fit``) and then draws fresh events on every call (``sample``), so the
network never sees an event twice.

Targets (``REGRESSION_TARGETS``): column 0 is E_tot in units of 100 GeV (trained with a relative MSE);
the other derived features have the GeV ones divided by E_tot and are then standardised with the real
sample's mean and spread, so every column weighs alike in the MSE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hepml_core.exceptions import ConfigError, NotFittedError
from hepml_core.simulate._hnl_features import (
    GEV_FEATURES, REGRESSION_INPUTS, REGRESSION_TARGETS, derived_features,
)
from hepml_core.simulate._hnl_processes import CHANNEL_FLAVOURS, E, MU, TAU

__all__ = ["HnlKinematicsGenerator", "regression_targets", "E_TOT_UNIT"]

E_TOT_UNIT = 100.0  # GeV: E_tot target in these units
_MASS = {E: 0.000511, MU: 0.10566}
_THRESHOLD = {E: 10.0, MU: 10.0, TAU: 20.0}


def _raw_targets(frame_or_dict) -> np.ndarray:
    """Targets before standardisation: E_tot / 100 GeV, GeV features / E_tot, the rest as they are."""
    e_tot = np.asarray(frame_or_dict["e_tot"], dtype=np.float64)
    cols = [e_tot / E_TOT_UNIT]
    for name in REGRESSION_TARGETS[1:]:
        v = np.asarray(frame_or_dict[name], dtype=np.float64)
        cols.append(v / e_tot if name in GEV_FEATURES else v)
    return np.column_stack(cols)


def regression_targets(frame: pd.DataFrame, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The regression targets of a frame with the derived features, standardised except E_tot."""
    t = _raw_targets(frame)
    t[:, 1:] = (t[:, 1:] - mean[1:]) / scale[1:]
    return t.astype(np.float32)


class HnlKinematicsGenerator:
    """Draw fresh raw kinematic configurations and their derived-feature targets.

    Args:
        low_percentile, high_percentile: events whose targets leave this range of the real sample are
            removed (the talk: 0.03 and 99.7).
        seed: int or numpy Generator for the draws.
    """

    def __init__(self, low_percentile: float = 0.03, high_percentile: float = 99.7,
                 seed: int | np.random.Generator | None = None) -> None:
        self.low_percentile = low_percentile
        self.high_percentile = high_percentile
        self.seed = seed

    def fit(self, frame: pd.DataFrame) -> HnlKinematicsGenerator:
        """Learn pT/MET exponential scales, tau masses, channel shares and target limits from real events.

        Args:
            frame: simulator output (or an ntuple with the raw and derived HNL features and ``channel``).

        Returns:
            self.

        Raises:
            ConfigError: the frame has no events or lacks columns.
        """
        if len(frame) == 0:
            raise ConfigError("HnlKinematicsGenerator.fit: the frame has no events")
        missing = [c for c in (*REGRESSION_INPUTS, *REGRESSION_TARGETS, "channel") if c not in frame.columns]
        if missing:
            raise ConfigError(f"HnlKinematicsGenerator.fit: columns {missing[:5]} missing; pass simulate_hnl output")
        self.rng_ = self.seed if isinstance(self.seed, np.random.Generator) else np.random.default_rng(self.seed)
        channels = pd.Categorical(frame["channel"], categories=list(CHANNEL_FLAVOURS))
        counts = np.bincount(channels.codes[channels.codes >= 0], minlength=len(CHANNEL_FLAVOURS))
        self.channel_p_ = counts / counts.sum()
        self.flavours_ = np.array(list(CHANNEL_FLAVOURS.values()))
        # exponential pT above threshold: the maximum-likelihood scale is the mean excess (per channel, slot)
        self.pt_scale_ = np.ones((len(CHANNEL_FLAVOURS), 3)) * 30.0
        for c in range(len(CHANNEL_FLAVOURS)):
            rows = channels.codes == c
            if rows.any():
                for k in range(3):
                    thr = _THRESHOLD[int(self.flavours_[c, k])]
                    self.pt_scale_[c, k] = max(1.0, float(np.mean(frame[f"l{k + 1}_pt"].to_numpy()[rows] - thr)))
        self.met_scale_ = float(frame["met"].mean())
        tau_masses = [frame[f"l{k + 1}_mass"].to_numpy()[self.flavours_[channels.codes, k] == TAU] for k in range(3)]
        self.tau_masses_ = np.concatenate(tau_masses) if sum(map(len, tau_masses)) else np.array([0.77])
        raw = _raw_targets(frame)
        self.low_ = np.percentile(raw, self.low_percentile, axis=0)
        self.high_ = np.percentile(raw, self.high_percentile, axis=0)
        self.mean_ = raw.mean(axis=0)
        self.scale_ = np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)
        return self

    def _require_fitted(self) -> None:
        if not hasattr(self, "low_"):
            raise NotFittedError("HnlKinematicsGenerator: call fit(frame) with real events first")

    def _draw(self, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rng = self.rng_
        chan = rng.choice(len(self.channel_p_), size=n, p=self.channel_p_)
        flav = self.flavours_[chan]
        thr = np.choose(flav, [_THRESHOLD[E], _THRESHOLD[MU], _THRESHOLD[TAU]])
        pt = thr + rng.exponential(self.pt_scale_[chan])
        # same-flavour leptons are stored by decreasing pT, as in the real sample
        same12 = flav[:, 0] == flav[:, 1]
        same23 = flav[:, 1] == flav[:, 2]
        a, b = pt[:, 0].copy(), pt[:, 1].copy()
        pt[:, 0] = np.where(same12, np.maximum(a, b), a)
        pt[:, 1] = np.where(same12, np.minimum(a, b), b)
        a, b = pt[:, 1].copy(), pt[:, 2].copy()
        pt[:, 1] = np.where(same23, np.maximum(a, b), a)
        pt[:, 2] = np.where(same23, np.minimum(a, b), b)
        eta = rng.uniform(-2.5, 2.5, (n, 3))
        phi = rng.uniform(-np.pi, np.pi, (n, 3))
        mass = np.where(flav == TAU, rng.choice(self.tau_masses_, size=(n, 3)),
                        np.where(flav == MU, _MASS[MU], _MASS[E]))
        met = rng.exponential(self.met_scale_, n)
        met_phi = rng.uniform(-np.pi, np.pi, n)
        inputs = {}
        for k in range(3):
            inputs.update({f"l{k + 1}_pt": pt[:, k], f"l{k + 1}_eta": eta[:, k], f"l{k + 1}_phi": phi[:, k],
                           f"l{k + 1}_mass": mass[:, k]})
        inputs.update(met=met, met_phi=met_phi)
        x = np.column_stack([inputs[c] for c in REGRESSION_INPUTS])
        derived = derived_features(pt, eta, phi, mass, None, met, met_phi)
        return x, derived

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` fresh events inside the real sample's target limits.

        Returns:
            ``(inputs (n, 14) float32 in REGRESSION_INPUTS order, targets (n, n_targets) float32)``.

        Raises:
            NotFittedError: before ``fit``.
        """
        self._require_fitted()
        xs, ts, have = [], [], 0
        while have < n:
            x, derived = self._draw(int(1.5 * (n - have)) + 100)
            t = _raw_targets(derived)
            keep = ((t >= self.low_) & (t <= self.high_)).all(axis=1)
            xs.append(x[keep])
            ts.append(t[keep])
            have += int(keep.sum())
        x = np.concatenate(xs)[:n]
        t = np.concatenate(ts)[:n]
        t[:, 1:] = (t[:, 1:] - self.mean_[1:]) / self.scale_[1:]
        return x.astype(np.float32), t.astype(np.float32)

    def acceptance(self, n: int = 20_000) -> float:
        """Share of drawn events that pass the target limits (the talk's cut removed ~27 %)."""
        self._require_fitted()
        _, derived = self._draw(n)
        t = _raw_targets(derived)
        return float(((t >= self.low_) & (t <= self.high_)).all(axis=1).mean())

    def to_dict(self) -> dict:
        """JSON-able learned state (target standardisation and limits) for saving with a run."""
        self._require_fitted()
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "low": self.low_.tolist(),
                "high": self.high_.tolist(), "targets": list(REGRESSION_TARGETS), "inputs": list(REGRESSION_INPUTS)}
