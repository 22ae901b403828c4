"""Counting-experiment significances: S/sqrt(B), the Asimov Z and the HiggsML challenge's AMS."""

from __future__ import annotations

import numpy as np

from hepml_core.exceptions import DataError

__all__ = ["s_over_sqrt_b", "asimov_significance", "ams"]


def _check(s, b) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(s, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.any(s < 0) or np.any(b < 0):
        raise DataError("significances need non-negative signal and background yields")
    return s, b


def s_over_sqrt_b(s, b):
    """``s / sqrt(b)`` (0 where b = 0): the small-signal approximation."""
    s, b = _check(s, b)
    return np.divide(s, np.sqrt(b), out=np.zeros(np.broadcast(s, b).shape), where=b > 0)


def asimov_significance(s, b):
    """Median discovery significance of the Asimov data set, ``sqrt(2((s+b) ln(1+s/b) - s))``.

    Args:
        s: expected signal yield(s).
        b: expected background yield(s), > 0 where s > 0.

    Returns:
        Z (0 where s = 0 or b = 0).
    """
    s, b = _check(s, b)
    safe_b = np.where(b > 0, b, 1.0)
    z2 = 2.0 * ((s + safe_b) * np.log1p(s / safe_b) - s)
    return np.where((b > 0) & (s > 0), np.sqrt(np.clip(z2, 0.0, None)), 0.0)


def ams(s, b, b_reg: float = 10.0):
    """Approximate median significance of the ATLAS Higgs ML challenge: the Asimov Z with b + b_reg.

    Args:
        s: selected signal weight.
        b: selected background weight.
        b_reg: regularisation term of the challenge (10).

    Returns:
        AMS = sqrt(2((s + b + b_reg) ln(1 + s/(b + b_reg)) - s)).
    """
    if not b_reg >= 0:
        raise DataError(f"b_reg must be >= 0; got {b_reg!r}")
    s, b = _check(s, b)
    return asimov_significance(s, b + b_reg)
