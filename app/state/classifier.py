"""Per-class scores of a classifier and what the distribution and ROC views derive from them.

The score of class k is either the discriminant ``D_k`` at the current class fractions (the He study)
or the probability ``p_k`` (a user's run). Editing a fraction recomputes ``D`` with
``hepml_core.scoring.discriminants.discriminants`` and then the histograms and ROC curves, once per
edit (the fraction parameters are watched as a batch). Curves are thinned to a few hundred points for
drawing; AUCs come from the full curves via ``hepml_core.metrics.roc``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import param

from hepml_core.metrics.roc import RocCurve, background_rejection, one_vs_rest, roc_auc
from hepml_core.scoring.discriminants import discriminants

from app.state._memo import memo_on
from app.state.fractions import ClassFractions
from app.state.histograms import GroupedHistogram, grouped_histogram, nice_range
from app.state.samples import ScoredEvents

__all__ = ["ClassifierScores", "CurveXY", "SCORE_KINDS", "score_axis_label"]

SCORE_KINDS = ("D", "p")
_MAX_POINTS = 400


def score_axis_label(kind: str, class_name: str) -> str:
    """Axis label of class ``class_name``'s score, with its definition (scores are dimensionless)."""
    if kind == "D":
        return f"D_{class_name} = log10(p_{class_name} / Σ_j≠{class_name} f_j p_j)"
    return f"p_{class_name} (classifier probability)"


@dataclass(frozen=True)
class CurveXY:
    """A curve ready to draw: thinned points, the class it belongs to and its area under the ROC."""

    name: str
    x: np.ndarray
    y: np.ndarray
    auc: float


def _thin(fpr: np.ndarray, tpr: np.ndarray, n: int = _MAX_POINTS) -> np.ndarray:
    """Indices of at most ~2n points that follow the curve closely along both axes."""
    if len(fpr) <= 2 * n:
        return np.arange(len(fpr))
    grid = np.linspace(0.0, 1.0, n)
    log_grid = np.logspace(-5, 0, n // 2)  # resolve the low-fpr corner, where rejection lives
    idx = np.concatenate([
        np.searchsorted(fpr, grid), np.searchsorted(tpr, grid), np.searchsorted(fpr, log_grid), [0, len(fpr) - 1]
    ])
    return np.unique(np.clip(idx, 0, len(fpr) - 1))


class ClassifierScores(param.Parameterized):
    """Scores, per-class histograms and one-vs-rest ROC curves of a labelled sample.

    Args:
        events: the labelled MC/test events.
        fractions: class fractions used for ``D_k`` (ignored for ``score_kind="p"``).
        data: optional unlabelled data scored by the same classifier, drawn as points over the MC.
    """

    fractions = param.ClassSelector(class_=ClassFractions, doc="Class fractions f_j for the discriminants.")
    score_kind = param.Selector(default="D", objects=list(SCORE_KINDS), doc="D_k discriminants or p_k.")
    roc_mode = param.Selector(default="ROC", objects=["ROC", "background rejection"],
                              doc="Signal efficiency vs background efficiency, or rejection vs efficiency.")
    stacked = param.Boolean(default=False, doc="Stack the class histograms instead of overlaying them.")
    log_y = param.Boolean(default=True, doc="Logarithmic y axis for the distributions.")
    bins = param.Integer(default=50, bounds=(10, 200))

    scores = param.Array(default=None, constant=True, precedence=-1, doc="(n, k) current scores of the MC.")
    histograms = param.List(default=[], constant=True, precedence=-1, doc="GroupedHistogram per score.")
    data_histograms = param.List(default=[], constant=True, precedence=-1)
    rocs = param.List(default=[], constant=True, precedence=-1, doc="CurveXY per class (ROC axes).")
    aucs = param.Dict(default={}, constant=True, precedence=-1, doc="{class: AUC} of one-vs-rest ROCs.")

    def __init__(self, events: ScoredEvents, fractions: ClassFractions, data: ScoredEvents | None = None,
                 **params):
        self.events = events
        self.data = data
        self._known = events.subset(events.known()) if not events.known().all() else events
        super().__init__(fractions=fractions, **params)
        # Watching the fraction parameters as one batch: ``set_values``/reset recompute once.
        fractions.param.watch(self._on_fractions, fractions.names)
        self._recompute()

    def class_scores(self, events: ScoredEvents) -> np.ndarray:
        """(n, k) scores of any events at the current settings."""
        if self.score_kind == "p":
            return np.asarray(events.proba)
        return discriminants(events.proba, self.fractions.normalised())

    def _on_fractions(self, *events) -> None:
        if self.score_kind == "D":
            self._recompute()

    @param.depends("score_kind", "bins", watch=True)
    def _recompute(self) -> None:
        f = self.fractions
        at_defaults = self.score_kind == "p" or np.allclose(f.normalised(), f.defaults / f.defaults.sum())
        if at_defaults:
            # Every session opens a run at its training fractions: share those (read-only) results.
            # Edited fractions are computed per session and not kept (one entry per edit would grow).
            key = ("classifier", self.score_kind, self.bins, self.data is not None)
            result = memo_on(self.events, key, self._compute)
        else:
            result = self._compute()
        with param.edit_constant(self):
            self.param.update(**result)

    def _compute(self) -> dict:
        ev = self._known
        s = self.class_scores(ev)
        hists, data_hists = [], []
        data_s = self.class_scores(self.data) if self.data is not None else None
        for k in range(ev.n_classes):
            lo, hi = (0.0, 1.0) if self.score_kind == "p" else nice_range(s[:, k])
            edges = np.linspace(lo, hi, self.bins + 1)
            hists.append(grouped_histogram(s[:, k], ev.truth, ev.class_names, edges, ev.weight))
            if data_s is not None:
                data_hists.append(grouped_histogram(data_s[:, k], np.zeros(len(data_s), np.int64), ("data",),
                                                    edges, self.data.weight))
        curves, aucs = [], {}
        for k, roc in enumerate(one_vs_rest(ev.truth, s, sample_weight=ev.weight)):
            name = ev.class_names[k]
            fpr, tpr = np.asarray(roc.fpr), np.asarray(roc.tpr)
            if not (np.isfinite(fpr).all() and len(fpr) > 1):
                continue  # class absent from the sample: no curve to draw
            auc = float(roc_auc(ev.truth == k, s[:, k], sample_weight=ev.weight))
            idx = _thin(fpr, tpr)
            curves.append(CurveXY(name, fpr[idx], tpr[idx], auc))
            aucs[name] = auc
        s.flags.writeable = False
        return dict(scores=s, histograms=hists, data_histograms=data_hists, rocs=curves, aucs=aucs)

    def roc_points(self, curve: CurveXY) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) of a curve in the current ``roc_mode``: (ε_B, ε_S) or (ε_S, 1 − ε_B)."""
        if self.roc_mode == "ROC":
            return curve.x, curve.y
        eff, rej = background_rejection(RocCurve(curve.x, curve.y, np.zeros_like(curve.x)))
        return np.asarray(eff), np.asarray(rej)

    def histogram(self, k: int) -> GroupedHistogram:
        """The MC histogram of class k's score, split by true class."""
        return self.histograms[k]
