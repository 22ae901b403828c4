"""Atomic writes: a reader never sees a half-written file, and a failed write leaves the old one."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from hepml_core.exceptions import InputFileError
from hepml_core.io._util import _one_line

__all__ = [
    "default_permissions", "write_parquet_atomic", "write_csv_atomic", "write_frame_atomic", "write_json_atomic"]

_CSV = re.compile(r".*\.csv(\.(gz|bz2|xz|zip|zst))?", re.IGNORECASE)
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}
_PARQUET = re.compile(r".*\.(parquet|pq|parq)", re.IGNORECASE)


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to Parquet via a temporary file in the same folder, then ``os.replace``.

    Args:
        df: the frame; a RangeIndex is stored as metadata only, any other index as columns.
        path: the destination; an existing file is replaced only once the new one is complete.

    Returns:
        The destination path.

    Raises:
        InputFileError: the folder does not exist or the file cannot be written.
    """
    return _atomic(path, lambda fh: df.to_parquet(fh, engine="pyarrow"))


def write_csv_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to CSV (no index column) atomically; ``.gz``/``.bz2``/``.xz``... compress it.

    Args:
        df: the frame.
        path: the destination.

    Returns:
        The destination path.

    Raises:
        InputFileError: the folder does not exist or the file cannot be written.
    """
    # The temp file's name hides the suffix, so the compression is chosen from the destination's.
    compression = _COMPRESSION.get(Path(path).suffix.lower())
    return _atomic(path, lambda fh: df.to_csv(fh, index=False, compression=compression))


def write_frame_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` atomically as Parquet or CSV, chosen by the suffix of ``path``.

    Args:
        df: the frame.
        path: ``.parquet``/``.pq`` or ``.csv`` (optionally ``.csv.gz`` ...).

    Returns:
        The destination path.

    Raises:
        InputFileError: an unknown suffix, a missing folder, or a failed write.
    """
    name = Path(path).name
    if _PARQUET.fullmatch(name):
        return write_parquet_atomic(df, path)
    if _CSV.fullmatch(name):
        return write_csv_atomic(df, path)
    raise InputFileError(
        f"cannot tell which format to write {path} in; accepted: .parquet, .pq, .csv, .csv.gz"
    )


def write_json_atomic(obj: object, path: str | Path) -> Path:
    """Write ``obj`` (dicts, lists, numbers, strings) as indented JSON atomically.

    Args:
        obj: a JSON-able object.
        path: the destination.

    Returns:
        The destination path.

    Raises:
        InputFileError: the folder does not exist or the file cannot be written.
    """
    data = (json.dumps(obj, indent=2) + "\n").encode("utf-8")
    return _atomic(path, lambda fh: fh.write(data))


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux), else the usual 022."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def default_permissions(path: str | Path) -> None:
    """Give a temp file the mode a plainly created file would have (mkstemp makes it owner-only).

    Results are shared with colleagues (review minutes, a run folder on a group disk), so an atomic
    write must not leave them less readable than ``open(path, "w")`` would.
    """
    os.chmod(path, 0o666 & ~_current_umask())


def _atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    path = Path(path).expanduser()
    folder = path.parent
    if not folder.is_dir():
        raise InputFileError(f"cannot write {path}: folder {folder} does not exist; create it first")
    # Same folder, so os.replace is a rename within one filesystem (atomic on POSIX and Windows).
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, Exception):
            raise InputFileError(f"cannot write {path} ({_one_line(err)})") from err
        raise
    return path
