"""Score many event files with a saved run, partition by partition, into a folder of Parquet files.

``OUT/part-00000.parquet ...`` hold one row per event: ``source_file`` (the path as the pattern gave
it), ``entry`` (the entry number in that file), the ``--weight`` column if one was named, then the
run's score columns. ``OUT/histograms.json`` holds, per score column in [0, 1] (``p_<class>``,
``anomaly``), the weighted counts and sum of squared weights in fixed bins, summed over partitions in
partition order: the histograms the app draws. ``OUT/manifest.json`` is written last; a folder
without it is an unfinished (or failed) job and is never mistaken for a result.

Each partition is read (hepml_core.io, so columns and jagged branches are handled as everywhere),
scored and written by one task, in this process or on a Dask worker; the two paths run the same
function on the same partitions, so their outputs are identical. Workers load the run once (see
``_worker``) and need the input files, the run folder and OUT at the same paths as this process
(a shared file system on a multi-machine cluster).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.exceptions import ConfigError, DataError, HepmlError, InputFileError
from hepml_core.io.root import read_root
from hepml_core.io.source import read_frame
from hepml_core.io.write import write_json_atomic, write_parquet_atomic
from hepml_core.metrics.histogram import Histogram, uniform_edges, weighted_histogram
from hepml_core.runs import MANIFEST, hepml_version
from hepml_core.scale._worker import _cached_run, _manifest_sha
from hepml_core.scale.cluster import open_client, parse_scheduler, run_tasks
from hepml_core.scale.plan import DEFAULT_STEP, Partition, plan_partitions
from hepml_core.scoring.score import score_table

__all__ = ["DEFAULT_BINS", "HISTOGRAMS", "PartitionError", "ScoreJob", "PartResult", "score_partition",
           "score_files", "read_scored", "read_histograms"]

DEFAULT_BINS = 50  # the app's default number of bins for score distributions
HISTOGRAMS = "histograms.json"
_OURS = ("part-*.parquet", ".part-*.tmp", HISTOGRAMS, f".{HISTOGRAMS}.*.tmp", f".{MANIFEST}.*.tmp")


class PartitionError(HepmlError):
    """A partition could not be read or scored; the message names its file and entry range."""


@dataclass(frozen=True)
class ScoreJob:
    """What every partition task needs: small and picklable (paths and names, never the model)."""

    run_dir: str
    manifest_sha: str
    out_dir: str
    features: tuple[str, ...]
    missing_value: float | None = None
    weight: str | None = None
    bins: int = DEFAULT_BINS


@dataclass(frozen=True)
class PartResult:
    """What a task sends back: a summary of the partition it wrote, and its histograms."""

    index: int
    rows: int
    sha256: str
    histograms: dict[str, Histogram] = field(default_factory=dict)


def score_partition(part: Partition, job: ScoreJob) -> PartResult:
    """Read, score and write one partition as ``OUT/part-NNNNN.parquet`` (atomically).

    Args:
        part: the file and entry range.
        job: the run and output settings.

    Returns:
        The PartResult.

    Raises:
        PartitionError: any hepml error, re-raised with the partition's file and entries in front.
    """
    try:
        run, model = _cached_run(job.run_dir, job.manifest_sha)
        columns = [*job.features, *([job.weight] if job.weight and job.weight not in job.features else [])]
        if part.fmt == "root":
            frame = read_root(part.path, part.tree, columns, entry_start=part.entry_start,
                              entry_stop=part.entry_stop, step_size=max(1, part.entry_stop - part.entry_start))
        else:
            frame = read_frame(part.path, columns)
        schema = Schema(features=job.features, weight=job.weight, missing_value=job.missing_value)
        table = EventTable(frame, schema, source=part.describe())
        scores = score_table(run, table, model=model).reset_index(drop=True)
        weights = table.weights() if job.weight else None
        out = {"source_file": pd.Series([part.source_file] * len(scores), dtype="string"),
               "entry": np.arange(part.entry_start, part.entry_start + len(scores), dtype=np.int64)}
        if job.weight:
            out[job.weight] = weights
        out.update({name: scores[name].to_numpy() for name in scores.columns})
        path = write_parquet_atomic(pd.DataFrame(out), Path(job.out_dir) / part.name)
        edges = uniform_edges(0.0, 1.0, job.bins)
        hists = {name: weighted_histogram(scores[name].to_numpy(), edges, weights)
                 for name in scores.columns if _bounded(name)}
        return PartResult(part.index, len(scores), _sha256(path), hists)
    except HepmlError as err:
        raise PartitionError(f"{part.describe()}: {err}") from err


def _bounded(column: str) -> bool:
    """Score columns that live in [0, 1] (probabilities, the tanh anomaly score) get histograms."""
    return column.startswith("p_") or column == "anomaly"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _prepare_out(out: Path, force: bool) -> None:
    """Create OUT, or empty hepml's files from it with ``force``; refuse a non-empty OUT otherwise."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; scoring many files writes a folder: "
                          f"give -o {out.parent / out.stem}/")
    held = sorted(out.iterdir()) if out.is_dir() else []
    if held and not force:
        names = ", ".join(p.name for p in held[:3]) + (f" (+{len(held) - 3} more)" if len(held) > 3 else "")
        raise ConfigError(f"output folder {out} is not empty ({names}); choose an empty folder, "
                          "or pass --force to replace hepml's score files in it")
    if held:
        # The manifest goes first: from here on the folder reads as unfinished until the new one is written.
        (out / MANIFEST).unlink(missing_ok=True)
        for pattern in _OURS:
            for path in out.glob(pattern):
                path.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputFileError(f"cannot create output folder {out} ({err}); check the path and permissions") from err


