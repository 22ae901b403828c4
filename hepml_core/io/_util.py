"""Helpers shared by the readers: file checks, one-line error text, column requests, progress bars."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hepml_core.exceptions import InputFileError, MissingKeyError

__all__: list[str] = []


def _require_file(path: str | Path) -> Path:
    """Return ``path`` as a Path if it is an existing regular file, else raise InputFileError."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputFileError(
            f"file {path} not found; check the path (relative paths start at {Path.cwd()})"
        )
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a file; give the path of a file inside it")
    return path


def _one_line(err: BaseException, limit: int = 300) -> str:
    """Library errors often span lines (uproot's do); the CLI prints errors on one line."""
    text = " ".join(str(err).split()) or type(err).__name__
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}"


def _unique(names: Iterable[str]) -> list[str]:
    """Drop repeated names, keeping the first occurrence (a column asked for twice is read once)."""
    seen: set[str] = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def _check_columns(
    columns: Sequence[str] | None, available: Sequence[str], where: str, kind: str = "column"
) -> list[str]:
    """Return the requested columns (all when None), or raise MissingKeyError for the first absent one."""
    if columns is None:
        return list(available)
    if isinstance(columns, str):
        columns = [columns]
    present = set(available)
    for name in columns:
        if name not in present:
            raise MissingKeyError(kind, name, where, available)
    return _unique(columns)


def _progress(total: int | None, desc: str, enabled: bool, unit: str = "events") -> Any:
    """A tqdm bar when ``enabled``; otherwise None (tqdm is imported only when a bar is wanted)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False)


def _sanitize(name: str) -> str:
    """Column names from ROOT paths: ``Muon.pt`` and ``a/b`` become ``Muon_pt`` and ``a_b``."""
    return re.sub(r"[./]", "_", name)
