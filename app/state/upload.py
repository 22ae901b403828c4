"""A user's uploaded ROOT/Parquet file: size limit, validation, and scoring with a saved run.

An upload arrives as bytes over the session's websocket. Nothing is written until its size and first
bytes say it may be what its name claims; only then is it written into a private temp folder (readable
by this process's user only), opened with ``hepml_core.io`` like any ``hepml train`` source, checked
against the run's schema (every missing column named), scored with the run, and the folder is removed
whatever happened. Every failure is one ``UploadError`` line that names the uploaded file, never the
temp path. The size limit is ``HEPML_MAX_UPLOAD_MB`` (default 200); ``websocket_message_limit`` is the
matching Bokeh ``websocket_max_message_size`` (the file travels base64-encoded).
"""

from __future__ import annotations

import dataclasses
import math
import re
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.exceptions import ConfigError, DataError, HepmlError, closest_names
from hepml_core.io.root import list_trees
from hepml_core.io.source import list_columns
from hepml_core.scoring.score import score_table

from app.state.loaders import RunData
from app.state.samples import scored_events

__all__ = ["UploadError", "UPLOAD_ENV", "DEFAULT_MAX_MB", "UPLOAD_SUFFIXES", "max_upload_bytes",
           "websocket_message_limit", "check_upload", "read_upload", "score_upload"]

UPLOAD_ENV = "HEPML_MAX_UPLOAD_MB"
DEFAULT_MAX_MB = 200.0
#: accepted file name endings and their format
UPLOAD_SUFFIXES = {".root": "root", ".parquet": "parquet", ".pq": "parquet"}
_MB = 1024 * 1024
# Room for the rest of the websocket message around the file: JSON framing, file name, MIME type.
_ENVELOPE = 64 * 1024


class UploadError(DataError):
    """An upload that cannot be used; the message says which file, what is wrong and what to do."""


def max_upload_bytes() -> int:
    """The upload size limit in bytes (``HEPML_MAX_UPLOAD_MB``, default 200).

    Raises:
        ConfigError: the variable is not a positive number.
    """
    raw = os.environ.get(UPLOAD_ENV, "").strip()
    if not raw:
        return int(DEFAULT_MAX_MB * _MB)
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not (math.isfinite(mb) and mb > 0):
        raise ConfigError(f"{UPLOAD_ENV} must be a positive number of megabytes, e.g. 200; got {raw!r}")
    return int(mb * _MB)


def websocket_message_limit(max_bytes: int | None = None) -> int:
    """Bokeh's ``websocket_max_message_size`` that lets an upload of ``max_bytes`` through, and no more.

    A browser sends the file base64-encoded (4 characters per 3 bytes) inside one websocket message.
    """
    n = max_upload_bytes() if max_bytes is None else int(max_bytes)
    return 4 * math.ceil(n / 3) + _ENVELOPE


def _mb(n: int) -> str:
    return f"{n / _MB:.3g} MB"


