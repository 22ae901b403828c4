"""Shareable views: a page's run and cuts in the URL's query string, and the same as a cut definition.

A reviewer should open exactly the view an analyst sent. Every page names, once, the parameters that
define what it shows (run id, thresholds, main selectors, class fractions) as ``LinkField``s;
``PageLink`` keeps them in step with the session's ``pn.state.location`` (Panel's ``Location.sync``:
written to the query string as they change, read from it when the page opens) and builds the "Cut as
JSON" record from the same list, so the link and the export never disagree. A value of a link that this
server cannot show (a deleted run, a threshold out of range) is reported in ``notice`` and replaced by
what the page shows instead. Without a served session (notebooks, tests) there is no location and only
the record is built.
"""

from __future__ import annotations

import datetime as _dt
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import panel as pn
import param

from app.state.runs import RunChoice

__all__ = ["LinkField", "PageLink", "session_location", "KINDS"]

#: what a linked parameter is, which decides where it goes in the cut definition
KINDS = ("threshold", "selector", "fraction")


@dataclass(frozen=True)
class LinkField:
    """One parameter of a page state that the link carries.

    Attributes:
        owner: the Parameterized holding it (rebuilt when the page shows another run).
        name: the parameter's name on ``owner``.
        key: its name in the query string (and in the cut definition).
        kind: "threshold", "selector" or "fraction" (a class fraction; ``label`` names the class).
        label: the class of a fraction, or a short description of a threshold ("anomaly score ≥").
    """

    owner: param.Parameterized
    name: str
    key: str
    kind: str = "selector"
    label: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"LinkField kind must be one of {KINDS}; got {self.kind!r}")

    def value(self) -> Any:
        """The current value, as plain Python (JSON-able)."""
        return _plain(getattr(self.owner, self.name))


def session_location():
    """The browser session's Location, or None outside a served session (notebooks, scripts, tests)."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return None
    return pn.state.location


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _reason(p: param.Parameter, value: Any, err: Exception) -> str:
    """Why a parameter refused a link's value, in the page's words rather than param's."""
    if isinstance(p, param.Selector):
        options = ", ".join(str(o) for o in list(p.objects)[:8]) + (" ..." if len(p.objects) > 8 else "")
        return f"not one of {options}"
    bounds = getattr(p, "bounds", None)
    if isinstance(p, param.Number) and isinstance(value, (int, float)) and bounds:
        lo, hi = [text if b is None else f"{b:.4g}" for b, text in zip(bounds, ("-inf", "inf"))]
        return f"outside the range {lo} to {hi}"
    return str(err).rstrip(".")


def _serialised(value: Any) -> str:
    """A value as ``Location`` writes it into the query string (strings as they are, others as JSON)."""
    value = _plain(value)
    return value if isinstance(value, str) else json.dumps(value)


