"""The ALICE PID talk's simple network (64, 32, 16, leaky ReLU, dropout 0.1) with its imputation baselines.

``imputation`` picks how a missing feature reaches the network (the talk's comparison):

* ``"mean"``: the training mean (what the pipeline's Preprocessor filled in); no indicator columns,
  so the network sees 19 inputs, as in the talk;
* ``"regression"``: a linear regression of the feature on the always-present features, fitted on
  the training tracks where the feature is present (``regression`` holds the coefficients, set by
  the pipeline through :meth:`PidMLP.input_params`);
* ``"none"``: the input has no missing values (case deletion, or one network of the per-pattern
  ensemble trained on the features present in its pattern).

For two classes the network ends in one logit (sigmoid + binary cross entropy, returned as the
logits ``(0, z)``), else one logit per class. The imputation is part of the module, so it is part
of the ONNX graph too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hepml_core.exceptions import ConfigError
from hepml_core.models._set_layers import InputLayout, binary_logits, check_missing_columns
from hepml_core.models.registry import activation_layer, register, validate_layers

__all__ = ["PidMLP", "IMPUTATIONS", "fit_regression_imputation"]

_KIND = "pid_mlp"
IMPUTATIONS = ("mean", "regression", "none")


def fit_regression_imputation(x: np.ndarray, missing: np.ndarray, w: np.ndarray | None = None
                              ) -> tuple[list[int], list[list[float]]]:
    """Weighted least squares of every sometimes-missing feature on the never-missing ones.

    Args:
        x: (n, F) feature values (any fill where missing).
        missing: (n, F) bool, True where a value is missing.
        w: (n,) weights or None.

    Returns:
        (indices of the never-missing features, one row ``[coefficients..., intercept]`` per feature that
        is missing somewhere, in feature order).
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.ones(len(x)) if w is None else np.clip(np.asarray(w, dtype=np.float64), 0, None)
    core = np.flatnonzero(~missing.any(axis=0))
    design = np.hstack([x[:, core], np.ones((len(x), 1))])
    rows = []
    for j in np.flatnonzero(missing.any(axis=0)):
        ok = ~missing[:, j]
        if ok.sum() <= design.shape[1]:
            rows.append([0.0] * len(core) + [float(np.average(x[ok, j], weights=w[ok])) if ok.any() else 0.0])
            continue
        sw = np.sqrt(w[ok])[:, None]
        coef, *_ = np.linalg.lstsq(design[ok] * sw, x[ok, j] * sw[:, 0], rcond=None)
        rows.append([float(c) for c in coef])
    return [int(c) for c in core], rows


