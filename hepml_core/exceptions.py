"""The HepmlError family: one exception type per kind of thing a user can get wrong.

Every message says what was received, what is accepted, where, and how to fix it. The CLI prints
``str(err)`` as a single line; the API lets the specific subclass propagate so callers can catch it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "HepmlError",
    "DataError",
    "InputFileError",
    "MissingKeyError",
    "ConfigError",
    "NotFittedError",
    "RunError",
    "RunIntegrityError",
    "TrainingCancelled",
    "closest_names",
]


def closest_names(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``name`` (for "did you mean" hints)."""
    candidates = [str(c) for c in candidates]
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if close:
        return close
    lowered = {c.lower(): c for c in candidates}
    return [lowered[name.lower()]] if name.lower() in lowered else []


class HepmlError(Exception):
    """Base class of every error hepml raises on purpose."""


class DataError(HepmlError, ValueError):
    """The events are unusable as given: wrong dtype, NaN/inf, one class only, zero weights..."""


class InputFileError(HepmlError, OSError):
    """A file is missing, unreadable, not of the expected format, or corrupt."""


class MissingKeyError(HepmlError, KeyError):
    """A tree, branch, column, class or run that was asked for does not exist.

    ``str()`` is the full message (KeyError would otherwise quote it).
    """

    def __init__(self, kind: str, name: str, where: str, available: Iterable[str] = ()):
        available = list(available)
        self.kind, self.name, self.where, self.available = kind, name, where, available
        close = closest_names(name, available)
        if close:
            hint = "; closest: " + ", ".join(repr(c) for c in close)
        elif available:
            shown = ", ".join(repr(a) for a in available[:8])
            more = f" (+{len(available) - 8} more)" if len(available) > 8 else ""
            hint = f"; available: {shown}{more}"
        else:
            hint = "; none available"
        super().__init__(f"{kind} {name!r} not found in {where}{hint}")

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigError(HepmlError, ValueError):
    """A configuration (YAML file or dict) has an unknown key, a wrong type or a bad value."""


class NotFittedError(HepmlError, RuntimeError):
    """An estimator-like object was used before ``fit`` was called."""


class RunError(HepmlError):
    """A run directory cannot be created, found or used."""


class RunIntegrityError(RunError):
    """A run directory was tampered with or is incomplete: checksums, pickles, missing files."""


class TrainingCancelled(HepmlError):
    """Training was cancelled by the user; nothing was saved."""
