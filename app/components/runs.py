"""Run selector: which saved run the page shows, with a refresh for runs saved by others."""

from __future__ import annotations

import panel as pn

from app.state.runs import RunChoice

__all__ = ["RunSelector"]


class RunSelector(pn.viewable.Viewer):
    """A Select of the runs a page can show and a refresh button.

    Args:
        choice: the RunChoice state.
        label: the Select's title ("He study run", "your run").
    """

    def __init__(self, choice: RunChoice, *, label: str = "run", **params):
        super().__init__(**params)
        self.choice = choice
        select = pn.widgets.Select.from_param(choice.param.run, label=label, sizing_mode="stretch_width",
                                              css_classes=["run-select"])
        refresh = pn.widgets.Button.from_param(choice.param.refresh, label="↻", width=40, align="end",
                                               color="light", description="Re-read the run list")
        self._layout = pn.Row(select, refresh, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout
