"""EventTable: a pandas DataFrame of events plus the Schema that gives its columns their roles."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from hepml_core.data.schema import Schema
from hepml_core.exceptions import DataError, MissingKeyError, closest_names
from hepml_core.io.source import SourceSpec, list_columns, parse_source, read_frame

__all__ = ["EventTable"]


class EventTable:
    """Events (one row each) with a Schema naming features, label, weight, domain and parameters.

    The frame is treated as read-only: methods return new tables. Row order is the contract between
    ``features()``, ``labels()``, ``weights()`` and any scores computed later.

    Args:
        frame: the events.
        schema: the column roles; entries equal to ``schema.missing_value`` in feature columns
            become NaN here.
        source: where the events came from, used in error messages.

    Raises:
        MissingKeyError: a column named by the schema is not in the frame (lists the closest names).
        DataError: a feature or weight column that is not numeric (names the column).
    """

    def __init__(self, frame: pd.DataFrame, schema: Schema, *, source: str | None = None) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        if not isinstance(schema, Schema):
            raise TypeError(f"schema must be a Schema, got {type(schema).__name__}")
        self._schema = schema
        self._source = None if source is None else str(source)
        self._class_names: tuple[str, ...] | None = schema.classes
        where = self.where
        available = [str(c) for c in frame.columns]
        for name in schema.columns():
            if name not in frame.columns:
                raise MissingKeyError("column", name, where, available)
            if isinstance(frame[name], pd.DataFrame):
                raise DataError(f"column {name!r} appears more than once in {where}; rename the copies")
        for name in schema.features:
            _require_numeric(frame[name], name, "feature", where)
        if schema.weight is not None:
            _require_numeric(frame[schema.weight], schema.weight, "weight", where)
        self._frame = _missing_to_nan(frame, schema.features, schema.missing_value)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_source(
        cls,
        spec: str | Path | SourceSpec,
        schema: Schema,
        selection: str | None = None,
        *,
        jagged_width: int = 4,
        step_size: int | str = "100 MB",
        progress: bool = False,
    ) -> EventTable:
        """Read the columns the schema (and the selection) needs from a file.

        Args:
            spec: ``file.root:Tree``, ``x.parquet``, ``x.csv`` or a SourceSpec.
            schema: the column roles.
            selection: a pandas ``query`` string (``"PRI_jet_num >= 2 and Weight > 0"``), applied
                to the values as read, i.e. before ``missing_value`` becomes NaN.
            jagged_width, step_size, progress: passed to the reader.

        Returns:
            The table; its frame keeps the file's row numbers as index.

        Raises:
            InputFileError, MissingKeyError, ConfigError: from the readers.
            DataError: a bad selection expression, a selection that keeps no events, or a
                non-numeric feature.
        """
        src = parse_source(spec)
        columns = schema.columns()
        available: list[str] = []
        if selection is not None:
            if not isinstance(selection, str) or not selection.strip():
                raise DataError(f"selection must be a non-empty query string, got {selection!r}")
            available = list_columns(src, jagged_width=jagged_width)
            columns += [n for n in _names_in(selection, available) if n not in columns]
        frame = read_frame(src, columns, jagged_width=jagged_width, step_size=step_size, progress=progress)
        if selection is not None:
            frame = _select(frame, selection, str(src), available)
        return cls(frame, schema, source=str(src))

    # ------------------------------------------------------------------ accessors

    @property
    def frame(self) -> pd.DataFrame:
        """The events (treat as read-only)."""
        return self._frame

    @property
    def schema(self) -> Schema:
        """The column roles."""
        return self._schema

    @property
    def source(self) -> str | None:
        """Where the events came from, or None."""
        return self._source

    @property
    def where(self) -> str:
        """A phrase for error messages: ``file x.root:Events`` or ``the event table``."""
        return f"file {self._source}" if self._source else "the event table"

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        n_features = len(self._schema.features)
        return f"EventTable({len(self)} events, {n_features} features, source={self._source!r})"

    def features(self) -> np.ndarray:
        """The feature matrix, float32 of shape (n_events, n_features), NaN kept."""
        cols = list(self._schema.features)
        return self._frame[cols].to_numpy(dtype=np.float32, na_value=np.nan)

    def weights(self) -> np.ndarray:
        """Per-event weights as float64; ones when the schema has no weight column."""
        if self._schema.weight is None:
            return np.ones(len(self), dtype=np.float64)
        return self._frame[self._schema.weight].to_numpy(dtype=np.float64, na_value=np.nan)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in code order: ``schema.classes``, else sorted label values; () without label."""
        if self._schema.label is None:
            return ()
        if self._class_names is None:
            self._class_names = self._codes()[1]
        return self._class_names

    def labels(self) -> np.ndarray:
        """Integer class codes (int64) in ``class_names`` order.

        Returns:
            One code per event.

        Raises:
            DataError: no label column, missing or non-integer labels, or a value that is not a class.
        """
        if self._schema.label is None:
            raise DataError(f"{self.where} has no label column; set 'label' in the schema")
        return self._codes()[0]

    # ------------------------------------------------------------------ derived tables

    def take(self, indices: Sequence[int] | np.ndarray) -> EventTable:
        """A new table with the events at ``indices`` (positions, or a boolean mask).

        Args:
            indices: positions (int array) or a mask of length ``len(self)``.

        Returns:
            The subset, with the class names of this table so codes stay comparable.

        Raises:
            DataError: a mask of the wrong length.
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise DataError(f"mask has {idx.size} entries but {self.where} has {len(self)} events")
            idx = np.flatnonzero(idx)
        out = object.__new__(EventTable)
        out._schema, out._source = self._frozen_schema(), self._source
        out._class_names = out._schema.classes
        out._frame = self._frame.iloc[idx.astype(np.int64, copy=False)]
        return out

    def with_columns(self, **arrays: Any) -> EventTable:
        """A new table with columns added or replaced, row by row (positional, never by index).

        Args:
            arrays: column name -> values of length ``len(self)``.

        Returns:
            The new table.

        Raises:
            DataError: values of the wrong length or shape.
        """
        new = {}
        for name, values in arrays.items():
            arr = np.asarray(values)
            if arr.ndim != 1 or len(arr) != len(self):
                raise DataError(
                    f"column {name!r} has shape {arr.shape} but {self.where} has {len(self)} events; "
                    "give one value per event"
                )
            new[name] = arr
        return EventTable(self._frame.assign(**new), self._frozen_schema(), source=self._source)

    # ------------------------------------------------------------------ helpers

    def _frozen_schema(self) -> Schema:
        """The schema with classes fixed, so a subset missing a class keeps the same codes."""
        if self._schema.label is None or self._schema.classes is not None:
            return self._schema
        try:
            return dataclasses.replace(self._schema, classes=self.class_names)
        except DataError:  # unusable labels: let labels() report it when someone asks
            return self._schema

    def _codes(self) -> tuple[np.ndarray, tuple[str, ...]]:
        label, classes, where = self._schema.label, self._schema.classes, self.where
        s = self._frame[label]
        n_missing = int(s.isna().sum())
        if n_missing:
            raise DataError(
                f"label column {label!r} in {where} is missing for {n_missing} events; "
                "drop them with a selection or fill them"
            )
        if pdt.is_bool_dtype(s.dtype):
            s = s.astype(np.int64)
        if pdt.is_numeric_dtype(s.dtype):
            values = s.to_numpy()
            if pdt.is_float_dtype(values.dtype) and not np.all(values == np.round(values)):
                bad = values[values != np.round(values)][0]
                raise DataError(
                    f"label column {label!r} in {where} has non-integer values (e.g. {bad}); "
                    "labels must be class names or integer codes 0..k-1"
                )
            ints = values.astype(np.int64)
            if classes is None:
                uniq = np.unique(ints)
                return np.searchsorted(uniq, ints).astype(np.int64), tuple(str(u) for u in uniq)
            if len(ints) == 0 or (ints.min() >= 0 and ints.max() < len(classes)):
                return ints, classes
            names = pd.Series(ints).astype(str)  # values such as -1/1 may name classes instead
        else:
            names = s.astype(str)
        if classes is None:
            classes = tuple(sorted(names.unique()))
        codes = pd.Index(list(classes)).get_indexer(names).astype(np.int64)  # -1: not a class
        if (codes < 0).any():
            bad = sorted(set(names.to_numpy()[codes < 0]))[:5]
            raise DataError(
                f"label column {label!r} in {where} has values {bad} that are not among the classes "
                f"{list(classes)}; add them to classes (integer labels: codes 0..{len(classes) - 1}) "
                "or drop those events"
            )
        return codes, classes


def _require_numeric(s: pd.Series, name: str, role: str, where: str) -> None:
    if pdt.is_numeric_dtype(s.dtype) or pdt.is_bool_dtype(s.dtype):
        return
    example = next((v for v in s if v is not None and v == v), None)
    raise DataError(
        f"{role} column {name!r} in {where} is not numeric (dtype {s.dtype}, e.g. {example!r}); "
        f"encode it as numbers or remove it from the {role}s"
    )


def _missing_to_nan(frame: pd.DataFrame, features: Sequence[str], sentinel: float | None) -> pd.DataFrame:
    if sentinel is None:
        return frame
    out = None
    for name in features:
        s = frame[name]
        if pdt.is_bool_dtype(s.dtype):
            continue
        # Compare in the column's own precision: -999.9 stored as float32 is not -999.9 as float64.
        target = np.asarray(sentinel).astype(s.dtype) if pdt.is_float_dtype(s.dtype) else sentinel
        hit = (s == target).to_numpy(dtype=bool, na_value=False)
        if hit.any():
            if out is None:
                out = frame.copy(deep=False)  # copy-on-write: the caller's frame is never changed
            col = s.astype(np.float64) if pdt.is_integer_dtype(s.dtype) else s  # ints cannot hold NaN
            out[name] = col.mask(hit)
    return frame if out is None else out


def _names_in(selection: str, available: Sequence[str]) -> list[str]:
    """Columns a query string mentions (bare names or `back-quoted names`), in order of mention."""
    present = set(available)
    found = []
    for quoted, bare in re.findall(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)", selection):
        name = quoted or bare
        if name in present and name not in found:
            found.append(name)
    return found


def _select(frame: pd.DataFrame, selection: str, where: str, available: Sequence[str]) -> pd.DataFrame:
    try:
        out = frame.query(selection)
    except Exception as err:
        hint = ""
        m = re.search(r"name '([^']+)' is not defined", str(err))
        if m:
            close = closest_names(m.group(1), available)
            hint = f"; {m.group(1)!r} is not a column" + (f", closest: {close}" if close else "")
        text = " ".join(str(err).split())
        raise DataError(
            f"selection {selection!r} cannot be applied to {where} ({type(err).__name__}: {text}){hint}; "
            "write a pandas query such as 'pt > 20 and abs(eta) < 2.5'"
        ) from err
    if len(out) == 0:
        raise DataError(
            f"selection {selection!r} keeps no events from {where} ({len(frame)} before it); loosen it"
        )
    return out
