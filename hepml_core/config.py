"""Training configuration: the YAML a user writes for ``hepml train``, parsed into frozen dataclasses.

Every section accepts a fixed set of keys; an unknown key is an error that names the key, where it
is, and the accepted ones (a typo like ``batchsize`` must not silently fall back to a default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hepml_core.exceptions import ConfigError, InputFileError, closest_names

__all__ = ["DataConfig", "SplitConfig", "TrainSettings", "TrainConfig", "load_config"]


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of events held out for validation (early stopping) and test (evaluation)."""

    validation: float = 0.25
    test: float = 0.25
    seed: int = 1


@dataclass(frozen=True)
class DataConfig:
    """Where events come from and which columns play which role."""

    source: str
    features: tuple[str, ...]
    label: str | None = None
    classes: tuple[str, ...] | None = None
    weight: str | None = None
    domain: str | None = None
    parameters: tuple[str, ...] = ()
    selection: str | None = None
    missing_value: float | None = None
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and loop settings handed to the Trainer."""

    epochs: int = 20
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 1
    early_stopping: int | None = 5  # patience in epochs; None switches it off
    class_weight: str | None = None  # None or "balanced"
    lr_decay: float | None = None  # None: constant lr; gamma in (0, 1]: lr * gamma**(epoch - 1)


@dataclass(frozen=True)
class TrainConfig:
    """A whole ``hepml train`` configuration."""

    data: DataConfig
    model: Mapping[str, Any]  # {"kind": ..., **params}; params are checked by the model registry
    train: TrainSettings = field(default_factory=TrainSettings)
    preprocessing: str | None = None  # "standard" | "minmax"; None picks the model's natural choice
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as saved in a run's config.yaml (re-loadable with load_config)."""
        d = self.data
        data: dict[str, Any] = {"source": d.source, "features": list(d.features)}
        for key in ("label", "weight", "domain", "selection", "missing_value"):
            if getattr(d, key) is not None:
                data[key] = getattr(d, key)
        if d.classes is not None:
            data["classes"] = list(d.classes)
        if d.parameters:
            data["parameters"] = list(d.parameters)
        data["split"] = {"validation": d.split.validation, "test": d.split.test, "seed": d.split.seed}
        t = self.train
        train = {
            "epochs": t.epochs,
            "batch_size": t.batch_size,
            "lr": t.lr,
            "weight_decay": t.weight_decay,
            "seed": t.seed,
            "early_stopping": {"patience": t.early_stopping} if t.early_stopping is not None else False,
            "class_weight": t.class_weight,
            "lr_decay": t.lr_decay,
        }
        out: dict[str, Any] = {"data": data, "model": dict(self.model), "train": train}
        if self.preprocessing is not None:
            out["preprocessing"] = self.preprocessing
        if self.name is not None:
            out["name"] = self.name
        return out


_TOP_KEYS = {"data", "model", "train", "preprocessing", "name"}
_DATA_KEYS = {f for f in DataConfig.__dataclass_fields__}
_SPLIT_KEYS = {f for f in SplitConfig.__dataclass_fields__}
_TRAIN_KEYS = {f for f in TrainSettings.__dataclass_fields__}


def _check_keys(section: Mapping[str, Any], accepted: set[str], where: str) -> None:
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values; got {type(section).__name__}")
    for key in section:
        if key not in accepted:
            close = closest_names(str(key), accepted)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown key {key!r} in {where}{hint}; accepted keys: {', '.join(sorted(accepted))}"
            )


_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false"}


def _typed(value: Any, kind: type, where: str) -> Any:
    """Coerce a scalar to ``kind`` or raise a ConfigError that says what was given."""
    expected = _KIND_WORDS.get(kind, kind.__name__)
    if kind is bool or isinstance(value, bool):
        if kind is not bool:
            raise ConfigError(f"{where} must be {expected}; got {value!r}")
        return value
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{where} must be {expected}; got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where} must be {expected}; got {value!r}") from err


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where} must be a non-empty list of names; got {value!r}")
    return tuple(str(v) for v in value)


def _parse_split(raw: Any) -> SplitConfig:
    raw = {} if raw is None else raw
    _check_keys(raw, _SPLIT_KEYS, "data.split")
    split = SplitConfig(
        validation=_typed(raw.get("validation", 0.25), float, "data.split.validation"),
        test=_typed(raw.get("test", 0.25), float, "data.split.test"),
        seed=_typed(raw.get("seed", 1), int, "data.split.seed"),
    )
    if split.validation < 0 or split.test < 0 or split.validation + split.test >= 1:
        raise ConfigError(
            f"data.split fractions must be >= 0 and leave events for training; got validation="
            f"{split.validation}, test={split.test}"
        )
    return split