def check_upload(content: bytes | None, filename: str | None, *, limit: int | None = None) -> str:
    """Check an upload's size, name and first/last bytes before anything is written.

    Args:
        content: the uploaded bytes.
        filename: the name the browser sent (only its ending is used).
        limit: size limit in bytes (default: ``max_upload_bytes()``).

    Returns:
        The format, "root" or "parquet".

    Raises:
        UploadError: empty, too large, not .root/.parquet, or the bytes are not what the name says.
    """
    name = PurePath(str(filename or "upload")).name
    limit = max_upload_bytes() if limit is None else int(limit)
    size = len(content) if content is not None else 0
    if size == 0:
        raise UploadError(f"{name} is empty; choose a .root or .parquet file with events")
    if size > limit:
        raise UploadError(f"{name} is {_mb(size)}; uploads are limited to {_mb(limit)} on this server "
                          f"({UPLOAD_ENV}); select fewer events or columns, or ask the server's admin")
    suffix = PurePath(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UploadError(f"{name}: accepted uploads are {', '.join(UPLOAD_SUFFIXES)} files")
    fmt = UPLOAD_SUFFIXES[suffix]
    if fmt == "root" and content[:4] != b"root":
        raise UploadError(f"{name} is not a ROOT file (it starts with {content[:8]!r}, a ROOT file with b'root'); "
                          "upload the .root file itself")
    if fmt == "parquet":
        if content[:4] != b"PAR1":
            raise UploadError(f"{name} is not a Parquet file (it starts with {content[:8]!r}, Parquet with "
                              "b'PAR1'); upload the .parquet file itself")
        if size < 12 or content[-4:] != b"PAR1":
            raise UploadError(f"{name} is truncated (no Parquet footer at its end); copy or download it again")
    return fmt


def _tree_for(path: Path, name: str, preferred: str | None) -> str:
    """The tree to read: the only one, or the one the run was trained on."""
    trees = list(list_trees(path))
    if not trees:
        raise UploadError(f"{name} contains no TTree; upload a file with the event tree the run was trained on")
    if len(trees) == 1:
        return trees[0]
    if preferred in trees:
        return preferred
    wanted = f"'{preferred}' (the run's)" if preferred else "one"
    raise UploadError(f"{name} holds {len(trees)} trees ({', '.join(trees)}) and none is {wanted}; "
                      "upload a file with a single tree")


def _run_tree(config: dict) -> str | None:
    source = str(config.get("data", {}).get("source", ""))
    head, sep, tree = source.rpartition(":")
    return tree if sep and head.lower().endswith(".root") and tree else None


def read_upload(content: bytes | None, filename: str | None, schema: Schema, *, classes: Sequence[str] = (),
                config: dict | None = None, run_id: str = "the run", limit: int | None = None) -> EventTable:
    """Validate an upload and read it as an EventTable of ``schema``'s columns.

    The label column is required (the views compare with the truth); a missing weight column means unit
    weights. The run's ``data.selection`` is applied as in training.

    Args:
        content, filename: the upload.
        schema: the run's schema.
        classes: the run's classes in score order (label values map to them by name).
        config: the run's config (its source's tree name and selection).
        run_id: for messages.
        limit: size limit in bytes (default: ``max_upload_bytes()``).

    Raises:
        UploadError: anything that makes the file unusable, in one line naming the file.
    """
    fmt = check_upload(content, filename, limit=limit)
    name = PurePath(str(filename)).name
    config = config or {}
    if classes:
        schema = dataclasses.replace(schema, classes=tuple(str(c) for c in classes))
    folder = Path(tempfile.mkdtemp(prefix="hepml-upload-"))  # mode 0700: other users cannot look inside
    path = folder / ("upload.root" if fmt == "root" else "upload.parquet")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        spec = f"{path}:{_tree_for(path, name, _run_tree(config))}" if fmt == "root" else str(path)
        available = list_columns(spec)
        needed = [*schema.features, *([schema.label] if schema.label else [])]
        missing = [c for c in needed if c not in available]
        if missing:
            hints = [f"{c} (closest: {', '.join(closest_names(c, available)[:2])})" if closest_names(c, available)
                     else c for c in missing]
            raise UploadError(f"{name} lacks {len(missing)} column(s) that run {run_id} needs: {'; '.join(hints)}")
        if schema.weight and schema.weight not in available:
            schema = dataclasses.replace(schema, weight=None)
        return EventTable.from_source(spec, schema, selection=config.get("data", {}).get("selection"))
    except UploadError:
        raise
    except (HepmlError, OSError, ValueError) as err:
        raise UploadError(_named(str(err), name)) from err
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_TEMP_PATH = re.compile(r"(file )?\S*hepml-upload-[^/\s]+/upload\.(root|parquet)(:[^\s,;)]+)?")


def _named(text: str, name: str) -> str:
    """A reader's message, first line only, naming the uploaded file instead of its temp copy."""
    text = _TEMP_PATH.sub(name, (text.strip().splitlines() or ["cannot be read"])[0])
    return text if text.startswith(name) else f"{name}: {text}"


def score_upload(run, table: EventTable, class_names: Sequence[str], filename: str) -> RunData:
    """Score an uploaded table with ``run`` and prepare it for the views as one split named "upload".

    Args:
        run: the loaded run.
        table: from ``read_upload`` (with the run's ``classes``).
        class_names: the run's classes, in the order of its ``p_<class>`` scores.
        filename: the uploaded name, for messages.

    Raises:
        UploadError: a label value the run does not know, or scoring failed.
    """
    name = PurePath(str(filename)).name
    classes = tuple(class_names)
    label = table.schema.label
    values = table.frame[label]
    if not pd.api.types.is_numeric_dtype(values):
        unknown = sorted(set(values.astype(str).unique()) - set(classes))
        if unknown:
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise UploadError(f"{name}: label column '{label}' has values ({shown}) that run {run.id} was not "
                              f"trained on (its classes: {', '.join(classes)}); drop those events")
    try:
        codes = table.labels()
        scores = score_table(run, table)
    except (HepmlError, ValueError, RuntimeError) as err:
        raise UploadError(_named(str(err), name)) from err
    frame = scores.reset_index(drop=True)
    frame["label"] = np.asarray(classes, dtype=object)[codes]
    frame["weight"] = table.weights()
    events = scored_events(frame, classes, where=f"upload {name}")
    return RunData(run.id, classes, {"upload": events}, dict(run.config),
                   run.history if run.history is not None else pd.DataFrame(), {})
