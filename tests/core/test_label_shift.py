"""Black-box shift estimation of the data's class mix (for the domain-adversarial models' MC weights)."""

from __future__ import annotations

import numpy as np
import torch

from hepml_core.models._label_shift import ClassMixEstimate


def _logits(labels: np.ndarray, rng: np.random.Generator, separation: float = 1.5) -> torch.Tensor:
    """Binary logits of an imperfect classifier: class 1 scores higher on average, with overlap."""
    z = rng.normal(np.where(labels == 1, separation, -separation), 1.5)
    return torch.tensor(np.stack([np.zeros_like(z), z], axis=1), dtype=torch.float32)


def test_the_data_share_is_recovered_despite_an_imperfect_classifier():
    rng = np.random.default_rng(3)
    mix = ClassMixEstimate(2, momentum=0.9)
    for _ in range(200):
        mc_y = rng.integers(0, 2, 256)  # MC: 50 % class 1
        data_y = (rng.random(256) < 0.3).astype(np.int64)  # data: 30 % class 1
        labels = np.concatenate([mc_y, data_y])
        is_data = torch.tensor(np.r_[np.zeros(256), np.ones(256)] > 0)
        codes = torch.tensor(np.where(is_data.numpy(), 0, labels))
        mix.update(_logits(labels, rng), codes, ~is_data, is_data)
    shares = mix.data_shares()
    assert abs(float(shares[1]) - 0.3) < 0.03, shares
    naive = float(mix._data_mean[1])  # the plain mean prediction on data, pulled towards 0.5 by the overlap
    assert abs(naive - 0.3) > 0.05, naive
    weights = mix.mc_weights(torch.tensor([0, 1]))
    assert abs(float(weights[1]) - 0.6) < 0.08 and abs(float(weights[0]) - 1.4) < 0.08, weights


def test_no_estimate_before_both_samples_and_weights_of_one():
    mix = ClassMixEstimate(2)
    codes = torch.tensor([0, 1, 1])
    assert mix.data_shares() is None
    assert torch.equal(mix.mc_weights(codes), torch.ones(3))
    mix.update(torch.zeros(3, 2), codes, torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool))
    assert mix.data_shares() is None  # MC seen, no data yet
