"""Transfer learning of the HNL talk: a kinematic-regression network and a classifier built on its trunk.

``KinematicRegressor`` predicts derived kinematic features from raw lepton/MET kinematics. It is wide and
deep (the talk's best: 1024 x 25) and re-injects the raw inputs every ``drop_in_every`` hidden layers
("drop-in"), so simple functions of the inputs (delta-phi of two leptons) are not forgotten deep in the
network. Targets arrive as the Trainer's ``extra`` array: column 0 is E_tot (relative MSE), the other
columns (GeV quantities already divided by E_tot, standardised) use the plain MSE.

``TransferClassifier`` takes the regressor's trunk (everything but its output layer), concatenates its
last hidden layer with side inputs (channel one-hot, mass hypothesis, charges) and classifies with a new
head. The trunk can be frozen (no gradients, no dropout) and unfrozen later with dropout on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepml_core.exceptions import ConfigError
from hepml_core.models.registry import activation_layer, register, validate_layers

__all__ = ["KinematicRegressor", "TransferClassifier", "DropInTrunk", "regression_losses"]


def _check_fraction(value, name: str, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"model {kind!r}: {name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_every(value, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"model {kind!r}: drop_in_every must be an int >= 0 (0 = no drop-in), got {value!r}")
    return value


class DropInTrunk(nn.Module):
    """Hidden layers of a regression network with the raw inputs re-injected every k layers.

    Args:
        widths: input width followed by the hidden widths, e.g. ``(14, 1024, ..., 1024)``.
        drop_in_every: hidden layer i (from 0) with ``i > 0 and i % k == 0`` gets ``[h, x]`` as input;
            0 disables the drop-in.
        activation: hidden activation name.
        dropout: dropout after each hidden activation (changeable later through ``set_dropout``).
        kind: model kind for error messages.
    """

    def __init__(self, widths: Sequence[int], drop_in_every: int, activation: str, dropout: float, kind: str):
        super().__init__()
        n_in = widths[0]
        self.drop_in_at = set()
        linears = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            drop_in = drop_in_every > 0 and i > 0 and i % drop_in_every == 0
            if drop_in:
                self.drop_in_at.add(i)
            linears.append(nn.Linear(a + (n_in if drop_in else 0), b))
        self.linears = nn.ModuleList(linears)
        self.acts = nn.ModuleList(activation_layer(activation, kind=kind) for _ in linears)
        self.dropout = nn.Dropout(dropout)

    def set_dropout(self, p: float) -> None:
        """Change the dropout probability of every hidden layer."""
        self.dropout.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations."""
        h = x
        for i, (lin, act) in enumerate(zip(self.linears, self.acts)):
            if i in self.drop_in_at:
                h = torch.cat([h, x], dim=1)
            h = self.dropout(act(lin(h)))
        return h


