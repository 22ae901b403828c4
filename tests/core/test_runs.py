"""Run store: round trip, atomic writes, incomplete runs, tampering, pickles refused, ids, delete."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hepml_core.exceptions import MissingKeyError, RunError, RunIntegrityError
from hepml_core.models.registry import build_model
from hepml_core.runs import MANIFEST, RunStore

HISTORY = [{"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "seconds": 0.1, "lr": 5e-4},
           {"epoch": 2, "train_loss": 0.7, "val_loss": 0.75, "seconds": 0.1, "lr": 5e-4}]


class _Payload:
    """Unpickling this touches ``marker``: the code a malicious 'weights' file would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def save_run(store, *, kind="mlp_classifier", study=None, metrics=None, scores=True):
    torch.manual_seed(0)
    model = build_model("mlp_classifier", 5, 3, layers=[5, 7, 3])
    config = {"model": {"kind": "mlp_classifier", **model.hparams}, "train": {"epochs": 2}}
    if study:
        config["study"] = study
    with store.create(kind) as writer:
        writer.write_yaml("config.yaml", config)
        writer.write_tensors("model.safetensors", model.state_dict())
        writer.write_csv("history.csv", HISTORY)
        writer.write_json("metrics.json", metrics or {"accuracy": np.float32(0.75), "auc": {"a": 0.9}})
        writer.write_json("schema.json", {"features": ["a", "b"]})
        if scores:
            writer.write_parquet("scores.parquet", pd.DataFrame({"p_a": [0.1, 0.9], "label": ["a", "b"]}))
    return writer, model, config


def rewrite_manifest(path: Path) -> None:
    """What an attacker who knows the format would do: make the checksums fit again."""
    manifest = json.loads((path / MANIFEST).read_text())
    for name in manifest["files"]:
        manifest["files"][name]["sha256"] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_round_trip_of_weights_config_history_metrics_scores(tmp_path):
    store = RunStore(tmp_path / "runs")
    writer, model, config = save_run(store)
    assert re.fullmatch(r"\d{8}-\d{6}-mlp_classifier-[0-9a-f]{6}", writer.id)
    assert writer.path == tmp_path / "runs" / writer.id
    assert sorted(os.listdir(writer.path)) == sorted(
        ["config.yaml", "model.safetensors", "history.csv", "metrics.json", "schema.json", "scores.parquet",
         MANIFEST])

    run = store.load(writer.id)
    assert run.id == writer.id and run.kind == "mlp_classifier"
    assert run.config == config
    rebuilt = run.model()
    assert not rebuilt.training
    for name, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value)
    pd.testing.assert_frame_equal(run.history, pd.DataFrame(HISTORY))
    assert run.metrics == {"accuracy": 0.75, "auc": {"a": 0.9}}
    assert list(run.scores.columns) == ["p_a", "label"]

    manifest = json.loads((writer.path / MANIFEST).read_text())
    assert manifest["status"] == "complete" and manifest["kind"] == "mlp_classifier"
    assert manifest["hepml_version"] and manifest["created"]
    assert manifest["files"]["config.yaml"]["sha256"] == hashlib.sha256(
        (writer.path / "config.yaml").read_bytes()).hexdigest()

    [info] = store.list()
    assert (info.id, info.status, info.kind, info.model_kind) == (writer.id, "complete", "mlp_classifier",
                                                                  "mlp_classifier")
    assert info.metrics == {"accuracy": 0.75}  # the numeric summary only


def test_optional_files_absent(tmp_path):
    store = RunStore(tmp_path)
    with store.create("bare") as writer:
        writer.write_yaml("config.yaml", {"note": "no model"})
    run = store.load(writer.id)
    assert run.scores is None and run.metrics == {} and run.preprocessor is None and run.history.empty
    with pytest.raises(RunError, match="no 'model: {kind: ...}' section"):
        run.model()


def test_schema_is_rebuilt_through_the_data_layer(tmp_path):
    schema_mod = pytest.importorskip("hepml_core.data.schema")
    schema = schema_mod.Schema(features=("a", "b"), label="y", classes=("s", "b"))
    store = RunStore(tmp_path)
    with store.create("x") as writer:
        writer.write_json("schema.json", schema.to_dict())
    assert store.load(writer.id).schema == schema


def test_preprocessor_is_rebuilt_through_the_data_layer(tmp_path):
    prep_mod = pytest.importorskip("hepml_core.data.preprocessing")
    x = np.random.default_rng(0).normal(size=(50, 3))
    pre = prep_mod.Preprocessor(method="standard").fit(x)
    store = RunStore(tmp_path)
    with store.create("x") as writer:
        writer.write_json("preprocessing.json", pre.to_dict())
    np.testing.assert_array_equal(store.load(writer.id).preprocessor.transform(x), pre.transform(x))