@register(_KIND)
class PidMLP(nn.Module):
    """Feed-forward network with built-in mean or regression imputation.

    Args:
        layers: ``[input width, hidden widths..., number of classes]``; the input width counts the
            pipeline's indicator columns (features + len(missing_columns)).
        dropout: dropout after each hidden activation.
        activation: hidden activation (the talk: leaky ReLU).
        imputation: ``"mean"``, ``"regression"`` or ``"none"`` (see the module docstring).
        missing_columns: feature indices with an indicator column in the input (set by the pipeline).
        regression: one ``[coefficients on the never-missing features..., intercept]`` row per entry of
            ``missing_columns`` (set by the pipeline for ``imputation="regression"``).

    Raises:
        ConfigError: unknown imputation, or regression rows that do not fit the input.
    """

    task = "classifier"
    accepts_missing = True
    data_scaled_layers = False  # without layers in the config, keep the talk's architecture
    kind: str

    def __init__(self, layers: Sequence[int] = (19, 64, 32, 16, 2), dropout: float = 0.1,
                 activation: str = "leaky_relu", imputation: str = "mean", missing_columns: Sequence[int] = (),
                 regression: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__()
        widths = validate_layers(layers, kind=_KIND)
        if imputation not in IMPUTATIONS:
            raise ConfigError(f"model {_KIND!r}: imputation must be one of {', '.join(IMPUTATIONS)}; "
                              f"got {imputation!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"model {_KIND!r}: dropout must be a number in [0, 1), got {dropout!r}")
        if widths[-1] < 2:
            raise ConfigError(f"model {_KIND!r}: layers[-1] is the number of classes and must be >= 2")
        cols = check_missing_columns(missing_columns, widths[0], kind=_KIND)
        self.layout = InputLayout(widths[0], cols)
        n_features = self.layout.n_features
        core = [j for j in range(n_features) if j not in set(cols)]
        reg = None
        if imputation == "regression" and cols:
            reg = np.asarray(regression if regression is not None else np.zeros((len(cols), len(core) + 1)),
                             dtype=np.float32)
            if reg.shape != (len(cols), len(core) + 1):
                raise ConfigError(
                    f"model {_KIND!r}: regression must have one row of {len(core) + 1} numbers (coefficients "
                    f"of the {len(core)} never-missing features and an intercept) per missing column "
                    f"({len(cols)}); got shape {reg.shape}; leave it out and let the pipeline fit it")
        self.imputation = imputation
        self.register_buffer("core_index", torch.as_tensor(core, dtype=torch.long), persistent=False)
        self.register_buffer("reg_coef", torch.as_tensor(reg[:, :-1] if reg is not None else np.zeros((0, 0)),
                                                         dtype=torch.float32), persistent=False)
        self.register_buffer("reg_bias", torch.as_tensor(reg[:, -1] if reg is not None else np.zeros(0),
                                                         dtype=torch.float32), persistent=False)
        modules: list[nn.Module] = []
        sizes = [n_features, *widths[1:-1]]
        for a, b in zip(sizes[:-1], sizes[1:]):
            modules += [nn.Linear(a, b), activation_layer(activation, kind=_KIND)]
            if dropout > 0:
                modules.append(nn.Dropout(float(dropout)))
        self.binary = widths[-1] == 2
        modules.append(nn.Linear(sizes[-1], 1 if self.binary else widths[-1]))
        self.net = nn.Sequential(*modules)
        self.n_inputs, self.n_outputs, self.n_features = widths[0], widths[-1], n_features
        self.hparams = {"layers": widths, "dropout": float(dropout), "activation": str(activation),
                        "imputation": imputation, "missing_columns": cols,
                        "regression": None if reg is None else reg.tolist()}

    @classmethod
    def input_params(cls, preprocessor: Any, x_train: np.ndarray, w_train: np.ndarray,
                     **params: Any) -> dict[str, Any]:
        """Indicator layout from the Preprocessor and, for regression imputation, the fitted coefficients."""
        cols = [int(c) for c in preprocessor.indicator_columns_]
        out: dict[str, Any] = {"missing_columns": cols}
        if params.get("imputation", "mean") == "regression" and cols:
            n_features = x_train.shape[1] - len(cols)
            missing = np.zeros((len(x_train), n_features), dtype=bool)
            missing[:, cols] = x_train[:, n_features:] > 0.5
            _, rows = fit_regression_imputation(x_train[:, :n_features], missing, w_train)
            out["regression"] = rows
        return out

    def imputed(self, x: torch.Tensor) -> torch.Tensor:
        """The (n, F) network input: values with missing ones replaced as ``imputation`` says."""
        values, present = self.layout(x)
        if self.imputation != "regression" or self.reg_coef.shape[0] == 0:
            return values  # mean: the Preprocessor's fill; none: nothing is missing
        predicted = values.index_select(1, self.core_index) @ self.reg_coef.t() + self.reg_bias
        miss_idx = self.layout.missing_index
        column = values.index_select(1, miss_idx)
        filled = torch.where(present.index_select(1, miss_idx), column, predicted)
        return values.index_copy(1, miss_idx, filled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, n_classes)``."""
        z = self.net(self.imputed(x))
        return binary_logits(z) if self.binary else z

    def extra_repr(self) -> str:
        return f"kind={_KIND!r}, imputation={self.imputation!r}, layers={self.hparams['layers']}"
