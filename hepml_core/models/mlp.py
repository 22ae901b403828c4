"""Fully connected classifier (the FCNN of the AMS He-background talk: [37, 15, 10, 4], ReLU)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepml_core.exceptions import ConfigError
from hepml_core.models.registry import activation_layer, register, validate_layers

__all__ = ["MLPClassifier"]


@register("mlp_classifier")
class MLPClassifier(nn.Module):
    """A multilayer perceptron that returns class logits.

    Hidden layers are ``Linear -> activation -> Dropout``; the last layer is a plain ``Linear``.
    The talk's softmax output layer is not part of the module: cross entropy on logits is the same
    loss as softmax followed by cross entropy, and is numerically safer. Scoring applies the softmax.

    Args:
        layers: widths from input to output, e.g. ``(37, 15, 10, 4)`` = 37 features, 4 classes.
        dropout: dropout probability after each hidden activation, in [0, 1).
        activation: name of the hidden activation (see ``registry.ACTIVATIONS``).

    Raises:
        ConfigError: bad layers, dropout or activation.
    """

    task = "classifier"
    kind: str  # set by @register

    def __init__(self, layers: Sequence[int] = (37, 15, 10, 4), dropout: float = 0.1,
                 activation: str = "relu") -> None:
        super().__init__()
        widths = validate_layers(layers, kind="mlp_classifier")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(
                f"model 'mlp_classifier': dropout must be a number in [0, 1), got {dropout!r}"
            )
        modules: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            modules.append(nn.Linear(n_in, n_out))
            if i < len(widths) - 2:
                modules.append(activation_layer(activation, kind="mlp_classifier"))
                if dropout > 0:
                    modules.append(nn.Dropout(float(dropout)))
        self.net = nn.Sequential(*modules)
        self.hparams = {"layers": widths, "dropout": float(dropout), "activation": str(activation)}
        self.n_inputs = widths[0]
        self.n_outputs = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(n_events, n_classes)`` for features ``(n_events, n_inputs)``."""
        return self.net(x)

    def extra_repr(self) -> str:
        return f"kind='mlp_classifier', hparams={self.hparams}"
