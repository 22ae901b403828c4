"""The query string of every page, without a browser: Panel's own ``Location`` stands in for the URL.

A page writes its run and every linked threshold/selector into the query string as they change, and a
page opened with that query string shows the same run and values; links this server cannot show (a
deleted run, a value out of range) are named in the page and replaced by what the page shows.
"""

from __future__ import annotations

import importlib
import math
import urllib.parse

import param
import pytest
from panel.io.location import Location
from study_runs import ROUTES, study_run

from app.state.training import TrainingService

_CLASSES = {"he_study": "HeStudyPage", "hnl": "HnlPage", "alice_pid": "AlicePidPage", "ams_nuclei": "AmsNucleiPage",
            "darwin": "DarwinPage", "your_data": "YourDataPage"}


@pytest.fixture
def open_page():
    """``open_page(route, search)``: the page on its tiny run, with a Location holding ``search``."""
    services = []

    def make(route: str, search: str = ""):
        runs_dir, _ = study_run(route)
        location = Location(search=search)
        cls = getattr(importlib.import_module(f"app.pages.{route}"), _CLASSES[route])
        if route == "your_data":
            return cls(runs_dir, location=location), location
        services.append(TrainingService(runs_dir))
        return cls(runs_dir, service=services[-1], location=location), location

    yield make
    for service in services:
        service.shutdown()


def _other_value(owner: param.Parameterized, name: str):
    """A valid value of a linked parameter that differs from the current one."""
    p, current = owner.param[name], getattr(owner, name)
    if isinstance(p, param.Selector):
        others = [o for o in p.objects if o != current]
        return others[-1]
    if isinstance(p, param.Integer):
        lo, hi = p.bounds
        return current + 1 if hi is None or current + 1 <= hi else current - 1
    lo, hi = [b if b is not None else s for b, s in zip(p.bounds, p.softbounds or (0.0, 1.0))]
    value = round(lo + 0.37 * (hi - lo), 4)
    return value if not math.isclose(value, current) else round(lo + 0.61 * (hi - lo), 4)


def _same(a, b) -> bool:
    return math.isclose(a, b, rel_tol=1e-9) if isinstance(a, float) or isinstance(b, float) else a == b


@pytest.mark.parametrize("route", ROUTES)
def test_a_shared_link_opens_the_same_run_and_cuts(route, open_page):
    page, loc = open_page(route)
    _, run_id = study_run(route)
    fields = page.link.fields
    assert fields, f"{route} links no threshold or selector"
    # the page writes its run and every linked value into the query string at once
    assert loc.query_params["run"] == run_id
    assert set(loc.query_params) == {"run", *(f.key for f in fields)}

    # the analyst moves every cut and selector; the query string follows each change
    wanted = {}
    for f in fields:
        wanted[f.key] = _other_value(f.owner, f.name)
        setattr(f.owner, f.name, wanted[f.key])
    query = loc.query_params
    for key, value in wanted.items():
        assert _same(query[key], value), (key, query[key], value)

    # a colleague opens that address: same run, same values, nothing to complain about
    other, other_loc = open_page(route, loc.search)
    assert other.link.notice == ""
    assert other.link.run == run_id
    shown = other.link.values()
    for key, value in wanted.items():
        assert _same(shown[key], value), (key, shown[key], value)
    assert urllib.parse.parse_qs(other_loc.search[1:]).keys() == urllib.parse.parse_qs(loc.search[1:]).keys()


def test_a_deleted_run_and_out_of_range_values_are_named_and_replaced(open_page):
    page, loc = open_page("he_study", "?run=20200101-000000-study-gone&threshold=7&f_spillover=-1")
    _, newest = study_run("he_study")
    notice = page.link.notice
    assert "run 20200101-000000-study-gone is not in this server's runs folder" in notice
    assert f"showing the newest run, {newest}" in notice
    assert "threshold=7" in notice and "outside the range" in notice
    assert "f_spillover=-1" in notice
    # the page shows the newest run at its default cut, and the address now says so
    assert page.choice.run == newest
    assert 0 <= page.state.cut.threshold < 7
    assert loc.query_params["run"] == newest
    assert loc.query_params["threshold"] == pytest.approx(page.state.cut.threshold)
    assert loc.query_params["f_spillover"] >= 0


def test_an_unknown_selector_value_keeps_the_valid_rest(open_page):
    page, loc = open_page("your_data", "?signal=higgs&threshold=0.25")
    assert "signal=higgs" in page.link.notice and "not one of" in page.link.notice
    assert page.state.choice.signal in page.state.data.class_names
    assert page.state.cut.threshold == pytest.approx(0.25)  # the valid part of the link still applies
    assert loc.query_params["signal"] == page.state.choice.signal


def test_without_a_session_nothing_is_synced(tmp_path):
    from app.pages.your_data import YourDataPage

    runs_dir, run_id = study_run("your_data")
    page = YourDataPage(runs_dir)  # no served session: a notebook or a script
    assert page.link.location is None
    assert page.link.values()["run"] == run_id
    assert page.link.query_string().startswith(f"?run={run_id}&signal=")


def test_switching_run_writes_the_new_runs_defaults_and_clears_the_notice(tmp_path):
    """A second run may have other classes and ranges: its own defaults go to the URL, not the old cuts."""
    import shutil

    from hepml_core.pipeline import train_from_config
    from hepml_core.runs import RunStore

    from app.pages.your_data import YourDataPage

    runs_dir, first = study_run("your_data")
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir, runs, ignore=shutil.ignore_patterns("*-study-*", "*-autoencoder-*"))
    source = RunStore(runs).load(first).config["data"]["source"]  # the tiny user ntuple (CSV)
    loc = Location(search=f"?run={first}&threshold=0.3&signal=nope")
    page = YourDataPage(str(runs), location=loc)
    assert page.choice.run == first and "signal=nope" in page.link.notice
    config = {"data": {"source": source, "features": ["jet_pt", "jet_eta", "met", "ht"], "label": "process"},
              "model": {"kind": "mlp_classifier"}, "train": {"epochs": 1, "batch_size": 256}}
    second = train_from_config(config, RunStore(runs)).id
    page.choice.select(second)  # what a finished Retrain or the run selector does
    assert page.link.notice == ""
    assert loc.query_params["run"] == second
    assert loc.query_params["threshold"] == pytest.approx(page.state.cut.threshold)
    assert page.state.cut.threshold != 0.3  # the new run starts at its own best cut
    page.state.cut.threshold = 0.2
    assert loc.query_params["threshold"] == 0.2
