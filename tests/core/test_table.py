"""Schema and EventTable: roles, missing-value sentinels, labels, subsets, and reading with selections."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.exceptions import ConfigError, DataError, MissingKeyError
from hepml_core.io.source import list_columns

HIGGS = "higgsml-2014/atlas-higgs-challenge-2014-v2.prefix-22889.csv.gz"


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "pt": [10.0, 20.0, -999.0, 40.0, 50.0, 60.0],
        "nhit": [3, -999, 5, 6, 7, 8],
        "tag": [True, False, True, False, True, False],
        "w": [1.0, 2.0, 1.0, 0.5, 1.0, 1.0],
        "y": ["s", "b", "s", "b", "x", "s"],
        "mass": [125.0] * 6,
    })  # fmt: skip


# ------------------------------------------------------------------ Schema


def test_schema_json_round_trip() -> None:
    schema = Schema(features=["a", "b", "c"], label="y", classes=["b", "s"], weight="w",
                    parameters=["mass"], groups={"tracker": ["a", "b"]}, missing_value=-999)  # fmt: skip
    assert schema.features == ("a", "b", "c") and schema.groups == {"tracker": ("a", "b")}
    assert schema.missing_value == -999.0
    back = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert back == schema and hash(back) == hash(schema)
    assert schema.columns() == ["a", "b", "c", "y", "w", "mass"]


def test_schema_rejects_bad_roles() -> None:
    with pytest.raises(ConfigError, match=r"unknown schema key 'featurs'.*accepted keys: features"):
        Schema.from_dict({"featurs": ["a"]})
    with pytest.raises(ConfigError, match=r"label column 'y' is also a feature"):
        Schema(features=("a", "y"), label="y")
    with pytest.raises(ConfigError, match=r"group 'calo' lists \['e'\]"):
        Schema(features=("a",), groups={"calo": ["e"]})
    with pytest.raises(ConfigError, match=r"write \['a'\]"):
        Schema(features="a")


# ------------------------------------------------------------------ EventTable


def test_missing_value_becomes_nan_and_frame_is_not_changed(frame: pd.DataFrame) -> None:
    table = EventTable(frame, Schema(features=("pt", "nhit", "tag"), missing_value=-999.0))
    x = table.features()
    assert x.dtype == np.float32 and x.shape == (6, 3)
    assert np.isnan(x[2, 0]) and np.isnan(x[1, 1]) and np.isnan(x).sum() == 2
    assert table.frame["nhit"].dtype == np.float64  # an int column cannot hold NaN
    assert (frame["pt"] == -999.0).sum() == 1  # the caller's frame is untouched
    np.testing.assert_array_equal(table.weights(), np.ones(6))


def test_float32_sentinel_is_matched_in_float32() -> None:
    df = pd.DataFrame({"a": np.array([-999.9, 1.0], dtype=np.float32)})
    assert np.isnan(EventTable(df, Schema(features=("a",), missing_value=-999.9)).features()[0, 0])


def test_missing_column_names_closest(frame: pd.DataFrame) -> None:
    with pytest.raises(MissingKeyError, match=r"column 'ptt' not found in the event table; closest: 'pt'"):
        EventTable(frame, Schema(features=("ptt",)))


def test_non_numeric_feature_names_column(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"feature column 'y' in file ev\.csv is not numeric .*'s'"):
        EventTable(frame, Schema(features=("pt", "y")), source="ev.csv")


def test_string_labels_map_by_name(frame: pd.DataFrame) -> None:
    df = frame[frame["y"] != "x"]
    table = EventTable(df, Schema(features=("pt",), label="y", classes=("s", "b")))
    assert table.class_names == ("s", "b")
    np.testing.assert_array_equal(table.labels(), [0, 1, 0, 1, 0])
    default = EventTable(df, Schema(features=("pt",), label="y"))
    assert default.class_names == ("b", "s")  # sorted label values
    assert default.labels().dtype == np.int64


def test_unknown_label_value(frame: pd.DataFrame) -> None:
    table = EventTable(frame, Schema(features=("pt",), label="y", classes=("b", "s")), source="ev.csv")
    with pytest.raises(DataError, match=r"label column 'y' in file ev\.csv has values \['x'\]"):
        table.labels()


def test_integer_labels_are_codes() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [2, 0, 1, 2]})
    table = EventTable(df, Schema(features=("a",), label="y", classes=("e", "mu", "tau")))
    np.testing.assert_array_equal(table.labels(), [2, 0, 1, 2])
    assert EventTable(df, Schema(features=("a",), label="y")).class_names == ("0", "1", "2")
    pm = EventTable(df.assign(y=[1, -1, -1, 1]), Schema(features=("a",), label="y"))
    assert pm.class_names == ("-1", "1")
    np.testing.assert_array_equal(pm.labels(), [1, 0, 0, 1])


def test_take_keeps_class_codes_and_with_columns(frame: pd.DataFrame) -> None:
    table = EventTable(frame, Schema(features=("pt",), label="y", weight="w"))
    assert table.class_names == ("b", "s", "x")
    sub = table.take([0, 2])  # only class "s" left
    assert sub.class_names == ("b", "s", "x")
    np.testing.assert_array_equal(sub.labels(), [1, 1])
    assert len(table.take(np.array([True, False] * 3))) == 3
    with pytest.raises(DataError, match="mask has 2 entries"):
        table.take(np.array([True, False]))
    scored = table.with_columns(p_s=np.linspace(0, 1, 6))
    np.testing.assert_allclose(scored.frame["p_s"], np.linspace(0, 1, 6))
    with pytest.raises(DataError, match=r"column 'p_s' has shape \(2,\)"):
        table.with_columns(p_s=[0.1, 0.2])


# ------------------------------------------------------------------ from_source


def test_higgsml_sentinels_become_nan(shared_data: Path) -> None:
    path = shared_data / HIGGS
    features = [c for c in list_columns(path) if c.startswith(("DER_", "PRI_"))]
    with gzip.open(path, "rt", newline="") as fh:  # count sentinels in the raw text, without pandas
        raw = sum(float(row[c]) == -999.0 for row in csv.DictReader(fh) for c in features)
    schema = Schema(features=features, label="Label", classes=("b", "s"), weight="Weight",
                    missing_value=-999.0)
    table = EventTable.from_source(path, schema)
    x = table.features()
    assert x.shape == (22889, 30)
    assert int(np.isnan(x).sum()) == raw > 0
    assert int(np.isnan(x[:, features.index("DER_mass_MMC")]).sum()) == 3481
    assert np.bincount(table.labels()).tolist() == [15072, 7817]
    assert table.weights().dtype == np.float64 and (table.weights() > 0).all()
    assert set(table.frame.columns) == {*features, "Label", "Weight"}  # only needed columns read


@pytest.fixture
def jet_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 4, 500)
    path = tmp_path / "jets.root"
    with uproot.recreate(path) as f:
        f.mktree("Events", {"met": "float64", "jet_pt": "var * float32", "is_sig": "int32"}).extend({
            "met": rng.exponential(40, 500),
            "jet_pt": ak.unflatten(rng.exponential(30, counts.sum()).astype(np.float32), counts),
            "is_sig": rng.integers(0, 2, 500).astype(np.int32),
        })  # fmt: skip
    return path


def test_from_source_with_selection_on_unlisted_jagged_column(jet_file: Path) -> None:
    schema = Schema(features=("met", "jet_pt_0"), label="is_sig")
    table = EventTable.from_source(f"{jet_file}:Events", schema, selection="jet_pt_n >= 2 and met > 10")
    assert 0 < len(table) < 500
    assert (table.frame["jet_pt_n"] >= 2).all() and (table.frame["met"] > 10).all()
    assert table.source == f"{jet_file}:Events"
    full = EventTable.from_source(jet_file, schema)
    assert len(full) == 500 and "jet_pt_n" not in full.frame.columns


def test_bad_selection_names_the_expression(jet_file: Path) -> None:
    schema = Schema(features=("met",))
    with pytest.raises(DataError, match=r"selection 'mett > 3' .*jets\.root.*closest: \['met'\]"):
        EventTable.from_source(jet_file, schema, selection="mett > 3")
    with pytest.raises(DataError, match=r"selection 'met >> ' cannot be applied to .*jets\.root"):
        EventTable.from_source(jet_file, schema, selection="met >> ")


def test_empty_selection_names_the_file(jet_file: Path) -> None:
    with pytest.raises(DataError, match=r"selection 'met < 0' keeps no events from .*jets\.root:Events"):
        EventTable.from_source(jet_file, Schema(features=("met",)), selection="met < 0")
