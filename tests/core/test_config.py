"""Training configs: the documented format parses; typos and bad values are named, not ignored."""

from __future__ import annotations

import pytest
import yaml

from hepml_core.config import load_config
from hepml_core.exceptions import ConfigError, InputFileError

EXAMPLE = {
    "data": {
        "source": "events.parquet",
        "features": ["f0", "f1", "f2"],
        "label": "y",
        "classes": ["background", "signal"],
        "weight": "w",
        "split": {"validation": 0.25, "test": 0.25, "seed": 1},
    },
    "model": {"kind": "mlp_classifier", "layers": [3, 64, 64, 2], "dropout": 0.1},
    "train": {"epochs": 20, "batch_size": 512, "lr": 1.0e-3, "seed": 1, "early_stopping": {"patience": 5}},
}


def test_documented_example_parses_and_round_trips(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(EXAMPLE))
    config = load_config(path)
    assert config.data.features == ("f0", "f1", "f2")
    assert config.data.classes == ("background", "signal")
    assert config.train.early_stopping == 5 and config.train.batch_size == 512
    # A relative source is relative to the config file, not to the current directory.
    assert config.data.source == str(tmp_path / "events.parquet")
    again = load_config(config.to_dict())
    assert again == config


def test_root_source_keeps_its_tree_name_when_made_relative_to_the_config(tmp_path):
    raw = yaml.safe_load(yaml.safe_dump(EXAMPLE))
    raw["data"]["source"] = "sub/file.root:Events"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path).data.source == f"{tmp_path / 'sub' / 'file.root'}:Events"


@pytest.mark.parametrize(
    "section,key,message",
    [
        (None, "trian", "did you mean 'train'"),
        ("data", "feature", "did you mean 'features'"),
        ("train", "batchsize", "did you mean 'batch_size'"),
    ],
)
def test_unknown_keys_are_named_with_the_accepted_ones(section, key, message):
    raw = yaml.safe_load(yaml.safe_dump(EXAMPLE))
    (raw if section is None else raw[section])[key] = 1
    with pytest.raises(ConfigError, match=message) as err:
        load_config(raw)
    assert repr(key) in str(err.value) and "accepted keys" in str(err.value)


def test_early_stopping_can_be_switched_off():
    raw = yaml.safe_load(yaml.safe_dump(EXAMPLE))
    raw["train"]["early_stopping"] = False
    assert load_config(raw).train.early_stopping is None


def test_lr_decay_parses_round_trips_and_defaults_to_a_constant_rate():
    raw = yaml.safe_load(yaml.safe_dump(EXAMPLE))
    assert load_config(raw).train.lr_decay is None
    raw["train"]["lr_decay"] = 0.98
    config = load_config(raw)
    assert config.train.lr_decay == 0.98 and load_config(config.to_dict()).train == config.train


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: r["train"].update(epochs="many"), "train.epochs must be an integer"),
        (lambda r: r["train"].update(lr=-1), "train.lr > 0"),
        (lambda r: r["train"].update(lr_decay=1.2), "train.lr_decay .* must be in \\(0, 1\\]"),
        (lambda r: r["data"].update(features="f0"), "data.features must be a non-empty list"),
        (lambda r: r["data"]["split"].update(validation=0.6, test=0.5), "leave events for training"),
        (lambda r: r.pop("model"), "needs a 'model:' section"),
        (lambda r: r["model"].pop("kind"), "needs a 'kind'"),
    ],
)
def test_bad_values_are_config_errors(mutate, message):
    raw = yaml.safe_load(yaml.safe_dump(EXAMPLE))
    mutate(raw)
    with pytest.raises(ConfigError, match=message):
        load_config(raw)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(InputFileError, match="not valid YAML"):
        load_config(bad)
