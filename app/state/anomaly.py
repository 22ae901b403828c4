"""Anomaly-score distributions of the MC classes and the data, the flagged fractions and top events.

The histograms and the table of the most anomalous data events do not depend on the threshold and are
built once. What follows the threshold are the flagged fractions: one ``ThresholdScan`` over all
events with group code (MC class 0..K-1, data K) answers them with K+1 binary searches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import param

from hepml_core.metrics.threshold import ThresholdScan

from app.state._memo import memo_on
from app.state.cut import ThresholdCut
from app.state.histograms import GroupedHistogram, grouped_histogram
from app.state.samples import ScoredEvents

__all__ = ["AnomalyState", "DATA_NAME"]

DATA_NAME = "data"


class AnomalyState(param.Parameterized):
    """Anomaly-score view state of an MC sample and a data sample scored by the same autoencoder.

    Args:
        cut: the shared threshold on the anomaly score.
        mc: labelled MC events with an ``anomaly`` extra.
        data: data events with an ``anomaly`` extra (their ``truth`` is shown only as "toy truth").
        top_n: rows in the most-anomalous table.
        bins: histogram bins.
    """

    cut = param.ClassSelector(class_=ThresholdCut)
    log_y = param.Boolean(default=True)
    top_n = param.Integer(default=25, bounds=(5, 500))

    histogram = param.ClassSelector(class_=GroupedHistogram, constant=True, precedence=-1)
    flagged = param.Dict(default={}, constant=True, precedence=-1,
                         doc="{group: (flagged weight, total weight)} at the threshold.")
    summary = param.String(default="", constant=True)
    top_events = param.DataFrame(default=None, constant=True, precedence=-1)

    def __init__(self, cut: ThresholdCut, mc: ScoredEvents, data: ScoredEvents | None, *, bins: int = 60,
                 **params):
        self.mc, self.data = mc.subset(mc.known()) if not mc.known().all() else mc, data
        super().__init__(cut=cut, **params)
        self.group_names = (*self.mc.class_names, DATA_NAME) if data is not None else self.mc.class_names
        # The histogram and the sorted scan depend only on the shared events: built once per server.
        prepared = memo_on(mc, ("anomaly", id(data), bins), lambda: self._prepare(bins))
        cut.set_range(0.0, prepared["high"])
        with param.edit_constant(self):
            self.histogram = prepared["histogram"]
        self._scan, self._data_sorted = prepared["scan"], prepared["data_sorted"]
        self._totals = np.asarray(self._scan.totals_, dtype=np.float64)
        self._n_data = len(data) if data is not None else 0
        self._update_flagged()
        self._update_top()

    def _prepare(self, bins: int) -> dict:
        k, data = self.mc.n_classes, self.data
        parts = [(self.mc.extras["anomaly"], self.mc.truth, self.mc.weight)]
        if data is not None:
            parts.append((data.extras["anomaly"], np.full(len(data), k, np.int64), data.weight))
        score = np.concatenate([p[0] for p in parts])
        groups = np.concatenate([p[1] for p in parts])
        weights = np.concatenate([p[2] for p in parts])
        hi = float(np.quantile(score, 0.9999)) if len(score) > 10_000 else float(score.max())
        hi = min(1.0, max(hi * 1.05, 1e-3))
        edges = np.linspace(0.0, hi, bins + 1)
        data_sorted = np.sort(data.extras["anomaly"]) if data is not None else None
        return {"high": hi, "histogram": grouped_histogram(score, groups, self.group_names, edges, weights),
                "scan": ThresholdScan(score, groups, sample_weight=weights, n_classes=len(self.group_names)),
                "data_sorted": data_sorted}

    @param.depends("cut.threshold", watch=True)
    def _update_flagged(self) -> None:
        t = self.cut.threshold
        above = np.asarray(self._scan.yields_above(t), dtype=np.float64)
        flagged = {name: (float(above[i]), float(self._totals[i])) for i, name in enumerate(self.group_names)}
        parts = [f"{name} {100 * a / tot:.2f} %" if tot > 0 else f"{name} –" for name, (a, tot) in flagged.items()]
        text = f"Flagged with {self.cut.score_label} ≥ {t:.4g}: " + ", ".join(parts)
        if self._data_sorted is not None:
            n = self._n_data - int(np.searchsorted(self._data_sorted, t, side="left"))
            text += f" ({n:,} data events)"
        with param.edit_constant(self):
            self.param.update(flagged=flagged, summary=text)

    def flagged_fraction(self, group: str) -> float:
        """Weighted fraction of ``group`` at or above the threshold."""
        a, tot = self.flagged[group]
        return a / tot if tot > 0 else 0.0

    @param.depends("top_n", watch=True)
    def _update_top(self) -> None:
        if self.data is None:
            with param.edit_constant(self):
                self.top_events = pd.DataFrame()
            return
        d = self.data
        score = d.extras["anomaly"]
        n = min(self.top_n, len(score))
        idx = np.argpartition(-score, n - 1)[:n] if n < len(score) else np.arange(len(score))
        idx = idx[np.argsort(-score[idx], kind="stable")]
        table = {"rank": np.arange(1, n + 1), "anomaly score": score[idx],
                 "predicted": np.asarray(d.class_names, dtype=object)[d.predicted[idx]],
                 # The toy data carries its generator truth; real data would not, hence the name.
                 "toy truth": np.asarray(d.truth_names, dtype=object)[d.truth[idx]]}
        for j, name in enumerate(d.class_names):
            table[f"p_{name}"] = d.proba[idx, j]
        table["event"] = idx  # row number within the data sample
        with param.edit_constant(self):
            self.top_events = pd.DataFrame(table)
