"""A per-process cache of loaded runs, so each worker verifies and builds a model once, not per task.

Tasks carry only the run's folder and the sha256 of its manifest; the first task on a worker loads the
run through RunStore (manifest and checksums verified, weights read with safetensors) and later tasks
reuse it. The manifest hash is part of the key and is checked against the folder, so a run replaced
under the same name while a job runs is refused rather than mixed into one output.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from hepml_core.exceptions import RunIntegrityError
from hepml_core.runs import MANIFEST, RunStore

__all__: list[str] = []

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOADS = {"count": 0}
_KEEP = 4  # a worker serving several jobs keeps a few runs, not all it ever saw


def _manifest_sha(run_dir: str | Path) -> str:
    """sha256 of a run's manifest.json, which lists the sha256 of every other file: the run's identity."""
    return hashlib.sha256((Path(run_dir) / MANIFEST).read_bytes()).hexdigest()


def _cached_run(run_dir: str, manifest_sha: str) -> tuple[Any, Any]:
    """(Run, model) for ``run_dir``, loaded on this process's first call and reused afterwards.

    Raises:
        RunIntegrityError: the run folder no longer matches ``manifest_sha``.
        RunError, MissingKeyError: the run cannot be loaded.
    """
    key = (run_dir, manifest_sha)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        path = Path(run_dir)
        run = RunStore(path.parent).load(path.name)
        if _manifest_sha(path) != manifest_sha:
            raise RunIntegrityError(f"run {run.id} in {path.parent} changed after the job started; "
                                    "score again with the run as it is now")
        model = run.model()
        _ = run.preprocessor, run.config, run.schema  # read (and checked) now, not in the first task
        if len(_CACHE) >= _KEEP:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = hit = (run, model)
        _LOADS["count"] += 1
        return hit


def _load_count() -> int:
    """How many runs this process has loaded (tests check that a worker loads a run once)."""
    return _LOADS["count"]
