"""Read CSV files (optionally gzip/bz2/xz/zip/zstd compressed) with pandas, in chunks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hepml_core.exceptions import HepmlError, InputFileError
from hepml_core.io._util import _check_columns, _one_line, _progress, _require_file

__all__ = ["read_csv", "csv_columns"]

_CHUNK_ROWS = 200_000  # bounds memory of the parser, and sets how often the bar moves


def csv_columns(path: str | Path) -> list[str]:
    """Column names of a CSV file, from its header line.

    Args:
        path: the CSV file; compression is inferred from the suffix (``.gz``, ``.bz2``...).

    Returns:
        Column names in file order.

    Raises:
        InputFileError: missing, empty or unreadable file.
    """
    path = _require_file(path)
    return _header(path)


def read_csv(
    path: str | Path, columns: Sequence[str] | None = None, *, progress: bool = False
) -> pd.DataFrame:
    """Read a CSV file (header line first) into a DataFrame.

    Args:
        path: the CSV file; compression is inferred from the suffix.
        columns: columns to read; None reads all.
        progress: show a tqdm bar counting rows.

    Returns:
        The rows with a RangeIndex, columns in the order asked for.

    Raises:
        InputFileError: missing, empty, truncated or unparsable file (names the file).
        MissingKeyError: a column that is not in the header (lists the closest names).
    """
    path = _require_file(path)
    names = _check_columns(columns, _header(path), f"file {path}")
    bar = _progress(None, f"reading {path.name}", progress, unit="rows")
    try:
        if bar is None:
            frame = pd.read_csv(path, usecols=names)
        else:
            parts = []
            for part in pd.read_csv(path, usecols=names, chunksize=_CHUNK_ROWS):
                parts.append(part)
                bar.update(len(part))
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=names)
    except HepmlError:
        raise
    except Exception as err:
        raise InputFileError(
            f"cannot read {path} as CSV ({_one_line(err)}); the file may be truncated or not CSV"
        ) from err
    finally:
        if bar is not None:
            bar.close()
    return frame[names]  # usecols keeps file order; the caller's order is the contract


def _header(path: Path) -> list[str]:
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except pd.errors.EmptyDataError as err:
        raise InputFileError(f"{path} is empty; a CSV file needs a header line of column names") from err
    except Exception as err:
        raise InputFileError(
            f"cannot read the header of {path} as CSV ({_one_line(err)}); check the file format"
        ) from err
