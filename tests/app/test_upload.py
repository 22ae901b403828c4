"""Uploads on the your-data page: size limit, validation before use, scoring, and clear messages.

Real files: ROOT written with uproot and Parquet with pandas in ``tmp_path``, uploaded as the bytes a
browser sends; the page scores them with the tiny user run (features jet_pt, jet_eta, met, ht; label
``process``: signal/ttbar/wjets; weight ``w``).
"""

from __future__ import annotations

import glob
import os
import tempfile

import numpy as np
import pandas as pd
import pytest
import uproot
from study_runs import study_run

from hepml_core.exceptions import ConfigError

from app.state.upload import UploadError, check_upload, max_upload_bytes, websocket_message_limit

CLASSES = ("signal", "ttbar", "wjets")


def _events(n: int = 600, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + y[:, None] * np.array([0.9, 0.5, -0.4, 0.2])
    frame = pd.DataFrame(x, columns=["jet_pt", "jet_eta", "met", "ht"])
    frame["process"] = np.array(CLASSES)[y]
    frame["w"] = rng.uniform(0.5, 1.5, n)
    return frame


def _parquet(tmp_path, frame: pd.DataFrame) -> bytes:
    path = tmp_path / "mine.parquet"
    frame.to_parquet(path)
    return path.read_bytes()


def _root(tmp_path, frame: pd.DataFrame) -> bytes:
    path = tmp_path / "mine.root"
    codes = pd.Categorical(frame["process"], categories=CLASSES).codes.astype(np.int32)
    with uproot.recreate(path) as f:  # integer class codes: ROOT ntuples rarely hold strings
        f.mktree("Events", {c: np.float64 for c in ["jet_pt", "jet_eta", "met", "ht", "w"]} | {"process": np.int32})
        f["Events"].extend({**{c: frame[c].to_numpy() for c in ["jet_pt", "jet_eta", "met", "ht", "w"]},
                            "process": codes})
    return path.read_bytes()


def _uploads_left() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "hepml-upload-*")))


@pytest.fixture
def page():
    from app.pages.your_data import YourDataPage

    runs_dir, _ = study_run("your_data")
    before = _uploads_left()
    yield YourDataPage(runs_dir)
    assert _uploads_left() == before, "an upload's temp folder was left behind"


def test_a_parquet_upload_is_scored_and_shown_in_every_view(page, tmp_path):
    frame = _events()
    run_id = page.choice.run
    assert page.use_upload(_parquet(tmp_path, frame), "mine.parquet")
    s = page.state
    assert len(s.events) == len(frame) and s.eval_split == "upload"
    assert "Uploaded **mine.parquet**" in page._header.object and run_id in page._header.object
    assert page.upload_message.alert_type == "success" and page.upload_message.visible
    # the truth of the file is what the views compare with, weights included
    truth = np.asarray(CLASSES)[s.events.truth]
    assert (truth == frame["process"].to_numpy()).all()
    np.testing.assert_allclose(s.events.weight, frame["w"].to_numpy())
    # back to the run's own test split
    page.clear_upload()
    assert page.upload is None and s is not page.state and page.state.eval_split == "test"


def test_a_root_upload_with_integer_labels_is_scored(page, tmp_path):
    frame = _events(400, seed=9)
    assert page.use_upload(_root(tmp_path, frame), "mine.root"), page.upload_message.object
    assert len(page.state.events) == 400
    assert (np.asarray(CLASSES)[page.state.events.truth] == frame["process"].to_numpy()).all()


@pytest.mark.parametrize("name, content, words", [
    ("mine.root", b"PAR1 this is not ROOT at all", "is not a ROOT file"),
    ("mine.parquet", b"\x89PNG\r\n\x1a\n an image", "is not a Parquet file"),
    ("mine.csv", b"jet_pt,met\n1,2\n", "accepted uploads are .root, .parquet, .pq files"),
    ("mine.root", b"", "is empty"),
])
def test_bad_bytes_are_refused_before_anything_is_written(page, name, content, words):
    assert not page.use_upload(content, name)
    text = page.upload_message.object
    assert words in text and text.startswith(name) and page.upload_message.alert_type == "danger"
    assert page.upload is None and page.state.eval_split == "test"


@pytest.mark.parametrize("kind", ["root", "parquet"])
def test_a_truncated_file_is_named_not_the_temp_path(page, tmp_path, kind):
    data = _root(tmp_path, _events()) if kind == "root" else _parquet(tmp_path, _events())
    cut = data[: len(data) // 2] if kind == "root" else data[: len(data) // 2] + b"PAR1"
    assert not page.use_upload(cut, f"mine.{kind}")
    text = page.upload_message.object
    assert text.startswith(f"mine.{kind}") and "hepml-upload-" not in text and "upload." not in text
    assert "truncated" in text or "cannot" in text or "corrupt" in text, text
    assert "\n" not in text


def test_a_file_over_the_limit_is_refused_on_the_server(page, tmp_path, monkeypatch):
    data = _parquet(tmp_path, _events(3000))
    monkeypatch.setenv("HEPML_MAX_UPLOAD_MB", str(len(data) / 2 / 2**20))
    assert not page.use_upload(data, "big.parquet")
    text = page.upload_message.object
    assert text.startswith("big.parquet is") and "uploads are limited to" in text and "HEPML_MAX_UPLOAD_MB" in text
    monkeypatch.setenv("HEPML_MAX_UPLOAD_MB", str(2 * len(data) / 2**20))
    assert page.use_upload(data, "big.parquet")


def test_missing_columns_are_all_named_with_the_closest_ones(page, tmp_path):
    frame = _events().drop(columns=["met", "process"]).rename(columns={"jet_pt": "jet_ptt"})
    assert not page.use_upload(_parquet(tmp_path, frame), "mine.parquet")
    text = page.upload_message.object
    assert f"lacks 3 column(s) that run {page.choice.run} needs" in text
    assert "jet_pt (closest: jet_ptt" in text and "met" in text and "process" in text


def test_labels_the_run_does_not_know_are_refused(page, tmp_path):
    frame = _events()
    frame.loc[:5, "process"] = "zprime"
    assert not page.use_upload(_parquet(tmp_path, frame), "mine.parquet")
    assert "zprime" in page.upload_message.object


def test_limit_setting_and_websocket_size(monkeypatch):
    monkeypatch.delenv("HEPML_MAX_UPLOAD_MB", raising=False)
    assert max_upload_bytes() == 200 * 2**20
    limit = 10 * 2**20
    # the base64 text of a file at the limit fits into one websocket message, a much larger one does not
    assert websocket_message_limit(limit) >= 4 * (limit // 3 + 1)
    assert websocket_message_limit(limit) < 4 * ((limit + 2**20) // 3)
    with pytest.raises(UploadError, match="limited to 1 MB"):
        check_upload(b"PAR1" + b"0" * (2**20) + b"PAR1", "x.parquet", limit=2**20)


@pytest.mark.parametrize("value", ["-5", "lots", "0"])
def test_a_bad_limit_setting_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv("HEPML_MAX_UPLOAD_MB", value)
    with pytest.raises(ConfigError, match="HEPML_MAX_UPLOAD_MB must be a positive number of megabytes"):
        max_upload_bytes()
