"""Dense autoencoder for anomaly detection (the talk's AE: [41, 10, 5, 10, 41], ReLU, sigmoid out)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepml_core.exceptions import ConfigError
from hepml_core.models.registry import activation_layer, register, validate_layers

__all__ = ["AutoEncoder"]


@register("autoencoder")
class AutoEncoder(nn.Module):
    """A symmetric-or-not dense autoencoder whose output passes through a sigmoid.

    The sigmoid output lives in [0, 1], so inputs should be scaled to [0, 1] as well (``minmax``
    preprocessing) for the reconstruction error to be meaningful.

    Args:
        layers: widths from input through the bottleneck to output; first and last must be equal,
            e.g. ``(41, 10, 5, 10, 41)``.
        activation: hidden activation name (see ``registry.ACTIVATIONS``).

    Raises:
        ConfigError: bad layers (fewer than 3, or first != last) or activation.
    """

    task = "autoencoder"
    kind: str  # set by @register

    def __init__(self, layers: Sequence[int] = (41, 10, 5, 10, 41), activation: str = "relu") -> None:
        super().__init__()
        widths = validate_layers(layers, kind="autoencoder")
        if len(widths) < 3 or widths[0] != widths[-1]:
            raise ConfigError(
                f"model 'autoencoder': layers must start and end with the number of input features "
                f"and have at least one hidden layer, e.g. [41, 10, 5, 10, 41]; got {widths}"
            )
        modules: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            modules.append(nn.Linear(n_in, n_out))
            last = i == len(widths) - 2
            modules.append(nn.Sigmoid() if last else activation_layer(activation, kind="autoencoder"))
        self.net = nn.Sequential(*modules)
        self.hparams = {"layers": widths, "activation": str(activation)}
        self.n_inputs = widths[0]
        self.n_outputs = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the reconstruction of ``x`` (same shape), each value in [0, 1]."""
        return self.net(x)

    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """Return the per-event mean squared error between ``x`` and its reconstruction.

        Runs in whatever mode and grad context the caller chose; scoring code wraps it in
        ``model.eval()`` and ``torch.no_grad()``.

        Args:
            x: features of shape ``(n_events, n_inputs)``.

        Returns:
            A tensor of shape ``(n_events,)``: ``mean_j (x_ij - recon_ij)^2``.
        """
        return (self.forward(x) - x).pow(2).mean(dim=1)

    def extra_repr(self) -> str:
        return f"kind='autoencoder', hparams={self.hparams}"
