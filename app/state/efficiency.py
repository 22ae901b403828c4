"""Signal-vs-rest views of a user's run: TMVA's cut-efficiency scan and the overtraining check.

Both follow one ``SignalChoice`` (which class is signal). The cut-efficiency table over a grid of
thresholds is rebuilt only when the signal class or the expected yields change; the numbers at the
current threshold come from one extra ``ThresholdScan`` query, so moving the cut stays O(log n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import param

from hepml_core.metrics.efficiency import cut_efficiency_table
from hepml_core.metrics.overtraining import overtraining_check
from hepml_core.metrics.threshold import ThresholdScan

from app.state.cut import ThresholdCut
from app.state.histograms import GroupedHistogram, grouped_histogram
from app.state.samples import ScoredEvents

__all__ = ["SignalChoice", "CutEfficiencyState", "OvertrainingState"]


class SignalChoice(param.Parameterized):
    """Which of the run's classes is the signal (all others are background)."""

    signal = param.Selector(default=None, objects=[])

    def __init__(self, class_names: Sequence[str], signal: str | None = None, **params):
        super().__init__(**params)
        self.param.signal.objects = list(class_names)
        self.signal = signal if signal in class_names else class_names[0]

    @property
    def index(self) -> int:
        """Class code of the signal."""
        return self.param.signal.objects.index(self.signal)


class CutEfficiencyState(param.Parameterized):
    """Efficiency, purity, S, B and S/sqrt(S+B) vs a cut on ``p_signal``, and their values at the cut.

    Args:
        events: labelled events (usually the test split).
        choice: the shared signal choice.
        cut: the shared threshold on ``p_signal``.
        n_points: thresholds in the scan grid.
    """

    choice = param.ClassSelector(class_=SignalChoice)
    cut = param.ClassSelector(class_=ThresholdCut)
    n_signal = param.Number(default=None, allow_None=True, bounds=(0, None),
                            doc="Expected signal events before the cut (empty: the weighted MC total).")
    n_background = param.Number(default=None, allow_None=True, bounds=(0, None),
                                doc="Expected background events before the cut (empty: the weighted MC total).")

    table = param.DataFrame(default=None, constant=True, precedence=-1)
    at_cut = param.Dict(default={}, constant=True, precedence=-1, doc="The table's row at the threshold.")
    best_threshold = param.Number(default=0.5, constant=True, doc="Threshold of maximal S/sqrt(S+B).")
    summary = param.String(default="", constant=True)

    def __init__(self, events: ScoredEvents, choice: SignalChoice, cut: ThresholdCut, *, n_points: int = 201,
                 **params):
        self.events = events.subset(events.known()) if not events.known().all() else events
        self._grid = np.linspace(0.0, 1.0, n_points)
        self._scans: dict[int, ThresholdScan] = {}
        super().__init__(choice=choice, cut=cut, **params)
        self._rebuild()

    def scan(self) -> ThresholdScan:
        """The scan of the current signal's probability (built on first use, then kept)."""
        k = self.choice.index
        if k not in self._scans:
            ev = self.events
            self._scans[k] = ThresholdScan(ev.proba[:, k], ev.truth, sample_weight=ev.weight,
                                           n_classes=ev.n_classes)
        return self._scans[k]

    @param.depends("choice.signal", "n_signal", "n_background", watch=True)
    def _rebuild(self) -> None:
        table = cut_efficiency_table(self.scan(), self.choice.index, self._grid, self.n_signal, self.n_background)
        best = float(table["threshold"].iloc[int(np.argmax(table["significance"].to_numpy()))])
        with param.edit_constant(self):
            self.param.update(table=table, best_threshold=best)
        self._at_cut()

    @param.depends("cut.threshold", watch=True)
    def _at_cut(self) -> None:
        row = cut_efficiency_table(self.scan(), self.choice.index, [self.cut.threshold], self.n_signal,
                                   self.n_background).iloc[0].to_dict()
        text = (f"At p_{self.choice.signal} ≥ {row['threshold']:.4g}: signal efficiency {row['signal_eff']:.3f}, "
                f"background efficiency {row['background_eff']:.4f}, purity {row['purity']:.3f}, "
                f"S = {row['s']:,.1f}, B = {row['b']:,.1f}, S/√(S+B) = {row['significance']:.2f} "
                f"(best {self.table['significance'].max():.2f} at {self.best_threshold:.4g})")
        with param.edit_constant(self):
            self.param.update(at_cut=row, summary=text)


class OvertrainingState(param.Parameterized):
    """Train-vs-test distributions of ``p_signal`` for signal and background, with KS p-values.

    Args:
        train, test: labelled events of the two splits.
        choice: the shared signal choice.
        bins: histogram bins on [0, 1].
    """

    choice = param.ClassSelector(class_=SignalChoice)
    bins = param.Integer(default=40, bounds=(10, 200))

    train_hist = param.ClassSelector(class_=GroupedHistogram, constant=True, precedence=-1)
    test_hist = param.ClassSelector(class_=GroupedHistogram, constant=True, precedence=-1)
    ks = param.Dict(default={}, constant=True, precedence=-1, doc="{'signal'|'background': KSResult}")
    summary = param.String(default="", constant=True)

    def __init__(self, train: ScoredEvents, test: ScoredEvents, choice: SignalChoice, **params):
        self.train = train.subset(train.known()) if not train.known().all() else train
        self.test = test.subset(test.known()) if not test.known().all() else test
        super().__init__(choice=choice, **params)
        self._rebuild()

    @param.depends("choice.signal", "bins", watch=True)
    def _rebuild(self) -> None:
        k = self.choice.index
        names = ("background", "signal")  # code 0 = rest, 1 = the signal class
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        hists, scores, codes, weights = {}, {}, {}, {}
        for split, ev in (("train", self.train), ("test", self.test)):
            scores[split] = ev.proba[:, k]
            codes[split] = (ev.truth == k).astype(np.int64)
            weights[split] = ev.weight
            hists[split] = grouped_histogram(scores[split], codes[split], names, edges, ev.weight)
        results = overtraining_check(scores["train"], codes["train"], scores["test"], codes["test"],
                                     weights["train"], weights["test"])
        ks = {names[code]: res for code, res in results.items()}
        text = "Kolmogorov–Smirnov train vs test: " + ", ".join(
            f"{name} p = {res.pvalue:.3f}" for name, res in ks.items())
        if any(res.pvalue < 0.01 for res in ks.values()):
            text += " — p < 0.01: the model scores its training events differently (overtraining?)"
        with param.edit_constant(self):
            self.param.update(train_hist=hists["train"], test_hist=hists["test"], ks=ks, summary=text)

    def frame(self) -> pd.DataFrame:
        """The KS results as a small table."""
        return pd.DataFrame([{"class": n, "KS statistic": r.statistic, "p-value": r.pvalue}
                             for n, r in self.ks.items()])