def score_files(run, pattern: str, out_dir: str | Path, *, step: int = DEFAULT_STEP, scheduler: str | None = None,
                client: Any = None, weight: str | None = None, bins: int = DEFAULT_BINS, force: bool = False,
                progress: bool = False, connect_timeout: float = 10.0) -> dict[str, Any]:
    """Score every file a pattern names into ``out_dir`` (see the module docstring for the layout).

    Args:
        run: a loaded Run (classifier or autoencoder).
        pattern: ``data/*.root:Events``, ``data/*.parquet``... (files sorted by name).
        out_dir: the output folder; created; must be empty unless ``force``.
        step: entries per partition of a ROOT file.
        scheduler: None (this process), ``local``, ``local:N`` or ``tcp://HOST:PORT``.
        client: an open ``distributed.Client`` to use instead of ``scheduler`` (kept open).
        weight: an input column of event weights for the histograms (copied into the output).
        bins: bins of each score histogram on [0, 1].
        force: replace hepml's files in a non-empty ``out_dir``.
        progress: a tqdm bar over finished partitions (stderr).
        connect_timeout: seconds to wait for a ``tcp://`` scheduler.

    Returns:
        The manifest written to ``out_dir/manifest.json``.

    Raises:
        ConfigError: bad scheduler, step, bins or weight name, or a non-empty ``out_dir``.
        InputFileError, MissingKeyError: a missing or bad input file (named).
        PartitionError: a partition that cannot be read or scored (its file and entries named);
            no manifest is written then.
        SchedulerError: the scheduler cannot be reached, or a worker died.
        DataError: the files hold no events.
    """
    spec = parse_scheduler(scheduler) if client is None else None
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ConfigError(f"bins {bins!r} is not accepted; give the number of histogram bins (int >= 1)")
    features = tuple(run.schema.features)
    if weight is not None and weight in ("source_file", "entry"):
        raise ConfigError(f"weight column {weight!r} clashes with an output column; rename it in the input")
    parts = plan_partitions(pattern, step)
    if not parts:
        raise DataError(f"nothing to score: the files matching {pattern!r} hold no entries")
    out = Path(out_dir).expanduser()
    _prepare_out(out, force)
    job = ScoreJob(run_dir=str(Path(run.path).resolve()), manifest_sha=_manifest_sha(run.path),
                   out_dir=str(out.resolve()), features=features, missing_value=run.schema.missing_value,
                   weight=weight, bins=bins)
    opened = nullcontext(client) if client is not None else open_client(spec, connect_timeout=connect_timeout)
    with opened as active:
        results = run_tasks(score_partition, parts, client=active, progress=progress, desc="scoring",
                            unit="partition", job=job)
    histograms: dict[str, Histogram] = {}
    for result in results:  # partition order: the sums do not depend on which task finished first
        for name, hist in result.histograms.items():
            histograms[name] = hist if name not in histograms else histograms[name] + hist
    write_json_atomic({"format": 1, "weight": weight, "bins": bins,
                       "histograms": {k: h.to_dict() for k, h in histograms.items()}}, out / HISTOGRAMS)
    manifest = {
        "format": 1, "status": "complete", "run_id": run.id, "run_path": job.run_dir,
        "inputs": pattern, "files": sorted({p.source_file for p in parts}), "step": step, "weight": weight,
        "scheduler": "client" if spec is None else str(spec),
        "rows": int(sum(r.rows for r in results)),
        "partitions": [{"file": p.name, "source_file": p.source_file, "entry_start": p.entry_start,
                        "entry_stop": p.entry_start + r.rows, "rows": r.rows, "sha256": r.sha256}
                       for p, r in zip(parts, results)],
        "histograms": HISTOGRAMS,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hepml_version": hepml_version(),
    }
    write_json_atomic(manifest, out / MANIFEST)
    return manifest


def _finished(out: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{out} has no {MANIFEST}: the scoring job that wrote it did not finish; "
                             "score again (with --force)") from None
    except (OSError, ValueError) as err:
        raise InputFileError(f"{out / MANIFEST} is unreadable ({err}); score again (with --force)") from err
    return manifest


def read_scored(out_dir: str | Path) -> pd.DataFrame:
    """All partitions of a finished output folder, in partition order (= sorted by file, then entry).

    Raises:
        InputFileError: the folder has no manifest (an unfinished job).
    """
    out = Path(out_dir)
    manifest = _finished(out)
    frames = [pd.read_parquet(out / p["file"]) for p in manifest["partitions"]]
    return pd.concat(frames, ignore_index=True)


def read_histograms(out_dir: str | Path) -> dict[str, Histogram]:
    """The summed histograms of a finished output folder, by score column.

    Raises:
        InputFileError: the folder has no manifest (an unfinished job).
    """
    out = Path(out_dir)
    _finished(out)
    data = json.loads((out / HISTOGRAMS).read_text(encoding="utf-8"))
    return {name: Histogram.from_dict(h) for name, h in data["histograms"].items()}