def _resolve_source(source: str, base_dir: Path | None) -> str:
    """Make a relative source path relative to the config file's folder (``file.root:Tree`` kept)."""
    if base_dir is None:
        return source
    path_part, sep, tree = source.rpartition(":") if ".root:" in source else (source, "", "")
    if Path(path_part).is_absolute():
        return source
    return str(base_dir / path_part) + (sep + tree if sep else "")


def _parse_data(raw: Any, base_dir: Path | None) -> DataConfig:
    _check_keys(raw, _DATA_KEYS, "data")
    for required in ("source", "features"):
        if required not in raw:
            raise ConfigError(f"data.{required} is required (e.g. source: events.parquet, features: [f0, f1])")
    source = _resolve_source(str(raw["source"]), base_dir)
    missing = raw.get("missing_value")
    return DataConfig(
        source=source,
        features=_str_list(raw["features"], "data.features"),
        label=None if raw.get("label") is None else str(raw["label"]),
        classes=None if raw.get("classes") is None else _str_list(raw["classes"], "data.classes"),
        weight=None if raw.get("weight") is None else str(raw["weight"]),
        domain=None if raw.get("domain") is None else str(raw["domain"]),
        parameters=() if raw.get("parameters") is None else _str_list(raw["parameters"], "data.parameters"),
        selection=None if raw.get("selection") is None else str(raw["selection"]),
        missing_value=None if missing is None else _typed(missing, float, "data.missing_value"),
        split=_parse_split(raw.get("split")),
    )


def _parse_train(raw: Any) -> TrainSettings:
    raw = {} if raw is None else raw
    _check_keys(raw, _TRAIN_KEYS, "train")
    early = raw.get("early_stopping", {"patience": 5})
    if early is False or early is None:
        patience = None
    elif isinstance(early, Mapping):
        _check_keys(early, {"patience"}, "train.early_stopping")
        patience = _typed(early.get("patience", 5), int, "train.early_stopping.patience")
    else:
        patience = _typed(early, int, "train.early_stopping")
    class_weight = raw.get("class_weight")
    if class_weight not in (None, "balanced"):
        raise ConfigError(f"train.class_weight must be 'balanced' or empty; got {class_weight!r}")
    lr_decay = raw.get("lr_decay")
    if lr_decay is not None:
        lr_decay = _typed(lr_decay, float, "train.lr_decay")
        if not 0 < lr_decay <= 1:
            raise ConfigError(f"train.lr_decay is the factor applied to lr after every epoch and must be in "
                              f"(0, 1] (e.g. 0.98), or empty for a constant lr; got {lr_decay!r}")
    settings = TrainSettings(
        epochs=_typed(raw.get("epochs", 20), int, "train.epochs"),
        batch_size=_typed(raw.get("batch_size", 512), int, "train.batch_size"),
        lr=_typed(raw.get("lr", 1e-3), float, "train.lr"),
        weight_decay=_typed(raw.get("weight_decay", 0.0), float, "train.weight_decay"),
        seed=_typed(raw.get("seed", 1), int, "train.seed"),
        early_stopping=patience,
        class_weight=class_weight,
        lr_decay=lr_decay,
    )
    if settings.epochs < 1 or settings.batch_size < 1 or not settings.lr > 0:
        raise ConfigError(
            f"train.epochs and train.batch_size must be >= 1 and train.lr > 0; got epochs={settings.epochs}, "
            f"batch_size={settings.batch_size}, lr={settings.lr}"
        )
    return settings


def load_config(source: str | Path | Mapping[str, Any]) -> TrainConfig:
    """Parse a training configuration from a YAML file or a dict.

    Args:
        source: path to a YAML file, or an already-parsed mapping.

    Returns:
        The validated TrainConfig.

    Raises:
        InputFileError: the file does not exist or is not valid YAML.
        ConfigError: unknown keys, missing required keys, or values of the wrong type.
    """
    base_dir = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputFileError(f"config file {str(path)!r} not found")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise InputFileError(f"config file {str(path)!r} is not valid YAML: {err}".replace("\n", " ")) from err
        base_dir = path.resolve().parent
    else:
        raw = source
    if not isinstance(raw, Mapping):
        raise ConfigError("a config must be a mapping with the sections data, model and train")
    _check_keys(raw, _TOP_KEYS, "the config's top level")
    for required in ("data", "model"):
        if required not in raw:
            raise ConfigError(f"the config needs a '{required}:' section")
    model = raw["model"]
    if not isinstance(model, Mapping) or "kind" not in model:
        raise ConfigError("model: needs a 'kind' (e.g. model: {kind: mlp_classifier, layers: [3, 64, 2]})")
    preprocessing = raw.get("preprocessing")
    if preprocessing not in (None, "standard", "minmax"):
        raise ConfigError(f"preprocessing must be 'standard' or 'minmax'; got {preprocessing!r}")
    return TrainConfig(
        data=_parse_data(raw["data"], base_dir),
        model=dict(model),
        train=_parse_train(raw.get("train")),
        preprocessing=preprocessing,
        name=None if raw.get("name") is None else str(raw["name"]),
    )
