"""Static HTML report of a study: the app's own plots, saved into one self-contained file.

``hepml study NAME --out DIR`` writes it next to the CSV tables, so the review minutes carry the same
figures the dashboard shows. Each study's page module provides ``report_sections(result)``.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import tempfile
from pathlib import Path

import panel as pn
from bokeh.resources import INLINE

from hepml_core.exceptions import ConfigError
from hepml_core.io.write import default_permissions

__all__ = ["write_study_report", "REPORT_PAGES"]

# study name -> page module that defines report_sections(result) -> list[(title, viewable)]
REPORT_PAGES = {
    "ams-he": "app.pages.he_study",
    "hnl": "app.pages.hnl",
    "alice-pid": "app.pages.alice_pid",
    "ams-nuclei": "app.pages.ams_nuclei",
    "darwin": "app.pages.darwin",
    "user-run": "app.pages.your_data",  # a ``hepml train`` classifier run (RunData), from the your-data page
}


def write_study_report(name: str, result, path: str | Path, *, extra_sections=()) -> Path:
    """Render a study result's report sections to a standalone HTML file (written atomically).

    Args:
        name: study name, e.g. "ams-he".
        result: what the study's ``run_X``/``load_X`` returned.
        path: output .html path.
        extra_sections: further (title, viewable) pairs placed first (the app adds the cut it shows).

    Returns:
        The path written.

    Raises:
        ConfigError: no report is defined for that study.
    """
    if name not in REPORT_PAGES:
        raise ConfigError(f"no report for study {name!r}; available: {', '.join(sorted(REPORT_PAGES))}")
    pn.extension()
    sections = [*extra_sections, *importlib.import_module(REPORT_PAGES[name]).report_sections(result)]
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = pn.pane.Markdown(f"# hepml report: {name}\n\nGenerated {stamp}.", sizing_mode="stretch_width")
    body = [header]
    for title, view in sections:
        body.append(pn.pane.Markdown(f"## {title}", sizing_mode="stretch_width"))
        body.append(view)
    layout = pn.Column(*body, sizing_mode="stretch_width", max_width=1200)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never leave a half-written report: render into a temp file beside the target, then rename.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".html", dir=path.parent)
    os.close(fd)
    try:
        layout.save(tmp, resources=INLINE, embed=False, title=f"hepml report: {name}")
        default_permissions(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
