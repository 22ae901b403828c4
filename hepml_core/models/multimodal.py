"""The multimodal (MDA) network of seed talk 001: four branches, attention fusion, and an optional adversary.

``multimodal_classifier`` is the plain network: tracker GNN + cluster CNN + rigidity MLP + TOF MLP,
fused by self-attention, and a signal/background head. ``multimodal_dann`` adds the domain head behind
a gradient-reversal layer (``task = "custom"``, see ``_gradient_reversal``), so the model trained on
MC learns features that look the same on data.

The flat input row is, in order: the tracker columns (each mapped to a node and a value slot by
``layout["tracker_slots"]``), the cluster-count image (row-major, ``layout["image_shape"]``), the
rigidities (``layout["n_rigidity"]``), and the TOF numbers (``layout["n_tof"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.profiler import record_function

from hepml_core.exceptions import ConfigError
from hepml_core.models._gradient_reversal import DomainAdversarialMixin, check_adversarial_settings
from hepml_core.models._multimodal_branches import N_NODES, AttentionFusion, BranchMLP, ClusterCNN, TrackerGNN
from hepml_core.models.registry import register

__all__ = ["BRANCHES", "MultimodalClassifier", "MultimodalDANN", "check_layout"]

#: branch names in token order (the order of ``branch_weights`` columns)
BRANCHES = ("tracker_gnn", "cluster_cnn", "rigidity_mlp", "tof_mlp")
_NODE_FEATURES = 2  # position, charge
_LAYOUT_KEYS = ("tracker_slots", "image_shape", "n_rigidity", "n_tof")


def check_layout(layout: Any, kind: str) -> dict[str, Any]:
    """Validate a multimodal input layout and return it as plain lists and ints.

    Raises:
        ConfigError: a missing key, a slot outside the 32 x 2 node grid or used twice, bad sizes.
    """
    example = "{tracker_slots: [...], image_shape: [2, 8], n_rigidity: 2, n_tof: 7}"
    if not isinstance(layout, Mapping) or sorted(layout) != sorted(_LAYOUT_KEYS):
        got = sorted(layout) if isinstance(layout, Mapping) else layout
        raise ConfigError(f"model {kind!r}: layout must have exactly the keys {list(_LAYOUT_KEYS)} ({example}); got "
                          f"{got!r}")
    slots = [int(s) for s in layout["tracker_slots"]]
    n_slots = N_NODES * _NODE_FEATURES
    if not slots or min(slots) < 0 or max(slots) >= n_slots or len(set(slots)) != len(slots):
        raise ConfigError(f"model {kind!r}: tracker_slots must be distinct ints in [0, {n_slots}) "
                          f"(node * 2 + 0 for a position, + 1 for a charge); got {len(slots)} slots")
    shape = [int(v) for v in layout["image_shape"]]
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigError(f"model {kind!r}: image_shape must be [rows, columns]; got {layout['image_shape']!r}")
    sizes = {k: int(layout[k]) for k in ("n_rigidity", "n_tof")}
    if min(sizes.values()) < 1:
        raise ConfigError(f"model {kind!r}: n_rigidity and n_tof must be >= 1; got {sizes}")
    return {"tracker_slots": slots, "image_shape": shape, **sizes}


@register("multimodal_classifier")
class MultimodalClassifier(nn.Module):
    """Tracker GNN + cluster CNN + rigidity MLP + TOF MLP -> attention fusion -> class logits.

    Args:
        layout: how the flat input row splits into the branches (see the module docstring).
        n_classes: class-head outputs.
        branch_dim: output width of every branch (the attention's token width).
        gnn_hidden: node-state width of the tracker GNN.
        gnn_rounds: message-passing rounds.
        heads: attention heads (must divide ``branch_dim``).
        fused_dim: width of the fused feature the heads read.
        dropout: dropout in the class head, in [0, 1).

    Raises:
        ConfigError: a bad layout or size.
    """

    task = "classifier"
    kind: str
    data_scaled_layers = False  # no ``layers`` setting: the pipeline must not add one

    def __init__(self, layout: Mapping[str, Any] | None = None, n_classes: int = 2, branch_dim: int = 32,
                 gnn_hidden: int = 32, gnn_rounds: int = 3, heads: int = 4, fused_dim: int = 64,
                 dropout: float = 0.1) -> None:
        super().__init__()
        kind = getattr(type(self), "kind", "multimodal_classifier")
        lay = check_layout(layout, kind)
        for name, value in (("n_classes", n_classes), ("branch_dim", branch_dim), ("gnn_hidden", gnn_hidden),
                            ("gnn_rounds", gnn_rounds), ("heads", heads), ("fused_dim", fused_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model {kind!r}: {name} must be a positive int, got {value!r}")
        if branch_dim % heads:
            raise ConfigError(f"model {kind!r}: heads ({heads}) must divide branch_dim ({branch_dim})")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"model {kind!r}: dropout must be a number in [0, 1), got {dropout!r}")
        slots = torch.tensor(lay["tracker_slots"])
        available = torch.zeros(N_NODES * _NODE_FEATURES)
        available[slots] = 1.0
        self.register_buffer("slots", slots, persistent=False)
        self.register_buffer("available", available.view(N_NODES, _NODE_FEATURES), persistent=False)
        rows, cols = lay["image_shape"]
        self._sizes = (len(slots), rows * cols, lay["n_rigidity"], lay["n_tof"])
        self.tracker_gnn = TrackerGNN(_NODE_FEATURES, gnn_hidden, gnn_rounds, branch_dim)
        self.cluster_cnn = ClusterCNN((rows, cols), 16, branch_dim)
        self.rigidity_mlp = BranchMLP(lay["n_rigidity"], 16, branch_dim)
        self.tof_mlp = BranchMLP(lay["n_tof"], 32, branch_dim)
        self.fusion = AttentionFusion(len(BRANCHES), branch_dim, heads, fused_dim)
        self.classifier = nn.Sequential(nn.Linear(fused_dim, 32), nn.ReLU(), nn.Dropout(float(dropout)),
                                        nn.Linear(32, n_classes))
        self.hparams = {"layout": lay, "n_classes": n_classes, "branch_dim": branch_dim, "gnn_hidden": gnn_hidden,
                        "gnn_rounds": gnn_rounds, "heads": heads, "fused_dim": fused_dim, "dropout": float(dropout)}
        self.n_inputs = sum(self._sizes)
        self.n_outputs = n_classes

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        n_trk, n_img, n_rig, _ = self._sizes
        trk, img, rig, tof = torch.split(x, self._sizes, dim=1)
        with record_function("branch:tracker_gnn"):
            nodes = x.new_zeros(x.shape[0], N_NODES * _NODE_FEATURES).index_copy(1, self.slots, trk)
            g = self.tracker_gnn(nodes.view(-1, N_NODES, _NODE_FEATURES), self.available)
        with record_function("branch:cluster_cnn"):
            c = self.cluster_cnn(img)
        with record_function("branch:rigidity_mlp"):
            r = self.rigidity_mlp(rig)
        with record_function("branch:tof_mlp"):
            t = self.tof_mlp(tof)
        return torch.stack([g, c, r, t], dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The fused feature ``(n, fused_dim)`` the heads read."""
        with record_function("fusion"):
            return self.fusion(self._tokens(x))[0]

    @torch.no_grad()
    def branch_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-event attention each branch receives, ``(n, 4)`` in ``BRANCHES`` order, rows sum to 1."""
        return self.fusion(self._tokens(x))[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, n_classes)``."""
        return self.classifier(self.features(x))

    def extra_repr(self) -> str:
        h = {k: v for k, v in self.hparams.items() if k != "layout"}
        return f"kind={getattr(self, 'kind', '?')!r}, inputs={self._sizes}, hparams={h}"


@register("multimodal_dann")
class MultimodalDANN(DomainAdversarialMixin, MultimodalClassifier):
    """The multimodal network with a domain head behind gradient reversal (the talk's MDA network).

    Args:
        layout, n_classes, branch_dim, gnn_hidden, gnn_rounds, heads, fused_dim, dropout: as
            :class:`MultimodalClassifier`.
        domain_hidden: width of the domain head's two hidden layers.
        lambda_max: final gradient-reversal strength.
        gamma: steepness of the "ganin" lambda schedule.
        schedule: "ganin", "linear" or "constant".
        domain_weight: weight of the domain loss next to the class loss.
        domain_steps: extra updates of the domain head alone after every training batch (its own Adam).
        domain_lr: learning rate of those extra updates.
        label_shift: weight the MC classes in the domain loss by the data's estimated class mix.
    """

    def __init__(self, layout: Mapping[str, Any] | None = None, n_classes: int = 2, branch_dim: int = 32,
                 gnn_hidden: int = 32, gnn_rounds: int = 3, heads: int = 4, fused_dim: int = 64,
                 dropout: float = 0.1, domain_hidden: int = 64, lambda_max: float = 1.0, gamma: float = 10.0,
                 schedule: str = "ganin", domain_weight: float = 1.0, domain_steps: int = 0,
                 domain_lr: float = 1e-3, label_shift: bool = False) -> None:
        super().__init__(layout, n_classes, branch_dim, gnn_hidden, gnn_rounds, heads, fused_dim, dropout)
        check_adversarial_settings("multimodal_dann", lambda_max, gamma, schedule, domain_weight, domain_steps,
                                   domain_lr, label_shift)
        if isinstance(domain_hidden, bool) or not isinstance(domain_hidden, int) or domain_hidden < 1:
            raise ConfigError(f"model 'multimodal_dann': domain_hidden must be a positive int, got {domain_hidden!r}")
        # Two hidden layers: a weak adversary is fooled long before the features stop carrying the domain.
        self.domain_head = nn.Sequential(nn.Linear(fused_dim, domain_hidden), nn.ReLU(),
                                         nn.Linear(domain_hidden, domain_hidden), nn.ReLU(),
                                         nn.Linear(domain_hidden, 1))
        self.lambda_max, self.gamma, self.schedule = float(lambda_max), float(gamma), str(schedule)
        self.domain_weight = float(domain_weight)
        self._init_adversarial(domain_steps, domain_lr, label_shift=label_shift, n_classes=n_classes)
        self.hparams.update(domain_hidden=domain_hidden, lambda_max=self.lambda_max, gamma=self.gamma,
                            schedule=self.schedule, domain_weight=self.domain_weight,
                            domain_steps=self.domain_steps, domain_lr=self.domain_lr, label_shift=self.label_shift)
