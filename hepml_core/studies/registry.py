"""Names of the built-in studies and the functions that run, load and tabulate each one."""

from __future__ import annotations

import importlib
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


# Modules are imported on first use so `hepml --help` does not pay for torch and every simulator.
_STUDIES = {
    "ams-he": StudyEntry("ams-he", "AMS-02 He charge confusion", "hepml_core.studies.ams_he", "AmsHeSettings",
                         "run_ams_he", "load_ams_he", "hepml_core.studies.ams_he_tables"),
}


def study_names() -> list[str]:
    """Names accepted by ``hepml study NAME``."""
    return sorted(_STUDIES)


def get_study(name: str) -> tuple[StudyEntry, object, object]:
    """The entry, its recipe module and its tables module.

    Raises:
        ConfigError: unknown study name (lists the accepted ones).
    """
    if name not in _STUDIES:
        raise ConfigError(f"unknown study {name!r}; available: {', '.join(study_names())}")
    entry = _STUDIES[name]
    return entry, importlib.import_module(entry.module), importlib.import_module(entry.tables)
