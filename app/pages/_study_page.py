"""The frame every study page shares: run selector, header, controls, tabs, and the Train tab's wiring.

A study page subclasses ``StudyPageFrame``, calls ``_init_frame`` first, builds its form, TrainControl
and train panel, then calls ``_start``; it only writes ``_show_run`` (what one saved result shows) and
``template`` (its sidebar). The empty and broken-run states look the same on every page.
"""

from __future__ import annotations

from collections.abc import Callable

import panel as pn
import param

from app.components.runs import RunSelector
from app.pages._layout import message
from app.state.loaders import runs_dir_of
from app.state.runs import RunChoice
from app.state.training import TrainingService, get_service

__all__ = ["StudyPageFrame"]


class StudyPageFrame(pn.viewable.Viewer):
    """Shared state and layout of one session's study page (see the module docstring).

    Subclasses define ``_show_run(*events)``, which fills header, controls and tabs for ``self.choice.run``.
    """

    def _init_frame(self, runs_dir: str, service: TrainingService | None,
                    list_runs: Callable[[str], list]) -> None:
        """Run store, training service, run choice and the empty header/controls/tabs."""
        self.runs_dir = runs_dir_of(runs_dir)
        self.service = service or get_service(self.runs_dir)
        self.choice = RunChoice(lambda: list_runs(self.runs_dir))
        self.state = None
        self._controls = pn.Column(sizing_mode="stretch_width")
        self._tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width")
        self._header = pn.pane.Markdown("", sizing_mode="stretch_width", margin=(0, 10))

    def _start(self) -> None:
        """Follow the run choice and finished trainings (needs ``self.control``), then show the run."""
        # No attach to service.active(): the running job may be another study's or another user's.
        self.choice.param.watch(self._show_run, "run")
        self.control.param.watch(self._on_trained, "last_run_id")
        self._show_run()

    def _on_trained(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.choice.select(event.new)

    def _show_nothing_saved(self, text: str) -> None:
        """No saved study yet: say so, and offer the Train tab."""
        self.state = None
        self._header.object = ""
        self._controls[:] = []
        self._tabs[:] = [("Train", pn.Column(message(text), self.train_panel, sizing_mode="stretch_width"))]

    def _show_broken_run(self, err: Exception) -> None:
        """A run folder that cannot be shown: name it and why, and keep the page (and Train) alive."""
        self.state = None
        self._controls[:] = []
        self._tabs[:] = [("Error", message(f"Cannot show run {self.choice.run}: {err}", "danger")),
                         ("Train", self.train_panel)]

    def __panel__(self):
        return pn.Column(self._header, pn.Row(pn.Column(RunSelector(self.choice), self._controls, width=320),
                                              self._tabs, sizing_mode="stretch_width"), sizing_mode="stretch_width")
