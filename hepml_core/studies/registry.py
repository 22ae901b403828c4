"""Names of the built-in studies and the functions that run, load and tabulate each one."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from hepml_core.exceptions import ConfigError

__all__ = ["StudyEntry", "get_study", "study_names"]


@dataclass(frozen=True)
class StudyEntry:
    """Where a study's recipe lives: ``module`` defines ``run``/``load``/settings; ``tables`` writes CSVs."""

    name: str
    title: str
    module: str
    settings: str
    run: str
    load: str
    tables: str


def _entry(name: str, title: str, module: str, stem: str, settings: str) -> StudyEntry:
    base = f"hepml_core.studies.{module}"
    return StudyEntry(name, title, base, settings, f"run_{stem}", f"load_{stem}", f"{base}_tables")


# Modules are imported on first use so `hepml --help` does not pay for torch and every simulator.
# Each recipe module defines SETTINGS (a dataclass with ``events`` and ``seed``), ``run_X(settings, store, *,
# callbacks=(), cancel=None, progress=None)`` and ``load_X(store)``; its ``_tables`` module ``write_tables``.
_STUDIES = {
    "ams-he": _entry("ams-he", "AMS-02 He charge confusion", "ams_he", "ams_he", "AmsHeSettings"),
    "hnl": _entry("hnl", "CMS heavy neutral leptons", "hnl", "hnl", "HnlSettings"),
    "alice-pid": _entry("alice-pid", "ALICE PID with missing data", "alice_pid", "alice_pid", "AlicePidSettings"),
    "ams-nuclei": _entry("ams-nuclei", "AMS-02 nuclei, domain adaptation", "ams_nuclei", "ams_nuclei",
                         "AmsNucleiSettings"),
    "darwin": _entry("darwin", "DARWIN anomaly-aware search", "darwin", "darwin", "DarwinSettings"),
}


def study_names() -> list[str]:
    """Names accepted by ``hepml study NAME`` (the studies whose recipe module is installed)."""
    return sorted(name for name, entry in _STUDIES.items() if importlib.util.find_spec(entry.module) is not None)


def get_study(name: str) -> tuple[StudyEntry, object, object]:
    """The entry, its recipe module and its tables module.

    Raises:
        ConfigError: unknown study name (lists the accepted ones).
    """
    if name not in study_names():
        raise ConfigError(f"unknown study {name!r}; available: {', '.join(study_names())}")
    entry = _STUDIES[name]
    return entry, importlib.import_module(entry.module), importlib.import_module(entry.tables)
