"""Editor of the class fractions f_j used by the discriminants, with the normalised values shown."""

from __future__ import annotations

import panel as pn

from app.components.style import markdown
from app.state.fractions import ClassFractions

__all__ = ["ClassFractionsEditor"]


class ClassFractionsEditor(pn.viewable.Viewer):
    """One numeric input per class, a Reset button and the fractions as the discriminants use them.

    Args:
        fractions: the ClassFractions state (edits propagate to every view built on it).
    """

    def __init__(self, fractions: ClassFractions, **params):
        super().__init__(**params)
        self.fractions = fractions
        inputs = [
            pn.widgets.FloatInput.from_param(fractions.param[n], step=0.005, format="0.000", width=110,
                                             css_classes=[f"fraction-{c}"])
            for n, c in zip(fractions.names, fractions.class_names)
        ]
        reset = pn.widgets.Button.from_param(fractions.param.reset, label="Reset to training fractions",
                                             color="light", sizing_mode="stretch_width")
        note = markdown(pn.bind(self._normalised, *[fractions.param[n] for n in fractions.names]),
                                margin=(0, 5), styles={"font-size": "0.85em"})
        self._layout = pn.Column(
            markdown("**Class fractions f_j**", margin=(5, 5, 0, 5)),
            pn.GridBox(*inputs, ncols=2),
            note,
            reset,
            sizing_mode="stretch_width",
        )

    def _normalised(self, *values) -> str:
        f = self.fractions.normalised()
        parts = ", ".join(f"{c} {v:.3f}" for c, v in zip(self.fractions.class_names, f))
        return f"Used (normalised to 1): {parts}"

    def __panel__(self):
        return self._layout

