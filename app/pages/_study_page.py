"""The frame every study page shares: run selector, header, controls, tabs, and the Train tab's wiring.

A study page subclasses ``StudyPageFrame``, calls ``_init_frame`` first, builds its form, TrainControl
and train panel, then calls ``_start``; it only writes ``_show_run`` (what one saved result shows),
``_link_fields`` (what of it a shared link carries), ``_report_result`` and ``template`` (its sidebar).
The empty and broken-run states, the shareable link and the exports look the same on every page.
"""

from __future__ import annotations

from collections.abc import Callable

import panel as pn
import param

from app.components.export import ExportBar, cut_section
from app.components.runs import RunSelector
from app.pages._layout import link_notice, message
from app.state.links import LinkField, PageLink, session_location
from app.state.loaders import runs_dir_of
from app.state.runs import RunChoice
from app.state.training import TrainingService, get_service

__all__ = ["StudyPageFrame"]


class StudyPageFrame(pn.viewable.Viewer):
    """Shared state and layout of one session's study page (see the module docstring).

    Subclasses set ``ROUTE`` (the page's URL path) and ``STUDY`` (the study name, also the report's) and
    define ``_show_run(*events)``, which fills header, controls and tabs for ``self.choice.run`` and ends
    with ``self._link_view()``; ``_link_fields()``, the state's parameters a shared link carries; and
    ``_report_result(run_id)``, the study result the HTML report is made of.
    """

    ROUTE: str = ""
    STUDY: str = ""

    def _init_frame(self, runs_dir: str, service: TrainingService | None,
                    list_runs: Callable[[str], list], location=None) -> None:
        """Run store, training service, run choice, the link and exports, the empty header/controls/tabs.

        Args:
            location: the session's ``Location`` (default: the served session's, none in a notebook).
        """
        self.runs_dir = runs_dir_of(runs_dir)
        self.service = service or get_service(self.runs_dir)
        self.choice = RunChoice(lambda: list_runs(self.runs_dir))
        self.link = PageLink(self.ROUTE, study=self.STUDY,
                             location=location if location is not None else session_location())
        self.link.bind_run(self.choice)  # before anything reads choice.run: the link may name another run
        self.exports = ExportBar(self.link, self._write_report)
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

    def _link_fields(self) -> list[LinkField]:
        """The shown state's parameters that a shared link carries (thresholds, selectors)."""
        return []

    def _link_view(self) -> None:
        """Put the shown run's thresholds and selectors in the link (and apply the opened link's)."""
        self.link.bind_view(self._link_fields() if self.state is not None else [])

    def _report_result(self, run_id: str):
        """The study result of ``run_id`` that the report renders (read on the report's worker thread).

        Every study page defines it (its study's ``load_*`` function); the frame cannot know which one.
        """
        raise NotImplementedError(f"{type(self).__name__} must define _report_result (which study result "
                                  "its report renders)")

    def _write_report(self, path, cut: dict) -> None:
        from app.report import write_study_report

        write_study_report(self.STUDY, self._report_result(cut["run_id"]), path, extra_sections=[cut_section(cut)])

    def _sidebar_exports(self) -> list:
        """The sidebar's share/export block (after the page's controls)."""
        return [self.exports]

    def _main(self) -> list:
        """The main area: the link's notice, the header and the tabs."""
        return [link_notice(self.link), self._header, self._tabs]

    def _show_nothing_saved(self, text: str) -> None:
        """No saved study yet: say so, and offer the Train tab."""
        self.state = None
        self._link_view()
        self._header.object = ""
        self._controls[:] = []
        self._tabs[:] = [("Train", pn.Column(message(text), self.train_panel, sizing_mode="stretch_width"))]

    def _show_broken_run(self, err: Exception) -> None:
        """A run folder that cannot be shown: name it and why, and keep the page (and Train) alive."""
        self.state = None
        self._link_view()
        self._controls[:] = []
        self._tabs[:] = [("Error", message(f"Cannot show run {self.choice.run}: {err}", "danger")),
                         ("Train", self.train_panel)]

    def __panel__(self):
        return pn.Column(link_notice(self.link), self._header,
                         pn.Row(pn.Column(RunSelector(self.choice), self._controls, self.exports, width=320),
                                self._tabs, sizing_mode="stretch_width"), sizing_mode="stretch_width")
