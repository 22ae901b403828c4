"""Which saved run a page shows: the run list of a RunStore, filtered for the page, and the selection.

Listing is cheap (``RunStore.list()`` reads small JSON/YAML files) and is redone on ``refresh`` or when a
training of this session finishes, so a run saved by another user appears after a refresh.
"""

from __future__ import annotations

from collections.abc import Callable

import param

__all__ = ["RunChoice", "Lister"]

#: () -> [(label shown to the user, run id)], newest first
Lister = Callable[[], list[tuple[str, str]]]


class RunChoice(param.Parameterized):
    """The selected run id among those a ``lister`` returns.

    Args:
        lister: lists the runs this page can show.
    """

    run = param.Selector(default=None, objects=[], allow_None=True, doc="The run shown on the page.")
    refresh = param.Event(doc="Re-read the run list.")
    n_runs = param.Integer(default=0, constant=True)

    def __init__(self, lister: Lister, **params):
        self._lister = lister
        super().__init__(**params)
        self._refresh()

    @param.depends("refresh", watch=True)
    def _refresh(self, select: str | None = None) -> None:
        items = self._lister()
        # Selector objects as {label: id}: widgets show labels, ``run`` holds the id.
        labels = {label: run_id for label, run_id in items}
        keep = select if select in labels.values() else self.run
        self.param.run.objects = labels
        with param.edit_constant(self):
            self.n_runs = len(items)
        target = keep if keep in labels.values() else (items[0][1] if items else None)
        if target != self.run:
            self.run = target

    def select(self, run_id: str) -> None:
        """Refresh the list and show ``run_id`` (a run just saved by this session)."""
        self._refresh(select=run_id)

    def labels(self) -> list[str]:
        """Labels of the runs in the list, in order."""
        return list(self.param.run.names)
