"""Feature-set embedding + Transformer encoder + attention pooling (the ALICE PID talk's model, seeds/002).

Each present (feature, value) pair of a track is one element of a set; a missing feature is simply
not in the set (a padding mask), never imputed. The talk's architecture is the default:

* embedding of a pair: ``[one-hot feature key | value] -> 128 -> 32`` (ReLU, dropout 0.1);
* Transformer encoder: d = 32, 2 heads, 2 layers, feed-forward 32 -> 128 -> 32, dropout 0.1 on
  the attention and feed-forward outputs of each layer (post-norm, as ``nn.TransformerEncoderLayer``,
  which also drops attention weights and feed-forward activations: left out here, the talk names
  dropout at the layer outputs only, and on a CPU random masks are a third of the training time);
  written out so attention maps are readable and the graph exports to ONNX without the fused path;
* attention pooling: ``e_i = NN(v_i)`` with NN 32 -> 64 -> 32, weights ``softmax_i(e_ij)`` per
  dimension j over the set, pooled ``o_j = sum_i alpha_ij v_ij``;
* classifier 32 -> 64 -> output; for two classes one logit (sigmoid, binary cross entropy as in the
  talk's one-vs-all models; returned as the logits ``(0, z)``), else one logit per class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hepml_core.exceptions import ConfigError
from hepml_core.models._set_layers import InputLayout, binary_logits, check_missing_columns, masked_softmax
from hepml_core.models.registry import register, validate_layers

__all__ = ["FSETransformer"]

_KIND = "fse_transformer"


class _EncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer with a key padding mask; keeps its last attention map."""

    def __init__(self, d_model: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, feedforward), nn.ReLU(), nn.Linear(feedforward, d_model))
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)  # 3 x (b, h, n, d/h)
        scores = q @ k.transpose(-1, -2) * (1.0 / float(np.sqrt(d // h)))
        weights = masked_softmax(scores, present[:, None, None, :], dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(b, n, d)
        x = self.norm1(x + self.drop1(self.out(attended)))
        x = self.norm2(x + self.drop2(self.ff(x)))
        return x, weights


@register(_KIND)
class FSETransformer(nn.Module):
    """Set classifier of (feature, value) pairs that reads NaN features as absent.

    Args:
        layers: ``[input width, classifier hidden widths..., number of classes]``; the input width
            counts the pipeline's indicator columns (features + len(missing_columns)).
        missing_columns: feature indices that have a 0/1 "was missing" column appended to the input
            (set by the pipeline from its Preprocessor; empty when nothing is ever missing).
        embedding: hidden and output width of the pair embedding (the output is the model width d).
        heads: attention heads of the encoder.
        encoder_layers: number of encoder layers.
        feedforward: hidden width of the encoder's feed-forward network.
        pooling_hidden: hidden width of the attention-pooling network.
        dropout: dropout after the embedding and in every encoder layer.

    Raises:
        ConfigError: settings that do not fit together (d not divisible by heads, bad widths...).
    """

    task = "classifier"
    accepts_missing = True  # the pipeline keeps NaN-bearing tables and tells the model where they were
    data_scaled_layers = False  # without layers in the config, keep the talk's architecture
    kind: str

    def __init__(self, layers: Sequence[int] = (19, 64, 2), missing_columns: Sequence[int] = (),
                 embedding: Sequence[int] = (128, 32), heads: int = 2, encoder_layers: int = 2,
                 feedforward: int = 128, pooling_hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        widths = validate_layers(layers, kind=_KIND)
        emb = validate_layers(embedding, kind=_KIND)
        cols = check_missing_columns(missing_columns, widths[0], kind=_KIND)
        d = emb[-1]
        for name, value in (("heads", heads), ("encoder_layers", encoder_layers), ("feedforward", feedforward),
                            ("pooling_hidden", pooling_hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model {_KIND!r}: {name} must be a positive int, got {value!r}")
        if d % heads:
            raise ConfigError(f"model {_KIND!r}: the model width {d} (embedding[-1]) must be divisible by "
                              f"heads={heads}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"model {_KIND!r}: dropout must be a number in [0, 1), got {dropout!r}")
        if widths[-1] < 2:
            raise ConfigError(f"model {_KIND!r}: layers[-1] is the number of classes and must be >= 2")
        self.layout = InputLayout(widths[0], cols)
        n_features = self.layout.n_features
        # One Linear on [one-hot key | value]: computed as key rows + value * value column (same maths).
        embed: list[nn.Module] = [nn.Linear(n_features + 1, emb[0])]
        for a, b in zip(emb[:-1], emb[1:]):
            embed += [nn.ReLU(), nn.Linear(a, b)]
        self.embed_first = embed[0]
        self.embed_rest = nn.Sequential(*embed[1:], nn.Dropout(float(dropout)))
        self.encoder = nn.ModuleList(_EncoderLayer(d, heads, feedforward, float(dropout))
                                     for _ in range(encoder_layers))
        self.pool = nn.Sequential(nn.Linear(d, pooling_hidden), nn.ReLU(), nn.Linear(pooling_hidden, d))
        head: list[nn.Module] = []
        sizes = [d, *widths[1:-1]]
        for a, b in zip(sizes[:-1], sizes[1:]):
            head += [nn.Linear(a, b), nn.ReLU()]
        self.binary = widths[-1] == 2
        head.append(nn.Linear(sizes[-1], 1 if self.binary else widths[-1]))
        self.head = nn.Sequential(*head)
        self.n_inputs, self.n_outputs, self.n_features = widths[0], widths[-1], n_features
        self.hparams = {"layers": widths, "missing_columns": cols, "embedding": emb, "heads": heads,
                        "encoder_layers": encoder_layers, "feedforward": feedforward,
                        "pooling_hidden": pooling_hidden, "dropout": float(dropout)}

    @classmethod
    def input_params(cls, preprocessor: Any, x_train: np.ndarray, w_train: np.ndarray,
                     **params: Any) -> dict[str, Any]:
        """Settings the pipeline derives from its fitted Preprocessor: which features have indicators."""
        return {"missing_columns": [int(c) for c in preprocessor.indicator_columns_]}

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        values, present = self.layout(x)
        # A row with nothing present would have an empty set: let it attend to everything instead.
        present = present | ~present.any(dim=1, keepdim=True)
        w = self.embed_first.weight  # (hidden, F + 1)
        tokens = w[:, : self.n_features].t()[None] + values[..., None] * w[:, self.n_features] + self.embed_first.bias
        h = self.embed_rest(tokens)  # (n, F, d)
        maps = []
        for layer in self.encoder:
            h, attn = layer(h, present)
            maps.append(attn)
        return h, present, maps

    def _pool(self, h: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = masked_softmax(self.pool(h), present[..., None], dim=1)  # (n, F, d), sums to 1 over the set
        return (alpha * h).sum(dim=1), alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, n_classes)`` for inputs ``(n, n_inputs)`` laid out as the pipeline's Preprocessor makes them."""
        h, present, _ = self._encode(x)
        pooled, _ = self._pool(h, present)
        z = self.head(pooled)
        return binary_logits(z) if self.binary else z

    @torch.no_grad()
    def attention(self, x: torch.Tensor) -> Mapping[str, torch.Tensor]:
        """Attention of each track: pooling weight per feature and the encoder maps.

        Returns:
            ``pooling``: (n, F) mean over model dimensions of the pooling weights (0 for absent
            features; each row sums to 1); ``encoder``: (n, layers, heads, F, F) attention maps.
        """
        h, present, maps = self._encode(x)
        _, alpha = self._pool(h, present)
        return {"pooling": alpha.mean(dim=2) * present, "encoder": torch.stack(maps, dim=1)}

    def extra_repr(self) -> str:
        return f"kind={_KIND!r}, hparams={self.hparams}"
