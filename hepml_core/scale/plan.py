"""Turn an input pattern (``data/*.root:Events``) into partitions: one file, one range of entries each.

Partitions are the unit of parallel work. They are made before any event is read, in a fixed order
(files sorted by name, entry ranges ascending), so their numbers, and the ``part-NNNNN.parquet`` files
named after them, are the same whether one process or a cluster scores them; every file is opened
once here, so a missing, non-ROOT or truncated file stops the job before anything is written.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hepml_core.exceptions import ConfigError, InputFileError
from hepml_core.io.root import num_entries
from hepml_core.io.source import parse_source

__all__ = ["DEFAULT_STEP", "Partition", "expand_pattern", "plan_partitions"]

DEFAULT_STEP = 500_000
_ROOT_WITH_TREE = re.compile(r"(?P<files>.+\.root):(?P<tree>[^:/\\]+(/[^:/\\]+)*)", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Partition:
    """One task's share of the input.

    Attributes:
        index: position in the plan; the output file is ``part-{index:05d}.parquet``.
        source_file: the file's path as the pattern produced it (written in the ``source_file`` column).
        path: the same file as an absolute path: what tasks open (a worker's working folder may differ).
        fmt: "root", "parquet" or "csv".
        tree: the ROOT tree (None for other formats).
        entry_start: first entry (row) of the file in this partition.
        entry_stop: one past the last entry; None means "to the end of the file" (Parquet/CSV files
            are one partition each).
    """

    index: int
    source_file: str
    path: str
    fmt: str
    tree: str | None
    entry_start: int
    entry_stop: int | None

    @property
    def name(self) -> str:
        """The output file name of this partition."""
        return f"part-{self.index:05d}.parquet"

    def describe(self) -> str:
        """``data/a.root entries 0-500000`` (for error messages and the manifest)."""
        if self.entry_stop is None:
            return self.source_file
        return f"{self.source_file} entries {self.entry_start}-{self.entry_stop}"


def expand_pattern(pattern: str) -> tuple[list[str], str | None]:
    """The files a pattern names, sorted, and the ROOT tree named after ``:`` (None if none).

    Args:
        pattern: ``data/*.root:Events``, ``data/run_??.root``, ``a.root:Events``, ``x/*.parquet``...

    Returns:
        (paths as the glob wrote them, tree).

    Raises:
        InputFileError: nothing matches (names the pattern).
    """
    pattern = str(pattern)
    tree = None
    match = _ROOT_WITH_TREE.fullmatch(pattern)
    if match and not Path(pattern).is_file():  # a file whose name really contains ':' wins
        pattern, tree = match["files"], match["tree"]
    expanded = os.path.expanduser(pattern)
    if not _GLOB_CHARS.search(expanded):
        return [pattern], tree  # one named file: parse_source reports a missing one precisely
    files = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
    if not files:
        raise InputFileError(
            f"no file matches {pattern!r} (relative patterns start at {Path.cwd()}); "
            "check the folder and the pattern, e.g. 'data/*.root:Events'"
        )
    return files, tree


def plan_partitions(pattern: str, step: int = DEFAULT_STEP) -> list[Partition]:
    """Split every file a pattern names into partitions of at most ``step`` entries.

    Args:
        pattern: see :func:`expand_pattern`.
        step: entries per partition (ROOT); Parquet and CSV files are one partition each.

    Returns:
        Partitions in file-name order, entry ranges ascending; files without entries add none.

    Raises:
        ConfigError: ``step`` is not a positive integer.
        InputFileError, MissingKeyError: a file is missing, not ROOT, truncated, or lacks the tree
            (the message names the file).
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ConfigError(f"step {step!r} is not accepted; give the number of entries per partition (int > 0)")
    files, tree = expand_pattern(pattern)
    parts: list[Partition] = []
    for name in files:
        spec = parse_source(f"{name}:{tree}" if tree else name)
        path = str(spec.path.resolve())
        if spec.fmt != "root":
            parts.append(Partition(len(parts), name, path, spec.fmt, None, 0, None))
            continue
        n = num_entries(spec.path, spec.tree)
        for start in range(0, n, step):
            parts.append(Partition(len(parts), name, path, "root", spec.tree, start, min(start + step, n)))
    return parts
