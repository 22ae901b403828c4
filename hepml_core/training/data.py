"""Training arrays and the batch iterator that feeds the Trainer.

The iterator keeps whole tensors on the training device, draws one ``torch.randperm`` per epoch,
gathers every tensor once in that order and then hands out contiguous slices. Compared with
``DataLoader(TensorDataset(...), shuffle=True)``, which indexes one event at a time and stacks
``batch_size`` small tensors per batch in Python, this removes almost all per-batch overhead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from hepml_core.exceptions import DataError

__all__ = ["BatchIterator", "TensorData"]


class TensorData:
    """Features, optional integer labels and optional event weights, checked and ready to train on.

    Args:
        x: features, shape ``(n_events, n_features)``; converted to float32. Must be finite:
            impute or drop NaN/inf before training (``Preprocessor`` does this).
        y: class codes ``0..k-1``, shape ``(n_events,)``; ``None`` for an autoencoder.
        w: event weights, shape ``(n_events,)``; ``None`` means all ones. Negative weights (NLO
            generators) are allowed, but their sum must be positive.
        extra: optional float32 array with ``n_events`` rows (any trailing shape; NaN allowed) of
            further targets for models with ``task = "custom"`` (domain labels, regression targets...).
        allow_nan: keep NaN in ``x`` (models that treat NaN as "missing" themselves, e.g. set
            encoders with a padding mask); inf is still refused.

    Raises:
        DataError: wrong shapes, no events, NaN/inf features or weights, non-integer or negative
            labels, or a non-positive sum of weights.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray | None = None, w: np.ndarray | None = None, *,
                 extra: np.ndarray | None = None, allow_nan: bool = False) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise DataError(f"TensorData: x must be 2-D (n_events, n_features), got shape {x.shape}")
        n = x.shape[0]
        if n == 0:
            raise DataError("TensorData: x has no events; check the selection and the split")
        finite = ~np.isinf(x) if allow_nan else np.isfinite(x)
        if not finite.all():
            cols = np.flatnonzero(~finite.all(axis=0)).tolist()
            raise DataError(
                f"TensorData: features contain NaN or inf in column(s) {cols[:10]}"
                f"{' ...' if len(cols) > 10 else ''}; impute them first (Preprocessor with "
                f"impute_missing=True) or set missing_value: in the schema"
            )
        self.x = np.ascontiguousarray(x)

        if y is not None:
            y_raw = np.asarray(y)
            if y_raw.shape != (n,):
                raise DataError(f"TensorData: y must have shape ({n},) like x, got {y_raw.shape}")
            if not np.issubdtype(y_raw.dtype, np.integer):
                if not np.issubdtype(y_raw.dtype, np.floating) or not np.all(y_raw == np.round(y_raw)):
                    raise DataError(
                        f"TensorData: y must hold integer class codes 0..k-1, got dtype {y_raw.dtype}; "
                        f"use EventTable.labels() to turn class names into codes"
                    )
            y = y_raw.astype(np.int64)
            if y.min() < 0:
                raise DataError(f"TensorData: class codes must be >= 0, found {int(y.min())}")
        self.y = y

        if w is None:
            w = np.ones(n, dtype=np.float32)
        else:
            w = np.asarray(w, dtype=np.float64)
            if w.shape != (n,):
                raise DataError(f"TensorData: w must have shape ({n},) like x, got {w.shape}")
            if not np.isfinite(w).all():
                raise DataError("TensorData: event weights contain NaN or inf")
            if not w.sum() > 0:
                raise DataError(
                    f"TensorData: the event weights sum to {w.sum():g}; at least the total must be "
                    f"positive to define a weighted loss"
                )
            w = w.astype(np.float32)
        self.w = w
        if extra is not None:
            extra = np.ascontiguousarray(extra, dtype=np.float32)
            if extra.shape[:1] != (n,):
                raise DataError(f"TensorData: extra must have {n} rows like x, got shape {extra.shape}")
        self.extra = extra

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_events(self) -> int:
        """Number of events."""
        return len(self)

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.x.shape[1])

    def n_classes(self) -> int:
        """Return ``max(y) + 1`` (0 when there are no labels)."""
        return 0 if self.y is None else int(self.y.max()) + 1

    def tensors(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Return ``(x, y, w)`` as tensors on ``device`` (``y`` is ``None`` without labels)."""
        x = torch.from_numpy(self.x).to(device)
        y = None if self.y is None else torch.from_numpy(self.y).to(device)
        w = torch.from_numpy(self.w).to(device)
        return x, y, w

    def extra_tensor(self, device: torch.device | str) -> torch.Tensor | None:
        """The ``extra`` targets as a tensor on ``device`` (``None`` when there are none)."""
        return None if self.extra is None else torch.from_numpy(self.extra).to(device)


class BatchIterator:
    """Yield aligned mini-batches of several same-length tensors by slicing.

    Each ``iter()`` is one epoch: with ``shuffle`` a new permutation is drawn from ``generator`` (a
    CPU ``torch.Generator``, so the order is the same on every device for a given seed), every
    tensor is gathered once in that order, and batches are contiguous views of the gathered copy.
    Memory cost: one extra copy of the data per epoch. The last batch may be smaller.

    Args:
        tensors: tensors with the same first dimension, all on the same device.
        batch_size: events per batch (>= 1).
        shuffle: draw a new order each epoch; otherwise keep the stored order.
        generator: CPU generator for the permutation (seeded by the Trainer).

    Raises:
        DataError: if the tensors differ in length or ``batch_size`` < 1.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, *, shuffle: bool = True,
                 generator: torch.Generator | None = None) -> None:
        if not tensors:
            raise DataError("BatchIterator needs at least one tensor")
        lengths = {int(t.shape[0]) for t in tensors}
        if len(lengths) != 1:
            raise DataError(f"BatchIterator: tensors differ in length: {sorted(lengths)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"BatchIterator: batch_size must be a positive int, got {batch_size!r}")
        self.tensors = tuple(tensors)
        self.n = lengths.pop()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        tensors = self.tensors
        if self.shuffle:
            perm = torch.randperm(self.n, generator=self.generator)
            perm = perm.to(tensors[0].device, non_blocking=True)
            # One gather per epoch, then free slicing: per-batch indexing would pay an
            # index_select per tensor per batch instead.
            tensors = tuple(t.index_select(0, perm) for t in tensors)
        bs = self.batch_size
        for start in range(0, self.n, bs):
            yield tuple(t[start:start + bs] for t in tensors)
