"""Migration matrix (true x predicted class) at a score threshold, updated by binary search only.

Scores are computed once. Each table below sorts its events once by the score (a
``hepml_core.metrics.threshold.ThresholdScan`` over the combined code ``true * K + predicted``), so the
matrix at any threshold is one ``yields_above`` call: R*K binary searches, independent of the number of
events. That is what lets a slider move on 1M events update the view in a few milliseconds.
"""

from __future__ import annotations

import numpy as np
import param

from hepml_core.metrics.migration import normalise_columns, normalise_rows
from hepml_core.metrics.threshold import ThresholdScan

from app.state.cut import ThresholdCut
from app.state.samples import ScoredEvents

__all__ = ["MigrationTable", "SelectedMigration", "FlipMigration", "MigrationState", "NORMALISATIONS"]

NORMALISATIONS = ("counts", "row %", "column %")
_ABOVE, _BELOW = "flagged: score ≥ threshold", "kept: score < threshold"


class MigrationTable:
    """How one sample's matrix depends on the threshold; subclasses implement ``counts(t, above)``."""

    #: whether the "flagged / kept" choice makes sense for this table
    selectable = True
    #: how the predicted class (matrix column) is decided, for the axis label
    prediction = "argmax p"

    def __init__(self, events: ScoredEvents, description: str):
        self.row_names = events.truth_names
        self.col_names = events.class_names
        self.description = description
        self.total = float(events.weight.sum())

    def counts(self, threshold: float, above: bool = True) -> np.ndarray:  # pragma: no cover - abstract
        """(rows, columns) weighted counts at ``threshold``."""
        raise NotImplementedError


class SelectedMigration(MigrationTable):
    """Events selected by a cut on a separate score (the He study: anomaly score); prediction = argmax p."""

    def __init__(self, events: ScoredEvents, score: np.ndarray, description: str):
        super().__init__(events, description)
        self._k = events.n_classes
        codes = events.truth * self._k + events.predicted
        n_cells = len(self.row_names) * self._k
        self._scan = ThresholdScan(np.asarray(score, dtype=np.float64), codes, sample_weight=events.weight,
                                   n_classes=n_cells)
        self._totals = np.asarray(self._scan.totals_, dtype=np.float64)

    def counts(self, threshold: float, above: bool = True) -> np.ndarray:
        flagged = np.asarray(self._scan.yields_above(threshold), dtype=np.float64)
        cells = flagged if above else self._totals - flagged
        return cells.reshape(len(self.row_names), self._k)


class FlipMigration(MigrationTable):
    """A cut on one class's probability decides the prediction (a user's signal-vs-rest cut).

    Events with ``p_signal >= t`` are predicted as the signal class; the others as the most probable
    of the remaining classes. The scan runs over ``p_signal`` with code ``true * K + runner_up``.
    """

    selectable = False

    def __init__(self, events: ScoredEvents, signal: int, description: str):
        super().__init__(events, description)
        self.prediction = f"p_{events.class_names[signal]} cut, else argmax p"
        k = events.n_classes
        self._k, self._signal = k, int(signal)
        others = events.proba.copy()
        others[:, self._signal] = -np.inf
        runner_up = others.argmax(axis=1)
        n_cells = len(self.row_names) * k
        self._scan = ThresholdScan(events.proba[:, self._signal], events.truth * k + runner_up,
                                   sample_weight=events.weight, n_classes=n_cells)
        self._totals = np.asarray(self._scan.totals_, dtype=np.float64).reshape(-1, k)

    def counts(self, threshold: float, above: bool = True) -> np.ndarray:
        passed = np.asarray(self._scan.yields_above(threshold), dtype=np.float64).reshape(-1, self._k)
        matrix = self._totals - passed  # below threshold: predicted as the runner-up class
        matrix[:, self._signal] += passed.sum(axis=1)
        return matrix


class MigrationState(param.Parameterized):
    """The matrix shown by ``MigrationMatrix``: counts, row-% or column-% at ``cut.threshold``.

    Args:
        cut: the shared threshold.
        tables: ``{name: MigrationTable}``; ``table`` selects one (e.g. "MC test", "data (toy truth)").
    """

    cut = param.ClassSelector(class_=ThresholdCut, doc="The shared threshold.")
    table = param.Selector(default=None, objects=[], doc="Which sample's matrix to show.")
    normalisation = param.Selector(default="row %", objects=list(NORMALISATIONS))
    selection = param.Selector(default=_ABOVE, objects=[_ABOVE, _BELOW],
                               doc="Show events at or above the threshold (flagged) or below it (kept).")

    counts = param.Array(default=np.zeros((0, 0)), constant=True, doc="Weighted counts (rows = true).")
    shown = param.Array(default=np.zeros((0, 0)), constant=True, doc="What is shown, per normalisation.")
    row_names = param.List(default=[], constant=True)
    col_names = param.List(default=[], constant=True)
    summary = param.String(default="", constant=True, doc="One-line caption: what passes the cut.")

    def __init__(self, cut: ThresholdCut, tables: dict[str, MigrationTable], **params):
        self._tables: dict[str, MigrationTable] = {}
        super().__init__(cut=cut, **params)
        self.set_tables(tables)

    def set_tables(self, tables: dict[str, MigrationTable]) -> None:
        """Replace the samples (e.g. after the signal class changed), keeping the selected name if possible."""
        self._tables = dict(tables)
        self.param.table.objects = list(self._tables)
        if self.table not in self._tables:
            with param.discard_events(self):
                self.table = next(iter(self._tables))
        self._update()

    @property
    def current(self) -> MigrationTable:
        """The selected MigrationTable."""
        return self._tables[self.table]

    @param.depends("cut.threshold", "table", "normalisation", "selection", watch=True)
    def _update(self) -> None:
        if self.table not in self._tables:
            return
        tab = self.current
        above = self.selection == _ABOVE or not tab.selectable
        counts = tab.counts(self.cut.threshold, above)
        if self.normalisation == "row %":
            values = 100.0 * np.asarray(normalise_rows(counts))
        elif self.normalisation == "column %":
            values = 100.0 * np.asarray(normalise_columns(counts))
        else:
            values = counts
        selected = float(counts.sum())
        share = 100.0 * selected / tab.total if tab.total > 0 else 0.0
        op = "≥" if above else "<"
        what = (f"{tab.description}: {selected:,.1f} weighted events with {self.cut.score_label} "
                f"{op} {self.cut.threshold:.4g} ({share:.2f} % of {tab.total:,.1f})")
        if not tab.selectable:
            what = (f"{tab.description}: predicted signal when {self.cut.score_label} ≥ "
                    f"{self.cut.threshold:.4g}, else the most probable other class")
        with param.edit_constant(self):
            # One batched update: views watching several of these re-render once, not four times.
            self.param.update(counts=counts, shown=values, row_names=list(tab.row_names),
                              col_names=list(tab.col_names), summary=what)
