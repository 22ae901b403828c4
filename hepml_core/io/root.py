"""Read ROOT trees (TTree, and RNTuple as written by recent uproot) into flat pandas DataFrames.

Flat numeric branches become columns. A jagged (variable-length) numeric branch ``jet_pt`` becomes
``jet_pt_0 .. jet_pt_{w-1}`` (float, NaN-padded, ``w = jagged_width``) plus ``jet_pt_n``, the original
count. Fixed-size arrays ``x[k]`` become ``x_0 .. x_{k-1}``. Record (struct) branches are flattened,
fields joined with ``_`` (``Muon.pt`` -> ``Muon_pt``). Branches that cannot become numbers (strings,
lists of lists) are left out of ``columns=None`` reads and rejected with a DataError when asked for.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pandas as pd
import uproot

from hepml_core.exceptions import ConfigError, DataError, InputFileError, MissingKeyError
from hepml_core.io._root_catalog import _catalog, _check_width, _Col, _resolve
from hepml_core.io._util import _one_line, _progress, _require_file

__all__ = ["read_root", "root_columns", "list_trees", "num_entries"]

_TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD")
_STEP = re.compile(r"\s*\d+(\.\d*)?\s*([kKMGT]i?)?B\s*")


def list_trees(path: str | Path) -> dict[str, str]:
    """List the event trees (TTree, TNtuple, RNTuple) in a ROOT file.

    Args:
        path: the ROOT file.

    Returns:
        ``{name: class name}``, names without cycle numbers, subdirectories as ``dir/name``.

    Raises:
        InputFileError: missing, not ROOT, truncated or corrupt file.
    """
    path = _checked(path)
    with _open(path) as file:
        return _trees_in(file, path)


def root_columns(path: str | Path, tree: str | None = None, *, jagged_width: int = 4) -> list[str]:
    """Names of the columns :func:`read_root` makes from a tree, in file order (reads no events).

    Args:
        path: the ROOT file.
        tree: the tree name; None picks the only tree in the file.
        jagged_width: number of ``name_i`` columns made from each jagged branch.

    Returns:
        Column names; branches that cannot become numeric columns are left out.

    Raises:
        InputFileError: missing, not ROOT, truncated or corrupt file.
        MissingKeyError: no tree of that name.
        ConfigError: no tree named and the file holds several, or a bad ``jagged_width``.
    """
    _check_width(jagged_width)
    path = _checked(path)
    with _open(path) as file:
        obj, name = _get_tree(file, path, tree)
        return list(_catalog(obj, jagged_width, _where(name, path)).columns)


def num_entries(path: str | Path, tree: str | None = None) -> int:
    """Number of entries (events) in a tree, read from its metadata (no events are read).

    Args:
        path: the ROOT file.
        tree: the tree name; None picks the only tree in the file.

    Returns:
        The entry count.

    Raises:
        InputFileError, MissingKeyError, ConfigError: as in :func:`read_root`.
    """
    path = _checked(path)
    with _open(path) as file:
        obj, _ = _get_tree(file, path, tree)
        return int(obj.num_entries)


def read_root(
    path: str | Path,
    tree: str | None = None,
    columns: Sequence[str] | None = None,
    *,
    jagged_width: int = 4,
    step_size: int | str = "100 MB",
    progress: bool = False,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> pd.DataFrame:
    """Read a ROOT tree into a DataFrame, in chunks of ``step_size`` (entries or memory, "100 MB").

    Args:
        path: the ROOT file.
        tree: the tree name (``dir/name`` in a subdirectory); None picks the only tree.
        columns: columns to read; a branch name (``jet_pt``), an expanded name (``jet_pt_0``,
            ``jet_pt_n``), a record's flattened field (``Muon_pt``) or a full branch path.
            None reads every numeric branch.
        jagged_width: number of ``name_i`` columns made from each jagged branch.
        step_size: entries per chunk (int) or memory per chunk (str such as "100 MB").
        progress: show a tqdm bar.
        entry_start, entry_stop: read only entries ``[entry_start, entry_stop)`` (None: from the
            first / to the last); used to split a file into partitions read by different processes.

    Returns:
        One row per entry (index from 0 even with ``entry_start``), columns in the order asked for
        (file order when ``columns`` is None).

    Raises:
        InputFileError: missing, not ROOT, truncated or corrupt file (names the file).
        MissingKeyError: no such tree or branch (lists the closest names).
        DataError: a branch that cannot become numeric columns, or an element beyond ``jagged_width``.
        ConfigError: several trees and none named; bad ``jagged_width`` or ``step_size``.
    """
    _check_width(jagged_width)
    if not (isinstance(step_size, int) and step_size > 0) and not (
        isinstance(step_size, str) and _STEP.fullmatch(step_size)
    ):
        raise ConfigError(
            f"step_size {step_size!r} is not accepted; give a number of entries (int > 0) "
            "or a memory size such as '100 MB'"
        )
    path = _checked(path)
    with _open(path) as file:
        obj, name = _get_tree(file, path, tree)
        where = _where(name, path)
        catalog = _catalog(obj, jagged_width, where)
        wanted = _resolve(columns, catalog, where, jagged_width)
        return _read(obj, wanted, where, step_size, progress, jagged_width, entry_start, entry_stop)


# ---------------------------------------------------------------- files and trees


def _where(name: str, path: Path) -> str:
    return f"tree {name!r} of file {path}"


def _checked(path: str | Path) -> Path:
    """Existence and header checks done before uproot sees the file, for precise messages."""
    path = _require_file(path)
    with open(path, "rb") as fh:
        head = fh.read(32)
    if head[:4] != b"root":
        raise InputFileError(
            f"{path} is not a ROOT file (it starts with {head[:8]!r}, a ROOT file with b'root'); "
            "check the file name, or use a .parquet/.csv name for other formats"
        )
    size = path.stat().st_size
    try:
        version = struct.unpack(">i", head[4:8])[0]
        # ROOT's header: fEND is 4 bytes in small files and 8 bytes once version >= 1000000.
        big = version >= 1000000
        end = struct.unpack(">q", head[12:20])[0] if big else struct.unpack(">i", head[12:16])[0]
    except struct.error:
        raise InputFileError(
            f"{path} is truncated: only {size} bytes, too short for a ROOT header; copy it again"
        ) from None
    if end > size:
        raise InputFileError(
            f"{path} is truncated: its header says {end} bytes but the file has {size}; "
            "copy or download it again"
        )
    return path


def _open(path: Path) -> Any:
    try:
        return uproot.open(path)
    except Exception as err:
        raise InputFileError(
            f"{path} cannot be opened as a ROOT file ({_one_line(err)}); it may be corrupt: copy it again"
        ) from err


def _classnames(file: Any, path: Path) -> dict[str, str]:
    try:
        return dict(file.classnames(cycle=False))
    except Exception as err:
        raise InputFileError(
            f"{path} is corrupt: its list of objects cannot be read ({_one_line(err)}); copy it again"
        ) from err


def _trees_in(file: Any, path: Path) -> dict[str, str]:
    return {
        k: v
        for k, v in _classnames(file, path).items()
        if v in _TREE_CLASSES or v.endswith("RNTuple")
    }


def _get_tree(file: Any, path: Path, tree: str | None) -> tuple[Any, str]:
    trees = _trees_in(file, path)
    if tree is None:
        if len(trees) == 1:
            name = next(iter(trees))
        elif not trees:
            held = ", ".join(f"{k!r} ({v})" for k, v in list(_classnames(file, path).items())[:8])
            raise InputFileError(
                f"{path} contains no TTree (it holds: {held or 'nothing'}); hepml reads event trees"
            )
        else:
            first = next(iter(trees))
            raise ConfigError(
                f"{path} holds {len(trees)} trees ({', '.join(map(repr, trees))}); "
                f"name one, e.g. '{path}:{first}'"
            )
    else:
        name = re.sub(r";\d+$", "", tree).strip("/")
        if name not in trees:
            others = _classnames(file, path)
            if name in others:
                raise DataError(
                    f"{name!r} in file {path} is a {others[name]}, not a TTree; "
                    f"trees: {', '.join(map(repr, trees)) or 'none'}"
                )
            raise MissingKeyError("tree", name, f"file {path}", list(trees))
    try:
        return file[name], name
    except Exception as err:
        raise InputFileError(
            f"tree {name!r} of file {path} cannot be read ({_one_line(err)}); the file may be corrupt"
        ) from err


# ---------------------------------------------------------------- reading


def _read(
    obj: Any, cols: list[_Col], where: str, step_size: int | str, progress: bool, width: int,
    entry_start: int | None = None, entry_stop: int | None = None,
) -> pd.DataFrame:
    n = int(obj.num_entries)
    start, stop, _ = slice(entry_start, entry_stop).indices(n)
    stop = max(start, stop)
    total = stop - start
    if not cols:
        return pd.DataFrame(index=pd.RangeIndex(total))
    groups: dict[str, dict[tuple[str, ...], list[_Col]]] = {}
    for c in cols:
        groups.setdefault(c.key, {}).setdefault(c.fields, []).append(c)
    parts: dict[str, list[np.ndarray]] = {c.name: [] for c in cols}
    bar = _progress(total, f"reading {where.split(' of file ')[0]}", progress)
    chunks = obj.iterate(list(groups), step_size=step_size, library="ak", entry_start=start, entry_stop=stop)
    try:
        while True:
            # Only uproot's reading is blamed on the file; a conversion bug must not look like one.
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except Exception as err:
                raise InputFileError(
                    f"cannot read {', '.join(map(repr, list(groups)[:5]))} from {where} "
                    f"({_one_line(err)}); the file may be corrupt or truncated: copy it again"
                ) from err
            _convert(chunk, groups, width, parts)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    data = {
        c.name: np.concatenate(parts[c.name]) if parts[c.name] else np.empty(0, dtype=c.dtype)
        for c in cols
    }
    return pd.DataFrame(data, copy=False)


def _convert(chunk: Any, groups: dict, width: int, parts: dict[str, list[np.ndarray]]) -> None:
    for key, by_fields in groups.items():
        arr = chunk[key]
        for fields, cols in by_fields.items():
            a = arr
            for name in fields:
                a = a[name]
            matrix = None
            for c in cols:
                if c.kind == "flat":
                    parts[c.name].append(np.asarray(ak.to_numpy(a)))
                elif c.kind == "count":
                    parts[c.name].append(np.asarray(ak.num(a, axis=1), dtype=np.int64))
                else:
                    if matrix is None:
                        matrix = _matrix(a, c, width)
                    parts[c.name].append(matrix[:, c.index])


def _matrix(a: Any, col: _Col, width: int) -> np.ndarray:
    if col.kind == "regular":
        return np.asarray(ak.to_numpy(a))
    # Pad/clip each event's list to `width`, missing entries NaN: a fixed-width float matrix.
    a = ak.values_astype(a, col.dtype)
    padded = ak.fill_none(ak.pad_none(a, width, axis=1, clip=True), np.nan)
    return np.asarray(ak.to_numpy(padded), dtype=col.dtype).reshape(len(a), width)
