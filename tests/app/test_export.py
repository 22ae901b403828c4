"""Exports: CSV of a table as shown, the cut as JSON, the static HTML report, and PNG on every plot.

Downloads are pressed the way the browser presses them (the FileDownload's click counter), and the file
the browser would receive is decoded from the widget's data URL.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import glob
import io
import json
import os
import tempfile
from html import unescape

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.models import SaveTool
from panel.io.location import Location
from study_runs import ROUTES, study_run

from app.components.export import ExportBar, csv_download, frame_csv
from app.state.links import LinkField, PageLink
from app.state.runs import RunChoice
from app.state.training import TrainingService


def _download(button: pn.widgets.FileDownload) -> bytes:
    """Press a (synchronous) download button and return the file the browser receives."""
    button._clicks += 1
    header, data = button.data.split(",", 1)
    assert header.startswith("data:") and header.endswith(";base64")
    return base64.b64decode(data)


def _reports_left() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "hepml-report-*"))


@pytest.fixture
def service():
    runs_dir, _ = study_run("he_study")
    svc = TrainingService(runs_dir)
    yield svc
    svc.shutdown()


def test_csv_holds_the_rows_the_table_shows_in_its_order():
    frame = pd.DataFrame({"event": [3, 1, 2, 4], "score": [0.125, 0.5, 0.25, 0.0625]})
    table = pn.widgets.Tabulator(frame, show_index=False, sorters=[{"field": "score", "dir": "desc"}])
    table.add_filter(lambda df: df[df["score"] > 0.1])  # the user's filter hides one row
    button = csv_download(table, "top.csv")
    shown = pd.read_csv(io.BytesIO(_download(button)))
    assert list(shown.columns) == ["event", "score"]
    assert shown["event"].tolist() == [1, 2, 3] and shown["score"].tolist() == [0.5, 0.25, 0.125]
    assert button.filename == "top.csv"
    # a later press reads the table as it is then
    table.value = frame.assign(score=frame["score"] * 2)
    again = pd.read_csv(io.BytesIO(_download(button)))
    assert again["score"].max() == 1.0
    # a named index is a column of the CSV; a plain row number is not
    assert frame_csv(frame.set_index("event"), index=True).splitlines()[0] == "event,score"
    assert frame_csv(frame, index=True).splitlines()[0] == "event,score"


def test_migration_matrix_csv_follows_the_threshold(service):
    from app.components.migration import MigrationMatrix
    from app.pages.he_study import HeStudyPage

    runs_dir, _ = study_run("he_study")
    page = HeStudyPage(runs_dir, service=service)
    s = page.state
    view = MigrationMatrix(s.migration)
    button = view._layout.select(pn.widgets.FileDownload)[0]
    s.migration.normalisation = "counts"
    lo, hi = s.cut.param.threshold.bounds
    s.cut.threshold = lo + 0.2 * (hi - lo)
    first = pd.read_csv(io.BytesIO(_download(button)))
    assert first["true class"].tolist() == list(s.migration.row_names)
    values = first[[f"predicted {c}" for c in s.migration.col_names]].to_numpy()
    np.testing.assert_allclose(values, s.migration.shown)
    assert set(first["unit"]) == {"weighted events"}
    s.cut.threshold = lo + 0.6 * (hi - lo)
    second = pd.read_csv(io.BytesIO(_download(button)))
    np.testing.assert_allclose(second[[f"predicted {c}" for c in s.migration.col_names]].to_numpy(), s.migration.shown)
    assert second.iloc[:, 2:].to_numpy().sum() < values.sum()  # a tighter cut flags fewer events
    # the most-anomalous-events table below it downloads exactly its rows
    table_button = page._tabs[0].select(pn.widgets.FileDownload)
    names = [b.filename for b in table_button]
    assert "top-anomalies.csv" in names and "migration-matrix.csv" in names
    top = pd.read_csv(io.BytesIO(_download(table_button[names.index("top-anomalies.csv")])))
    assert len(top) == len(s.anomaly.top_events)
    np.testing.assert_allclose(top.select_dtypes("number").to_numpy(),
                               s.anomaly.top_events[top.select_dtypes("number").columns].to_numpy())


def test_cut_json_names_study_run_thresholds_fractions_time_and_version(service):
    from hepml_core import __version__

    from app.pages.he_study import HeStudyPage

    runs_dir, run_id = study_run("he_study")
    page = HeStudyPage(runs_dir, service=service, location=Location(search="?threshold=0.05&f_other=0.25"))
    payload = json.loads(_download(page.exports.json_button))
    assert page.exports.json_button.filename == f"he_study-{run_id}-cut.json"
    assert payload["study"] == "ams-he" and payload["page"] == "he_study" and payload["run_id"] == run_id
    assert payload["thresholds"] == {"threshold": 0.05}
    assert "anomaly score" in payload["threshold_meaning"]["threshold"]
    assert list(payload["class_fractions"]) == list(page.state.data.class_names)
    assert payload["class_fractions"]["other"] == 0.25
    assert payload["hepml_version"] == __version__
    created = dt.datetime.fromisoformat(payload["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 120
    assert payload["link"].startswith(f"/he_study?run={run_id}&threshold=0.05")
    # the JSON is the view at the time of the press
    page.state.cut.threshold = 0.07
    assert json.loads(_download(page.exports.json_button))["thresholds"] == {"threshold": 0.07}


def test_html_report_is_self_contained_streamed_and_leaves_no_temp_file():
    from app.pages.your_data import YourDataPage

    runs_dir, run_id = study_run("your_data")
    page = YourDataPage(runs_dir)
    before = set(_reports_left())
    stream = asyncio.run(page.exports.report_button.callback())
    html = stream.read().decode("utf-8")
    assert page.exports.report_button.filename == f"your_data-{run_id}-report.html"
    assert html.lstrip().lower().startswith("<!doctype html")
    text = unescape(unescape(html))  # the document's JSON holds the sections' HTML, escaped twice
    assert run_id in text and "Cut shown in the app" in text and '"threshold"' in text
    assert "One-vs-rest ROC curves" in text and "Migration matrix at the cut" in text
    assert '<script type="text/javascript" src="http' not in html  # Bokeh's JS is inside the file
    assert "Bokeh" in html and len(html) > 200_000
    assert set(_reports_left()) == before


def test_a_failed_report_says_why_in_the_page_and_removes_its_folder():
    choice = RunChoice(lambda: [("a run", "run-1")])
    link = PageLink("demo", study="demo")
    link.bind_run(choice)

    def broken(path, cut):
        path.write_text("half a report")
        raise OSError("disk full")

    bar = ExportBar(link, broken)
    before = set(_reports_left())
    with pytest.raises(OSError):
        asyncio.run(bar.report_button.callback())
    assert bar.message.visible and "run-1" in bar.message.object and "disk full" in bar.message.object
    assert set(_reports_left()) == before
    assert not bar.report_button.loading


def test_cut_json_of_a_page_without_a_run_is_still_valid():
    link = PageLink("demo")
    link.bind_run(RunChoice(lambda: []))
    cut = json.loads(_download(ExportBar(link).json_button))
    assert cut["run_id"] is None and cut["thresholds"] == {} and cut["class_fractions"] is None


def _png_tool_shown(model) -> bool:
    return bool(list(model.select({"type": SaveTool}))) and getattr(model, "toolbar_location", "above") is not None


@pytest.mark.parametrize("route", ROUTES)
def test_every_plot_keeps_the_png_save_tool_and_every_table_a_csv(route):
    import importlib

    classes = {"he_study": "HeStudyPage", "hnl": "HnlPage", "alice_pid": "AlicePidPage",
               "ams_nuclei": "AmsNucleiPage", "darwin": "DarwinPage", "your_data": "YourDataPage"}
    runs_dir, _ = study_run(route)
    cls = getattr(importlib.import_module(f"app.pages.{route}"), classes[route])
    page = cls(runs_dir) if route == "your_data" else cls(runs_dir, service=TrainingService(runs_dir))
    try:
        tabs = page._tabs
        panes = tabs.select(pn.pane.HoloViews)
        assert panes, f"{route} shows no plot"
        for pane in panes:
            model = hv.render(pane.object)
            assert _png_tool_shown(model), f"{route}: a {type(pane.object).__name__} has no save (PNG) tool"
        downloads = {b.filename for b in tabs.select(pn.widgets.FileDownload)}
        tables = [t for t in tabs.select(pn.widgets.Tabulator)] + [t for t in tabs.select(pn.pane.DataFrame)]
        assert len(downloads) >= len(tables), f"{route}: {len(tables)} tables but CSV buttons only {downloads}"
        assert page.exports.json_button.label == "Cut as JSON" and page.exports.report_button.visible
    finally:
        if route != "your_data":
            page.service.shutdown()


def test_link_fields_refuse_unknown_kinds():
    with pytest.raises(ValueError, match="kind must be one of"):
        LinkField(RunChoice(lambda: []), "run", "run", kind="cut")
