"""Read Parquet files with pyarrow, one row group at a time (bounded memory, progress per group)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from hepml_core.exceptions import HepmlError, InputFileError
from hepml_core.io._util import _check_columns, _one_line, _progress, _require_file

__all__ = ["read_parquet", "parquet_columns"]


def parquet_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet file, read from its footer (no data is read).

    Args:
        path: the Parquet file.

    Returns:
        Column names in file order (pandas index columns left out).

    Raises:
        InputFileError: missing file, not Parquet, or corrupt.
    """
    path = _require_file(path)
    return _names(_open(path))


def read_parquet(
    path: str | Path, columns: Sequence[str] | None = None, *, progress: bool = False
) -> pd.DataFrame:
    """Read a Parquet file into a DataFrame, row group by row group.

    Args:
        path: the Parquet file (``.parquet``, ``.pq``; compression inside the file is handled).
        columns: columns to read; None reads all.
        progress: show a tqdm bar over the row groups.

    Returns:
        The rows with a fresh RangeIndex, columns in the order asked for.

    Raises:
        InputFileError: missing file, not Parquet, or corrupt (names the file).
        MissingKeyError: a column that is not in the file (lists the closest names).
    """
    path = _require_file(path)
    pf = _open(path)
    names = _check_columns(columns, _names(pf), f"file {path}")
    n_groups = pf.metadata.num_row_groups
    if not names:
        return pd.DataFrame(index=pd.RangeIndex(pf.metadata.num_rows))
    bar = _progress(pf.metadata.num_rows, f"reading {path.name}", progress)
    parts = []
    try:
        for i in range(n_groups):
            table = pf.read_row_group(i, columns=names, use_pandas_metadata=False)
            parts.append(table.to_pandas())
            if bar is not None:
                bar.update(table.num_rows)
    except HepmlError:
        raise
    except Exception as err:
        raise InputFileError(
            f"cannot read row group {i} of {path} ({_one_line(err)}); the file may be corrupt: copy it again"
        ) from err
    finally:
        if bar is not None:
            bar.close()
    if not parts:  # a file with a schema but no row groups
        return pf.schema_arrow.empty_table().select(names).to_pandas()
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return frame[names]


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except Exception as err:
        raise InputFileError(
            f"{path} is not a Parquet file or is corrupt ({_one_line(err)}); check the file name, "
            "or copy it again"
        ) from err


def _names(pf: pq.ParquetFile) -> list[str]:
    # pandas may store a non-trivial index as "__index_level_0__": not an event column.
    return [n for n in pf.schema_arrow.names if not n.startswith("__index_level_")]
