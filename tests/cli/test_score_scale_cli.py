"""``hepml score RUN 'glob' -o OUT/ [--scheduler]`` and ``hepml study NAME --scan`` as a user runs them.

One real LocalCluster (two worker processes) serves the module through its ``tcp://`` address, so the
``--scheduler tcp://HOST:PORT`` path is the one exercised; ``local:N`` is covered in tests/core.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot
import yaml

from app.state.histograms import grouped_histogram
from hepml_cli.main import main
from hepml_core.runs import RunStore
from hepml_core.scale.scoring import read_histograms, read_scored

distributed = pytest.importorskip("distributed")


def _toy(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) + y[:, None] * 1.5
    return pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], "y": y, "w": rng.uniform(0.5, 1.5, n)})


def _root(path: Path, frame: pd.DataFrame) -> None:
    with uproot.recreate(path) as f:
        f["Events"] = {c: frame[c].to_numpy() for c in frame.columns}


@pytest.fixture(scope="module")
def address():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-scale")
    _toy(1500, 0).to_parquet(root / "train.parquet")
    cfg = {"data": {"source": "train.parquet", "features": ["f0", "f1", "f2"], "label": "y",
                    "classes": ["background", "signal"], "weight": "w",
                    "split": {"validation": 0.25, "test": 0.25, "seed": 1}},
           "model": {"kind": "mlp_classifier", "layers": [3, 16, 2]},
           "train": {"epochs": 2, "batch_size": 256, "lr": 1.0e-2, "seed": 1}}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    runs = root / "runs"
    assert main(["--quiet", "train", str(root / "config.yaml"), "--runs-dir", str(runs)]) == 0
    run_id = RunStore(runs).list()[0].id
    data = root / "data"
    data.mkdir()
    for i, n in enumerate((900, 400, 650)):
        _root(data / f"run{i}.root", _toy(n, 10 + i))
    return root, runs, run_id, data


def _score(run_id, runs, source, out, *extra) -> int:
    return main(["score", run_id, source, "-o", str(out), "--runs-dir", str(runs), *extra])


def test_score_many_files_here_and_on_a_tcp_scheduler_gives_the_same_output(trained, tmp_path, address, capsys):
    _, runs, run_id, data = trained
    glob = f"{data}/run*.root:Events"
    assert _score(run_id, runs, glob, tmp_path / "here", "--quiet", "--step", "300", "--weight", "w") == 0
    assert "wrote 1,950 scored events from 3 files in 8 partitions" in capsys.readouterr().err
    assert _score(run_id, runs, glob, tmp_path / "there", "--quiet", "--step", "300", "--weight", "w",
                  "--scheduler", address) == 0
    here, there = read_scored(tmp_path / "here"), read_scored(tmp_path / "there")
    pd.testing.assert_frame_equal(here, there, check_exact=True)
    assert (tmp_path / "here" / "histograms.json").read_text() == (tmp_path / "there" / "histograms.json").read_text()
    manifest = json.loads((tmp_path / "there" / "manifest.json").read_text())
    assert manifest["scheduler"] == address and manifest["run_id"] == run_id and manifest["rows"] == 1950
    # The written histograms are the ones the app draws for these scores (its bins, weights, tails).
    for col, hist in read_histograms(tmp_path / "here").items():
        app = grouped_histogram(here[col].to_numpy(), np.zeros(len(here), np.int64), ("all",),
                                np.linspace(0, 1, 51), here["w"].to_numpy())
        np.testing.assert_allclose(hist.sumw, app.counts[0], rtol=1e-12)
        np.testing.assert_allclose(hist.sumw2, app.sumw2[0], rtol=1e-12)


def test_a_relative_glob_is_kept_as_given_and_read_by_workers_in_another_folder(trained, address, monkeypatch):
    root, runs, run_id, _ = trained
    monkeypatch.chdir(root)  # the workers were started elsewhere: they must not resolve 'data/...' themselves
    assert _score(run_id, runs, "data/run*.root:Events", "rel-out", "--quiet", "--scheduler", address) == 0
    scored = read_scored(root / "rel-out")
    assert list(pd.unique(scored["source_file"])) == ["data/run0.root", "data/run1.root", "data/run2.root"]


def test_the_progress_bar_counts_partitions_on_stderr(trained, tmp_path, capsys):
    _, runs, run_id, data = trained
    assert _score(run_id, runs, f"{data}/run*.root:Events", tmp_path / "out", "--step", "1000") == 0
    err = capsys.readouterr().err
    # The bar knows the 3 partitions up front; tqdm may skip redraws between them when they are fast,
    # so the count shows as "k/3" and the closing line names all 3.
    assert "scoring" in err and "/3 [" in err and "partition" in err and "3 partitions" in err


def test_one_file_to_one_parquet_still_works_and_a_glob_needs_a_folder(trained, tmp_path, capsys):
    _, runs, run_id, data = trained
    out = tmp_path / "scores.parquet"
    assert _score(run_id, runs, f"{data}/run1.root:Events", out, "--quiet") == 0
    assert list(pd.read_parquet(out).columns) == ["p_background", "p_signal"]
    capsys.readouterr()
    assert _score(run_id, runs, f"{data}/run*.root:Events", out, "--quiet") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hepml score: error:") and "give -o OUT/" in err[0]


def test_a_bad_file_among_many_ends_in_one_line_and_leaves_no_manifest(trained, tmp_path, address, capsys):
    _, runs, run_id, data = trained
    for i in range(3):
        (tmp_path / f"run{i}.root").write_bytes((data / f"run{i}.root").read_bytes())
    _root(tmp_path / "run1b.root", _toy(200, 3).drop(columns=["f2"]))
    out = tmp_path / "out"
    assert _score(run_id, runs, f"{tmp_path}/run*.root:Events", out, "--quiet", "--scheduler", address) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hepml score: error:"), err
    assert "run1b.root entries 0-200" in err[0] and "'f2' not found" in err[0]
    assert not (out / "manifest.json").exists()
    assert _score(run_id, runs, f"{data}/run*.root:Events", out, "--quiet") == 2  # unfinished: not reused
    assert "--force" in capsys.readouterr().err
    assert _score(run_id, runs, f"{data}/run*.root:Events", out, "--quiet", "--force") == 0
    assert json.loads((out / "manifest.json").read_text())["rows"] == 1950


@pytest.mark.parametrize("scheduler,expected", [("lokal", "scheduler 'lokal' is not accepted"),
                                                ("local:zero", "must be an integer >= 1")])
def test_a_bad_scheduler_string_is_one_line(trained, tmp_path, capsys, scheduler, expected):
    _, runs, run_id, data = trained
    assert _score(run_id, runs, f"{data}/run*.root:Events", tmp_path / "o", "--scheduler", scheduler) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_a_study_scan_saves_one_study_run_per_grid_point(tmp_path, address, capsys):
    runs = tmp_path / "runs"
    common = ["--quiet", "study", "ams-he", "--events", "2000", "--data-events", "1000", "--epochs", "1",
              "--runs-dir", str(runs), "--scan", "classifier_lr=1e-3,3e-3"]
    assert main([*common, "--out", str(tmp_path / "cluster"), "--scheduler", address]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cluster" / "scan.csv")
    scan = pd.read_csv(tmp_path / "cluster" / "scan.csv")
    assert list(scan["classifier_lr"]) == [1e-3, 3e-3]
    store = RunStore(runs)
    for _, row in scan.iterrows():
        study = store.load(row["study_run_id"])
        assert study.config["settings"]["classifier_lr"] == row["classifier_lr"]
        assert study.config["classifier_run"] == row["classifier.run_id"]
        assert 0 < row["classifier.macro_auc"] <= 1 and row["autoencoder.mean_mse"] > 0
    assert scan["study_run_id"].nunique() == 2 and len(store.list()) == 6  # 2 x (classifier, autoencoder, study)
    # Without --scheduler the same grid runs here, one point after the other, to the same numbers.
    assert main([*common, "--out", str(tmp_path / "here")]) == 0
    here = pd.read_csv(tmp_path / "here" / "scan.csv")
    metrics = [c for c in scan.columns if c.endswith(("auc", "accuracy", "mse"))]
    np.testing.assert_allclose(here[metrics].to_numpy(), scan[metrics].to_numpy(), rtol=1e-5)


def test_scan_mistakes_are_one_line(tmp_path, capsys):
    base = ["study", "ams-he", "--out", str(tmp_path), "--runs-dir", str(tmp_path / "r")]
    assert main([*base, "--scan", "clasifier_lr=1e-3"]) == 2
    assert "closest: 'classifier_lr'" in capsys.readouterr().err
    assert main([*base, "--scheduler", "local:2"]) == 2
    assert "--scheduler runs the points of a --scan grid" in capsys.readouterr().err
