"""Run directories: everything a training produced, written atomically and verified on load.

A run lives in ``<root>/<id>/`` with ``config.yaml``, ``model.safetensors``, ``preprocessing.json``,
``schema.json``, ``history.csv``, ``metrics.json``, optionally ``scores.parquet``, and a
``manifest.json`` holding the sha256 of every other file. :class:`RunWriter` writes into
``<root>/.incomplete-<id>/`` and renames the folder into place only after the manifest is written,
so a crash leaves an ``.incomplete-*`` folder that is listed as such and can never be loaded.

Loading checks the manifest (changed, missing or extra files are refused) and reads weights only
with safetensors, which parses a header and raw arrays and cannot execute code: a run directory
from a colleague must not be able to run anything on your machine. YAML is read with
``yaml.safe_load`` for the same reason.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save
from torch import nn

from hepml_core.exceptions import MissingKeyError, RunError, RunIntegrityError

__all__ = ["MANIFEST", "Run", "RunInfo", "RunStore", "RunWriter", "hepml_version"]

MANIFEST = "manifest.json"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INCOMPLETE = ".incomplete-"
_DELETING = ".deleting-"
# Formats that unpickle (or may) when loaded; a run never contains them.
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".bin", ".npy", ".npz")
_SUFFIXES = {"json": (".json",), "yaml": (".yaml", ".yml"), "csv": (".csv",),
             "parquet": (".parquet",), "tensors": (".safetensors",)}
_HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "seconds", "lr"]


def hepml_version() -> str:
    """Return the installed hepml version, else ``hepml_core.__version__`` (a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hepml")
    except PackageNotFoundError:
        return str(getattr(importlib.import_module("hepml_core"), "__version__", "0+unknown"))


def _utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _plain(obj: Any) -> Any:
    """Turn tuples, numpy scalars/arrays and paths into plain JSON/YAML types."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class RunInfo:
    """One line of :meth:`RunStore.list`.

    Attributes:
        id: the run id (for an incomplete run, the id it would have had).
        kind: the kind given to ``create``.
        created: creation time (UTC; the folder's mtime for an incomplete run).
        status: ``"complete"``, ``"incomplete"`` (writer never finished) or ``"corrupt"``
            (a run folder without a readable manifest).
        path: the folder.
        metrics: numeric top-level entries of ``metrics.json`` (empty if none).
        model_kind: ``model.kind`` from ``config.yaml``, if any.
        study: ``study`` from ``config.yaml``, if any.
    """

    id: str
    kind: str
    created: datetime
    status: str
    path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    model_kind: str | None = None
    study: str | None = None


class RunWriter:
    """Context manager that writes one run atomically; made by :meth:`RunStore.create`.

    Files go to ``<root>/.incomplete-<id>/``; a clean ``__exit__`` writes ``manifest.json`` and
    renames the folder to ``<root>/<id>``; an exception removes the folder and propagates.
    File names are plain names (no folders) with the suffix of their format. Other plain files put
    into :attr:`path` by hand (a plot, a log) are listed in the manifest too.

    Attributes:
        id: the run id; ``store.load(writer.id)`` opens the run after the ``with`` block.
        final_path: ``<root>/<id>``.

    Raises:
        RunError: from every ``write_*``: a name that is not plain, a suffix that does not match
            the format, or a write outside the ``with`` block; from ``__exit__`` if the folder
            cannot be finished (it is then removed).
    """

    def __init__(self, root: Path, run_id: str, kind: str) -> None:
        self.root, self.id, self.kind = root, run_id, kind
        self.final_path = root / run_id
        self._tmp = root / f"{_INCOMPLETE}{run_id}"
        self._state = "new"

    @property
    def path(self) -> Path:
        """Where files are now: the temporary folder while writing, the run folder after."""
        return self.final_path if self._state == "done" else self._tmp

    def __enter__(self) -> RunWriter:
        if self._state != "new":
            raise RunError(f"run writer {self.id} was already used; call store.create() again")
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir()
        self._state = "open"
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            self._state = "failed"
            shutil.rmtree(self._tmp, ignore_errors=True)
            return False
        try:
            self._finish()
        except BaseException as err:
            self._state = "failed"
            shutil.rmtree(self._tmp, ignore_errors=True)
            if isinstance(err, OSError):
                raise RunError(f"could not finish run {self.id} in {self.root}: {err}") from err
            raise
        self._state = "done"
        return False

    def _finish(self) -> None:
        files = {}
        for entry in sorted(os.scandir(self._tmp), key=lambda e: e.name):
            if entry.is_symlink() or not entry.is_file():
                raise RunError(f"run {self.id}: {entry.name} is a link or a folder; runs hold plain files only")
            files[entry.name] = {"sha256": _sha256(Path(entry.path)), "bytes": entry.stat().st_size}
        manifest = {
            "format": 1, "id": self.id, "kind": self.kind, "status": "complete",
            "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "hepml_version": hepml_version(), "files": files,
        }
        (self._tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(self._tmp, self.final_path)  # the one step that makes the run visible

    def _target(self, name: str, fmt: str) -> Path:
        if self._state != "open":
            raise RunError(f"write to run {self.id} inside 'with store.create(kind) as run:' only")
        if not isinstance(name, str) or not _ID_RE.match(name) or name == MANIFEST:
            raise RunError(f"run file name {name!r} must be a plain name like 'metrics.json' "
                           f"(letters, digits, . _ -; not {MANIFEST!r})")
        if not name.endswith(_SUFFIXES[fmt]):
            raise RunError(f"run file {name!r} written as {fmt} must end with "
                           f"{' or '.join(_SUFFIXES[fmt])}")
        return self._tmp / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` (dicts, lists, numbers, numpy values) as JSON. Returns the file path."""
        path = self._target(name, "json")
        path.write_text(json.dumps(_plain(obj), indent=2) + "\n", encoding="utf-8")
        return path

    def write_yaml(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as YAML (``yaml.safe_dump``, key order kept). Returns the file path."""
        path = self._target(name, "yaml")
        path.write_text(yaml.safe_dump(_plain(obj), sort_keys=False, allow_unicode=True), encoding="utf-8")
        return path

    def write_csv(self, name: str, frame: pd.DataFrame | list[dict[str, Any]]) -> Path:
        """Write a DataFrame (or a list of row dicts, e.g. a training history) as CSV."""
        path = self._target(name, "csv")
        frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(list(frame))
        frame.to_csv(path, index=False)
        return path

    def write_parquet(self, name: str, frame: pd.DataFrame) -> Path:
        """Write a DataFrame as Parquet (e.g. ``scores.parquet``). Returns the file path."""
        path = self._target(name, "parquet")
        frame.to_parquet(path)
        return path

    def write_tensors(self, name: str, tensors: Mapping[str, torch.Tensor],
                      metadata: Mapping[str, str] | None = None) -> Path:
        """Write tensors (e.g. ``model.state_dict()``) as safetensors; copies to CPU first.

        Raises:
            RunError: if a value is not a tensor.
        """
        path = self._target(name, "tensors")
        bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise RunError(f"write_tensors({name!r}): values for {bad} are not tensors")
        # copy=True: tensors sharing storage (tied weights) would otherwise be refused by safetensors.
        plain = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
        path.write_bytes(_st_save(plain, metadata=dict(metadata) if metadata else None))
        return path


class Run:
    """A finished, verified run; made by :meth:`RunStore.load`. Files are read on first access.

    Every read re-checks the file's sha256 against the manifest, so a file swapped after loading
    is refused too. Properties raise ``RunError`` when a required file (``config.yaml``,
    ``schema.json``) is absent and ``RunIntegrityError`` when a file changed since loading.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.id: str = manifest["id"]
        self.kind: str = manifest.get("kind", "")
        self.created = _utc(manifest["created"])

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, path={str(self.path)!r})"

    def has(self, name: str) -> bool:
        """Whether the run contains file ``name``."""
        return name in self.manifest["files"]

    def read_bytes(self, name: str) -> bytes:
        """Return a file's bytes after checking them against the manifest.

        Raises:
            RunError: the run has no such file.
            RunIntegrityError: the file changed since the run was written.
        """
        meta = self.manifest["files"].get(name)
        if meta is None:
            raise RunError(f"run {self.id} has no {name}; it has: {', '.join(self.manifest['files'])}")
        try:
            data = (self.path / name).read_bytes()
        except OSError as err:
            raise RunIntegrityError(f"run {self.id}: cannot read {name}: {err}") from err
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise RunIntegrityError(f"run {self.id}: {name} changed after the run was loaded")
        return data

    @cached_property
    def config(self) -> dict[str, Any]:
        """The training configuration from ``config.yaml``."""
        return yaml.safe_load(self.read_bytes("config.yaml")) or {}

    @cached_property
    def schema(self) -> Any:
        """The data schema (``hepml_core.data.schema.Schema``) from ``schema.json``."""
        from hepml_core.data.schema import Schema  # lazy: the data layer is optional for the store

        return Schema.from_dict(json.loads(self.read_bytes("schema.json")))

    @cached_property
    def preprocessor(self) -> Any:
        """The fitted ``Preprocessor`` from ``preprocessing.json``, or ``None`` if the run has none."""
        if not self.has("preprocessing.json"):
            return None
        from hepml_core.data.preprocessing import Preprocessor  # lazy, as for schema

        return Preprocessor.from_dict(json.loads(self.read_bytes("preprocessing.json")))

    @cached_property
    def history(self) -> pd.DataFrame:
        """One row per epoch from ``history.csv`` (empty frame if the run has none)."""
        if not self.has("history.csv"):
            return pd.DataFrame(columns=_HISTORY_COLUMNS)
        return pd.read_csv(io.BytesIO(self.read_bytes("history.csv")))

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """Contents of ``metrics.json`` (empty dict if the run has none)."""
        return json.loads(self.read_bytes("metrics.json")) if self.has("metrics.json") else {}

    @cached_property
    def scores(self) -> pd.DataFrame | None:
        """Per-event scores from ``scores.parquet``, or ``None``."""
        if not self.has("scores.parquet"):
            return None
        return pd.read_parquet(io.BytesIO(self.read_bytes("scores.parquet")))

    def tensors(self, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
        """Load a safetensors file of the run as CPU tensors.

        Raises:
            RunIntegrityError: the file is not valid safetensors.
        """
        try:
            return _st_load(self.read_bytes(name))
        except (SafetensorError, ValueError, RuntimeError) as err:
            raise RunIntegrityError(f"run {self.id}: {name} is not a valid safetensors file: {err}") from err

    def model(self, device: str | torch.device = "cpu") -> nn.Module:
        """Rebuild the model from ``config.yaml``'s ``model`` section and ``model.safetensors``.

        The section is ``{kind: ..., params: {...}}`` (flat ``{kind: ..., layers: ...}`` is accepted
        too); ``n_inputs``/``n_outputs`` come from the section or from ``layers``.

        Returns:
            The model with the saved weights, in eval mode, on ``device``.

        Raises:
            RunError: the config does not say which model to build.
            RunIntegrityError: the weights do not fit the model described by the config.
        """
        from hepml_core.models.registry import build_model

        section = self.config.get("model")
        if not isinstance(section, Mapping) or "kind" not in section:
            raise RunError(f"run {self.id}: config.yaml has no 'model: {{kind: ...}}' section")
        params = section.get("params")
        if params is None:
            params = {k: v for k, v in section.items() if k not in ("kind", "n_inputs", "n_outputs")}
        params = dict(params)
        layers = params.get("layers") or [None]
        n_inputs = section.get("n_inputs", layers[0])
        n_outputs = section.get("n_outputs", layers[-1])
        if n_inputs is None or n_outputs is None:
            raise RunError(f"run {self.id}: config.yaml's model section gives neither n_inputs/"
                           f"n_outputs nor layers, so the model cannot be rebuilt")
        model = build_model(section["kind"], int(n_inputs), int(n_outputs), **params)
        try:
            model.load_state_dict(self.tensors("model.safetensors"), strict=True)
        except RuntimeError as err:
            raise RunIntegrityError(f"run {self.id}: model.safetensors does not fit the model in "
                                    f"config.yaml: {err}") from err
        return model.eval().to(device)


def _verify(path: Path, run_id: str) -> dict[str, Any]:
    """Check a run folder against its manifest; return the manifest."""
    def bad(msg: str) -> RunIntegrityError:
        return RunIntegrityError(f"run {run_id} in {path.parent} is not a valid hepml run: {msg}")

    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad(f"{MANIFEST} is missing (the run was not finished by hepml, or was altered)") from None
    except (OSError, ValueError) as err:
        raise bad(f"{MANIFEST} is unreadable: {err}") from err
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or manifest.get("status") != "complete" or "created" not in manifest:
        raise bad(f"{MANIFEST} lacks 'files', 'created' or status 'complete'")
    manifest["id"] = run_id  # the folder name is what the user asked for and what list() shows
    for entry in os.scandir(path):
        if entry.name == MANIFEST:
            continue
        if entry.is_symlink() or not entry.is_file():
            raise bad(f"{entry.name} is a link or a folder; runs hold plain files only")
        if entry.name not in files:
            raise bad(f"extra file {entry.name} is not listed in {MANIFEST}")
    for name, meta in files.items():
        if not _ID_RE.match(name) or name == MANIFEST or name.lower().endswith(_PICKLE_SUFFIXES):
            raise bad(f"{MANIFEST} lists a file {name!r} that hepml never writes")
        file = path / name
        if not file.is_file():
            raise bad(f"{name} is listed in {MANIFEST} but missing")
        if not isinstance(meta, dict) or _sha256(file) != meta.get("sha256"):
            raise bad(f"{name} was modified after the run was written (sha256 differs from {MANIFEST})")
        if name.endswith(".safetensors"):
            try:  # header only: a pickle renamed to .safetensors fails here, and nothing is executed
                with safe_open(file, framework="pt"):
                    pass
            except (SafetensorError, OSError, ValueError) as err:
                raise bad(f"{name} is not a valid safetensors file ({err})") from err
            continue
        with open(file, "rb") as fh:
            head = fh.read(4)
        if head[:1] == b"\x80" or head == b"PK\x03\x04":  # pickle protocol >= 2 / torch.save zip
            raise bad(f"{name} looks like a pickle or torch.save archive")
    return manifest


class RunStore:
    """A folder of runs: create, list, load, delete.

    Args:
        root: the folder; created on the first :meth:`create`.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    def _path(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not _ID_RE.match(run_id):
            raise RunError(f"invalid run id {run_id!r}: ids are 1-128 characters of letters, digits, "
                           f"'.', '_' or '-', starting with a letter or digit (e.g. "
                           f"'20250101-120000-mlp_classifier-a1b2c3')")
        path = self.root / run_id
        if path.resolve().parent != self.root.resolve():
            raise RunError(f"run id {run_id!r} resolves to {path.resolve()}, outside the store {self.root}")
        return path

    def create(self, kind: str) -> RunWriter:
        """Return a writer for a new run (use it as ``with store.create(kind) as run:``).

        Args:
            kind: what produced the run, e.g. the model kind or the study name; part of the id.

        Raises:
            RunError: ``kind`` is not a plain name.
        """
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise RunError(f"run kind {kind!r} must be 1-64 letters, digits, '.', '_' or '-', "
                           f"starting with a letter or digit")
        while True:
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(3)}"
            if not (self.root / run_id).exists() and not (self.root / f"{_INCOMPLETE}{run_id}").exists():
                return RunWriter(self.root, run_id, kind)

    def list(self) -> list[RunInfo]:
        """Return every run and leftover, newest first; never verifies checksums (``load`` does)."""
        if not self.root.is_dir():
            return []
        infos = []
        for entry in os.scandir(self.root):
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name.startswith(_INCOMPLETE):
                run_id = entry.name[len(_INCOMPLETE):]
                created = datetime.fromtimestamp(entry.stat().st_mtime, timezone.utc)
                infos.append(RunInfo(run_id, _kind_from_id(run_id), created, "incomplete", Path(entry.path)))
            elif _ID_RE.match(entry.name):
                infos.append(_info(Path(entry.path)))
        return sorted(infos, key=lambda i: (i.created, i.id), reverse=True)

    def load(self, run_id: str) -> Run:
        """Verify and open a finished run.

        Raises:
            RunError: bad id, or the run is incomplete.
            MissingKeyError: no run with this id (the message lists the closest ids).
            RunIntegrityError: changed, missing, extra or pickle-like files.
        """
        path = self._path(run_id)
        if not path.is_dir():
            if (self.root / f"{_INCOMPLETE}{run_id}").exists():
                raise RunError(f"run {run_id} is incomplete (the process writing it did not finish) "
                               f"and cannot be loaded; remove it with store.delete({run_id!r})")
            done = [i.id for i in self.list() if i.status == "complete"]
            raise MissingKeyError("run", run_id, f"run store {self.root}", done)
        return Run(path, _verify(path, run_id))

    def latest(self, kind: str | None = None, study: str | None = None) -> RunInfo | None:
        """Return the newest complete run matching ``kind`` and ``study``; ``None`` if there is none.

        Nothing is verified here (``load(info.id)`` does that), so the app can show the latest run
        cheaply.

        Args:
            kind: matches the kind given to ``create`` or ``config.yaml``'s ``model.kind``.
            study: matches ``config.yaml``'s ``study``.
        """
        for info in self.list():
            if info.status != "complete":
                continue
            if kind is not None and kind not in (info.kind, info.model_kind):
                continue
            if study is not None and info.study != study:
                continue
            return info
        return None

    def load_study(self, study: str, run_id: str | None = None) -> Run | None:
        """The study record ``run_id``, or the newest record of ``study``; None when none is saved yet."""
        if run_id is None:
            info = self.latest(kind="study", study=study)
            if info is None:
                return None
            run_id = info.id
        return self.load(run_id)

    def delete(self, run_id: str) -> None:
        """Remove a run (or the leftover of an incomplete one) atomically.

        The folder is first renamed to ``.deleting-*`` so that it vanishes from ``list`` at once,
        even if removing the files is interrupted.

        Raises:
            RunError: bad id.
            MissingKeyError: no such run.
        """
        path = self._path(run_id)
        if not path.is_dir():
            path = self.root / f"{_INCOMPLETE}{run_id}"
            if not path.is_dir():
                raise MissingKeyError("run", run_id, f"run store {self.root}", [i.id for i in self.list()])
        trash = self.root / f"{_DELETING}{run_id}-{secrets.token_hex(3)}"
        os.replace(path, trash)
        shutil.rmtree(trash)


def _kind_from_id(run_id: str) -> str:
    parts = run_id.split("-")
    return "-".join(parts[2:-1]) if len(parts) >= 4 else ""


def _info(path: Path) -> RunInfo:
    run_id = path.name
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        created = _utc(manifest["created"])
        kind = str(manifest.get("kind", ""))
    except (OSError, ValueError, KeyError, TypeError):
        created = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        return RunInfo(run_id, _kind_from_id(run_id), created, "corrupt", path)
    metrics: dict[str, float] = {}
    model_kind = study = None
    try:
        raw = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        metrics = {k: v for k, v in raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    except (OSError, ValueError, AttributeError):
        pass
    try:
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
        model = config.get("model")
        model_kind = model.get("kind") if isinstance(model, dict) else None
        study = config.get("study")
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    return RunInfo(run_id, kind, created, "complete", path, metrics, model_kind, study)
