"""check_trainable: each problem is a DataError naming the columns and the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.data.validate import check_trainable
from hepml_core.exceptions import DataError


def _table(tmp_path: Path, df: pd.DataFrame, **roles) -> EventTable:
    """Tables read from a real file, so messages can be checked for the file name."""
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    return EventTable.from_source(path, Schema(**roles))


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, -999.0, 1.5, 2.0],
                         "y": ["s", "b", "s", "b"], "w": [1.0, 1.0, 2.0, 0.5]})  # fmt: skip


def test_good_table_passes(tmp_path: Path, df: pd.DataFrame) -> None:
    check_trainable(_table(tmp_path, df, features=("a", "b"), label="y", weight="w"), allow_missing=False)


def test_nan_features_named_unless_allowed(tmp_path: Path, df: pd.DataFrame) -> None:
    table = _table(tmp_path, df, features=("a", "b"), label="y", missing_value=-999.0)
    with pytest.raises(DataError, match=r"train\.csv contain NaN: 'b' \(1 events\).*missing_value:") as info:
        check_trainable(table, allow_missing=False)
    assert "'a'" not in str(info.value)
    check_trainable(table, allow_missing=True)


def test_inf_is_never_accepted(tmp_path: Path, df: pd.DataFrame) -> None:
    table = _table(tmp_path, df.assign(a=[1.0, np.inf, 2.0, 3.0]), features=("a",), label="y")
    with pytest.raises(DataError, match=r"train\.csv contain inf: 'a'"):
        check_trainable(table, allow_missing=True)


def test_one_class_only(tmp_path: Path, df: pd.DataFrame) -> None:
    table = _table(tmp_path, df, features=("a",), label="y")
    expected = r"label column 'y' in file .*train\.csv has one class only \('s', 2 events\)"
    with pytest.raises(DataError, match=expected):
        check_trainable(table.take(np.array([0, 2])), allow_missing=False)


def test_all_weights_zero(tmp_path: Path, df: pd.DataFrame) -> None:
    table = _table(tmp_path, df.assign(w=0.0), features=("a",), label="y", weight="w")
    with pytest.raises(DataError, match=r"weight column 'w' in file .*train\.csv is zero for all 4 events"):
        check_trainable(table, allow_missing=False)
    table = _table(tmp_path, df.assign(w=[1.0, np.nan, 1.0, 1.0]), features=("a",), label="y", weight="w")
    with pytest.raises(DataError, match=r"weight column 'w' in file .*train\.csv has 1 NaN/inf"):
        check_trainable(table, allow_missing=False)


def test_empty_table(tmp_path: Path, df: pd.DataFrame) -> None:
    table = _table(tmp_path, df, features=("a",), label="y")
    with pytest.raises(DataError, match=r"file .*train\.csv has no events"):
        check_trainable(table.take(np.array([], dtype=int)), allow_missing=False)


def test_need_labels(tmp_path: Path, df: pd.DataFrame) -> None:
    unlabelled = _table(tmp_path, df, features=("a",))
    check_trainable(unlabelled, allow_missing=False)  # an autoencoder needs no labels
    with pytest.raises(DataError, match=r"file .*train\.csv has no label column"):
        check_trainable(unlabelled, allow_missing=False, need_labels=True)
    one_class = _table(tmp_path, df.assign(y="s"), features=("a",), label="y")
    check_trainable(one_class, allow_missing=False, need_labels=False)
