"""Scored, labelled events as plain numpy arrays: the read-only input of every classifier view.

A page loads a frame once (a study result or a run's ``scores.parquet``) and turns it into
``ScoredEvents``; state classes then derive histograms, ROC curves and threshold scans from these arrays
without touching pandas again. Instances are shared between browser sessions through ``pn.cache``, so
nothing here is ever modified after construction (arrays are made read-only to enforce that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hepml_core.exceptions import DataError, MissingKeyError

__all__ = ["ScoredEvents", "scored_events", "proba_columns"]


def proba_columns(class_names: Sequence[str]) -> list[str]:
    """The ``p_<class>`` column of each class, in class order."""
    return [f"p_{c}" for c in class_names]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class ScoredEvents:
    """Class probabilities, truth, weights and optional per-event extras of one event sample.

    Attributes:
        class_names: the classifier's classes (columns of ``proba``).
        truth_names: names of the truth codes: ``class_names`` first, then labels the classifier does
            not know (e.g. the toy data's hidden ``anomaly`` class).
        proba: (n, k) class probabilities.
        truth: (n,) int64 codes into ``truth_names``.
        weight: (n,) float64 event weights.
        predicted: (n,) int64 argmax of ``proba`` (the predicted class).
        extras: other per-event float columns (``anomaly``...), read-only.
    """

    class_names: tuple[str, ...]
    truth_names: tuple[str, ...]
    proba: np.ndarray
    truth: np.ndarray
    weight: np.ndarray
    predicted: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.truth)

    @property
    def n_classes(self) -> int:
        """Number of classifier classes."""
        return len(self.class_names)

    def known(self) -> np.ndarray:
        """Mask of events whose truth is one of the classifier's classes."""
        return self.truth < self.n_classes

    def subset(self, mask: np.ndarray) -> ScoredEvents:
        """The events selected by a boolean mask (a new, equally read-only object)."""
        return ScoredEvents(
            self.class_names, self.truth_names, _frozen(self.proba[mask]), _frozen(self.truth[mask]),
            _frozen(self.weight[mask]), _frozen(self.predicted[mask]),
            {k: _frozen(v[mask]) for k, v in self.extras.items()},
        )


def scored_events(
    frame: pd.DataFrame,
    class_names: Sequence[str],
    *,
    label: str = "label",
    weight: str | None = "weight",
    extras: Sequence[str] = (),
    where: str = "scores",
) -> ScoredEvents:
    """Build ``ScoredEvents`` from a frame with ``p_<class>`` columns, a label column and weights.

    Args:
        frame: one row per event.
        class_names: the classifier's classes; ``p_<class>`` must exist for each.
        label: column with the true class name of each event (extra names are allowed and kept).
        weight: weight column; None or a missing column means unit weights.
        extras: further float columns to keep (e.g. ``"anomaly"``).
        where: what the frame is, for error messages ("run 2024-...-mlp scores").

    Returns:
        The read-only arrays.

    Raises:
        MissingKeyError: a needed column is absent (the message lists the closest ones).
        DataError: the frame is empty.
    """
    class_names = tuple(str(c) for c in class_names)
    for col in [*proba_columns(class_names), label, *extras]:
        if col not in frame.columns:
            raise MissingKeyError("column", col, where, list(map(str, frame.columns)))
    if len(frame) == 0:
        raise DataError(f"{where} hold no events; nothing to show")
    labels = frame[label].astype(str).to_numpy()
    extra_truths = sorted(set(np.unique(labels)) - set(class_names))
    truth_names = class_names + tuple(extra_truths)
    codes = pd.Categorical(labels, categories=list(truth_names)).codes.astype(np.int64)
    proba = frame[proba_columns(class_names)].to_numpy(dtype=np.float64)
    w = (frame[weight].to_numpy(dtype=np.float64) if weight is not None and weight in frame.columns
         else np.ones(len(frame)))
    return ScoredEvents(
        class_names, truth_names, _frozen(proba), _frozen(codes), _frozen(w),
        _frozen(proba.argmax(axis=1).astype(np.int64)),
        {name: _frozen(frame[name].to_numpy(dtype=np.float64)) for name in extras},
    )

