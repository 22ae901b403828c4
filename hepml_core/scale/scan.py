"""Hyperparameter scans: a study run once per point of a grid of its settings, in parallel or in turn.

``hepml study ams-he --scan classifier_lr=1e-3,3e-3 --scan dropout=0,0.1`` makes the four settings of
the grid (the study's settings dataclass, with the command's other overrides as the base) and runs the
study for each as a separate task: one grid point per task, on a Dask cluster or one after the other
here. Every task saves its runs into the shared run store through RunStore (atomic, so parallel tasks
cannot clash), and returns one row: the point, the study record's id and each model run's id and
numeric metrics. ``OUT/scan.csv`` collects the rows in grid order.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hepml_core.exceptions import ConfigError, HepmlError, MissingKeyError
from hepml_core.io.write import write_csv_atomic
from hepml_core.runs import RunStore
from hepml_core.scale.cluster import open_client, parse_scheduler, run_tasks
from hepml_core.studies.registry import get_study

__all__ = ["SCAN_FILE", "ScanJob", "ScanPointError", "parse_scan", "scan_points", "run_point", "run_scan"]

SCAN_FILE = "scan.csv"
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


class ScanPointError(HepmlError):
    """A grid point's study failed; the message names the point."""


@dataclass(frozen=True)
class ScanJob:
    """What each grid-point task needs: the study's name, the base settings and the run store's folder."""

    study: str
    base: Any
    runs_dir: str


def _value(text: str, field: dataclasses.Field, default: Any, key: str) -> Any:
    """Parse one ``--scan`` value as the type of the settings field (tuples: elements joined by '/')."""
    annotation = str(field.type)
    text = text.strip()
    if text.lower() in ("none", "null") and "None" in annotation:
        return None
    if isinstance(default, tuple) or annotation.startswith("tuple"):
        elem = default[0] if isinstance(default, tuple) and default else ("" if "str" in annotation else 0.0)
        return tuple(_scalar(part, elem, "", key) for part in text.split("/") if part.strip())
    return _scalar(text, default, annotation, key)


def _scalar(text: str, sample: Any, annotation: str, key: str) -> Any:
    """``text`` as the type of ``sample`` (or, for a None default, of the annotation)."""
    text = text.strip()
    try:
        if isinstance(sample, bool) or (sample is None and "bool" in annotation):
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        if isinstance(sample, int) or (sample is None and "int" in annotation):
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        if isinstance(sample, float) or (sample is None and "float" in annotation):
            return float(text)
    except ValueError:
        kind = type(sample).__name__ if sample is not None else annotation
        raise ConfigError(f"--scan {key}: {text!r} is not a valid {kind} value") from None
    return text


def parse_scan(specs: Sequence[str], settings_cls: type) -> dict[str, list[Any]]:
    """Parse ``KEY=V1,V2,...`` strings into ``{field: [values]}`` typed like the settings' fields.

    Args:
        specs: the ``--scan`` arguments.
        settings_cls: the study's settings dataclass.

    Returns:
        The axes of the grid, in the order given.

    Raises:
        ConfigError: no ``=``, no values, a key given twice, or a value of the wrong type.
        MissingKeyError: a key that is not a field (lists the closest field names).
    """
    fields = {f.name: f for f in dataclasses.fields(settings_cls)}
    defaults = settings_cls()
    axes: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = str(spec).partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--scan {spec!r} is not KEY=V1,V2[,...]; e.g. --scan classifier_lr=1e-3,3e-3")
        if key not in fields:
            raise MissingKeyError("setting", key, f"{settings_cls.__name__} (the study's settings)", list(fields))
        if key in axes:
            raise ConfigError(f"--scan {key} is given twice; list all its values in one --scan {key}=V1,V2")
        parsed = [_value(v, fields[key], getattr(defaults, key), key) for v in values.split(",") if v.strip()]
        axes[key] = parsed
    return axes


def scan_points(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the last axis varying fastest."""
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def _model_runs(result: Any) -> dict[str, str]:
    """``role -> run id`` of the model runs a study result names (``*_run_id`` fields and ``run_ids``)."""
    found: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(value, str):
            found[prefix] = value

    for f in dataclasses.fields(result):
        if f.name.endswith("_run_id") and f.name != "study_run_id":
            walk(f.name[: -len("_run_id")], getattr(result, f.name))
        elif f.name == "run_ids":
            walk("", getattr(result, f.name))
    return found


def _cell(value: Any) -> Any:
    return "/".join(map(str, value)) if isinstance(value, tuple) else value


def run_point(point: Mapping[str, Any], job: ScanJob) -> dict[str, Any]:
    """Run the study at one grid point and summarise it as one row of ``scan.csv``.

    Raises:
        ScanPointError: the study failed (the message names the point).
    """
    label = ", ".join(f"{k}={_cell(v)}" for k, v in point.items())
    try:
        entry, module, _ = get_study(job.study)
        settings = dataclasses.replace(job.base, **point)
        store = RunStore(job.runs_dir)
        start = time.perf_counter()
        result = getattr(module, entry.run)(settings, store)
        row: dict[str, Any] = {k: _cell(v) for k, v in point.items()}
        row["study_run_id"] = result.study_run_id
        row["seconds"] = round(time.perf_counter() - start, 3)
        for role, run_id in _model_runs(result).items():
            row[f"{role}.run_id"] = run_id
            metrics = store.load(run_id).metrics
            for name, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    row[f"{role}.{name}"] = value
        return row
    except HepmlError as err:
        raise ScanPointError(f"scan point {label}: {err}") from err


def run_scan(study: str, base: Any, axes: Mapping[str, Sequence[Any]], runs_dir: str | Path, out_dir: str | Path,
             *, scheduler: str | None = None, client: Any = None, progress: bool = False,
             connect_timeout: float = 10.0) -> pd.DataFrame:
    """Run ``study`` at every grid point and write ``out_dir/scan.csv``.

    Args:
        study: a study name (``hepml study`` names).
        base: the study's settings that the grid points modify.
        axes: ``{field: values}`` from :func:`parse_scan`.
        runs_dir: the shared run store (each point saves its runs there).
        out_dir: the folder for ``scan.csv`` (created).
        scheduler: None (one point after the other here), ``local``, ``local:N`` or ``tcp://HOST:PORT``.
        client: an open ``distributed.Client`` to use instead of ``scheduler``.
        progress: a tqdm bar over finished points.
        connect_timeout: seconds to wait for a ``tcp://`` scheduler.

    Returns:
        The table written to ``scan.csv``, one row per grid point in grid order.

    Raises:
        ConfigError: an empty grid or a bad scheduler; ScanPointError: a point's study failed
        (``scan.csv`` is not written); SchedulerError: as in ``open_client``.
    """
    spec = parse_scheduler(scheduler) if client is None else None
    points = scan_points(axes)
    if not axes or not points:
        raise ConfigError("the scan grid is empty; give --scan KEY=V1,V2 with at least one value")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    job = ScanJob(study, base, str(Path(runs_dir).expanduser().resolve()))
    opened = nullcontext(client) if client is not None else open_client(spec, connect_timeout=connect_timeout)
    with opened as active:
        rows = run_tasks(run_point, points, client=active, progress=progress, desc=f"scan {study}",
                         unit="point", job=job)
    table = pd.DataFrame(rows)
    write_csv_atomic(table, out / SCAN_FILE)
    return table
