"""Source specs (``file.root:Tree``, ``x.parquet``, ``x.csv``) and the reader dispatch."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from hepml_core.exceptions import ConfigError, InputFileError
from hepml_core.io._util import _require_file
from hepml_core.io.csv import csv_columns, read_csv
from hepml_core.io.parquet import parquet_columns, read_parquet
from hepml_core.io.root import list_trees, read_root, root_columns

__all__ = ["SourceSpec", "parse_source", "read_frame", "list_columns"]

Format = Literal["root", "parquet", "csv"]

_COMPRESSION = r"(\.(gz|gzip|bz2|xz|zip|zst))?"
_PATTERNS: tuple[tuple[Format, re.Pattern[str]], ...] = (
    ("root", re.compile(r".*\.root", re.IGNORECASE)),
    # Compression inside Parquet is per page; ".parquet.gzip" names (pandas' habit) are plain Parquet.
    ("parquet", re.compile(r".*\.(parquet|pq|parq)(\.(gz|gzip|snappy|zst))?", re.IGNORECASE)),
    ("csv", re.compile(r".*\.csv" + _COMPRESSION, re.IGNORECASE)),
)
_ROOT_WITH_TREE = re.compile(r"(?P<path>.+\.root):(?P<tree>[^:]+)", re.IGNORECASE)


@dataclass(frozen=True)
class SourceSpec:
    """Where events come from: a file, its format, and (ROOT only) the tree inside it."""

    path: Path
    fmt: Format
    tree: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.tree}" if self.tree else str(self.path)


def parse_source(spec: str | Path | SourceSpec) -> SourceSpec:
    """Turn ``file.root:Tree``, ``file.root``, ``x.parquet`` / ``x.pq`` or ``x.csv[.gz]`` into a spec.

    A ``.root`` file named without a tree is opened to pick its only tree.

    Args:
        spec: the source string or path (a SourceSpec is returned unchanged).

    Returns:
        The parsed SourceSpec.

    Raises:
        InputFileError: the file does not exist, its format cannot be told from its name, or a
            ``.root`` file holds no tree.
        ConfigError: a ``.root`` file without a tree name that holds several trees.
    """
    if isinstance(spec, SourceSpec):
        return spec
    tree = None
    path = Path(spec).expanduser()
    match = _ROOT_WITH_TREE.fullmatch(str(spec)) if isinstance(spec, str) else None
    if match and not path.is_file():  # a file whose name really contains ':' wins
        path, tree = Path(match["path"]).expanduser(), match["tree"]
    fmt = next((f for f, pattern in _PATTERNS if pattern.fullmatch(path.name)), None)
    if fmt is None:
        raise InputFileError(
            f"cannot tell the format of {path} from its name; accepted: file.root[:Tree], "
            ".parquet or .pq, .csv (optionally .gz/.bz2/.xz/.zip/.zst)"
        )
    path = _require_file(path)
    if fmt == "root" and tree is None:
        trees = list_trees(path)
        if not trees:
            raise InputFileError(f"{path} contains no TTree; hepml reads event trees (TTree or RNTuple)")
        if len(trees) > 1:
            names = ", ".join(map(repr, trees))
            raise ConfigError(f"{path} holds {len(trees)} trees ({names}); name one as '{path}:TREE'")
        tree = next(iter(trees))
    return SourceSpec(path, fmt, tree)


def read_frame(
    spec: str | Path | SourceSpec,
    columns: Sequence[str] | None = None,
    *,
    jagged_width: int = 4,
    step_size: int | str = "100 MB",
    progress: bool = False,
) -> pd.DataFrame:
    """Read events from any supported source into a DataFrame.

    Args:
        spec: a source string/path (see :func:`parse_source`) or a SourceSpec.
        columns: columns to read; None reads all (for ROOT: every numeric branch).
        jagged_width: ROOT only; ``name_0 .. name_{w-1}`` columns made from each jagged branch.
        step_size: ROOT only; entries (int) or memory ("100 MB") per chunk.
        progress: show a tqdm bar.

    Returns:
        One row per event.

    Raises:
        InputFileError: missing, unreadable, truncated or corrupt file.
        MissingKeyError: missing tree, branch or column (lists the closest names).
        DataError: a ROOT branch that cannot become numeric columns.
        ConfigError: an ambiguous ROOT file (several trees) or a bad reader setting.
    """
    src = parse_source(spec)
    if src.fmt == "root":
        return read_root(
            src.path, src.tree, columns, jagged_width=jagged_width, step_size=step_size, progress=progress
        )
    if src.fmt == "parquet":
        return read_parquet(src.path, columns, progress=progress)
    return read_csv(src.path, columns, progress=progress)


def list_columns(spec: str | Path | SourceSpec, *, jagged_width: int = 4) -> list[str]:
    """Names of the columns :func:`read_frame` makes from a source (no events are read).

    Args:
        spec: a source string/path or a SourceSpec.
        jagged_width: ROOT only; as in :func:`read_frame`.

    Returns:
        Column names in file order.

    Raises:
        InputFileError, MissingKeyError, ConfigError: as in :func:`read_frame`.
    """
    src = parse_source(spec)
    if src.fmt == "root":
        return root_columns(src.path, src.tree, jagged_width=jagged_width)
    if src.fmt == "parquet":
        return parquet_columns(src.path)
    return csv_columns(src.path)
