"""Scoring many ROOT files by partition, in one process and on a 2-worker LocalCluster: same output.

Real parts only: TTrees written with uproot (jagged branch, several baskets) in tmp_path, a run trained
here, and one LocalCluster of two worker processes shared by the module (starting one costs seconds).
"""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot
import yaml

from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.exceptions import ConfigError, InputFileError, MissingKeyError
from hepml_core.metrics.histogram import Histogram, uniform_edges, weighted_histogram
from hepml_core.pipeline import train_from_config
from hepml_core.runs import MANIFEST, RunStore
from hepml_core.scale._worker import _load_count
from hepml_core.scale.cluster import SchedulerError, open_client, parse_scheduler
from hepml_core.scale.plan import plan_partitions
from hepml_core.scale.scan import parse_scan, scan_points
from hepml_core.scale.scoring import HISTOGRAMS, PartitionError, read_histograms, read_scored, score_files
from hepml_core.scoring.score import score_table
from hepml_core.studies.ams_he import AmsHeSettings

FEATURES = ["f0", "f1", "jet_pt_0", "jet_pt_n"]
SIZES = {"a.root": 700, "b.root": 1200, "c.root": 450}  # step 500: 2 + 3 + 1 partitions


def write_events(path: Path, n: int, seed: int, *, with_f1: bool = True) -> pd.DataFrame:
    """A TTree with flat and jagged branches, filled in two baskets (partitions cut across them)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    counts = rng.integers(1, 4, n)
    jets = ak.unflatten((rng.exponential(20, counts.sum()) + 15 * np.repeat(y, counts)).astype(np.float32), counts)
    cols = {"f0": rng.normal(size=n) + 1.2 * y, "f1": rng.normal(size=n) - 0.8 * y, "jet_pt": jets,
            "y": y.astype(np.int32), "w": rng.uniform(0.5, 1.5, n)}
    if not with_f1:
        del cols["f1"]
    types = {k: ("var * float32" if k == "jet_pt" else ("int32" if k == "y" else "float64")) for k in cols}
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", types)
        half = n // 2
        tree.extend({k: v[:half] for k, v in cols.items()})
        tree.extend({k: v[half:] for k, v in cols.items()})
    return pd.DataFrame({"f0": cols["f0"], "y": y})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    write_events(root / "train.root", 3000, seed=1)
    cfg = {"data": {"source": str(root / "train.root") + ":Events", "features": FEATURES, "label": "y",
                    "classes": ["background", "signal"], "weight": "w",
                    "split": {"validation": 0.25, "test": 0.25, "seed": 1}},
           "model": {"kind": "mlp_classifier", "layers": [4, 16, 2]},
           "train": {"epochs": 2, "batch_size": 256, "lr": 1.0e-2, "seed": 1}}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = train_from_config(str(root / "config.yaml"), RunStore(root / "runs"))
    data = root / "data"
    data.mkdir()
    for i, (name, n) in enumerate(SIZES.items()):
        write_events(data / name, n, seed=10 + i)
    return root, run, data


@pytest.fixture(scope="module")
def client():
    with open_client("local:2") as client:  # the same path as --scheduler local:2
        yield client


def test_the_plan_splits_files_in_name_order_into_entry_ranges(setup):
    _, _, data = setup
    parts = plan_partitions(f"{data}/*.root:Events", step=500)
    got = [(Path(p.source_file).name, p.entry_start, p.entry_stop) for p in parts]
    assert got == [("a.root", 0, 500), ("a.root", 500, 700), ("b.root", 0, 500), ("b.root", 500, 1000),
                   ("b.root", 1000, 1200), ("c.root", 0, 450)]
    assert [p.name for p in parts][:2] == ["part-00000.parquet", "part-00001.parquet"]
    assert all(p.tree == "Events" for p in parts)
    with pytest.raises(InputFileError, match=r"no file matches '.*/nothing\*\.root'"):
        plan_partitions(f"{data}/nothing*.root:Events")
    with pytest.raises(ConfigError, match="entries per partition"):
        plan_partitions(f"{data}/*.root:Events", step=0)
    with pytest.raises(MissingKeyError, match="closest: 'Events'"):
        plan_partitions(f"{data}/*.root:Evnts")


def test_in_process_scoring_writes_partitions_histograms_and_a_manifest(setup, tmp_path):
    root, run, data = setup
    out = tmp_path / "out"
    manifest = score_files(run, f"{data}/*.root:Events", out, step=500, weight="w", bins=20)
    assert manifest["rows"] == sum(SIZES.values()) and len(manifest["partitions"]) == 6
    for part in manifest["partitions"]:  # the manifest vouches for every part it lists
        assert hashlib.sha256((out / part["file"]).read_bytes()).hexdigest() == part["sha256"]
    assert json.loads((out / MANIFEST).read_text())["run_id"] == run.id
    scored = read_scored(out)
    assert list(scored.columns) == ["source_file", "entry", "w", "p_background", "p_signal"]
    schema = Schema(features=tuple(FEATURES), weight="w")
    for name, n in SIZES.items():
        rows = scored[scored["source_file"] == f"{data}/{name}"]
        np.testing.assert_array_equal(rows["entry"].to_numpy(), np.arange(n))
        # The reference: the whole file read and scored at once, the way `hepml score` scores one file.
        whole = EventTable.from_source(f"{data}/{name}:Events", schema)
        expected = score_table(run, whole)
        np.testing.assert_allclose(rows[["p_background", "p_signal"]].to_numpy(), expected.to_numpy(), rtol=1e-6)
        np.testing.assert_array_equal(rows["w"].to_numpy(), whole.weights())
    hists = read_histograms(out)
    assert set(hists) == {"p_background", "p_signal"}
    w = scored["w"].to_numpy()
    for col, hist in hists.items():
        ref, edges = np.histogram(scored[col].to_numpy(), bins=20, range=(0, 1), weights=w)
        ref2, _ = np.histogram(scored[col].to_numpy(), bins=20, range=(0, 1), weights=w ** 2)
        np.testing.assert_allclose(hist.edges, edges, rtol=0, atol=1e-15)
        np.testing.assert_allclose(hist.sumw, ref, rtol=1e-12)
        np.testing.assert_allclose(hist.sumw2, ref2, rtol=1e-12)
        assert hist.entries == len(scored)


def test_a_two_worker_cluster_writes_the_same_output_and_loads_the_run_once_per_worker(setup, tmp_path, client):
    _, run, data = setup
    one = score_files(run, f"{data}/*.root:Events", tmp_path / "one", step=500, weight="w")
    many = score_files(run, f"{data}/*.root:Events", tmp_path / "many", step=500, weight="w", client=client)
    pd.testing.assert_frame_equal(read_scored(tmp_path / "one"), read_scored(tmp_path / "many"), check_exact=True)
    h1, h2 = read_histograms(tmp_path / "one"), read_histograms(tmp_path / "many")
    assert set(h1) == set(h2) and all(h1[k].equals(h2[k]) for k in h1)
    assert [p["sha256"] for p in one["partitions"]] == [p["sha256"] for p in many["partitions"]]
    loads = client.run(_load_count)  # six partitions, two workers: the model was not rebuilt per task
    assert len(loads) == 2 and all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1


@pytest.mark.parametrize("where", ["process", "cluster"])
def test_a_bad_file_among_many_is_named_and_no_manifest_is_written(setup, tmp_path, client, where):
    _, run, data = setup
    folder = tmp_path / "in"
    folder.mkdir()
    for name in SIZES:
        (folder / name).write_bytes((data / name).read_bytes())
    write_events(folder / "b2.root", 300, seed=7, with_f1=False)  # sorted between b.root and c.root
    out = tmp_path / "out"
    with pytest.raises(PartitionError) as err:
        score_files(run, f"{folder}/*.root:Events", out, step=500, client=client if where == "cluster" else None)
    text = str(err.value)
    assert "b2.root entries 0-300" in text and "'f1' not found" in text and "\n" not in text
    assert not (out / MANIFEST).exists() and not (out / HISTOGRAMS).exists()
    with pytest.raises(ConfigError, match="not empty.*--force"):  # an unfinished folder is not reused silently
        score_files(run, f"{data}/*.root:Events", out, step=500)
    score_files(run, f"{data}/*.root:Events", out, step=5000, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["histograms.json", "manifest.json", "part-00000.parquet",
                                                     "part-00001.parquet", "part-00002.parquet"]


def test_a_file_that_is_not_root_stops_the_job_before_anything_is_written(setup, tmp_path):
    _, run, data = setup
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.root").write_bytes((data / "a.root").read_bytes())
    (folder / "b.root").write_text("not a ROOT file")
    out = tmp_path / "out"
    with pytest.raises(InputFileError, match=r"b\.root is not a ROOT file"):
        score_files(run, f"{folder}/*.root:Events", out)
    assert not out.exists()


def test_scheduler_strings_and_an_unreachable_address(setup):
    assert str(parse_scheduler("local:3")) == "local:3" and parse_scheduler(None).kind == "process"
    assert parse_scheduler("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    for bad in ("lokal", "local:0", "tcp://host", "10.0.0.5:8786"):
        with pytest.raises(ConfigError, match=r"local:N|HOST:PORT"):
            parse_scheduler(bad)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SchedulerError, match=f"cannot reach the dask scheduler at tcp://127.0.0.1:{port}"):
        with open_client(f"tcp://127.0.0.1:{port}", connect_timeout=1):
            pass


def test_partial_histograms_add_up_to_the_whole():
    rng = np.random.default_rng(3)
    x, w = rng.uniform(-0.1, 1.1, 5000), rng.uniform(0, 2, 5000)
    edges = uniform_edges(0, 1, 10)
    whole = weighted_histogram(x, edges, w)
    parts = weighted_histogram(x[:1234], edges, w[:1234]) + weighted_histogram(x[1234:], edges, w[1234:])
    np.testing.assert_allclose(parts.sumw, whole.sumw, rtol=1e-12)
    # Under- and overflow are counted in the end bins, as the app's distribution views do.
    ref, _ = np.histogram(np.clip(x, 0, 1), bins=10, range=(0, 1), weights=w)
    np.testing.assert_allclose(whole.sumw, ref, rtol=1e-12)
    assert Histogram.from_dict(json.loads(json.dumps(whole.to_dict()))).equals(whole)
    with pytest.raises(Exception, match="different edges"):
        _ = whole + weighted_histogram(x, uniform_edges(0, 1, 5), w)


def test_scan_values_are_typed_like_the_settings_and_form_a_grid():
    axes = parse_scan(["classifier_lr=1e-3,3e-3", "classifier_layers=37/15/4,37/4", "patience=none,3"],
                      AmsHeSettings)
    assert axes == {"classifier_lr": [1e-3, 3e-3], "classifier_layers": [(37, 15, 4), (37, 4)],
                    "patience": [None, 3]}
    points = scan_points(axes)
    assert len(points) == 8 and points[1] == {"classifier_lr": 1e-3, "classifier_layers": (37, 15, 4), "patience": 3}
    with pytest.raises(MissingKeyError, match="closest: 'classifier_lr'"):
        parse_scan(["clasifier_lr=1"], AmsHeSettings)
    with pytest.raises(ConfigError, match="'1.5' is not a valid int"):
        parse_scan(["classifier_epochs=1.5"], AmsHeSettings)
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        parse_scan(["classifier_lr"], AmsHeSettings)
