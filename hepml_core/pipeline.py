"""The one path from events to a saved run: split, preprocess (train only), train, score, save.

``hepml train CONFIG``, the studies and the app's Retrain button all go through ``train_on_table``,
so a run made anywhere looks the same on disk and is scored the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from hepml_core.config import SplitConfig, TrainConfig, TrainSettings, load_config
from hepml_core.data.preprocessing import Preprocessor
from hepml_core.data.schema import Schema
from hepml_core.data.split import split_indices
from hepml_core.data.table import EventTable
from hepml_core.data.validate import check_trainable
from hepml_core.exceptions import ConfigError, DataError
from hepml_core.metrics.roc import roc_auc
from hepml_core.models.registry import build_model, model_class
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


def _model_class(kind: str):
    """The registered class of ``kind``, or None (build_model then raises the error naming the kinds)."""
    return model_class(kind)


def _build(model_cfg: Mapping[str, Any], n_inputs: int, n_outputs: int, seed: int, inputs: tuple = ()):
    params = {k: v for k, v in model_cfg.items() if k != "kind"}
    kind = str(model_cfg["kind"])
    cls = _model_class(kind)
    if "layers" not in params and getattr(cls, "data_scaled_layers", True):
        params["layers"] = default_layers(kind, n_inputs, n_outputs)
    # Models that read the Preprocessor's layout (NaN-aware models) take settings derived from it.
    if inputs and hasattr(cls, "input_params"):
        params.update(cls.input_params(*inputs, **params))
    # Seeded initial weights: a run does not depend on what else used torch's global RNG before it.
    net = build_model(kind, n_inputs, n_outputs, seed=seed, **params)
    if "layers" not in params and "layers" in getattr(net, "hparams", {}):
        params["layers"] = list(net.hparams["layers"])  # Run.model() rebuilds from the saved widths
    return net, params


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
    accepts_missing = bool(getattr(_model_class(kind), "accepts_missing", False))  # NaN read as "missing"
    adversarial = bool(getattr(_model_class(kind), "uses_domain", False))
    if adversarial and table.schema.domain is None:
        raise ConfigError(f"model kind {kind!r} learns from MC and data together: set data.domain, a column "
                          f"with the values 'mc' (labelled) and 'data' (label may be empty)")
    # data.domain: labels are read on the 'mc' rows only; 'data' rows may have an empty label.
    domain = None if is_ae or table.schema.domain is None else _domain_codes(table)  # 0 = mc, 1 = data
    labelled = table if domain is None else table.take(domain == 0)
    check_trainable(labelled, allow_missing=table.schema.missing_value is not None or accepts_missing,
                    need_labels=not is_ae)
    if domain is not None:
        check_trainable(table, allow_missing=table.schema.missing_value is not None or accepts_missing,
                        need_labels=False)
    y = None if is_ae else _domain_labels(labelled, domain)
    w = table.weights()
    parts = split_indices(len(table), validation=split.validation, test=split.test, seed=split.seed,
                          stratify=y)
    method = preprocessing or ("minmax" if is_ae else "standard")
    x_raw = table.features()
    pre = Preprocessor(method=method).fit(x_raw[parts.train], sample_weight=w[parts.train])
    x = pre.transform(x_raw)
    class_names = () if is_ae else labelled.class_names
    net, params = _build(model, pre.n_outputs_, pre.n_outputs_ if is_ae else len(class_names), train.seed,
                         inputs=(pre, x[parts.train], w[parts.train]))

    def tensors(idx):
        if adversarial:  # extra targets (domain, class code or NaN): data rows train the domain head only
            extra = np.column_stack([domain[idx], np.where(y[idx] >= 0, y[idx], np.nan)])
            return TensorData(x[idx], None, w[idx].astype(np.float32), extra=extra)
        if domain is not None:  # other models learn from the labelled mc rows
            idx = idx[domain[idx] == 0]
        return TensorData(x[idx], None if y is None else y[idx], w[idx].astype(np.float32))

    trainer = Trainer(
        epochs=train.epochs, batch_size=train.batch_size, lr=train.lr, lr_decay=train.lr_decay,
        weight_decay=train.weight_decay, seed=train.seed, early_stopping=train.early_stopping, cancel=cancel,
        # a model's own callbacks (e.g. the gradient-reversal schedule) run first: others see their columns
        callbacks=[*getattr(net, "training_callbacks", list)(), *callbacks],
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
        truth["label"] = np.where(y >= 0, np.asarray(class_names, dtype=object)[y], None)
    if domain is not None:
        truth["domain"] = np.where(domain == 0, "mc", "data").astype(object)
    truth["weight"] = w
    scores = pd.concat(
        [pd.DataFrame(truth), outputs_frame(outputs, net.task, class_names, anomaly_scale=scale)], axis=1
    )
    for col in keep_columns:
        scores[col] = table.frame[col].to_numpy()
    eval_idx = parts.test if len(parts.test) else parts.validation
    extra_metrics = {}
    if adversarial:
        extra_metrics["domain_accuracy"] = net.domain_accuracy(x[eval_idx], domain[eval_idx], w[eval_idx])
    if domain is not None:
        eval_idx = eval_idx[domain[eval_idx] == 0]
    metrics = _evaluate(net.task, None if y is None else y[eval_idx], w[eval_idx], outputs[eval_idx], class_names)
    metrics.update(best_epoch=int(result.best_epoch), train_seconds=float(result.seconds),
                   n_train=int(len(parts.train)), n_validation=int(len(parts.validation)),
                   n_test=int(len(parts.test)), **extra_metrics)

    saved = dict(config or {})
    saved["model"] = {"kind": kind, **params}
    if "layers" not in params:  # Run.model() rebuilds models without a layers setting from these sizes
        saved["model"].update(n_inputs=int(pre.n_outputs_),
                              n_outputs=int(getattr(net, "n_outputs", len(class_names))))
    with store.create(kind) as writer:
        writer.write_yaml("config.yaml", saved)
        # The class order is saved explicitly, also when the config gave none, so scoring names p_<class>.
        saved_schema = replace(table.schema, classes=tuple(class_names)) if class_names else table.schema
        writer.write_json("schema.json", saved_schema.to_dict())
        writer.write_json("preprocessing.json", pre.to_dict())
        writer.write_tensors("model.safetensors", result.best_state)
        writer.write_csv("history.csv", pd.DataFrame(result.history))
        writer.write_json("metrics.json", metrics)
        writer.write_parquet("scores.parquet", scores)
    return store.load(writer.id)


def _domain_codes(table: EventTable) -> np.ndarray:
    """0 where the domain column says 'mc', 1 where it says 'data' (case and blanks ignored)."""
    col = table.schema.domain
    values = table.frame[col].astype(str).str.strip().str.lower()
    bad = sorted(set(values.unique()) - {"mc", "data"})
    if bad:
        raise DataError(f"domain column {col!r} in {table.where} has values {bad[:5]}; accepted: 'mc' (labelled "
                        f"simulation) and 'data' (label may be empty); fix or drop those rows with a selection")
    codes = (values == "data").to_numpy().astype(np.int64)
    if codes.all():
        raise DataError(f"domain column {col!r} in {table.where} has no 'mc' rows; the classifier learns from them")
    return codes


def _domain_labels(labelled: EventTable, domain: np.ndarray | None) -> np.ndarray:
    """Class codes; with a domain column, codes of the mc rows and -1 on data rows (never read)."""
    if domain is None:
        return labelled.labels()
    y = np.full(len(domain), -1, dtype=np.int64)
    y[domain == 0] = labelled.labels()
    return y


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
