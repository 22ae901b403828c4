"""Built-in simulators by name: ``simulate("ams-he", n, seed=1)``.

Simulator modules are imported on first use, so listing names costs nothing. To add one, write
``hepml_core/simulate/<study>.py`` with a function ``f(n_events, *, seed, sample="mc", progress=False,
**options) -> pd.DataFrame`` and add its line to ``_ENTRY_POINTS``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from hepml_core.exceptions import ConfigError, closest_names

__all__ = ["SIMULATORS", "simulate", "simulator_names"]

_ENTRY_POINTS: dict[str, str] = {  # name -> "module:function"
    "ams-he": "hepml_core.simulate.ams_he:simulate_ams_he",
    "hnl": "hepml_core.simulate.hnl:simulate_hnl",
    "alice-pid": "hepml_core.simulate.alice_pid:simulate_alice_pid",
    "ams-nuclei": "hepml_core.simulate.ams_nuclei:simulate_ams_nuclei",
    "darwin": "hepml_core.simulate.darwin:simulate_darwin",
}


def _canonical(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


class _LazySimulators(Mapping[str, Callable[..., pd.DataFrame]]):
    """Read-only mapping name -> simulator function, importing each module when first looked up."""

    def __init__(self, entry_points: Mapping[str, str]):
        # Only simulators whose module is installed are offered (a study may not have landed yet).
        self._entry_points = {name: target for name, target in entry_points.items()
                              if importlib.util.find_spec(target.partition(":")[0]) is not None}

    def __getitem__(self, name: str) -> Callable[..., pd.DataFrame]:
        target = self._entry_points[_canonical(name)]
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _canonical(name) in self._entry_points

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entry_points))

    def __len__(self) -> int:
        return len(self._entry_points)


SIMULATORS: Mapping[str, Callable[..., pd.DataFrame]] = _LazySimulators(_ENTRY_POINTS)


def simulator_names() -> list[str]:
    """The accepted simulator names, sorted."""
    return list(SIMULATORS)


def simulate(
    name: str,
    n: int,
    *,
    seed: int | np.random.Generator | None,
    sample: str = "mc",
    progress: bool = False,
    **options,
) -> pd.DataFrame:
    """Run the built-in simulator ``name`` for ``n`` events.

    Args:
        name: simulator name (``simulator_names()``); ``_`` and ``-`` are interchangeable.
        n: number of events.
        seed: int or numpy Generator (None: fresh entropy, not reproducible).
        sample: ``"mc"`` or ``"data"`` (a detector-response variant with hidden truth).
        progress: show a progress bar.
        **options: passed to the simulator (e.g. ``anomaly_fraction`` for ams-he).

    Returns:
        The simulator's DataFrame.

    Raises:
        ConfigError: unknown name (the message lists the accepted ones), or a bad argument.
    """
    if name not in SIMULATORS:
        close = closest_names(_canonical(name), simulator_names())
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        accepted = ", ".join(repr(s) for s in simulator_names())
        raise ConfigError(f"unknown simulator {name!r}{hint}; accepted: {accepted}")
    return SIMULATORS[name](n, seed=seed, sample=sample, progress=progress, **options)
