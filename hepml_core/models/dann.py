"""Domain-adversarial MLP classifier for any ntuple: ``model: {kind: dann_classifier}`` with ``data.domain``.

An MLP feature extractor with two heads (Ganin et al., arXiv:1505.07818): a class head trained on the
labelled ("mc") rows and a domain head (MC vs data) behind a gradient-reversal layer, so the features
become ones the two domains share. Defaults train without tuning: the paper's lambda schedule
(gamma = 10) up to ``lambda_max = 1``, one hidden layer in the domain head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepml_core.exceptions import ConfigError
from hepml_core.models._gradient_reversal import DomainAdversarialMixin, check_adversarial_settings
from hepml_core.models.registry import activation_layer, register, validate_layers

__all__ = ["DannClassifier"]

_KIND = "dann_classifier"


def _mlp(widths: Sequence[int], activation: str, dropout: float, *, last_activation: bool) -> nn.Sequential:
    modules: list[nn.Module] = []
    n = len(widths) - 1
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        modules.append(nn.Linear(a, b))
        if i < n - 1 or last_activation:
            modules.append(activation_layer(activation, kind=_KIND))
            if dropout > 0:
                modules.append(nn.Dropout(float(dropout)))
    return nn.Sequential(*modules)


@register(_KIND)
class DannClassifier(DomainAdversarialMixin, nn.Module):
    """MLP feature extractor + class head + domain head behind gradient reversal.

    Args:
        layers: ``[n_inputs, hidden..., n_classes]``; the hidden layers are the feature extractor (at
            least one), the last one the class head.
        dropout: dropout after each hidden activation, in [0, 1).
        activation: hidden activation name (``registry.ACTIVATIONS``).
        domain_layers: hidden widths of the domain head.
        lambda_max: final gradient-reversal strength (0 switches the adversary off).
        gamma: steepness of the "ganin" schedule.
        schedule: "ganin", "linear" or "constant".
        domain_weight: weight of the domain loss next to the class loss.
        domain_steps: extra updates of the domain head alone after every training batch (its own Adam).
        domain_lr: learning rate of those extra updates.
        label_shift: weight the MC classes in the domain loss by the data's estimated class mix.

    Raises:
        ConfigError: bad layers, dropout, activation or adversarial settings.
    """

    kind: str

    def __init__(self, layers: Sequence[int] = (16, 64, 32, 2), dropout: float = 0.1, activation: str = "relu",
                 domain_layers: Sequence[int] = (32,), lambda_max: float = 1.0, gamma: float = 10.0,
                 schedule: str = "ganin", domain_weight: float = 1.0, domain_steps: int = 0,
                 domain_lr: float = 1e-3, label_shift: bool = False) -> None:
        super().__init__()
        widths = validate_layers(layers, kind=_KIND)
        if len(widths) < 3:
            raise ConfigError(
                f"model {_KIND!r}: layers needs at least one hidden layer (the shared features), e.g. "
                f"[{widths[0]}, 64, 32, {widths[-1]}]; got {widths}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"model {_KIND!r}: dropout must be a number in [0, 1), got {dropout!r}")
        dom = validate_layers([widths[-2], *domain_layers, 1], kind=_KIND) if domain_layers else [widths[-2], 1]
        check_adversarial_settings(_KIND, lambda_max, gamma, schedule, domain_weight, domain_steps, domain_lr,
                                   label_shift)
        self.extractor = _mlp(widths[:-1], activation, dropout, last_activation=True)
        self.classifier = nn.Linear(widths[-2], widths[-1])
        self.domain_head = _mlp(dom, activation, 0.0, last_activation=False)
        self.lambda_max, self.gamma, self.schedule = float(lambda_max), float(gamma), str(schedule)
        self.domain_weight = float(domain_weight)
        self._init_adversarial(domain_steps, domain_lr, label_shift=label_shift, n_classes=widths[-1])
        self.hparams = {"layers": widths, "dropout": float(dropout), "activation": str(activation),
                        "domain_layers": list(dom[1:-1]), "lambda_max": self.lambda_max, "gamma": self.gamma,
                        "schedule": self.schedule, "domain_weight": self.domain_weight,
                        "domain_steps": self.domain_steps, "domain_lr": self.domain_lr,
                        "label_shift": self.label_shift}
        self.n_inputs = widths[0]
        self.n_outputs = widths[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared features the two heads read, ``(n, layers[-2])``."""
        return self.extractor(x)

    def extra_repr(self) -> str:
        return f"kind={_KIND!r}, hparams={self.hparams}"
