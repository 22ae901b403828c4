"""Score events with a trained model: class probabilities or anomaly scores, row-aligned with the input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from hepml_core.exceptions import DataError
from hepml_core.scoring.anomaly import anomaly_score

__all__ = ["predict_outputs", "outputs_frame", "score_table"]

_BATCH = 65536


def _device_of(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def predict_outputs(model: torch.nn.Module, x: np.ndarray, *, batch_size: int = _BATCH) -> np.ndarray:
    """Per-event outputs of a model on preprocessed inputs, in eval mode and batches.

    Args:
        model: a hepml model (``task`` is "classifier" or "autoencoder").
        x: (n, n_inputs) float32 preprocessed inputs.
        batch_size: events per forward pass (bounded memory on large tables).

    Returns:
        Classifier: (n, k) softmax probabilities. Autoencoder: (n,) per-event reconstruction MSE.
    """
    was_training = model.training
    model.eval()
    device = _device_of(model)
    chunks = []
    try:
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)).to(device)
            if model.task == "autoencoder":
                out = ((model(xb) - xb) ** 2).mean(dim=1)
            else:
                out = torch.softmax(model(xb), dim=1)
            chunks.append(out.cpu().numpy().astype(np.float64))
    finally:
        model.train(was_training)
    if not chunks:
        return np.zeros((0,) if model.task == "autoencoder" else (0, 0))
    return np.concatenate(chunks)


def outputs_frame(outputs: np.ndarray, task: str, class_names: Sequence[str], *, anomaly_scale: float = 1.0,
                  index=None) -> pd.DataFrame:
    """Name the model outputs: ``p_<class>`` per class, or ``mse`` and ``anomaly`` for autoencoders."""
    if task == "autoencoder":
        return pd.DataFrame({"mse": outputs, "anomaly": anomaly_score(outputs, anomaly_scale)}, index=index)
    return pd.DataFrame({f"p_{name}": outputs[:, i] for i, name in enumerate(class_names)}, index=index)


def score_table(run, table, *, model: torch.nn.Module | None = None) -> pd.DataFrame:
    """Score an EventTable with a saved run: the run's preprocessing, then its model.

    Args:
        run: a loaded ``hepml_core.runs.Run``.
        table: an EventTable holding (at least) the run's feature columns.
        model: ``run.model()`` built once by the caller, when it scores many tables with one run
            (rebuilding it re-reads and re-checks the weights each time).

    Returns:
        DataFrame row-aligned with ``table.frame``: ``p_<class>`` columns (classifiers) or ``anomaly``
        (and ``mse``) for autoencoders.

    Raises:
        DataError: the table is empty or holds inf values in features.
    """
    if len(table) == 0:
        raise DataError("nothing to score: the input has no events")
    x = table.features()
    if np.isinf(x).any():
        bad = [name for name, col in zip(table.schema.features, np.isinf(x).any(axis=0)) if col]
        raise DataError(f"features {bad} contain inf values; remove or clip them before scoring")
    if np.isnan(x).any() and not run.preprocessor.indicator_columns_.size and run.schema.missing_value is None:
        bad = [name for name, col in zip(table.schema.features, np.isnan(x).any(axis=0)) if col]
        raise DataError(
            f"features {bad} contain NaN, but run {run.id} was trained without missing values; "
            "set data.missing_value in the training config to train a model that accepts them"
        )
    model = run.model() if model is None else model
    outputs = predict_outputs(model, run.preprocessor.transform(x))
    scale = float(run.config.get("scoring", {}).get("anomaly_scale", 1.0))
    return outputs_frame(outputs, model.task, run.schema.classes or (), anomaly_scale=scale,
                         index=table.frame.index)
