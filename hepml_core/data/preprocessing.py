"""Preprocessor: mean imputation, missing-value indicators and scaling, fitted on training events only.

Saved with a run as plain JSON (:meth:`Preprocessor.to_dict`), never as a pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hepml_core.exceptions import ConfigError, DataError, NotFittedError

__all__ = ["Preprocessor"]

_METHODS = ("standard", "minmax")
_FORMAT = 1  # version of the to_dict layout


class Preprocessor:
    """Fill NaN with training means, scale features, and append 0/1 "was missing" columns.

    ``transform(X)`` returns ``[scaled X with NaN filled | one indicator per indicator_columns_]``.
    Statistics use the training events only; a feature without NaN in training gets no indicator
    (NaN met later in it is still filled with the training mean).

    Args:
        method: "standard" (subtract mean, divide by standard deviation) or "minmax" (map the
            training range to [0, 1]).
        impute_missing: fill NaN and add indicators; when False, NaN in X is an error.

    Attributes (after fit):
        n_features_in_, fill_, indicator_columns_, n_outputs_, and mean_/scale_ (standard) or
        min_/range_ (minmax).
    """

    def __init__(self, method: str = "standard", impute_missing: bool = True) -> None:
        self.method = method
        self.impute_missing = impute_missing

    # ------------------------------------------------------------------ fitting

    def fit(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> Preprocessor:
        """Learn fill values, indicator columns and scaling from training events.

        Args:
            X: training features, shape (n_events, n_features); NaN marks a missing value.
            sample_weight: per-event weights for the statistics; negative weights count as zero
                (a scale needs a positive measure). None means equal weights.

        Returns:
            self.

        Raises:
            ConfigError: an unknown method.
            DataError: X not 2-D, empty, containing inf, or NaN with ``impute_missing=False``;
                weights of the wrong length.
        """
        if self.method not in _METHODS:
            raise ConfigError(f"method {self.method!r} is not accepted; accepted: {', '.join(_METHODS)}")
        X = self._check(X, fitting=True)
        w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (len(X),):
            raise DataError(f"sample_weight has shape {w.shape} but X has {len(X)} rows")
        w = np.clip(np.nan_to_num(w, nan=0.0), 0.0, None)
        if w.sum() <= 0:
            w = np.ones(len(X))
        nan = np.isnan(X)
        present = np.where(nan, 0.0, w[:, None])
        totals = present.sum(axis=0)
        # A feature missing everywhere in training: fill with 0 (the indicator carries the information).
        fill = np.divide((np.where(nan, 0.0, X) * present).sum(axis=0), totals,
                         out=np.zeros(X.shape[1]), where=totals > 0)  # fmt: skip
        filled = np.where(nan, fill, X)
        self.n_features_in_ = X.shape[1]
        self.fill_ = fill
        self.indicator_columns_ = np.flatnonzero(nan.any(axis=0)).astype(np.int64)
        if self.method == "standard":
            wsum = w.sum()
            mean = (filled * w[:, None]).sum(axis=0) / wsum
            std = np.sqrt(((filled - mean) ** 2 * w[:, None]).sum(axis=0) / wsum)
            self.mean_, self.scale_ = mean, np.where(std > 0, std, 1.0)  # constant column: leave unscaled
        else:
            lo, hi = filled.min(axis=0), filled.max(axis=0)
            self.min_, self.range_ = lo, np.where(hi > lo, hi - lo, 1.0)
        self.n_outputs_ = self.n_features_in_ + len(self.indicator_columns_)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Fill, scale and append indicators.

        Args:
            X: features, shape (n_events, n_features_in_).

        Returns:
            float32 array of shape (n_events, n_outputs_).

        Raises:
            NotFittedError: fit (or from_dict) was not called.
            DataError: wrong shape, inf, or NaN with ``impute_missing=False``.
        """
        self._require_fitted()
        X = self._check(X, fitting=False)
        nan = np.isnan(X)
        filled = np.where(nan, self.fill_, X)
        if self.method == "standard":
            scaled = (filled - self.mean_) / self.scale_
        else:
            scaled = (filled - self.min_) / self.range_
        indicators = nan[:, self.indicator_columns_].astype(np.float64)
        return np.hstack([scaled, indicators]).astype(np.float32)

    def fit_transform(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """``fit(X, sample_weight).transform(X)``."""
        return self.fit(X, sample_weight).transform(X)

    # ------------------------------------------------------------------ saving

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the settings and learned values (floats round-trip exactly).

        Raises:
            NotFittedError: fit was not called.
        """
        self._require_fitted()
        d: dict[str, Any] = {
            "format": _FORMAT,
            "method": self.method,
            "impute_missing": bool(self.impute_missing),
            "n_features_in": int(self.n_features_in_),
            "fill": self.fill_.tolist(),
            "indicator_columns": self.indicator_columns_.tolist(),
        }
        if self.method == "standard":
            d.update(mean=self.mean_.tolist(), scale=self.scale_.tolist())
        else:
            d.update(min=self.min_.tolist(), range=self.range_.tolist())
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessor:
        """Rebuild a fitted Preprocessor from :meth:`to_dict` output.

        Args:
            d: the dict (e.g. loaded from a run's JSON file).

        Returns:
            The fitted Preprocessor.

        Raises:
            ConfigError: missing keys, an unknown method or format, or arrays of the wrong length.
        """
        method = d.get("method")
        if method not in _METHODS:
            raise ConfigError(
                f"preprocessor method {method!r} is not accepted; accepted: {', '.join(_METHODS)}"
            )
        if d.get("format") != _FORMAT:
            raise ConfigError(f"preprocessor format {d.get('format')!r} is not supported; expected {_FORMAT}")
        stats = ("mean", "scale") if method == "standard" else ("min", "range")
        needed = ("n_features_in", "fill", "indicator_columns", *stats)
        absent = [k for k in needed if k not in d]
        if absent:
            raise ConfigError(f"preprocessor dict lacks {absent}; it was not written by to_dict()")
        obj = cls(method=method, impute_missing=bool(d.get("impute_missing", True)))
        n = int(d["n_features_in"])
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("fill", *stats)}
        if any(a.shape != (n,) for a in arrays.values()):
            raise ConfigError(f"preprocessor arrays do not all have n_features_in = {n} values")
        obj.n_features_in_ = n
        obj.fill_ = arrays["fill"]
        obj.indicator_columns_ = np.asarray(d["indicator_columns"], dtype=np.int64).reshape(-1)
        if method == "standard":
            obj.mean_, obj.scale_ = arrays["mean"], arrays["scale"]
        else:
            obj.min_, obj.range_ = arrays["min"], arrays["range"]
        obj.n_outputs_ = n + len(obj.indicator_columns_)
        return obj

    # ------------------------------------------------------------------ helpers

    def __repr__(self) -> str:
        return f"Preprocessor(method={self.method!r}, impute_missing={self.impute_missing!r})"

    def _require_fitted(self) -> None:
        if not hasattr(self, "n_outputs_"):
            raise NotFittedError("this Preprocessor is not fitted yet: call fit(X) first")

    def _check(self, X: np.ndarray, *, fitting: bool) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataError(f"X must be 2-D (events, features), got shape {X.shape}")
        if fitting and len(X) == 0:
            raise DataError("X has no rows; fit needs training events")
        if not fitting and X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1]} features but the Preprocessor was fitted on {self.n_features_in_}"
            )
        inf = np.flatnonzero(np.isinf(X).any(axis=0))
        if inf.size:
            raise DataError(f"X has inf in feature columns {inf.tolist()}; replace or remove those events")
        if not self.impute_missing:
            nan = np.flatnonzero(np.isnan(X).any(axis=0))
            if nan.size:
                raise DataError(
                    f"X has NaN in feature columns {nan.tolist()}; use Preprocessor(impute_missing=True) "
                    "or remove those events"
                )
        return X
