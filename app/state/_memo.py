"""Results derived from shared read-only events, computed once per server and reused by sessions.

Every session builds its own state objects, but their starting values (histograms and ROC curves at
the training fractions, the anomaly scan) depend only on the shared, read-only ``ScoredEvents``. They
are memoised here against those objects (weakly: when the loader cache drops a run, its results go
too), which takes the sorting out of every page load after the first.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["memo_on"]

_store: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def memo_on(owner: Any, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (``owner``, ``key``); the result must be treated as read-only."""
    with _lock:
        per_owner = _store.setdefault(owner, {})
        if key in per_owner:
            return per_owner[key]
    value = compute()  # outside the lock: two sessions may both compute once, never block each other
    with _lock:
        return _store[owner].setdefault(key, value)
