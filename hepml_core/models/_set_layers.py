"""Building blocks shared by the NaN-aware models: input layout, binary head, masked attention.

The pipeline's Preprocessor hands every model ``[features filled with training means and scaled |
one 0/1 "was missing" column per feature in missing_columns]``. Models that treat missing values
themselves (``accepts_missing = True``) split that input back into values and a presence mask here,
so they never see the fill values as information and the same layout works in ONNX graphs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepml_core.exceptions import ConfigError

__all__ = ["InputLayout", "binary_logits", "masked_softmax", "check_missing_columns", "MASK_FILL"]

#: what masked attention scores are set to (finite, so an all-masked row cannot produce NaN)
MASK_FILL = -1e9


def check_missing_columns(missing_columns: Sequence[int] | None, n_inputs: int, *, kind: str) -> list[int]:
    """Validate ``missing_columns`` (feature indices that have an indicator column appended).

    Raises:
        ConfigError: not unique ints in [0, n_features), or more of them than the input allows.
    """
    cols = [] if missing_columns is None else list(missing_columns)
    try:
        cols = [int(c) for c in cols]
    except (TypeError, ValueError):
        raise ConfigError(f"model {kind!r}: missing_columns must be a list of feature indices; got "
                          f"{missing_columns!r}") from None
    n_features = n_inputs - len(cols)
    if n_features < 1 or len(set(cols)) != len(cols) or any(not 0 <= c < n_features for c in cols):
        raise ConfigError(
            f"model {kind!r}: missing_columns {cols} do not fit an input of {n_inputs} columns (features "
            f"followed by one indicator per missing column); leave it out and let the pipeline set it"
        )
    return cols


class InputLayout(nn.Module):
    """Split ``[values | indicators]`` into values ``(n, F)`` and a presence mask ``(n, F)`` (True = present).

    Args:
        n_inputs: width of the model input.
        missing_columns: feature indices whose indicator columns follow the features, in order.
    """

    def __init__(self, n_inputs: int, missing_columns: Sequence[int]) -> None:
        super().__init__()
        self.n_features = n_inputs - len(missing_columns)
        self.n_missing = len(missing_columns)
        # Non-persistent: derived from the settings, so state_dict holds learned weights only.
        self.register_buffer("missing_index", torch.as_tensor(list(missing_columns), dtype=torch.long),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = x[:, : self.n_features]
        present = torch.ones_like(values, dtype=torch.bool)
        if self.n_missing:
            missing = x[:, self.n_features:] > 0.5
            # scatter the indicators onto their feature columns (index_copy exports to ONNX as ScatterND)
            flags = torch.zeros_like(values, dtype=torch.bool).index_copy(1, self.missing_index, missing)
            present = ~flags
        return values, present


def binary_logits(z: torch.Tensor) -> torch.Tensor:
    """Two-class logits ``(0, z)`` from one score: softmax then gives ``sigmoid(z)`` and cross entropy is BCE."""
    return torch.cat([torch.zeros_like(z), z], dim=1)


def masked_softmax(scores: torch.Tensor, present: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` ignoring entries where ``present`` is False (broadcast to ``scores``)."""
    return torch.softmax(scores.masked_fill(~present, MASK_FILL), dim=dim)
