"""Cached loaders of saved runs: read once per server, shared read-only by every session.

A finished run folder never changes (RunStore writes atomically and never edits a run), so a run id
is a safe cache key. ``pn.cache`` keeps the few most recent results in memory; what is cached are the
read-only ``ScoredEvents`` and the sorted threshold scans, the expensive part of opening a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn

from hepml_core.runs import RunStore
from hepml_core.studies.ams_he import AmsHeSettings, load_ams_he

from app.state.migration import SelectedMigration
from app.state.samples import ScoredEvents, scored_events

__all__ = ["StudyData", "RunData", "load_study_data", "load_run_data", "study_from_result", "runs_dir_of"]


@dataclass(frozen=True, eq=False)
class StudyData:
    """A He study result prepared for the views (MC test and data events, migration scans)."""

    study_run_id: str
    classifier_run_id: str
    autoencoder_run_id: str
    class_names: tuple[str, ...]
    fractions: np.ndarray
    settings: AmsHeSettings
    mc: ScoredEvents
    data: ScoredEvents
    migration_tables: dict
    histories: dict[str, pd.DataFrame]


@dataclass(frozen=True, eq=False)
class RunData:
    """A user's classifier run prepared for the views: events per split, config and history."""

    run_id: str
    class_names: tuple[str, ...]
    splits: dict[str, ScoredEvents]
    config: dict
    history: pd.DataFrame
    metrics: dict


def study_from_result(result, histories: dict[str, pd.DataFrame] | None = None) -> StudyData:
    """Prepare an ``AmsHeResult`` (fresh or loaded) for the views."""
    frame = result.frame
    names = tuple(result.class_names)
    is_mc = (frame["sample"] == "mc").to_numpy()
    mc = scored_events(frame[is_mc], names, extras=["anomaly"], where=f"study {result.study_run_id} MC rows")
    data = scored_events(frame[~is_mc], names, extras=["anomaly"], where=f"study {result.study_run_id} data rows")
    tables = {
        "MC test": SelectedMigration(mc, mc.extras["anomaly"], "MC test events"),
        "data (toy truth)": SelectedMigration(data, data.extras["anomaly"], "Data events (toy truth)"),
    }
    return StudyData(result.study_run_id, result.classifier_run_id, result.autoencoder_run_id, names,
                     np.asarray(result.fractions, dtype=np.float64), result.settings, mc, data, tables,
                     histories or {})


def _history(store: RunStore, run_id: str) -> pd.DataFrame:
    try:
        return store.load(run_id).history
    except Exception:  # a history is a nice-to-have on the Train tab; its absence must not block the page
        return pd.DataFrame(columns=["epoch", "train_loss", "val_loss"])


@pn.cache(max_items=4)
def load_study_data(runs_dir: str, study_run_id: str) -> StudyData:
    """The He study saved as ``study_run_id`` in ``runs_dir``, prepared (cached per server)."""
    store = RunStore(runs_dir)
    result = load_ams_he(store, study_run_id)
    histories = {"classifier": _history(store, result.classifier_run_id),
                 "autoencoder": _history(store, result.autoencoder_run_id)}
    return study_from_result(result, histories)


@pn.cache(max_items=4)
def load_run_data(runs_dir: str, run_id: str) -> RunData:
    """A ``hepml train`` classifier run with its scores per split (cached per server)."""
    run = RunStore(runs_dir).load(run_id)
    scores = run.scores
    # A config without ``classes`` saves none in schema.json; the score columns then name them, in order.
    classes = tuple(run.schema.classes or ()) or tuple(
        c[2:] for c in (scores.columns if scores is not None else ()) if c.startswith("p_"))
    if scores is None or not classes:
        raise ValueError(f"run {run_id} has no classifier scores (scores.parquet with p_<class> columns)")
    splits = {}
    for split in ("test", "validation", "train"):
        part = scores[scores["split"] == split]
        if len(part):
            splits[split] = scored_events(part, classes, where=f"run {run_id} {split} scores")
    return RunData(run_id, classes, splits, dict(run.config), run.history, dict(run.metrics))


def runs_dir_of(path: str | Path) -> str:
    """Canonical string form of a runs directory (one cache entry per folder, however it was spelt)."""
    return str(Path(path).expanduser().resolve())
