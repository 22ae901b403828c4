"""The one path from events to a saved run: split, preprocess (train only), train, score, save.

``hepml train CONFIG``, the studies and the app's Retrain button all go through ``train_on_table``,
so a run made anywhere looks the same on disk and is scored the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hepml_core.config import SplitConfig, TrainConfig, TrainSettings, load_config
from hepml_core.data.preprocessing import Preprocessor
from hepml_core.data.schema import Schema
from hepml_core.data.split import split_indices
from hepml_core.data.table import EventTable
from hepml_core.data.validate import check_trainable
from hepml_core.exceptions import ConfigError
from hepml_core.metrics.roc import roc_auc
from hepml_core.models.registry import build_model
from hepml_core.runs import Run, RunStore
from hepml_core.scoring.score import outputs_frame, predict_outputs
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer

__all__ = ["schema_from_config", "train_on_table", "train_from_config", "default_layers"]


def schema_from_config(config: TrainConfig) -> Schema:
    """The Schema a training config describes."""
    d = config.data
    return Schema(
        features=d.features, label=d.label, classes=d.classes, weight=d.weight, domain=d.domain,
        parameters=d.parameters, missing_value=d.missing_value,
    )


def default_layers(kind: str, n_inputs: int, n_outputs: int) -> list[int]:
    """A sensible architecture when the config gives none (inputs include missing-value indicators)."""
    if kind == "autoencoder":
        hidden = max(2, n_inputs // 4)
        return [n_inputs, max(hidden, 2) * 2, hidden, max(hidden, 2) * 2, n_inputs]
    width = max(16, 2 * n_inputs)
    return [n_inputs, width, width // 2, n_outputs]


def _build(model_cfg: Mapping[str, Any], n_inputs: int, n_outputs: int, seed: int):
    params = {k: v for k, v in model_cfg.items() if k != "kind"}
    kind = str(model_cfg["kind"])
    if "layers" not in params:
        params["layers"] = default_layers(kind, n_inputs, n_outputs)
    # Seeded initial weights: a run does not depend on what else used torch's global RNG before it.
    return build_model(kind, n_inputs, n_outputs, seed=seed, **params), params


def _evaluate(task: str, y: np.ndarray | None, w: np.ndarray, outputs: np.ndarray, class_names) -> dict:
    """Summary numbers saved in metrics.json (the run list shows them)."""
    if task == "autoencoder":
        return {"mean_mse": float(np.average(outputs, weights=w if w.sum() > 0 else None))}
    metrics: dict[str, Any] = {"accuracy": float(np.average(outputs.argmax(axis=1) == y, weights=w))}
    aucs = {}
    for k, name in enumerate(class_names):
        is_k = y == k
        if is_k.any() and (~is_k).any():
            aucs[name] = float(roc_auc(is_k, outputs[:, k], sample_weight=w))
    metrics["auc"] = aucs
    if aucs:
        metrics["macro_auc"] = float(np.mean(list(aucs.values())))
    return metrics


def train_on_table(
    table: EventTable,
    *,
    model: Mapping[str, Any],
    train: TrainSettings,
    split: SplitConfig,
    store: RunStore,
    preprocessing: str | None = None,
    config: Mapping[str, Any] | None = None,
    callbacks: Sequence = (),
    cancel=None,
    keep_columns: Sequence[str] = (),
) -> Run:
    """Train one model on an EventTable and save everything it produced as a run.

    Args:
        table: the events; its schema names features, label (classifiers) and weight.
        model: ``{"kind": ..., **params}`` for the model registry.
        train: loop settings for the Trainer.
        split: validation/test fractions and seed.
        store: where the run is saved.
        preprocessing: "standard" or "minmax"; None picks minmax for autoencoders, standard otherwise.
        config: the full config to save in config.yaml (extra keys such as ``study`` are kept).
        callbacks: Trainer callbacks (progress bar, live history...).
        cancel: a CancelToken; cancelling raises TrainingCancelled and saves nothing.
        keep_columns: table columns copied into scores.parquet next to the scores.

    Returns:
        The saved, loaded Run.

    Raises:
        DataError: the events cannot be trained on (see check_trainable).
        ConfigError: model settings do not fit the data.
        TrainingCancelled: the user cancelled.
    """
    kind = str(model.get("kind", ""))
    is_ae = kind == "autoencoder"
    if not is_ae and table.schema.label is None:
        raise ConfigError(f"model kind {kind!r} is a classifier and needs data.label (the class column)")
    check_trainable(table, allow_missing=table.schema.missing_value is not None, need_labels=not is_ae)
    y = None if is_ae else table.labels()
    w = table.weights()
    parts = split_indices(len(table), validation=split.validation, test=split.test, seed=split.seed,
                          stratify=y)
    method = preprocessing or ("minmax" if is_ae else "standard")
    x_raw = table.features()
    pre = Preprocessor(method=method).fit(x_raw[parts.train], sample_weight=w[parts.train])
    x = pre.transform(x_raw)
    class_names = () if is_ae else table.class_names
    net, params = _build(model, pre.n_outputs_, pre.n_outputs_ if is_ae else len(class_names), train.seed)

    def tensors(idx):
        return TensorData(x[idx], None if y is None else y[idx], w[idx].astype(np.float32))

    trainer = Trainer(
        epochs=train.epochs, batch_size=train.batch_size, lr=train.lr, weight_decay=train.weight_decay,
        seed=train.seed, early_stopping=train.early_stopping, callbacks=callbacks, cancel=cancel,
    )
    result = trainer.fit(net, tensors(parts.train), tensors(parts.validation) if len(parts.validation) else None,
                         class_weight=train.class_weight)

    outputs = predict_outputs(net, x)
    scale = float((config or {}).get("scoring", {}).get("anomaly_scale", 1.0))
    split_col = np.full(len(table), "train", dtype=object)
    split_col[parts.validation] = "validation"
    split_col[parts.test] = "test"
    truth = {"split": split_col}
    if y is not None:
        truth["label"] = np.asarray(class_names, dtype=object)[y]
    truth["weight"] = w
    scores = pd.concat(
        [pd.DataFrame(truth), outputs_frame(outputs, net.task, class_names, anomaly_scale=scale)], axis=1
    )
    for col in keep_columns:
        scores[col] = table.frame[col].to_numpy()
    eval_idx = parts.test if len(parts.test) else parts.validation
    metrics = _evaluate(net.task, None if y is None else y[eval_idx], w[eval_idx], outputs[eval_idx], class_names)
    metrics.update(best_epoch=int(result.best_epoch), train_seconds=float(result.seconds),
                   n_train=int(len(parts.train)), n_validation=int(len(parts.validation)),
                   n_test=int(len(parts.test)))

    saved = dict(config or {})
    saved["model"] = {"kind": kind, **params}
    with store.create(kind) as writer:
        writer.write_yaml("config.yaml", saved)
        writer.write_json("schema.json", table.schema.to_dict())
        writer.write_json("preprocessing.json", pre.to_dict())
        writer.write_tensors("model.safetensors", result.best_state)
        writer.write_csv("history.csv", pd.DataFrame(result.history))
        writer.write_json("metrics.json", metrics)
        writer.write_parquet("scores.parquet", scores)
    return store.load(writer.id)


def train_from_config(config: TrainConfig | Mapping[str, Any] | str, store: RunStore, *, callbacks: Sequence = (),
                      cancel=None) -> Run:
    """``hepml train``: read the events a config names and train on them.

    Args:
        config: a TrainConfig, a dict, or a path to a YAML file.
        store: where the run is saved.
        callbacks: Trainer callbacks.
        cancel: optional CancelToken.

    Returns:
        The saved Run.

    Raises:
        HepmlError subclasses for bad files, columns, settings or data.
    """
    if not isinstance(config, TrainConfig):
        config = load_config(config)
    schema = schema_from_config(config)
    table = EventTable.from_source(config.data.source, schema, selection=config.data.selection)
    return train_on_table(
        table, model=config.model, train=config.train, split=config.data.split, store=store,
        preprocessing=config.preprocessing, config=config.to_dict(), callbacks=callbacks, cancel=cancel,
    )
