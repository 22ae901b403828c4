"""The ``hepml`` command end to end, as a user runs it: real files, real runs, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot
import yaml

from hepml_cli.main import main
from hepml_core.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]


def _toy(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) + y[:, None] * 1.5
    return pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], "y": y, "w": rng.uniform(0.5, 1.5, n)})


def _config(tmp_path: Path, source: str, **data_extra) -> Path:
    cfg = {
        "data": {"source": source, "features": ["f0", "f1", "f2"], "label": "y",
                 "classes": ["background", "signal"], "weight": "w",
                 "split": {"validation": 0.25, "test": 0.25, "seed": 1}, **data_extra},
        "model": {"kind": "mlp_classifier", "layers": [3, 16, 2], "dropout": 0.1},
        "train": {"epochs": 3, "batch_size": 128, "lr": 1.0e-2, "seed": 1, "early_stopping": {"patience": 2}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_prints_the_run_id_last_and_score_writes_aligned_probabilities(tmp_path, capsys):
    _toy(2000).to_parquet(tmp_path / "events.parquet")
    runs = tmp_path / "runs"
    assert main(["--quiet", "train", str(_config(tmp_path, "events.parquet")), "--runs-dir", str(runs)]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    run = RunStore(runs).load(run_id)
    assert run.metrics["auc"]["signal"] > 0.8

    new = _toy(500, seed=5)
    new.drop(columns=["y"]).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "scores.parquet"
    assert main(["--quiet", "score", run_id, str(tmp_path / "new.csv"), "-o", str(out), "--runs-dir", str(runs)]) == 0
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["p_background", "p_signal"] and len(scores) == 500
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    # Row-aligned: the true signal events get the higher signal probability on average.
    assert scores["p_signal"][new["y"] == 1].mean() > scores["p_signal"][new["y"] == 0].mean() + 0.3


def test_train_from_a_root_file_written_with_uproot(tmp_path, capsys):
    df = _toy(1500)
    with uproot.recreate(tmp_path / "events.root") as f:
        f["Events"] = {c: df[c].to_numpy() for c in df.columns}
    runs = tmp_path / "runs"
    cfg = _config(tmp_path, "events.root:Events")
    assert main(["--quiet", "train", str(cfg), "--runs-dir", str(runs)]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert RunStore(runs).load(run_id).metrics["accuracy"] > 0.75


@pytest.mark.parametrize(
    "source,expected",
    [
        ("missing.parquet", "not found"),
        ("events.root:Evnets", "closest: 'Events'"),
        ("not_root.root:Events", "not a ROOT file"),
    ],
)
def test_bad_input_ends_in_one_line_without_traceback(tmp_path, source, expected):
    df = _toy(300)
    with uproot.recreate(tmp_path / "events.root") as f:
        f["Events"] = {c: df[c].to_numpy() for c in df.columns}
    (tmp_path / "not_root.root").write_text("this is text, not ROOT")
    cfg = _config(tmp_path, source)
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "hepml_cli", "--quiet", "train", str(cfg), "--runs-dir", str(runs)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("hepml train: error:") and expected in lines[0]
    assert not runs.exists() or not any(runs.iterdir()), "a failed load must not leave a run behind"


def test_a_bad_branch_name_is_named_with_the_closest_one(tmp_path, capsys):
    df = _toy(300)
    with uproot.recreate(tmp_path / "events.root") as f:
        f["Events"] = {c: df[c].to_numpy() for c in df.columns}
    cfg = yaml.safe_load(_config(tmp_path, "events.root:Events").read_text())
    cfg["data"]["features"] = ["f0", "f1", "f22"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["--quiet", "train", str(tmp_path / "config.yaml"), "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "'f22'" in err and "events.root" in err and "'f2'" in err


def test_one_class_only_and_zero_weights_are_refused(tmp_path, capsys):
    df = _toy(400)
    df.assign(y=1).to_parquet(tmp_path / "one.parquet")
    df.assign(w=0.0).to_parquet(tmp_path / "zero.parquet")
    assert main(["--quiet", "train", str(_config(tmp_path, "one.parquet")), "--runs-dir", str(tmp_path / "r")]) == 2
    assert "one class" in capsys.readouterr().err
    assert main(["--quiet", "train", str(_config(tmp_path, "zero.parquet")), "--runs-dir", str(tmp_path / "r")]) == 2
    assert "weight" in capsys.readouterr().err


def test_simulate_writes_the_documented_columns(tmp_path):
    out = tmp_path / "he.parquet"
    assert main(["--quiet", "simulate", "ams-he", "-n", "3000", "--seed", "3", "-o", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 3000 and {"label", "weight"} <= set(frame.columns)
    assert len(frame.columns) == 37 + 2
    assert set(frame["label"]) <= {"spillover", "had_inel", "el_scat", "other"}
    data = tmp_path / "data.parquet"
    assert main(["--quiet", "simulate", "ams-he", "-n", "3000", "--seed", "3", "--sample", "data", "-o", str(data)]) == 0
    assert "anomaly" in set(pd.read_parquet(data)["label"])


def test_help_answers_without_importing_torch():
    code = "import sys\nfrom hepml_cli.main import build_parser\nbuild_parser()\nassert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_export_writes_an_onnx_model_that_onnxruntime_scores_like_pytorch(tmp_path, capsys):
    import onnxruntime as ort

    _toy(1000).to_parquet(tmp_path / "events.parquet")
    runs = tmp_path / "runs"
    assert main(["--quiet", "train", str(_config(tmp_path, "events.parquet")), "--runs-dir", str(runs)]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    out = tmp_path / "model.onnx"
    assert main(["--quiet", "export", run_id, "-o", str(out), "--runs-dir", str(runs)]) == 0
    x = _toy(200, seed=9)[["f0", "f1", "f2"]].to_numpy(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    proba = session.run(None, {session.get_inputs()[0].name: x})[0]
    expected = RunStore(runs).load(run_id).scores  # same model; compare on fresh inputs via the API
    from hepml_core.data.schema import Schema
    from hepml_core.data.table import EventTable
    from hepml_core.scoring.score import score_table

    frame = pd.DataFrame(x, columns=["f0", "f1", "f2"])
    torch_p = score_table(RunStore(runs).load(run_id), EventTable(frame, Schema(features=("f0", "f1", "f2"))))
    assert expected is not None
    np.testing.assert_allclose(proba, torch_p.to_numpy(), atol=1e-5)
