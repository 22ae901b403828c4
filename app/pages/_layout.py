"""The frame shared by the pages: template, navigation links, message boxes."""

from __future__ import annotations

import panel as pn

from app.auth.roles import signed_in_note
from app.components.style import markdown

__all__ = ["make_template", "nav_links", "message", "link_notice", "ACCENT", "PAGES"]

ACCENT = "#0072B2"

# Small CSS fixes: readable captions and no horizontal scrollbars from wide plots.
_CSS = """
.migration-summary p, .anomaly-summary p, .efficiency-summary p, .overtraining-summary p { margin: 4px 0; }
"""


def make_template(title: str, sidebar: list, main: list) -> pn.template.FastListTemplate:
    """A FastListTemplate with the app's title, accent colour and sidebar."""
    signed_in = signed_in_note()  # access control: who is signed in, and the way out
    if signed_in:
        sidebar = [*sidebar, markdown(signed_in, css_classes=["signed-in"], margin=(15, 10, 0, 10))]
    return pn.template.FastListTemplate(
        title=title,
        sidebar=sidebar,
        main=main,
        accent=ACCENT,
        sidebar_width=340,
        main_layout=None,
        raw_css=[_CSS],
        theme_toggle=False,
        # No header busy spinner: Panel's busy flag is server-wide, so every event of any user redrew the
        # spinner of every open page (70 % of the server's CPU per threshold move with 20 pages open,
        # benchmarks/bench_load_sessions.py); progress shows where work is (Train panel, buttons).
        busy_indicator=None,
    )


#: route -> link text of every page, in menu order; ``app.serve`` serves the ones whose module exists
#: (``app.pages.<route>`` with a factory ``<route>_page(runs_dir)``).
PAGES = {
    "he_study": "He charge confusion",
    "hnl": "Heavy neutral leptons",
    "alice_pid": "ALICE PID",
    "ams_nuclei": "Nuclei (domain adaptation)",
    "darwin": "DARWIN search",
    "your_data": "Your data",
}


def nav_links(current: str) -> pn.pane.Markdown:
    """Links between the served pages (relative URLs work behind any prefix)."""
    import importlib.util

    served = {slug: label for slug, label in PAGES.items()
              if slug == current or importlib.util.find_spec(f"app.pages.{slug}") is not None}
    items = [f"**{label}**" if slug == current else f"[{label}](./{slug})" for slug, label in served.items()]
    return markdown(" · ".join(items), margin=(0, 10))


def message(text: str, kind: str = "info") -> pn.pane.Alert:
    """A coloured message box (``kind``: info, warning, danger, success)."""
    return pn.pane.Alert(text, alert_type=kind, sizing_mode="stretch_width")


def link_notice(link) -> pn.pane.Alert:
    """A warning that shows what of an opened link could not be shown (hidden while there is nothing)."""
    return pn.pane.Alert(link.param.notice, alert_type="warning", sizing_mode="stretch_width",
                         visible=link.param.notice.rx.bool(), css_classes=["link-notice"])
