"""The FSE set model and the PID baselines: missing features never reach the model, and the
generic ``model: {kind: fse_transformer}`` config trains on any table with NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression

from hepml_core.config import SplitConfig, TrainSettings
from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.exceptions import ConfigError
from hepml_core.models.pid_baselines import fit_regression_imputation
from hepml_core.models.registry import build_model, model_kinds
from hepml_core.pipeline import train_from_config, train_on_table
from hepml_core.runs import RunStore
from hepml_core.scoring.score import score_table


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _layout(n=64, n_features=5, missing=(1, 3), seed=0):
    """Inputs as the Preprocessor lays them out: values then one indicator per missing column."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(n, n_features, generator=g)
    flags = torch.rand(n, len(missing), generator=g) < 0.4
    return torch.cat([values, flags.float()], dim=1), flags


def test_registered_and_talk_architecture():
    assert {"fse_transformer", "pid_mlp"} <= set(model_kinds())
    m = build_model("fse_transformer", 19, 2)
    assert m.hparams["layers"] == [19, 64, 2] and m.hparams["embedding"] == [128, 32]
    assert m.embed_first.in_features == 20 and m.embed_first.out_features == 128  # one-hot(19) + value
    assert len(m.encoder) == 2 and m.encoder[0].heads == 2 and m.encoder[0].ff[0].out_features == 128
    assert [l.out_features for l in m.pool if isinstance(l, torch.nn.Linear)] == [64, 32]
    assert m.head[-1].out_features == 1  # one sigmoid output for one-vs-all
    mlp = build_model("pid_mlp", 19, 2)
    widths = [l.out_features for l in mlp.net if isinstance(l, torch.nn.Linear)]
    assert widths == [64, 32, 16, 1] and isinstance(mlp.net[1], torch.nn.LeakyReLU)
    with pytest.raises(ConfigError, match="divisible by heads"):
        build_model("fse_transformer", 19, 2, heads=3)
    with pytest.raises(ConfigError, match="imputation must be one of"):
        build_model("pid_mlp", 19, 2, imputation="median")
    with pytest.raises(ConfigError, match="missing_columns"):
        build_model("fse_transformer", 6, 2, missing_columns=[7])


def test_fse_output_ignores_the_values_of_missing_features():
    model = build_model("fse_transformer", 7, 2, seed=1, missing_columns=[1, 3]).eval()
    x, flags = _layout()
    y = model(x)
    scrambled = x.clone()
    scrambled[:, 1] = torch.where(flags[:, 0], torch.full_like(x[:, 1], 1e3), x[:, 1])
    scrambled[:, 3] = torch.where(flags[:, 1], torch.randn(len(x)) * 50, x[:, 3])
    torch.testing.assert_close(model(scrambled), y, rtol=0, atol=1e-5)
    # binary head: logits (0, z) -> softmax = sigmoid(z)
    assert torch.all(y[:, 0] == 0)
    torch.testing.assert_close(torch.softmax(y, 1)[:, 1], torch.sigmoid(y[:, 1]))


def test_fse_is_invariant_to_the_order_of_the_set_elements_and_attention_sums_to_one():
    model = build_model("fse_transformer", 4, 3, seed=2).eval()
    x = torch.randn(16, 4)
    att = model.attention(x)
    torch.testing.assert_close(att["pooling"].sum(dim=1), torch.ones(16))
    assert att["encoder"].shape == (16, 2, 2, 4, 4)
    x_miss = torch.cat([torch.randn(16, 4), torch.zeros(16, 1)], 1)
    x_miss[:8, 4] = 1.0  # feature 2 missing in the first 8 tracks
    model2 = build_model("fse_transformer", 5, 3, seed=2, missing_columns=[2]).eval()
    pooled = model2.attention(x_miss)["pooling"]
    assert torch.all(pooled[:8, 2] == 0) and torch.all(pooled[8:, 2] > 0)


def test_regression_imputation_matches_sklearn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    x[:, 2] = 1.5 * x[:, 0] - 0.5 * x[:, 1] + 0.3 + 0.01 * rng.normal(size=500)
    missing = np.zeros_like(x, dtype=bool)
    missing[::3, 2] = True
    core, rows = fit_regression_imputation(np.where(missing, 0.0, x), missing)
    assert core == [0, 1, 3]
    ref = LinearRegression().fit(x[~missing[:, 2]][:, core], x[~missing[:, 2], 2])
    np.testing.assert_allclose(rows[0][:-1], ref.coef_, atol=1e-8)
    np.testing.assert_allclose(rows[0][-1], ref.intercept_, atol=1e-8)
    # the module fills exactly the missing entries with the regression prediction
    model = build_model("pid_mlp", 5, 2, imputation="regression", missing_columns=[2], regression=rows).eval()
    inp = torch.tensor(np.hstack([np.where(missing, 0.0, x), missing[:, 2:3]]), dtype=torch.float32)
    filled = model.imputed(inp).numpy()
    np.testing.assert_allclose(filled[missing[:, 2], 2], ref.predict(x[missing[:, 2]][:, core]), atol=1e-4)
    np.testing.assert_allclose(filled[~missing[:, 2]], x[~missing[:, 2]], atol=1e-6)


def _nan_table(n=1200, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    frame = pd.DataFrame({"a": rng.normal(label, 0.5), "b": rng.normal(-label, 0.7), "c": rng.normal(size=n)})
    frame.loc[rng.random(n) < 0.3, "b"] = np.nan
    frame["cls"] = np.array(["x", "y", "z"])[label]
    return frame


def test_generic_config_trains_fse_on_any_table_with_nan(tmp_path):
    path = tmp_path / "events.parquet"
    _nan_table().to_parquet(path)
    store = RunStore(tmp_path / "runs")
    config = {"data": {"source": str(path), "features": ["a", "b", "c"], "label": "cls",
                       "classes": ["x", "y", "z"]},
              "model": {"kind": "fse_transformer"}, "train": {"epochs": 3, "batch_size": 64, "seed": 2}}
    run = train_from_config(config, store)
    assert run.config["model"]["layers"] == [4, 64, 3] and run.config["model"]["missing_columns"] == [1]
    assert run.metrics["macro_auc"] > 0.8  # separable classes, learned through the NaN
    table = EventTable(_nan_table(), Schema(features=("a", "b", "c"), label="cls"))
    scores = score_table(store.load(run.id), table)
    assert list(scores.columns) == ["p_x", "p_y", "p_z"]
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    # the foundation MLP still refuses NaN unless missing_value is declared
    with pytest.raises(Exception, match="NaN"):
        train_from_config({**config, "model": {"kind": "mlp_classifier"}}, store)


def test_pid_mlp_through_the_pipeline_saves_its_imputation(tmp_path):
    table = EventTable(_nan_table(), Schema(features=("a", "b", "c"), label="cls"))
    store = RunStore(tmp_path)
    run = train_on_table(table, model={"kind": "pid_mlp", "imputation": "regression"},
                         train=TrainSettings(epochs=2, batch_size=64), split=SplitConfig(), store=store)
    section = run.config["model"]
    assert section["missing_columns"] == [1] and len(section["regression"]) == 1
    assert len(section["regression"][0]) == 3  # coefficients of a and c, intercept
    reloaded = store.load(run.id).model()
    np.testing.assert_allclose(reloaded.hparams["regression"], section["regression"], rtol=1e-6)
