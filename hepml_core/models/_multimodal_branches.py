"""The four sub-networks of the multimodal nuclei model and their attention fusion (seed talk 001).

Each branch is matched to the structure of its input: a graph network for the tracker hits of two
tracks on eight layers and two sides, a CNN for the 2 x 8 cluster-count "image", and small MLPs for
the rigidities and the TOF numbers. Message passing is plain PyTorch: the graph is the same for every
event (32 nodes, 88 directed edges), so gathering node states along fixed edge lists and averaging
the messages with a fixed incidence matrix is all a graph library would do here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["tracker_graph", "TrackerGNN", "ClusterCNN", "BranchMLP", "AttentionFusion", "N_LAYERS", "N_SIDES",
           "N_TRACKS", "N_NODES"]

N_LAYERS, N_SIDES, N_TRACKS = 8, 2, 2
N_NODES = N_LAYERS * N_SIDES * N_TRACKS


def node_index(track: int, layer: int, side: int) -> int:
    """Node number of (track 0/1, layer 0..7, side 0 = X / 1 = Y)."""
    return (track * N_LAYERS + layer) * N_SIDES + side


def tracker_graph() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Directed edges ``(src, dst, type)``: type 0 = next/previous layer along a track (same side),
    type 1 = the other track on the same layer and side."""
    src, dst, kind = [], [], []
    for t in range(N_TRACKS):
        for s in range(N_SIDES):
            for layer in range(N_LAYERS - 1):
                a, b = node_index(t, layer, s), node_index(t, layer + 1, s)
                src += [a, b]
                dst += [b, a]
                kind += [0, 0]
    for layer in range(N_LAYERS):
        for s in range(N_SIDES):
            a, b = node_index(0, layer, s), node_index(1, layer, s)
            src += [a, b]
            dst += [b, a]
            kind += [1, 1]
    return torch.tensor(src), torch.tensor(dst), torch.tensor(kind)


class TrackerGNN(nn.Module):
    """Message passing over the tracker graph; returns one vector per event.

    Node input: the available values (position, charge) of a layer-side hit and flags saying which of
    them the data provides (the main track's L1 charge is withheld, as in the talk), plus a learned
    embedding of the node's place (layer, side, track). Each round: message = MLP(receiver, sender -
    receiver, edge type) (one linear layer + ReLU); receivers average their messages; residual update.
    Readout: mean and max over the nodes.

    Args:
        node_features: values per node (2: position, charge).
        hidden: node state width.
        rounds: message-passing rounds.
        out: output width.
    """

    def __init__(self, node_features: int = 2, hidden: int = 32, rounds: int = 3, out: int = 32):
        super().__init__()
        src, dst, kind = tracker_graph()
        self.register_buffer("src", src, persistent=False)
        self.register_buffer("dst", dst, persistent=False)
        self.register_buffer("edge_kind", kind, persistent=False)
        incidence = torch.zeros(N_NODES, len(dst))
        incidence[dst, torch.arange(len(dst))] = 1.0
        self.register_buffer("mean_in", incidence / incidence.sum(dim=1, keepdim=True), persistent=False)
        self.embed = nn.Linear(2 * node_features, hidden)
        self.place = nn.Parameter(torch.randn(N_NODES, hidden) * 0.1)
        # A linear message on [receiver, sender - receiver, edge type] equals W_r h_r + W_s h_s + b_type:
        # projecting the 32 nodes first and gathering afterwards avoids a matmul over all 88 edges.
        self.receive = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(rounds))
        self.send = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(rounds))
        self.edge_bias = nn.Parameter(torch.zeros(rounds, 2, hidden))
        self.updates = nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(rounds))
        self.readout = nn.Sequential(nn.Linear(2 * hidden, out), nn.ReLU())

    def forward(self, nodes: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """``nodes`` (n, 32, F) values (0 where unavailable), ``available`` (32, F) 0/1 -> (n, out)."""
        flags = available.expand(nodes.shape[0], -1, -1)
        h = torch.relu(self.embed(torch.cat([nodes, flags], dim=-1)) + self.place)
        for r, update in enumerate(self.updates):
            m = torch.relu(self.receive[r](h)[:, self.dst] + self.send[r](h)[:, self.src]
                           + self.edge_bias[r][self.edge_kind])  # (n, E, hidden)
            agg = torch.matmul(self.mean_in, m)  # (N, E) @ (n, E, hidden) -> mean over incoming edges
            h = h + torch.relu(update(torch.cat([h, agg], dim=-1)))
        return self.readout(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=-1))


class ClusterCNN(nn.Module):
    """Two convolutions over the (sides x layers) cluster-count image, then a linear map."""

    def __init__(self, shape: tuple[int, int] = (2, 8), channels: int = 16, out: int = 32):
        super().__init__()
        rows, cols = shape
        self.shape = (rows, cols)
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels // 2, kernel_size=(1, 3), padding=(0, 1)), nn.ReLU(),
            nn.Conv2d(channels // 2, channels, kernel_size=(rows, 3), padding=(0, 1)), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(channels * cols, out), nn.ReLU())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (n, rows * cols), row-major -> (n, out)."""
        x = image.view(-1, 1, *self.shape)
        return self.head(self.conv(x).flatten(1))


class BranchMLP(nn.Module):
    """A small feed-forward branch for event-level numbers (rigidities, TOF)."""

    def __init__(self, n_in: int, hidden: int = 32, out: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, n_in) -> (n, out)."""
        return self.net(x)


def _sinusoidal(n: int, dim: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    pe = torch.zeros(n, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


class AttentionFusion(nn.Module):
    """Multi-head self-attention with positional encoding over the branch outputs.

    The branch vectors are tokens; the positional encoding tells the attention which branch a token
    came from. Returns the fused vector and, per event, the attention each branch receives (averaged
    over heads and queries; sums to 1): how much the event's fused feature relies on each branch.

    Args:
        n_tokens: number of branches.
        dim: branch output width (token width).
        heads: attention heads (must divide ``dim``).
        out: fused feature width.
    """

    def __init__(self, n_tokens: int = 4, dim: int = 32, heads: int = 4, out: int = 64):
        super().__init__()
        self.register_buffer("position", _sinusoidal(n_tokens, dim), persistent=False)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.project = nn.Sequential(nn.Linear(n_tokens * dim, out), nn.ReLU())

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens`` (n, n_tokens, dim) -> (fused (n, out), branch weights (n, n_tokens))."""
        t = tokens + self.position
        attended, weights = self.attention(t, t, t, need_weights=True, average_attn_weights=True)
        fused = self.norm(t + attended)
        return self.project(fused.flatten(1)), weights.mean(dim=1)
