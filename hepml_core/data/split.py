"""Deterministic train/validation/test splits of event indices, optionally stratified by class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepml_core.exceptions import ConfigError, DataError

__all__ = ["Split", "split_indices"]


@dataclass(frozen=True, eq=False)
class Split:
    """Three disjoint, sorted int64 index arrays that together cover ``range(n)``."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        """Number of events in each part."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def split_indices(
    n: int,
    *,
    validation: float = 0.25,
    test: float = 0.25,
    seed: int | np.random.Generator = 1,
    stratify: np.ndarray | None = None,
) -> Split:
    """Split ``range(n)`` into train, validation and test indices.

    The same ``n``, fractions, seed and ``stratify`` always give the same split. Part sizes are
    ``round(n * fraction)`` (per class when stratified); train gets the rest.

    Args:
        n: number of events.
        validation: fraction for validation, in [0, 1).
        test: fraction for test, in [0, 1); ``validation + test < 1``.
        seed: an int seed or a numpy Generator (which is advanced).
        stratify: per-event class labels (any values); each class is split with the same fractions.

    Returns:
        The Split, each array sorted.

    Raises:
        ConfigError: a negative ``n`` or fractions outside the accepted range.
        DataError: ``stratify`` of a length other than ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n must be a non-negative integer, got {n!r}")
    for name, frac in (("validation", validation), ("test", test)):
        if not 0.0 <= float(frac) < 1.0:
            raise ConfigError(f"{name} fraction must be in [0, 1), got {frac!r}")
    if validation + test >= 1.0:
        raise ConfigError(
            f"validation + test = {validation + test:g} leaves no training events; keep the sum below 1"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if stratify is None:
        groups = [np.arange(n, dtype=np.int64)]
    else:
        labels = np.asarray(stratify)
        if labels.shape != (n,):
            raise DataError(
                f"stratify has shape {labels.shape} but there are {n} events; give one label per event"
            )
        _, inverse = np.unique(labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        groups = np.split(order.astype(np.int64), bounds)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = _round(len(idx) * test)
        n_val = _round(len(idx) * validation)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    train, val, tst = (_sorted(p) for p in parts)
    return Split(train=train, validation=val, test=tst)


def _round(x: float) -> int:
    # Half up, not Python's half-to-even, so sizes do not flip between neighbouring n.
    return int(np.floor(x + 0.5))


def _sorted(pieces: list[np.ndarray]) -> np.ndarray:
    out = np.sort(np.concatenate(pieces)) if pieces else np.empty(0, dtype=np.int64)
    out = out.astype(np.int64, copy=False)
    out.setflags(write=False)  # a Split is shared (saved with a run); nobody should edit it in place
    return out
