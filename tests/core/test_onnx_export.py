"""ONNX export: raw features with NaN in, class probabilities out; onnxruntime agrees with PyTorch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hepml_core.config import SplitConfig, TrainSettings  # noqa: E402
from hepml_core.data.schema import Schema  # noqa: E402
from hepml_core.data.table import EventTable  # noqa: E402
from hepml_core.exceptions import DataError, InputFileError  # noqa: E402
from hepml_core.onnx_export import OnnxScorer, export_onnx, torch_outputs  # noqa: E402
from hepml_core.pipeline import train_on_table  # noqa: E402
from hepml_core.runs import RunStore  # noqa: E402
from hepml_core.scoring.score import score_table  # noqa: E402
from hepml_core.simulate.alice_pid import FEATURES, simulate_alice_pid  # noqa: E402

TOL = 1e-5


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    frame = simulate_alice_pid(3000, seed=2)
    frame["target"] = np.where(frame["label"] == "kaon", "kaon", "rest")
    return frame


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("onnx_runs"))


def _train(frame, store, model, features=FEATURES, classes=("rest", "kaon"), label="target", **schema):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        table = EventTable(frame, Schema(features=tuple(features), label=label, classes=classes, **schema))
        return train_on_table(table, model=model, train=TrainSettings(epochs=1, batch_size=128, seed=3),
                              split=SplitConfig(), store=store), table
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("model", [{"kind": "fse_transformer"},
                                   {"kind": "pid_mlp", "imputation": "mean"},
                                   {"kind": "pid_mlp", "imputation": "regression"}], ids=lambda m: str(m))
def test_nan_aware_models_export_and_agree_with_pytorch(tracks, store, tmp_path, model):
    run, table = _train(tracks, store, model)
    path = export_onnx(run, tmp_path / "model.onnx")
    scorer = OnnxScorer(path, threads=1)
    assert scorer.features == FEATURES and scorer.classes == ("rest", "kaon") and scorer.run_id == run.id
    x = tracks[list(FEATURES)].to_numpy(np.float32)
    assert np.isnan(x).any()  # the graph gets NaN for missing detectors
    onnx_p = scorer.predict(x)
    assert onnx_p.shape == (len(x), 2) and onnx_p.dtype == np.float32
    np.testing.assert_allclose(onnx_p.sum(axis=1), 1.0, atol=1e-6)
    assert np.abs(onnx_p - torch_outputs(run, x)).max() < TOL
    # the exported graph is the saved run: score_table (the pipeline's scorer) gives the same numbers
    assert np.abs(onnx_p - score_table(run, table).to_numpy()).max() < TOL
    frame_scores = scorer.score_frame(tracks)
    assert list(frame_scores.columns) == ["p_rest", "p_kaon"]


def test_foundation_mlp_exports_the_same_way(tracks, store, tmp_path):
    complete = tracks.dropna(subset=list(FEATURES)).reset_index(drop=True)
    run, table = _train(complete, store, {"kind": "mlp_classifier"})
    scorer = OnnxScorer(export_onnx(run, tmp_path / "mlp.onnx"))
    x = complete[list(FEATURES)].to_numpy(np.float32)
    assert np.abs(scorer.predict(x) - score_table(run, table).to_numpy()).max() < TOL


def test_multiclass_and_missing_value_sentinel(tracks, store, tmp_path):
    frame = tracks.copy()
    frame[list(FEATURES)] = frame[list(FEATURES)].fillna(-999.0)
    run, table = _train(frame, store, {"kind": "mlp_classifier"}, classes=None, label="label", missing_value=-999.0)
    scorer = OnnxScorer(export_onnx(run, tmp_path / "multi.onnx"))
    assert scorer.classes == tuple(sorted(frame["label"].unique()))  # the pipeline's default class order
    x = tracks[list(FEATURES)].to_numpy(np.float32)  # NaN is what the sentinel became
    saved = run.scores[[f"p_{c}" for c in scorer.classes]].to_numpy()  # the pipeline's own scores
    assert np.abs(scorer.predict(x) - saved).max() < TOL


def test_autoencoder_exports_reconstruction_error(tracks, store, tmp_path):
    features = ("p", "pt", "tpc_signal", "tpc_ncls")
    table = EventTable(tracks, Schema(features=features))
    run = train_on_table(table, model={"kind": "autoencoder"}, train=TrainSettings(epochs=1, batch_size=256),
                         split=SplitConfig(), store=store)
    scorer = OnnxScorer(export_onnx(run, tmp_path / "ae.onnx"))
    mse = scorer.predict(tracks[list(features)].to_numpy(np.float32))
    assert mse.shape == (len(tracks),)
    np.testing.assert_allclose(mse, score_table(run, table)["mse"].to_numpy(), atol=TOL)


def test_scorer_errors_name_the_problem(tracks, store, tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        OnnxScorer(tmp_path / "absent.onnx")
    run, _ = _train(tracks, store, {"kind": "pid_mlp"})
    scorer = OnnxScorer(export_onnx(run, tmp_path / "m.onnx"))
    with pytest.raises(DataError, match=r"expects \(n, 19\) features"):
        scorer.predict(np.zeros((3, 4), np.float32))
    with pytest.raises(DataError, match="tof_beta"):
        scorer.score_frame(tracks.drop(columns="tof_beta"))
