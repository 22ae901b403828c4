"""Model registry and the two built-in models: shapes, ranges, and errors a config author can fix."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from hepml_core.exceptions import ConfigError
from hepml_core.models.autoencoder import AutoEncoder
from hepml_core.models.mlp import MLPClassifier
from hepml_core.models.registry import build_model, model_kinds, register


def test_builtin_kinds_are_registered():
    assert {"mlp_classifier", "autoencoder"} <= set(model_kinds())


def test_mlp_returns_logits_of_shape_events_by_classes():
    torch.manual_seed(0)
    model = build_model("mlp_classifier", 37, 4, layers=[37, 15, 10, 4], dropout=0.1)
    assert isinstance(model, MLPClassifier) and model.task == "classifier"
    out = model.eval()(torch.randn(11, 37))
    assert out.shape == (11, 4)
    # logits, not probabilities: softmax is scoring's job
    assert not torch.allclose(out.sum(dim=1), torch.ones(11))


def test_talk_architecture_is_the_default():
    model = MLPClassifier()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(37, 15), (15, 10), (10, 4)]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.1 for m in model.modules()) == 2
    assert model.hparams == {"layers": [37, 15, 10, 4], "dropout": 0.1, "activation": "relu"}


def test_autoencoder_output_in_unit_interval_and_per_event_error():
    torch.manual_seed(0)
    model = build_model("autoencoder", 41, 41)
    assert isinstance(model, AutoEncoder) and model.task == "autoencoder"
    assert model.hparams["layers"] == [41, 10, 5, 10, 41]
    x = torch.randn(50, 41) * 10
    with torch.no_grad():
        recon = model(x)
    assert recon.shape == x.shape
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0
    with torch.no_grad():
        err = model.reconstruction_error(x)
    assert err.shape == (50,)
    torch.testing.assert_close(err, ((recon - x) ** 2).mean(dim=1))


def test_hparams_rebuild_the_same_architecture():
    model = build_model("mlp_classifier", 5, 3, layers=[5, 8, 3], dropout=0.0, activation="tanh")
    again = build_model(model.kind, 5, 3, **model.hparams)
    assert again.hparams == model.hparams
    again.load_state_dict(model.state_dict())  # same parameter names and shapes


def test_seed_makes_the_initial_weights_repeatable_without_touching_global_rng():
    torch.manual_seed(5)
    expected_next = torch.rand(2)
    torch.manual_seed(5)
    a = build_model("mlp_classifier", 4, 2, seed=3)
    assert torch.equal(torch.rand(2), expected_next)
    b = build_model("mlp_classifier", 4, 2, seed=3)
    c = build_model("mlp_classifier", 4, 2, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_default_layers_follow_the_data_when_not_given():
    assert build_model("mlp_classifier", 20, 3).hparams["layers"] == [20, 15, 10, 3]
    assert build_model("autoencoder", 12, 12).hparams["layers"] == [12, 10, 5, 10, 12]


def test_unknown_kind_lists_accepted_kinds():
    with pytest.raises(ConfigError) as err:
        build_model("mlp_clasifier", 4, 2)
    msg = str(err.value)
    assert "'mlp_clasifier'" in msg and "mlp_classifier" in msg and "autoencoder" in msg


def test_unknown_parameter_names_the_closest_and_the_accepted_ones():
    with pytest.raises(ConfigError) as err:
        build_model("mlp_classifier", 4, 2, dropuot=0.2)
    msg = str(err.value)
    assert "'dropuot'" in msg and "did you mean 'dropout'" in msg
    assert "layers, dropout, activation" in msg


def test_first_layer_mismatch_says_what_the_data_has_and_what_to_write():
    with pytest.raises(ConfigError) as err:
        build_model("mlp_classifier", 30, 4, layers=[37, 15, 10, 4])
    msg = str(err.value)
    assert "layers[0] is 37 but the data has 30 input features" in msg
    assert "layers: [30, 15, 10, 4]" in msg


def test_last_layer_mismatch_names_the_number_of_classes():
    with pytest.raises(ConfigError, match=r"layers\[-1\] is 4 but the data has 3 classes.*\[37, 15, 10, 3\]"):
        build_model("mlp_classifier", 37, 3, layers=[37, 15, 10, 4])


def test_autoencoder_must_end_with_the_number_of_inputs():
    with pytest.raises(ConfigError, match=r"layers: \[41, 10, 5, 10, 41\]"):
        build_model("autoencoder", 41, 41, layers=[40, 10, 5, 10, 40])
    with pytest.raises(ConfigError, match="start and end"):
        AutoEncoder(layers=[41, 10, 40])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"layers": "37,4"}, "list of at least two positive integers"),
        ({"layers": [37]}, "list of at least two positive integers"),
        ({"layers": [37, 0, 4]}, "list of at least two positive integers"),
        ({"layers": [37, 2.5, 4]}, "list of at least two positive integers"),
        ({"dropout": 1.0}, "dropout must be a number in"),
        ({"activation": "rleu"}, "did you mean 'relu'"),
    ],
)
def test_bad_values_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        build_model("mlp_classifier", 37, 4, **params)


def test_layers_from_yaml_floats_are_accepted():
    assert build_model("mlp_classifier", 3, 2, layers=[3.0, 4.0, 2.0]).hparams["layers"] == [3, 4, 2]


def test_register_refuses_a_taken_kind_and_a_missing_task():
    class Other(torch.nn.Module):
        task = "classifier"

    with pytest.raises(ConfigError, match="already registered"):
        register("mlp_classifier")(Other)

    class NoTask(torch.nn.Module):
        pass

    with pytest.raises(ConfigError, match="task"):
        register("no_task_model")(NoTask)


def test_models_import_no_pandas_or_io():
    folder = Path(__file__).parents[2] / "hepml_core" / "models"
    forbidden = {"pandas", "uproot", "pyarrow", "awkward", "hepml_core.io", "hepml_core.data"}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), (path, name)
