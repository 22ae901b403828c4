"""Transfer learning of the HNL study: regression pre-training on fresh events, then the classifier.

Pre-training draws new events from ``HnlKinematicsGenerator`` before every epoch, so a network of any size
cannot overfit them. Each epoch is one ``Trainer.fit`` (the Trainer owns the loop) with the learning rate
of an exponential decay; ``_OneFit`` makes the epochs look like a single fit to the caller's callbacks
(progress bars, the app's live curves). Adam's moment estimates restart every epoch: with thousands of
steps per epoch this costs little.

The classifier starts with the pre-trained trunk frozen and unfreezes it (with dropout) at a chosen
epoch through the ``UnfreezeAt`` callback; frozen parameters get no gradient, so Adam leaves them alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hepml_core.models.registry import build_model
from hepml_core.simulate._hnl_generator import HnlKinematicsGenerator
from hepml_core.training.callbacks import Callback, TrainState
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer

__all__ = ["UnfreezeAt", "pretrain_regressor", "predict_regression", "regressor_layers", "build_regressor"]


class UnfreezeAt(Callback):
    """Unfreeze a ``TransferClassifier``'s trunk at the start of epoch ``epoch`` (1-based; 0 = never frozen).

    Args:
        model: the classifier.
        epoch: first epoch that trains the trunk too; beyond the last epoch, the trunk stays frozen.
    """

    def __init__(self, model, epoch: int):
        self.model = model
        self.epoch = int(epoch)

    def on_fit_start(self, state: TrainState) -> None:
        self.model.set_frozen(self.epoch > 1)

    def on_epoch_start(self, state: TrainState) -> None:
        if state.epoch == self.epoch and self.model.frozen:
            self.model.set_frozen(False)


class _OneFit(Callback):
    """Forward the hooks of many one-epoch fits to ``callbacks`` as if they were one fit of ``n_epochs``."""

    def __init__(self, callbacks: Sequence, n_epochs: int):
        self.callbacks = list(callbacks)
        self.state = TrainState(n_epochs=n_epochs)

    def _call(self, hook: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self.state)

    def start(self) -> None:
        self._call("on_fit_start")

    def end(self) -> None:
        self._call("on_fit_end")

    def on_epoch_start(self, state: TrainState) -> None:
        self.state.epoch += 1
        self.state.batch, self.state.n_batches, self.state.device = 0, state.n_batches, state.device
        self._call("on_epoch_start")

    def on_batch_end(self, state: TrainState) -> None:
        self.state.batch, self.state.batch_loss = state.batch, state.batch_loss
        self._call("on_batch_end")

    def on_epoch_end(self, state: TrainState) -> None:
        row = dict(state.history[-1], epoch=self.state.epoch)
        self.state.history.append(row)
        val = row.get("val_loss")
        if val is not None and (self.state.best_val_loss is None or val < self.state.best_val_loss):
            self.state.best_val_loss, self.state.best_epoch = val, self.state.epoch
        self._call("on_epoch_end")
        if self.state.stop:
            state.stop = True


def regressor_layers(n_inputs: int, n_targets: int, width: int, depth: int) -> list[int]:
    """``[n_inputs, width x depth, n_targets]``."""
    return [int(n_inputs), *[int(width)] * int(depth), int(n_targets)]


def build_regressor(n_inputs: int, n_targets: int, *, width: int, depth: int, drop_in_every: int, seed: int):
    """The untrained ``KinematicRegressor`` of ``pretrain_regressor`` (``width`` x ``depth`` hidden layers)."""
    return build_model("kinematic_regressor", n_inputs, n_targets, seed=seed,
                       layers=regressor_layers(n_inputs, n_targets, width, depth), drop_in_every=drop_in_every)


def pretrain_regressor(generator: HnlKinematicsGenerator, scale_inputs, *, width: int, depth: int,
                       drop_in_every: int, epochs: int, events_per_epoch: int, batch_size: int, lr: float,
                       lr_decay: float, seed: int, validation_events: int = 20_000, callbacks: Sequence = (),
                       cancel=None):
    """Train a ``KinematicRegressor`` on freshly generated events every epoch.

    Args:
        generator: a fitted ``HnlKinematicsGenerator``.
        scale_inputs: function mapping raw inputs (n, 14) to the network's scaled inputs.
        width, depth, drop_in_every: the regressor's size and drop-in period.
        epochs: number of epochs (each on ``events_per_epoch`` new events).
        batch_size, lr: Adam settings; the learning rate of epoch e is ``lr * lr_decay**(e-1)``.
        seed: model initialisation and shuffling.
        validation_events: size of the fixed generated validation sample.
        callbacks: Trainer callbacks, called as for one fit of ``epochs`` epochs.
        cancel: optional CancelToken.

    Returns:
        ``(model, history rows, best_state)``: the model holds the weights of the epoch with the lowest
        validation loss.
    """
    x_val, t_val = generator.sample(validation_events)
    n_targets = t_val.shape[1]
    model = build_regressor(x_val.shape[1], n_targets, width=width, depth=depth, drop_in_every=drop_in_every,
                            seed=seed)
    validation = TensorData(scale_inputs(x_val), extra=t_val)
    outer = _OneFit(callbacks, epochs)
    outer.start()
    best_state, best_loss = None, np.inf
    try:
        for epoch in range(1, epochs + 1):
            x, t = generator.sample(events_per_epoch)
            trainer = Trainer(epochs=1, batch_size=batch_size, lr=lr * lr_decay ** (epoch - 1),
                              seed=seed + epoch, early_stopping=None, callbacks=[outer], cancel=cancel)
            result = trainer.fit(model, TensorData(scale_inputs(x), extra=t), validation)
            loss = result.history[-1]["val_loss"]
            if loss is not None and loss < best_loss:
                best_loss = loss
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if outer.state.stop:
                break
    finally:
        outer.end()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, outer.state.history, best_state or {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def predict_regression(model, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """The regressor's predictions for scaled inputs, in eval mode."""
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(x[s:s + batch_size], dtype=np.float32))).numpy()
           for s in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.n_outputs), dtype=np.float32)
