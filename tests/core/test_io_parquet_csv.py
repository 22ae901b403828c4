"""Parquet and CSV reading, the atomic Parquet writer, and the real HiggsML and ALICE D+ files."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hepml_core.exceptions import InputFileError, MissingKeyError
from hepml_core.io.csv import csv_columns, read_csv
from hepml_core.io.parquet import parquet_columns, read_parquet
from hepml_core.io.source import list_columns, read_frame
from hepml_core.io.write import write_csv_atomic, write_frame_atomic, write_parquet_atomic

HIGGS = "higgsml-2014/atlas-higgs-challenge-2014-v2.prefix-22889.csv.gz"


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 1000
    return pd.DataFrame({
        "pt": rng.exponential(20, n).astype(np.float32),
        "eta": rng.normal(size=n),
        "njet": rng.integers(0, 5, n),
        "label": rng.choice(["sig", "bkg"], n),
    })  # fmt: skip


# ------------------------------------------------------------------ Parquet


def test_parquet_row_groups_round_trip(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "ev.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=128)
    assert pq.ParquetFile(path).metadata.num_row_groups == 8
    back = read_parquet(path, progress=True)
    pd.testing.assert_frame_equal(back, frame)
    sub = read_parquet(path, ["njet", "pt"])
    assert list(sub.columns) == ["njet", "pt"]  # the order asked for
    np.testing.assert_array_equal(sub["pt"].to_numpy(), frame["pt"].to_numpy())
    assert parquet_columns(path) == ["pt", "eta", "njet", "label"]


def test_parquet_missing_column_suggests_closest(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = write_parquet_atomic(frame, tmp_path / "ev.parquet")
    with pytest.raises(MissingKeyError, match=r"column 'ptt' not found in file .*ev\.parquet; closest: 'pt'"):
        read_frame(path, ["ptt"])


def test_not_parquet_and_truncated_parquet(frame: pd.DataFrame, tmp_path: Path) -> None:
    fake = tmp_path / "fake.parquet"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(InputFileError, match=r"fake\.parquet is not a Parquet file"):
        read_parquet(fake)
    good = write_parquet_atomic(frame, tmp_path / "good.parquet")
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputFileError, match=r"cut\.parquet"):
        read_parquet(cut)
    with pytest.raises(InputFileError, match=r"absent\.parquet not found"):
        read_parquet(tmp_path / "absent.parquet")


# ------------------------------------------------------------------ CSV


def test_csv_round_trip_gz_and_column_order(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "ev.csv.gz"
    frame.to_csv(path, index=False)
    back = read_frame(path, ["label", "eta"], progress=True)
    assert list(back.columns) == ["label", "eta"]
    np.testing.assert_allclose(back["eta"].to_numpy(), frame["eta"].to_numpy())
    assert back["label"].tolist() == frame["label"].tolist()
    assert csv_columns(path) == list(frame.columns)


def test_csv_errors_name_the_file(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(MissingKeyError, match=r"column 'etta' not found in file .*ev\.csv; closest: 'eta'"):
        read_csv(path, ["etta"])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputFileError, match=r"empty\.csv is empty"):
        read_csv(empty)
    gz = tmp_path / "cut.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes())[:3000])  # a truncated download
    with pytest.raises(InputFileError, match=r"cut\.csv\.gz") as info:
        read_csv(gz)
    assert info.value.__cause__ is not None
    with pytest.raises(InputFileError, match=r"nope\.csv not found"):
        read_csv(tmp_path / "nope.csv")


# ------------------------------------------------------------------ atomic writer


def test_write_parquet_atomic_replaces_and_leaves_no_temp(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "scores.parquet"
    write_parquet_atomic(frame.head(3), path)
    write_parquet_atomic(frame, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]


def test_write_parquet_atomic_failure_keeps_old_file(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = write_parquet_atomic(frame, tmp_path / "scores.parquet")
    unwritable = pd.DataFrame({"obj": [object(), object()]})
    with pytest.raises(InputFileError, match=r"scores\.parquet") as info:
        write_parquet_atomic(unwritable, path)
    assert info.value.__cause__ is not None
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]
    with pytest.raises(InputFileError, match=r"folder .*no_such_dir does not exist"):
        write_parquet_atomic(frame, tmp_path / "no_such_dir" / "x.parquet")


def test_write_csv_and_frame_atomic_by_suffix(frame: pd.DataFrame, tmp_path: Path) -> None:
    gz = write_csv_atomic(frame, tmp_path / "t.csv.gz")
    assert gzip.open(gz, "rt").readline().strip() == "pt,eta,njet,label"  # compressed, no index column
    pd.testing.assert_frame_equal(read_csv(gz), frame, check_dtype=False)
    for name in ("f.csv", "f.parquet"):
        back = read_frame(write_frame_atomic(frame, tmp_path / name))
        assert back["label"].tolist() == frame["label"].tolist()
    with pytest.raises(InputFileError, match=r"f\.xlsx.*accepted: \.parquet"):
        write_frame_atomic(frame, tmp_path / "f.xlsx")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ real files


def test_higgsml_csv_weights_and_labels(shared_data: Path) -> None:
    path = shared_data / HIGGS
    cols = list_columns(path)
    assert len(cols) == 35 and cols[0] == "EventId"
    df = read_frame(path, ["EventId", "Weight", "Label", "DER_mass_MMC"])
    assert len(df) == 22889
    assert df["Label"].value_counts().to_dict() == {"b": 15072, "s": 7817}
    assert df["Weight"].dtype == np.float64
    with gzip.open(path, "rt", newline="") as fh:  # the first row, parsed without pandas
        first = next(csv.DictReader(fh))
    assert df["Weight"].iloc[0] == float(first["Weight"])
    assert df["EventId"].iloc[0] == int(first["EventId"]) == 100000
    assert (df["DER_mass_MMC"] == -999.0).sum() == 3481  # as read: sentinels are still there


@pytest.mark.parametrize("sample", ["Prompt", "FD", "Bkg"])
def test_alice_dplus_root_and_parquet_agree(shared_data: Path, sample: str) -> None:
    stem = shared_data / "alice-dplus-7tev" / f"{sample}_Dpluspp7TeV_pT_1_50"
    from_root = read_frame(f"{stem}.root:treeMLDplus")
    from_parquet = read_frame(f"{stem}.parquet.gzip")
    assert len(from_root) == {"Prompt": 65, "FD": 94, "Bkg": 4635}[sample]
    assert list(from_root.columns) == list(from_parquet.columns)
    assert len(from_root.columns) == 16
    pd.testing.assert_frame_equal(from_root, from_parquet)


def test_atomic_writes_are_as_readable_as_a_plain_file(tmp_path):
    import os
    import stat

    import pandas as pd

    from hepml_core.io.write import write_csv_atomic

    out = write_csv_atomic(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv")
    plain = tmp_path / "plain.csv"
    plain.write_text("a\n1\n")
    assert stat.S_IMODE(os.stat(out).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
