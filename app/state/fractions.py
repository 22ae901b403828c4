"""Editable class fractions f_j, one numeric parameter per class.

The discriminant ``D_k = log10(p_k / sum_{j != k} f_j p_j)`` uses the expected fraction of each class
in the analysed sample; an analyst edits them to see how the discriminants, ROC curves and
distributions would look for another sample composition. The number of classes and their names come
from the run, so the Parameterized class is made per tuple of class names (one Number per class,
which lets the editor build its widgets with ``.from_param`` like every other view).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import param

__all__ = ["ClassFractions", "class_fractions_state"]


class ClassFractions(param.Parameterized):
    """Base of the per-run fraction classes: parameters ``f0 .. f{k-1}`` labelled ``f_<class>``.

    Values need not sum to one; ``normalised()`` gives what the discriminants use.
    """

    reset = param.Event(doc="Restore the training fractions.")

    def __init__(self, class_names: Sequence[str], defaults: Sequence[float], **params):
        self.class_names = tuple(class_names)
        self.defaults = np.asarray(defaults, dtype=np.float64)
        super().__init__(**params)

    @property
    def names(self) -> list[str]:
        """Parameter names, one per class (``f0`` ...)."""
        return [f"f{i}" for i in range(len(self.class_names))]

    def values(self) -> np.ndarray:
        """The fractions as typed, in class order."""
        return np.array([getattr(self, n) for n in self.names], dtype=np.float64)

    def normalised(self) -> np.ndarray:
        """Fractions scaled to sum to one (the training fractions if all were set to zero)."""
        v = self.values()
        return v / v.sum() if v.sum() > 0 else self.defaults / self.defaults.sum()

    def set_values(self, values: Sequence[float]) -> None:
        """Set all fractions at once (one update event, so derived views recompute once)."""
        self.param.update({n: float(v) for n, v in zip(self.names, values)})

    @param.depends("reset", watch=True)
    def _reset(self) -> None:
        self.set_values(self.defaults)


@lru_cache(maxsize=64)
def _fractions_class(class_names: tuple[str, ...]) -> type[ClassFractions]:
    # One class per set of class names, shared by sessions (instances still hold their own values).
    params = {
        f"f{i}": param.Number(default=1.0 / len(class_names), bounds=(0.0, None), softbounds=(0.0, 1.0),
                              step=0.005, label=f"f_{name}", doc=f"Expected fraction of class {name!r}.")
        for i, name in enumerate(class_names)
    }
    suffix = re.sub(r"\W", "_", "_".join(class_names))[:60]
    return param.parameterized_class(f"ClassFractions_{suffix}", params, bases=ClassFractions)


def class_fractions_state(class_names: Sequence[str], defaults: Sequence[float]) -> ClassFractions:
    """A ClassFractions for these classes, starting at ``defaults`` (the training fractions)."""
    names = tuple(str(c) for c in class_names)
    defaults = np.asarray(defaults, dtype=np.float64)
    if defaults.shape != (len(names),):
        raise ValueError(f"need one default fraction per class {names}; got {defaults.tolist()}")
    cls = _fractions_class(names)
    obj = cls(names, defaults)
    obj.set_values(defaults)
    return obj
