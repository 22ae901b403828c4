"""Export a saved run to ONNX and score with onnxruntime: the path into a C++ framework (talk 002's O2).

The graph takes one float32 input ``features`` of shape (batch, n_features) in the run's feature
order, NaN meaning "missing"; the run's preprocessing (mean fill, scaling, "was missing" indicators)
is inside the graph, so a C++ user passes the raw track values and changes one line. The output
``probabilities`` is (batch, n_classes) in the run's class order (softmax of the model's logits); an
autoencoder run gives ``mse`` (batch,) instead. Feature names, class names, the run id and the task
are stored in the model's metadata (``metadata_props``), which :class:`OnnxScorer` reads back.

onnx and onnxruntime are optional dependencies, imported when first used, with an install hint.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from hepml_core.exceptions import ConfigError, DataError, HepmlError, InputFileError
from hepml_core.io.write import default_permissions

__all__ = ["export_onnx", "OnnxScorer", "scoring_module", "torch_outputs", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17
_INPUT = "features"


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as err:
        raise HepmlError(f"{module} is not installed; ONNX export and scoring need it: "
                         f"pip install onnx onnxruntime") from err


class _ScoringGraph(nn.Module):
    """Raw features with NaN -> the run's Preprocessor -> model -> probabilities (or per-event MSE)."""

    def __init__(self, preprocessor: Any, model: nn.Module) -> None:
        super().__init__()
        pre = preprocessor
        if pre.method == "standard":
            center, scale = pre.mean_, pre.scale_
        else:
            center, scale = pre.min_, pre.range_
        self.register_buffer("fill", torch.as_tensor(pre.fill_, dtype=torch.float32))
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.register_buffer("indicator", torch.as_tensor(pre.indicator_columns_, dtype=torch.long))
        self.has_indicators = len(pre.indicator_columns_) > 0
        self.model = model
        self.task = getattr(model, "task", "classifier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nan = torch.isnan(x)
        scaled = (torch.where(nan, self.fill, x) - self.center) / self.scale
        if self.has_indicators:
            scaled = torch.cat([scaled, nan.index_select(1, self.indicator).to(x.dtype)], dim=1)
        out = self.model(scaled)
        if self.task == "autoencoder":
            return ((out - scaled) ** 2).mean(dim=1)
        return torch.softmax(out, dim=1)


def scoring_module(run) -> nn.Module:
    """The run's preprocessing and model as one eval-mode module on raw float32 features (NaN = missing).

    Raises:
        ConfigError: the run has no preprocessing, or its model task cannot be exported.
    """
    if run.preprocessor is None:
        raise ConfigError(f"run {run.id} has no preprocessing.json; only runs made by train_on_table export")
    model = run.model()
    if getattr(model, "task", None) not in ("classifier", "autoencoder"):
        raise ConfigError(f"run {run.id}: model task {getattr(model, 'task', None)!r} cannot be exported; "
                          f"classifier and autoencoder runs can")
    return _ScoringGraph(run.preprocessor, model).eval()


@torch.no_grad()
def torch_outputs(run_or_module, x: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
    """PyTorch outputs of the exported graph (the reference an ONNX scorer is compared with).

    Args:
        run_or_module: a Run, or a module from :func:`scoring_module`.
        x: (n, n_features) raw features, NaN = missing.
        batch_size: tracks per forward pass.

    Returns:
        float32 (n, n_classes) probabilities, or (n,) MSE for an autoencoder.
    """
    module = run_or_module if isinstance(run_or_module, nn.Module) else scoring_module(run_or_module)
    x = np.ascontiguousarray(x, dtype=np.float32)
    parts = [module(torch.from_numpy(x[s:s + batch_size])).numpy() for s in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)


def export_onnx(run, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET) -> Path:
    """Write the run's preprocessing + model as an ONNX graph (written atomically).

    Args:
        run: a loaded Run of a classifier or autoencoder (``store.load(run_id)``).
        path: output ``.onnx`` file.
        opset: ONNX opset version.

    Returns:
        The written path.

    Raises:
        ConfigError: a run that cannot be exported (see :func:`scoring_module`).
        HepmlError: onnx is not installed or the export failed.
    """
    onnx = _require("onnx")
    module = scoring_module(run)
    features = list(run.schema.features)
    classes = list(run.schema.classes or ()) if module.task == "classifier" else []
    if module.task == "classifier" and not classes:
        # a schema without explicit classes: the pipeline named the score columns p_<class> in class order
        scores = run.scores
        classes = [c[2:] for c in scores.columns if c.startswith("p_")] if scores is not None else []
        if len(classes) != int(getattr(module.model, "n_outputs", len(classes))):
            classes = [str(i) for i in range(int(getattr(module.model, "n_outputs", 0)))]
    output = "mse" if module.task == "autoencoder" else "probabilities"
    example = torch.zeros(2, len(features))
    example[1, :] = float("nan")  # trace the NaN path too
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # the TorchScript tracer warns about Python numbers taken from shapes; the batch axis is
            # declared dynamic and the other widths are fixed by the run, so the graph is exact
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), tmp, input_names=[_INPUT], output_names=[output],
                              dynamic_axes={_INPUT: {0: "batch"}, output: {0: "batch"}}, opset_version=opset,
                              dynamo=False)
        graph = onnx.load(tmp)
        meta = {"hepml_run_id": run.id, "hepml_task": module.task, "hepml_features": json.dumps(features),
                "hepml_classes": json.dumps(classes), "hepml_missing": "NaN"}
        for key, value in meta.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(graph)
        onnx.save(graph, tmp)
        default_permissions(tmp)
        os.replace(tmp, path)
    except HepmlError:
        raise
    except Exception as err:
        raise HepmlError(f"ONNX export of run {run.id} failed: {type(err).__name__}: {err}") from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class OnnxScorer:
    """Score raw features with an exported graph in onnxruntime.

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx`.
        threads: intra-op threads of the session (None: onnxruntime's default).

    Attributes:
        features, classes, task, run_id: read from the graph's metadata.

    Raises:
        InputFileError: the file is missing or not a hepml ONNX graph.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise InputFileError(f"ONNX file {str(path)!r} not found")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise InputFileError(f"{str(path)!r} is not a readable ONNX graph: {err}") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        if "hepml_features" not in meta:
            raise InputFileError(f"{str(path)!r} was not written by hepml's export_onnx "
                                 f"(no feature list in its metadata)")
        self.features: tuple[str, ...] = tuple(json.loads(meta["hepml_features"]))
        self.classes: tuple[str, ...] = tuple(json.loads(meta.get("hepml_classes", "[]")))
        self.task = meta.get("hepml_task", "classifier")
        self.run_id = meta.get("hepml_run_id")
        self._output = self.session.get_outputs()[0].name

    def predict(self, x: np.ndarray, *, batch_size: int = 65536) -> np.ndarray:
        """Outputs for raw features ``x`` (n, n_features), NaN = missing: probabilities or MSE.

        Raises:
            DataError: wrong number of feature columns.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise DataError(f"the ONNX graph expects (n, {len(self.features)}) features in the order "
                            f"{list(self.features)}; got shape {x.shape}")
        parts = [self.session.run([self._output], {_INPUT: x[s:s + batch_size]})[0]
                 for s in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), dtype=np.float32)

    def score_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``p_<class>`` columns (or ``mse``) for a DataFrame holding the graph's feature columns.

        Raises:
            DataError: a feature column is missing from ``frame``.
        """
        absent = [f for f in self.features if f not in frame.columns]
        if absent:
            raise DataError(f"columns {absent} needed by the ONNX graph are not in the table; it has "
                            f"{list(frame.columns)[:20]}")
        out = self.predict(frame[list(self.features)].to_numpy(dtype=np.float32))
        if self.task == "autoencoder":
            return pd.DataFrame({"mse": out}, index=frame.index)
        return pd.DataFrame({f"p_{c}": out[:, i] for i, c in enumerate(self.classes)}, index=frame.index)

