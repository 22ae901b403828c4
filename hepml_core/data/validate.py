"""Checks that an EventTable can train a model, with messages that say how to fix each problem."""

from __future__ import annotations

import numpy as np

from hepml_core.data.table import EventTable
from hepml_core.exceptions import DataError

__all__ = ["check_trainable"]


def check_trainable(table: EventTable, *, allow_missing: bool, need_labels: bool | None = None) -> None:
    """Raise a DataError if ``table`` cannot be used to train a model.

    Checks, in order: the table has events; labels (when checked) name at least two classes;
    weights are finite and not all zero; features hold no inf, and no NaN unless ``allow_missing``.

    Args:
        table: the training events.
        allow_missing: True when NaN features are taken care of (an imputing Preprocessor, or a
            model that handles them); inf is never accepted.
        need_labels: True for a classifier (a label column with two classes or more is required),
            False for an unsupervised model (labels are not checked), None to check labels only
            when the schema has a label column.

    Raises:
        DataError: the first problem found, naming the columns and the source.
    """
    where = table.where
    if len(table) == 0:
        raise DataError(f"{where} has no events; check the file or loosen the selection")
    label = table.schema.label
    if need_labels and label is None:
        raise DataError(f"{where} has no label column; a classifier needs one: set 'label' in the schema")
    if label is not None and need_labels is not False:
        codes = table.labels()
        present = np.unique(codes)
        if present.size < 2:
            only = table.class_names[int(present[0])]
            raise DataError(
                f"label column {label!r} in {where} has one class only ({only!r}, {len(table)} events); "
                "a classifier needs at least two: check the selection or add events of the other classes"
            )
    w = table.weights()
    weight = table.schema.weight
    bad = ~np.isfinite(w)
    if bad.any():
        raise DataError(
            f"weight column {weight!r} in {where} has {int(bad.sum())} NaN/inf values; "
            "fix them or drop those events with a selection"
        )
    if not np.any(w != 0):
        raise DataError(
            f"weight column {weight!r} in {where} is zero for all {len(table)} events; "
            "choose another weight column or none"
        )
    x = table.features()
    names = table.schema.features
    n_inf = np.isinf(x).sum(axis=0)
    if n_inf.any():
        raise DataError(
            f"features in {where} contain inf: {_listing(names, n_inf)}; "
            "replace them (a selection, or missing_value: if inf marks an undefined value)"
        )
    n_nan = np.isnan(x).sum(axis=0)
    if n_nan.any() and not allow_missing:
        raise DataError(
            f"features in {where} contain NaN: {_listing(names, n_nan)}; this model cannot take "
            "missing values: use an imputing preprocessor (impute_missing) or a model that handles them, "
            "declare the sentinel with missing_value:, or remove the events with a selection"
        )


def _listing(names: tuple[str, ...], counts: np.ndarray, limit: int = 5) -> str:
    hit = [(n, int(c)) for n, c in zip(names, counts) if c]
    text = ", ".join(f"{n!r} ({c} events)" for n, c in hit[:limit])
    return text + (f" and {len(hit) - limit} more columns" if len(hit) > limit else "")
