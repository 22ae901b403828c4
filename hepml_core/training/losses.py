"""Weighted losses: every event counts with its weight, ``loss = sum(w * l) / sum(w)``.

Monte Carlo events carry weights (cross sections, flux reweighting, pile-up); an unweighted loss
would train on the generated composition instead of the physical one. Class weights, when asked
for, are folded into the event weights once (``w_i * c_{y_i}``) rather than recomputed per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hepml_core.exceptions import ConfigError

__all__ = [
    "balanced_class_weights",
    "cross_entropy_per_event",
    "mse_per_event",
    "resolve_class_weight",
    "weighted_cross_entropy",
    "weighted_mean",
    "weighted_mse",
]


def weighted_mean(values: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Return ``sum(w * values) / sum(w)``; 0 (not NaN) when the weights sum to zero.

    A batch made only of zero-weight events must not inject NaN gradients into the model, so a zero
    denominator is replaced by 1 (the numerator is then 0 too).
    """
    if w is None:
        return values.mean()
    den = w.sum()
    return (values * w).sum() / torch.where(den == 0, torch.ones_like(den), den)


def cross_entropy_per_event(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the cross entropy of each event (``-log softmax(logits)[y]``), shape ``(n,)``."""
    return F.cross_entropy(logits, y, reduction="none")


def mse_per_event(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the mean over features of ``(recon - x)^2`` for each event, shape ``(n,)``."""
    return (recon - x).pow(2).mean(dim=1)


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None,
                           class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean cross entropy on logits (softmax + cross entropy, as in the FCNN talk).

    Args:
        logits: ``(n, k)`` raw outputs of a classifier.
        y: ``(n,)`` int64 class codes.
        w: ``(n,)`` event weights, or ``None`` for all ones.
        class_weight: ``(k,)`` multiplier per class, or ``None``.

    Returns:
        A scalar tensor: ``sum(w_i c_{y_i} l_i) / sum(w_i c_{y_i})``.
    """
    if class_weight is not None:
        cw = class_weight.to(device=logits.device, dtype=logits.dtype)[y]
        w = cw if w is None else w * cw
    return weighted_mean(cross_entropy_per_event(logits, y), w)


def weighted_mse(recon: torch.Tensor, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean over events of the per-event MSE (the autoencoder's loss).

    Args:
        recon: ``(n, d)`` reconstruction.
        x: ``(n, d)`` input.
        w: ``(n,)`` event weights, or ``None`` for all ones.

    Returns:
        A scalar tensor: ``sum(w_i mse_i) / sum(w_i)``.
    """
    return weighted_mean(mse_per_event(recon, x), w)


def balanced_class_weights(y: np.ndarray, w: np.ndarray | None, n_classes: int) -> np.ndarray:
    """Weights that make every class carry the same total weight: ``W / (k * W_c)``.

    This is scikit-learn's ``"balanced"`` rule with event weights: ``W_c`` is the summed event weight
    of class ``c`` and ``W`` the total. A class with no (or non-positive) weight gets 0, since it
    has no events to reweight.

    Args:
        y: ``(n,)`` int class codes.
        w: ``(n,)`` event weights or ``None``.
        n_classes: number of classes ``k``.

    Returns:
        float64 array of shape ``(k,)``.
    """
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    per_class = np.bincount(np.asarray(y), weights=w, minlength=n_classes)[:n_classes]
    total = per_class.sum()
    out = np.zeros(n_classes)
    ok = per_class > 0
    out[ok] = total / (n_classes * per_class[ok])
    return out


def resolve_class_weight(class_weight: str | Sequence[float] | Mapping[int, float] | None,
                         y: np.ndarray, w: np.ndarray | None, n_classes: int) -> np.ndarray | None:
    """Turn a user's ``class_weight`` setting into one multiplier per class.

    Args:
        class_weight: ``None``; ``"balanced"``; a sequence of ``n_classes`` numbers; or a mapping
            ``{class code: multiplier}`` (classes not named get 1).
        y: training class codes (for ``"balanced"``).
        w: training event weights (for ``"balanced"``).
        n_classes: the classifier's number of outputs.

    Returns:
        float64 array of shape ``(n_classes,)``, or ``None`` when no class weighting is asked for.

    Raises:
        ConfigError: unknown string, wrong length, unknown class code, or negative/non-finite values.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ConfigError(
                f"class_weight={class_weight!r} is not understood; use None, 'balanced', a list of "
                f"{n_classes} numbers or a mapping {{class code: weight}}"
            )
        return balanced_class_weights(y, w, n_classes)
    if isinstance(class_weight, Mapping):
        out = np.ones(n_classes)
        for code, value in class_weight.items():
            if not isinstance(code, (int, np.integer)) or not 0 <= code < n_classes:
                raise ConfigError(
                    f"class_weight names class {code!r}; class codes are 0..{n_classes - 1}"
                )
            out[int(code)] = value
    else:
        out = np.asarray(class_weight, dtype=np.float64)
        if out.shape != (n_classes,):
            raise ConfigError(
                f"class_weight has {out.size} values but the model has {n_classes} classes"
            )
    if not np.isfinite(out).all() or (out < 0).any():
        raise ConfigError(f"class_weight values must be finite and >= 0, got {out.tolist()}")
    if not out.any():
        raise ConfigError("class_weight is zero for every class; nothing would be learned")
    return out