class PageLink(param.Parameterized):
    """Run and cuts of one page, synced with the URL's query string of one browser session.

    Args:
        page: the page's route ("he_study", "your_data" ...).
        study: the study name ("ams-he" ...), None for a user's own run.
        location: the session's ``panel.io.location.Location`` (default: none, nothing is synced).
    """

    notice = param.String(default="", doc="What of the opened link could not be shown, and what is shown instead.")

    def __init__(self, page: str, *, study: str | None = None, location=None, **params):
        super().__init__(**params)
        self.page = page
        self.study = study
        self.location = location
        self._choice: RunChoice | None = None
        self._fields: list[LinkField] = []
        self._owners: list[param.Parameterized] = []
        self._problems: dict[str, str] = {}
        self._bound = False

    # -- binding -------------------------------------------------------------------------------------
    def bind_run(self, choice: RunChoice) -> None:
        """Follow the run choice; a ``run`` in the opened link selects that run (if it still exists)."""
        self._choice = choice
        # A Selector declared without objects accepts anything; a link's run must be one that is listed.
        choice.param.run.check_on_set = True
        if self.location is not None:
            self.location.sync(choice, {"run": "run"}, on_error=self._on_run_error)
            # The browser reports its own address when the page connects; keys it lacks (it was opened
            # without them) are written back, so the address bar always holds the whole view.
            self.location.param.watch(self._complete_query, "search")

    def _complete_query(self, event=None) -> None:
        present = self.location.query_params
        missing = {k: v for k, v in self.values().items() if k not in present and v is not None}
        if missing:
            self._rewrite(missing)

    def bind_view(self, fields: Sequence[LinkField]) -> None:
        """Link the parameters of the run now shown (replacing the previous run's).

        On the first call the opened link's values are applied; after a run change the new run's own
        defaults are written to the URL instead (the previous run's cuts may mean nothing for it).
        """
        fields = list(fields)
        if self._bound:  # another run now: what the opened link said is history
            self._problems = {}
            self.notice = ""
        self._bound = True
        keys = [f.key for f in fields]
        if len(set(keys)) != len(keys) or "run" in keys:
            raise ValueError(f"link keys must be unique and not 'run'; got {keys}")
        loc = self.location
        previous, self._fields, self._owners = self._owners, [], []
        if loc is not None:
            for owner in previous:
                try:
                    loc.unsync(owner)
                except ValueError:  # never synced (e.g. the location was replaced)
                    pass
        self._fields = fields
        self._owners = []
        for f in fields:
            p = f.owner.param[f.name]
            if isinstance(p, param.Selector):  # (this instance's copy) refuse values outside its objects
                p.check_on_set = True
            if not any(f.owner is o for o in self._owners):
                self._owners.append(f.owner)
        if loc is None:
            return
        for owner in self._owners:
            mapping = {f.name: f.key for f in fields if f.owner is owner}
            loc.sync(owner, mapping, on_error=lambda mapped, owner=owner: self._on_view_error(owner, mapped))
        self._show_problems()

    # -- what the link holds -------------------------------------------------------------------------
    @property
    def fields(self) -> list[LinkField]:
        """The linked parameters of the run shown now."""
        return list(self._fields)

    @property
    def run(self) -> str | None:
        """The run shown now."""
        return self._choice.run if self._choice is not None else None

    def values(self) -> dict[str, Any]:
        """``{query key: value}`` of the run and every linked parameter, as the URL carries them."""
        out: dict[str, Any] = {}
        if self.run is not None:
            out["run"] = self.run
        out.update({f.key: f.value() for f in self._fields})
        return out

    def query_string(self) -> str:
        """The query string of this view (``?run=...&threshold=...``), the part a shared link adds."""
        items = {k: _serialised(v) for k, v in self.values().items() if v is not None}
        return "?" + urllib.parse.urlencode(items) if items else ""

    def cut_definition(self) -> dict[str, Any]:
        """The view as a JSON-able record: study, run, thresholds, selectors, class fractions, time, version."""
        from hepml_core import __version__

        thresholds = {f.key: f.value() for f in self._fields if f.kind == "threshold"}
        described = {f.key: f.label for f in self._fields if f.kind == "threshold" and f.label}
        record: dict[str, Any] = {
            "study": self.study,
            "page": self.page,
            "run_id": self.run,
            "thresholds": thresholds,
            "selectors": {f.key: f.value() for f in self._fields if f.kind == "selector"},
            "class_fractions": {(f.label or f.key): f.value() for f in self._fields if f.kind == "fraction"} or None,
            "link": f"/{self.page}{self.query_string()}",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "hepml_version": __version__,
        }
        if described:
            record["threshold_meaning"] = described
        return record

    # -- values of a link that cannot be shown -------------------------------------------------------
    def _on_run_error(self, mapped: dict) -> None:
        wanted = mapped.get("run")
        choice = self._choice
        if choice is None or wanted is None:
            return
        # parse_query turns an all-digit id into a number; the run list holds strings
        if not isinstance(wanted, str) and str(wanted) in list(choice.param.run.objects):
            choice.run = str(wanted)
            return
        shown = f"the newest run, {choice.run}" if choice.run else "no run (none is saved yet)"
        self._problems["run"] = (f"The link's run {wanted!s} is not in this server's runs folder (deleted, or saved "
                                 f"elsewhere); showing {shown}.")
        self._rewrite({"run": choice.run})
        self._show_problems()

    def _on_view_error(self, owner: param.Parameterized, mapped: dict) -> None:
        """Apply what can be applied one by one; report the rest with the reason."""
        keys = {f.name: f.key for f in self._fields if f.owner is owner}
        fixed: dict[str, Any] = {}
        for name, value in mapped.items():
            try:
                owner.param.update({name: value})
            except Exception as err:  # noqa: BLE001 - any rejection is reported, the page keeps its value
                reason = _reason(owner.param[name], value, err)
                current = _plain(getattr(owner, name))
                self._problems[keys.get(name, name)] = (
                    f"The link's {keys.get(name, name)}={value!s} cannot be shown for this run ({reason}); "
                    f"showing {current!s}.")
                fixed[keys.get(name, name)] = current
        if fixed:
            self._rewrite(fixed)
        self._show_problems()

    def _rewrite(self, values: dict[str, Any]) -> None:
        if self.location is not None:
            self.location.update_query(**{k: _serialised(v) for k, v in values.items() if v is not None})

    def _show_problems(self) -> None:
        if self._problems:
            self.notice = " ".join(self._problems.values())
