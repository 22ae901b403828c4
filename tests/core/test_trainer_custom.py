"""Models with task "custom" bring their own per-event loss; the Trainer still owns the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hepml_core.exceptions import ConfigError, DataError
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer


class _Regressor(nn.Module):
    """Predicts the ``extra`` targets from x, ignoring NaN inputs (treated as 0) and NaN targets."""

    task = "custom"

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 1)

    def forward(self, x):
        return self.net(torch.nan_to_num(x))

    def event_losses(self, x, y, extra):
        target = extra[:, 0]
        known = ~torch.isnan(target)
        return torch.where(known, (self(x)[:, 0] - torch.nan_to_num(target)) ** 2, torch.zeros_like(target))


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    target = (3 * x[:, 0] - 2 * x[:, 1] + 1)[:, None]
    target[::10] = np.nan  # unlabelled rows contribute nothing
    x[::7, 1] = np.nan
    return x, target


def test_custom_loss_with_extra_targets_and_nan_inputs_is_minimised():
    x, target = _data()
    model = _Regressor()
    result = Trainer(epochs=40, batch_size=100, lr=5e-2, seed=1, early_stopping=None).fit(
        model, TensorData(x, extra=target, allow_nan=True), TensorData(x, extra=target, allow_nan=True))
    # The floor is the rows whose x1 is missing (read as 0): 4 * var(x1) / 7 ~ 0.57.
    assert result.history[-1]["val_loss"] < 0.7 < result.history[0]["val_loss"]
    np.testing.assert_allclose(model.net.weight.detach().numpy()[0, 0], 3.0, atol=0.3)


def test_nan_inputs_are_refused_unless_allowed_and_custom_needs_event_losses():
    x, target = _data()
    with pytest.raises(DataError, match="NaN or inf"):
        TensorData(x, extra=target)
    plain = nn.Linear(2, 1)
    plain.task = "custom"
    with pytest.raises(ConfigError, match="event_losses"):
        Trainer(epochs=1).fit(plain, TensorData(np.nan_to_num(x)))
