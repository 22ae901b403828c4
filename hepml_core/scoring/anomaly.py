"""Anomaly score from an autoencoder's reconstruction error, mapped into [0, 1)."""

from __future__ import annotations

import numpy as np

from hepml_core.exceptions import DataError

__all__ = ["anomaly_score"]


def anomaly_score(mse: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``tanh(mse / scale)``: monotonic in the per-event MSE and bounded, as in the AMS talk.

    Args:
        mse: per-event mean squared reconstruction error (>= 0).
        scale: MSE that maps to tanh(1) ~ 0.76; 1.0 reproduces the talk's plain tanh(MSE).

    Returns:
        float64 array in [0, 1).

    Raises:
        DataError: if scale is not positive.
    """
    if not scale > 0:
        raise DataError(f"anomaly score scale must be > 0; got {scale!r}")
    return np.tanh(np.asarray(mse, dtype=np.float64) / scale)
