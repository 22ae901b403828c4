"""One threshold on one score, shared by every view that depends on it.

The migration matrix, the anomaly-score histogram's threshold line, the flagged fractions and the
cut-efficiency marker all follow the same number. Keeping that number in one small Parameterized that
each state object references (``@param.depends("cut.threshold")``) means there is a single source of
truth and a single slider, instead of several parameters kept in step by hand.
"""

from __future__ import annotations

import param

__all__ = ["ThresholdCut"]


class ThresholdCut(param.Parameterized):
    """A threshold on a named score; events with ``score >= threshold`` pass ("are flagged").

    Args:
        threshold: starting value.
        score_label: the score's name with its meaning/unit, used for axis labels and captions.
        low, high: slider range (the score's plausible range in this sample).
    """

    threshold = param.Number(default=0.08, bounds=(0.0, 1.0), step=0.001, doc="Cut value on the score.")
    score_label = param.String(default="anomaly score", doc="Axis label of the score.")

    def __init__(self, *, low: float = 0.0, high: float = 1.0, step: float | None = None, **params):
        super().__init__(**params)
        self.set_range(low, high, step)

    def set_range(self, low: float, high: float, step: float | None = None) -> None:
        """Change the allowed range (per instance), clamping the current threshold into it."""
        if not high > low:
            high = low + 1.0
        # Accessing ``self.param.threshold`` gives this instance's own copy of the Parameter, so other
        # sessions' sliders keep their ranges.
        p = self.param.threshold
        p.bounds = (float(low), float(high))
        p.step = float(step) if step else _nice_step(high - low)
        self.threshold = min(max(self.threshold, low), high)


def _nice_step(span: float) -> float:
    """A round slider step giving roughly 500-1000 positions over ``span``."""
    raw = span / 500.0
    for base in (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0):
        if base >= raw:
            return base
    return raw