def regression_losses(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-event loss: relative MSE of column 0 (E_tot) plus MSE of the others, averaged over columns."""
    rel = ((pred[:, 0] - target[:, 0]) / target[:, 0].clamp_min(1e-6)) ** 2
    rest = ((pred[:, 1:] - target[:, 1:]) ** 2).sum(dim=1)
    return (rel + rest) / pred.shape[1]


@register("kinematic_regressor")
class KinematicRegressor(nn.Module):
    """Wide, deep regression of derived kinematic features with "drop-in" of the raw inputs.

    Args:
        layers: ``(n_raw, width, ..., width, n_targets)``; the talk's best has 25 hidden layers of 1024.
        drop_in_every: re-inject the raw inputs every this many hidden layers (talk: 3; 0 = never).
        activation: hidden activation.
        dropout: dropout after hidden layers during pre-training (the talk: none).

    Raises:
        ConfigError: bad layers, dropout or drop_in_every.
    """

    task = "custom"
    kind: str

    def __init__(self, layers: Sequence[int] = (14, 1024, 1024, 1024, 66), drop_in_every: int = 3,
                 activation: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        kind = "kinematic_regressor"
        widths = validate_layers(layers, kind=kind)
        if len(widths) < 3:
            raise ConfigError(f"model {kind!r}: layers needs at least one hidden layer, got {widths}")
        self.trunk = DropInTrunk(widths[:-1], _check_every(drop_in_every, kind), activation,
                                 _check_fraction(dropout, "dropout", kind), kind)
        self.out = nn.Linear(widths[-2], widths[-1])
        self.hparams = {"layers": widths, "drop_in_every": int(drop_in_every), "activation": str(activation),
                        "dropout": float(dropout)}
        self.n_inputs, self.n_outputs = widths[0], widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted targets ``(n, n_targets)`` (column 0: E_tot in the target's units)."""
        return self.out(self.trunk(x))

    def event_losses(self, x: torch.Tensor, y, extra: torch.Tensor) -> torch.Tensor:
        """Per-event regression loss against the targets in ``extra`` (see ``regression_losses``)."""
        return regression_losses(self(x), extra)


@register("transfer_classifier")
class TransferClassifier(nn.Module):
    """Classifier head on a (pre-trained) ``KinematicRegressor`` trunk.

    Inputs are ``[raw kinematics (trunk_layers[0] columns) | side inputs]``: the trunk maps the raw part
    to its last hidden layer, which is concatenated with the side inputs (channel one-hot, mass
    hypothesis, charges) and fed to the head.

    Args:
        layers: ``(n_inputs, head hidden..., n_classes)`` where n_inputs = raw + side columns
            (the talk: hidden [128, 128]).
        trunk_layers: the regressor's ``layers`` (its output width is not used here).
        drop_in_every: as in the regressor.
        activation: hidden activation of trunk and head.
        dropout: dropout in the trunk once unfrozen (the talk: 0.5) and in the head.
        frozen: start with the trunk frozen (no gradients, no dropout).

    Raises:
        ConfigError: inconsistent widths or bad settings.
    """

    task = "classifier"
    kind: str

    def __init__(self, layers: Sequence[int] = (23, 128, 128, 2), trunk_layers: Sequence[int] = (14, 1024, 1024, 66),
                 drop_in_every: int = 3, activation: str = "relu", dropout: float = 0.5, frozen: bool = True) -> None:
        super().__init__()
        kind = "transfer_classifier"
        widths = validate_layers(layers, kind=kind)
        trunk = validate_layers(trunk_layers, kind=kind)
        n_side = widths[0] - trunk[0]
        if n_side < 0:
            raise ConfigError(f"model {kind!r}: layers[0] = {widths[0]} inputs but the trunk alone takes "
                              f"{trunk[0]}; layers[0] must be trunk inputs + side inputs")
        self.dropout_unfrozen = _check_fraction(dropout, "dropout", kind)
        self.trunk = DropInTrunk(trunk[:-1], _check_every(drop_in_every, kind), activation, 0.0, kind)
        head: list[nn.Module] = []
        head_widths = [trunk[-2] + n_side, *widths[1:]]
        for i, (a, b) in enumerate(zip(head_widths[:-1], head_widths[1:])):
            head.append(nn.Linear(a, b))
            if i < len(head_widths) - 2:
                head.append(activation_layer(activation, kind=kind))
                if self.dropout_unfrozen > 0:
                    head.append(nn.Dropout(self.dropout_unfrozen))
        self.head = nn.Sequential(*head)
        self.n_raw, self.n_side = trunk[0], n_side
        self.hparams = {"layers": widths, "trunk_layers": trunk, "drop_in_every": int(drop_in_every),
                        "activation": str(activation), "dropout": float(dropout), "frozen": bool(frozen)}
        self.n_inputs, self.n_outputs = widths[0], widths[-1]
        self.frozen = True
        self.set_frozen(bool(frozen))

    def set_frozen(self, frozen: bool) -> None:
        """Freeze (no gradients, no dropout) or unfreeze (gradients, dropout) the pre-trained trunk."""
        self.frozen = bool(frozen)
        for p in self.trunk.parameters():
            p.requires_grad_(not frozen)
        self.trunk.set_dropout(0.0 if frozen else self.dropout_unfrozen)

    def load_trunk(self, regressor_state: dict[str, torch.Tensor]) -> None:
        """Copy a ``KinematicRegressor`` state dict's trunk weights into this model's trunk.

        Raises:
            ConfigError: the regressor's trunk has other shapes than this model's.
        """
        trunk_state = {k[len("trunk."):]: v for k, v in regressor_state.items() if k.startswith("trunk.")}
        try:
            self.trunk.load_state_dict(trunk_state, strict=True)
        except RuntimeError as err:
            raise ConfigError(f"model 'transfer_classifier': the pre-trained regressor does not fit "
                              f"trunk_layers={self.hparams['trunk_layers']}: {err}") from err

    def latent(self, raw: torch.Tensor) -> torch.Tensor:
        """The trunk's last hidden layer for the raw inputs (independent of the side inputs)."""
        return self.trunk(raw)

    def head_logits(self, latent: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        """Logits from a trunk output and side inputs (scores many mass hypotheses for one trunk pass)."""
        return self.head(torch.cat([latent, side], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, n_classes)``."""
        return self.head_logits(self.latent(x[:, : self.n_raw]), x[:, self.n_raw:])