def test_an_exception_inside_the_writer_leaves_nothing(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with store.create("mlp_classifier") as writer:
            writer.write_yaml("config.yaml", {"a": 1})
            1 / 0
    assert os.listdir(tmp_path) == [] and store.list() == []


def test_a_crashed_writer_is_listed_incomplete_and_cannot_be_loaded(tmp_path):
    store = RunStore(tmp_path)
    done, _, _ = save_run(store)
    writer = store.create("autoencoder")
    writer.__enter__()  # the process "dies" here: no __exit__
    writer.write_yaml("config.yaml", {"model": {"kind": "autoencoder"}})
    infos = {i.id: i for i in store.list()}
    assert infos[writer.id].status == "incomplete" and infos[writer.id].kind == "autoencoder"
    assert infos[done.id].status == "complete"
    with pytest.raises(RunError, match="incomplete"):
        store.load(writer.id)
    assert store.latest(kind="autoencoder") is None
    store.delete(writer.id)  # leftovers can be cleaned up
    assert [i.id for i in store.list()] == [done.id]


def test_writer_names_and_usage_are_checked(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("x")
    with pytest.raises(RunError, match="inside 'with store.create"):
        writer.write_json("metrics.json", {})
    with writer:
        for bad in ("../evil.json", "a/b.json", MANIFEST, ".hidden.json"):
            with pytest.raises(RunError, match="plain name"):
                writer.write_json(bad, {})
        with pytest.raises(RunError, match="must end with .safetensors"):
            writer.write_tensors("model.pt", {"w": torch.zeros(2)})
        with pytest.raises(RunError, match="must end with .json"):
            writer.write_json("model.safetensors", {})
    with pytest.raises(RunError, match="must be 1-64"):
        store.create("a/b")


@pytest.mark.parametrize("change", ["edit", "remove", "extra", "extra_pickle", "folder"])
def test_tampered_runs_are_refused_naming_the_file(tmp_path, change):
    store = RunStore(tmp_path)
    writer, _, _ = save_run(store)
    path = writer.path
    if change == "edit":
        (path / "metrics.json").write_text('{"accuracy": 0.99}')
        expected = "metrics.json was modified"
    elif change == "remove":
        (path / "history.csv").unlink()
        expected = "history.csv is listed in manifest.json but missing"
    elif change == "extra":
        (path / "notes.txt").write_text("hi")
        expected = "extra file notes.txt"
    elif change == "extra_pickle":
        (path / "model.pt").write_bytes(pickle.dumps({"w": 1}))
        expected = "extra file model.pt"
    else:
        (path / "sub").mkdir()
        expected = "sub is a link or a folder"
    with pytest.raises(RunIntegrityError, match=re.escape(expected)):
        store.load(writer.id)


def test_missing_manifest_is_refused(tmp_path):
    store = RunStore(tmp_path)
    writer, _, _ = save_run(store)
    (writer.path / MANIFEST).unlink()
    assert store.list()[0].status == "corrupt"
    with pytest.raises(RunIntegrityError, match="manifest.json is missing"):
        store.load(writer.id)


def test_a_file_changed_after_loading_is_refused_on_read(tmp_path):
    store = RunStore(tmp_path)
    writer, _, _ = save_run(store)
    run = store.load(writer.id)
    (writer.path / "config.yaml").write_text("model: {kind: autoencoder}\n")
    with pytest.raises(RunIntegrityError, match="config.yaml changed"):
        run.config


@pytest.mark.parametrize("fix_manifest", [False, True])
def test_a_pickle_posing_as_weights_is_refused_without_running_it(tmp_path, fix_manifest):
    proof, marker = tmp_path / "proof", tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(proof)))
    assert proof.exists()  # the payload is live: unpickling it runs code

    store = RunStore(tmp_path / "runs")
    writer, _, _ = save_run(store)
    (writer.path / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    if fix_manifest:
        rewrite_manifest(writer.path)
    expected = "not a valid safetensors file" if fix_manifest else "model.safetensors was modified"
    with pytest.raises(RunIntegrityError, match=expected):
        store.load(writer.id)
    assert not marker.exists()


def test_torch_save_archive_posing_as_a_listed_file_is_refused(tmp_path):
    store = RunStore(tmp_path / "runs")
    writer, _, _ = save_run(store)
    torch.save({"w": torch.zeros(2)}, writer.path / "scores.parquet")
    rewrite_manifest(writer.path)
    with pytest.raises(RunIntegrityError, match="scores.parquet looks like a pickle"):
        store.load(writer.id)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".incomplete-x", "..", "x" * 129, "a b", "/etc"])
def test_bad_run_ids_are_refused(tmp_path, bad):
    store = RunStore(tmp_path)
    for method in (store.load, store.delete):
        with pytest.raises(RunError, match="invalid run id"):
            method(bad)


def test_a_symlinked_run_pointing_outside_the_store_is_refused(tmp_path):
    outside = RunStore(tmp_path / "elsewhere")
    writer, _, _ = save_run(outside)
    store = RunStore(tmp_path / "runs")
    store.root.mkdir()
    (store.root / "linked").symlink_to(writer.path, target_is_directory=True)
    with pytest.raises(RunError, match="outside the store"):
        store.load("linked")


def test_missing_run_names_the_closest_ids(tmp_path):
    store = RunStore(tmp_path)
    writer, _, _ = save_run(store)
    with pytest.raises(MissingKeyError, match=re.escape(writer.id)):
        store.load(writer.id[:-1] + "x")


def test_list_is_newest_first_and_latest_filters_kind_and_study(tmp_path):
    store = RunStore(tmp_path)
    first, _, _ = save_run(store, kind="study", study="ams-he")
    second, _, _ = save_run(store, kind="mlp_classifier")
    third, _, _ = save_run(store, kind="study", study="hnl")
    assert [i.id for i in store.list()] == [third.id, second.id, first.id]
    assert store.latest().id == third.id
    assert store.latest(study="ams-he").id == first.id
    assert store.latest(kind="study", study="hnl").id == third.id
    assert store.latest(kind="mlp_classifier").id == third.id  # model.kind in config.yaml counts too
    assert store.latest(kind="autoencoder") is None
    assert RunStore(tmp_path / "nothing-here").list() == []


def test_delete_removes_a_run(tmp_path):
    store = RunStore(tmp_path)
    keep, _, _ = save_run(store)
    gone, _, _ = save_run(store)
    store.delete(gone.id)
    assert [i.id for i in store.list()] == [keep.id] and sorted(os.listdir(tmp_path)) == [keep.id]
    with pytest.raises(MissingKeyError):
        store.delete(gone.id)
    with pytest.raises(MissingKeyError):
        store.load(gone.id)
