"""Downloads from every view: CSV of a table as shown, the page's cut as JSON, a static HTML report.

Plots need nothing here: every Bokeh toolbar keeps its save tool (PNG; see ``PLOT_OPTS`` in
``app.components.style``). The payloads come from plain functions (``frame_csv``, ``cut_json``,
``report_html``) that the tests call directly; the widgets only hand them to ``pn.widgets.FileDownload``
callbacks, which run when the button is pressed, so a download holds what the page shows at that moment.
The report renders on a worker thread (seconds of HoloViews/Bokeh work must not freeze every session's
event loop) into a private temp folder, is read back and streamed, and the folder is removed.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import panel as pn

from app.state.links import PageLink

__all__ = ["frame_csv", "shown_frame", "csv_download", "with_csv", "cut_json", "cut_section", "report_html",
           "ExportBar"]

#: writes the HTML report of the shown run to ``path``; gets the cut definition to put in it
ReportWriter = Callable[[Path, dict], object]

_BUTTON = dict(color="light", height=32, margin=(4, 5))


def shown_frame(source) -> tuple[pd.DataFrame, bool]:
    """The table a widget shows now, and whether its index is shown.

    Args:
        source: a ``Tabulator`` (its filtered and sorted view), a ``DataFrame`` pane, a DataFrame, or a
            function returning one.
    """
    if isinstance(source, pn.widgets.Tabulator):
        frame = source.current_view if source.value is not None else pd.DataFrame()
        return frame, bool(source.show_index)
    if isinstance(source, pn.pane.DataFrame):
        return (source.object if source.object is not None else pd.DataFrame()), bool(source.index)
    if callable(source) and not isinstance(source, pd.DataFrame):
        return shown_frame(source())
    if isinstance(source, pd.DataFrame):
        return source, False
    raise TypeError(f"cannot export {type(source).__name__} as CSV; pass a Tabulator, DataFrame pane or DataFrame")


def frame_csv(frame: pd.DataFrame, index: bool = False) -> str:
    """CSV text of a table: its columns in order, full precision, the index only if it means something."""
    frame = frame.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" ".join(str(p) for p in c if str(p)) for c in frame.columns]
    keep_index = index and not isinstance(frame.index, pd.RangeIndex)
    return frame.to_csv(index=keep_index)


def csv_download(source, filename: str, *, label: str = "CSV") -> pn.widgets.FileDownload:
    """A small button that downloads ``source`` (see ``shown_frame``) as CSV when pressed."""
    def payload():
        return io.StringIO(frame_csv(*shown_frame(source)))

    return pn.widgets.FileDownload(callback=payload, filename=filename, label=f"⤓ {label}", width=80,
                                   align="end", description=f"Download this table as {filename}",
                                   css_classes=["csv-download"], **_BUTTON)


def with_csv(table, filename: str, **params) -> pn.Column:
    """``table`` with its CSV download button below it, right-aligned."""
    return pn.Column(table, csv_download(table, filename), **{"sizing_mode": "stretch_width", **params})


def cut_json(link: PageLink) -> str:
    """The page's cut definition as indented JSON (see ``PageLink.cut_definition``)."""
    return json.dumps(link.cut_definition(), indent=2, allow_nan=False, default=str) + "\n"


def cut_section(cut: dict) -> tuple[str, pn.pane.Markdown]:
    """The report's first section: the cut the analyst had set in the app when exporting."""
    text = json.dumps(cut, indent=2, allow_nan=False, default=str)
    return ("Cut shown in the app when this report was made", pn.pane.Markdown(f"```json\n{text}\n```",
                                                                              sizing_mode="stretch_width"))


def report_html(write: ReportWriter, cut: dict) -> bytes:
    """Render a report into a private temp folder and return its bytes; the folder is always removed."""
    folder = Path(tempfile.mkdtemp(prefix="hepml-report-"))  # mode 0700: other users cannot read it
    try:
        path = folder / "report.html"
        write(path, cut)
        return path.read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class ExportBar(pn.viewable.Viewer):
    """"Cut as JSON" and "Report (HTML)" downloads of one page, and a line that says when one failed.

    Args:
        link: the page's PageLink (run, thresholds, selectors, fractions).
        report: writes the shown run's HTML report (None: the page has no report).
    """

    def __init__(self, link: PageLink, report: ReportWriter | None = None, **params):
        super().__init__(**params)
        self.link = link
        self._report = report
        self.json_button = pn.widgets.FileDownload(
            callback=self._json_file, filename=f"{link.page}-cut.json", label="Cut as JSON", width=130,
            description="The run, thresholds, selectors and class fractions shown, as JSON",
            css_classes=["export-json"], **_BUTTON)
        self.report_button = pn.widgets.FileDownload(
            callback=self._report_file, filename=f"{link.page}-report.html", label="Report (HTML)", width=130,
            description="A static HTML report of the shown run (takes a few seconds)",
            css_classes=["export-report"], visible=report is not None, **_BUTTON)
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width",
                                     css_classes=["export-message"])
        share = pn.pane.Markdown("The address bar holds this run and these cuts: copy it to share the view.",
                                 disable_math=True, margin=(0, 10), styles={"font-size": "0.85em", "color": "#555"})
        self._layout = pn.Column(pn.Row(self.json_button, self.report_button), share, self.message,
                                 sizing_mode="stretch_width", css_classes=["export-bar"])

    def _stem(self) -> str:
        return f"{self.link.page}-{self.link.run}" if self.link.run else self.link.page

    def _fail(self, text: str) -> None:
        self.message.param.update(object=text, visible=True)

    def _json_file(self) -> io.StringIO:
        self.message.visible = False
        self.json_button.filename = f"{self._stem()}-cut.json"
        return io.StringIO(cut_json(self.link))

    async def _report_file(self) -> io.BytesIO:
        run = self.link.run
        if self._report is None or run is None:
            self._fail("No run is shown, so there is no report to write: train or select a run first.")
            raise RuntimeError("no run shown")
        self.message.visible = False
        self.report_button.loading = True
        try:
            # loop.run_in_executor does not copy the session's context: the report renders document-free.
            data = await asyncio.get_running_loop().run_in_executor(
                None, report_html, self._report, self.link.cut_definition())
        except Exception as err:
            self._fail(f"The report of run {run} could not be written: {type(err).__name__}: {err}")
            raise
        finally:
            self.report_button.loading = False
        self.report_button.filename = f"{self.link.page}-{run}-report.html"
        return io.BytesIO(data)

    def __panel__(self):
        return self._layout
