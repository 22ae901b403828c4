"""The one training loop: batches, weighted loss, Adam, validation, best-epoch checkpoint, hooks.

Kept deliberately plain (the shape of Lightning Fabric's "build your own trainer"): the model only
maps inputs to outputs, the loss is chosen from ``model.task``, and everything else a user sees
(progress bars, live curves, early stopping) is a callback on named hooks.

Speed comes from not doing per-batch work that is not needed: whole tensors live on the device,
batches are slices (:class:`~hepml_core.training.data.BatchIterator`), event and class weights are
multiplied once per fit, and the epoch loss is accumulated on the device and read once per epoch
instead of syncing with ``.item()`` after every batch.

The learning rate may decay exponentially per epoch (``lr_decay``, torch's ``ExponentialLR``: the
ALICE PID talk's schedule); the rate each epoch trained with is in its history row, so live curves
can show it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hepml_core.exceptions import ConfigError, DataError, HepmlError, TrainingCancelled
from hepml_core.training.callbacks import CancelToken, EarlyStopping, TrainState
from hepml_core.training.data import BatchIterator, TensorData
from hepml_core.training.losses import cross_entropy_per_event, mse_per_event, resolve_class_weight

__all__ = ["TrainResult", "Trainer", "resolve_device"]

_HOOKS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end")
_EVAL_BATCH = 65536  # validation needs no gradients, so much larger batches fit in memory


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        history: one row per epoch: ``epoch`` (from 1), ``train_loss``, ``val_loss`` (``None``
            without validation), ``seconds``, ``lr``.
        best_epoch: epoch with the lowest validation loss (the last epoch without validation).
        best_state: CPU copy of that epoch's ``state_dict``; already loaded into the model.
        seconds: wall time of the whole fit.
        stopped_early: whether early stopping (or a callback) ended training before ``epochs``.
        device: the device the model trained on.
    """

    history: list[dict[str, Any]]
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    seconds: float
    stopped_early: bool = False
    device: str = "cpu"


def _batch_layout(task: str, x, y, w, extra) -> tuple:
    """The tensors sliced into batches together, in the order _batch_losses unpacks them."""
    if task == "classifier":
        return (x, w, y)
    if task == "autoencoder":
        return (x, w)
    return (x, w) + ((y,) if y is not None else ()) + ((extra,) if extra is not None else ())


def _batch_losses(model: nn.Module, task: str, batch: tuple, *, has_y: bool, has_extra: bool):
    """Per-event losses of one batch: ``(x, w, losses)``."""
    xb, wb = batch[0], batch[1]
    if task == "classifier":
        return xb, wb, cross_entropy_per_event(model(xb), batch[2])
    if task == "autoencoder":
        return xb, wb, mse_per_event(model(xb), xb)
    yb = batch[2] if has_y else None
    eb = batch[2 + has_y] if has_extra else None
    # Models with task "custom" define their own per-event loss (ELBO, domain-adversarial, ...).
    return xb, wb, model.event_losses(xb, yb, eb)


def resolve_device(device: str | torch.device) -> torch.device:
    """Map ``"auto"`` to CUDA when available, else CPU; pass other names through ``torch.device``.

    Raises:
        ConfigError: for an unknown device name, or CUDA asked for but not available.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} asked for but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _make_adam(params: Any, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Adam:
    # The fused kernel does the whole update in one call instead of a dozen small ops per parameter,
    # which is most of the step time for small models; fall back where a build lacks it.
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class Trainer:
    """Train a registered hepml model with Adam on weighted events.

    Settings only are stored here (sklearn style); :meth:`fit` checks them.

    Args:
        epochs: maximum number of passes over the training events.
        batch_size: events per optimizer step.
        lr: Adam learning rate (of the first epoch).
        lr_decay: ``None`` keeps ``lr`` constant; a factor ``gamma`` in (0, 1] multiplies it after
            every epoch (exponential schedule), so epoch ``k`` (from 1) trains with ``lr * gamma**(k-1)``.
        weight_decay: Adam's L2 penalty.
        seed: seeds the per-epoch shuffling and dropout, so a fit is repeatable on CPU.
        early_stopping: patience in epochs on the validation loss; ``None`` disables it. Ignored
            when ``fit`` gets no validation set.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        callbacks: objects with any of the hooks of :class:`~hepml_core.training.callbacks.Callback`.
        cancel: a :class:`CancelToken`; checked before every batch.
    """

    def __init__(self, *, epochs: int = 20, batch_size: int = 512, lr: float = 1e-3,
                 lr_decay: float | None = None, weight_decay: float = 0.0, seed: int = 1,
                 early_stopping: int | None = 5, device: str | torch.device = "auto",
                 callbacks: Sequence[Any] = (), cancel: CancelToken | None = None) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.seed = seed
        self.early_stopping = early_stopping
        self.device = device
        self.callbacks = callbacks
        self.cancel = cancel

    def _check_settings(self) -> None:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ConfigError(f"Trainer: {name} must be an int >= {minimum}, got {value!r}")

        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("seed", self.seed, minimum=0)
        if self.early_stopping is not None:
            positive_int("early_stopping (patience)", self.early_stopping)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"Trainer: lr must be a positive number, got {self.lr!r}")
        decay = self.lr_decay
        if decay is not None and (isinstance(decay, bool) or not isinstance(decay, (int, float))
                                  or not 0 < decay <= 1):
            raise ConfigError(f"Trainer: lr_decay must be None (constant lr) or a factor in (0, 1] applied "
                              f"after every epoch, got {decay!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"Trainer: weight_decay must be >= 0, got {self.weight_decay!r}")

    def fit(self, model: nn.Module, train: TensorData, validation: TensorData | None = None, *,
            class_weight: str | Sequence[float] | Mapping[int, float] | None = None) -> TrainResult:
        """Train ``model`` in place and leave the best epoch's weights in it.

        The loss follows ``model.task``: weighted cross entropy on logits for ``"classifier"``,
        weighted per-event MSE for ``"autoencoder"``. With a validation set, the weights of the
        epoch with the lowest validation loss are restored at the end (also after early stopping).
        The model ends on the device and in the train/eval mode it started in.

        Args:
            model: a model with ``task`` (built by ``build_model``).
            train: training events.
            validation: events for the validation loss, early stopping and the best checkpoint.
            class_weight: classifier only: ``None``, ``"balanced"`` (inverse weighted class
                frequencies), a list with one multiplier per class, or ``{code: multiplier}``.

        Returns:
            A :class:`TrainResult`.

        Raises:
            ConfigError: bad settings, unknown ``model.task``, ``class_weight`` for an autoencoder.
            DataError: feature count or labels that do not fit the model.
            TrainingCancelled: the cancel token was set; the model then holds the best epoch's
                weights so far (without validation: the last finished epoch; its starting weights if
                no epoch finished). Nothing has been saved.
            HepmlError: the loss became NaN/inf (diverged).
        """
        self._check_settings()
        task = getattr(model, "task", None)
        if task not in ("classifier", "autoencoder", "custom") or (
                task == "custom" and not hasattr(model, "event_losses")):
            raise ConfigError(
                f"Trainer.fit: model {type(model).__name__} has task={task!r}; expected 'classifier', "
                f"'autoencoder', or 'custom' with an event_losses(x, y, extra) method (build models "
                f"with hepml_core.models.registry.build_model)"
            )
        self._check_data(model, task, train, validation, class_weight)
        device = resolve_device(self.device)
        params = list(model.parameters())
        start_device = params[0].device if params else torch.device("cpu")
        was_training = model.training
        model.to(device)
        try:
            # fork_rng: dropout draws from torch's global generator; seeding it inside a fork makes
            # the fit repeatable without changing the caller's random state afterwards.
            devices = [device.index or 0] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                return self._fit(model, task, train, validation, class_weight, device)
        finally:
            model.to(start_device)
            model.train(was_training)

    def _check_data(self, model: nn.Module, task: str, train: TensorData,
                    validation: TensorData | None, class_weight: Any) -> None:
        for name, data in (("train", train), ("validation", validation)):
            if data is None:
                continue
            if not isinstance(data, TensorData):
                raise DataError(f"Trainer.fit: {name} must be a TensorData, got {type(data).__name__}")
            n_in = getattr(model, "n_inputs", data.n_features)
            if data.n_features != n_in:
                raise DataError(
                    f"Trainer.fit: {name} data has {data.n_features} features but the model expects "
                    f"{n_in}; rebuild the model with layers[0] = {data.n_features}"
                )
            if task == "classifier":
                if data.y is None:
                    raise DataError(f"Trainer.fit: a classifier needs labels; {name} has y=None")
                n_out = getattr(model, "n_outputs", None)
                if n_out is not None and data.n_classes() > n_out:
                    raise DataError(
                        f"Trainer.fit: {name} labels go up to class code {data.n_classes() - 1} but "
                        f"the model has {n_out} outputs; set layers[-1] = {data.n_classes()}"
                    )
        if class_weight is not None and task != "classifier":
            raise ConfigError("Trainer.fit: class_weight applies to classifiers only")

    def _weights(self, data: TensorData, cw: np.ndarray | None, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        x, y, w = data.tensors(device)
        if cw is not None:
            # Fold class weights into event weights once, so the per-batch loss is a single dot.
            w = w * torch.as_tensor(cw, dtype=w.dtype, device=device)[y]
            if not w.sum().item() > 0:
                raise ConfigError(
                    f"Trainer.fit: with class_weight={cw.tolist()} the events' weights sum to "
                    f"{w.sum().item():g}; give a positive weight to at least one class present"
                )
        return x, y, w

    def _fit(self, model: nn.Module, task: str, train: TensorData, validation: TensorData | None,
             class_weight: Any, device: torch.device) -> TrainResult:
        t0 = time.perf_counter()
        cw = None
        if task == "classifier":
            n_out = getattr(model, "n_outputs", None) or train.n_classes()
            cw = resolve_class_weight(class_weight, train.y, train.w, n_out)
        x, y, w = self._weights(train, cw, device)
        val = self._weights(validation, cw, device) if validation is not None else None
        # With only positive weights no batch can sum to zero, so the guard op can be skipped.
        guard = not bool((w > 0).all())

        extra = train.extra_tensor(device) if task == "custom" else None
        if task == "custom" and val is not None:
            val = (*val, validation.extra_tensor(device))
        tensors = _batch_layout(task, x, y, w, extra)
        gen = torch.Generator().manual_seed(self.seed)
        batches = BatchIterator(tensors, self.batch_size, shuffle=True, generator=gen)
        optimizer = _make_adam(model.parameters(), self.lr, self.weight_decay, device)
        scheduler = (torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(self.lr_decay))
                     if self.lr_decay is not None else None)

        callbacks = list(self.callbacks)
        if self.early_stopping is not None and val is not None:
            callbacks.append(EarlyStopping(self.early_stopping))
        hooks = {h: [getattr(cb, h) for cb in callbacks if hasattr(cb, h)] for h in _HOOKS}
        state = TrainState(n_epochs=self.epochs, n_batches=len(batches), device=str(device))
        best_state = _cpu_copy(model)  # starting weights: what a cancel in epoch 1 returns to
        one = torch.ones((), device=device)
        cancel = self.cancel

        try:
            for fn in hooks["on_fit_start"]:
                fn(state)
            for epoch in range(1, self.epochs + 1):
                t_epoch = time.perf_counter()
                state.epoch, state.batch = epoch, 0
                for fn in hooks["on_epoch_start"]:
                    fn(state)
                model.train()
                loss_sum = torch.zeros((), device=device)
                weight_sum = torch.zeros((), device=device)
                for batch in batches:
                    if cancel is not None and cancel.cancelled:
                        state.cancelled = True
                        break
                    xb, wb, per_event = _batch_losses(model, task, batch, has_y=y is not None,
                                                      has_extra=extra is not None)
                    num = torch.dot(per_event, wb)
                    den = wb.sum()
                    loss = num / (torch.where(den == 0, one, den) if guard else den)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += num.detach()
                    weight_sum += den
                    state.batch += 1
                    state.batch_loss = loss.detach()
                    for fn in hooks["on_batch_end"]:
                        fn(state)
                if state.cancelled:
                    break
                train_loss = (loss_sum / weight_sum).item()  # the one device sync of the epoch
                if not math.isfinite(train_loss):
                    model.load_state_dict(best_state)
                    raise HepmlError(
                        f"training diverged: the training loss is {train_loss} in epoch {epoch}; "
                        f"lower lr (now {self.lr:g}) or check the features' scale (Preprocessor)"
                    )
                val_loss = self._evaluate(model, task, val) if val is not None else None
                # Without validation the "best" checkpoint is simply the last finished epoch, so a
                # cancel still leaves the model at an epoch boundary.
                if val_loss is None:
                    improved = True
                else:  # a NaN validation loss never counts as the best
                    improved = not math.isnan(val_loss) and (
                        state.best_val_loss is None or val_loss < state.best_val_loss)
                if improved:
                    state.best_val_loss, state.best_epoch = val_loss, epoch
                    best_state = _cpu_copy(model)
                state.history.append({
                    "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                    "seconds": time.perf_counter() - t_epoch, "lr": float(optimizer.param_groups[0]["lr"]),
                })
                if scheduler is not None:  # after the row: a row shows the rate its epoch trained with
                    scheduler.step()
                for fn in hooks["on_epoch_end"]:
                    fn(state)
                if state.stop:
                    break
        finally:
            for fn in hooks["on_fit_end"]:
                fn(state)

        if state.cancelled:
            model.load_state_dict(best_state)
            held = f"epoch {state.best_epoch}" if state.best_epoch else "its starting weights"
            raise TrainingCancelled(
                f"training cancelled in epoch {state.epoch}/{self.epochs} after batch {state.batch}/"
                f"{state.n_batches}; the model holds {held}; nothing was saved"
            )
        last = state.history[-1]["epoch"]
        model.load_state_dict(best_state)
        return TrainResult(
            history=[dict(r) for r in state.history], best_epoch=state.best_epoch,
            best_state=best_state, seconds=time.perf_counter() - t0,
            stopped_early=last < self.epochs, device=str(device),
        )

    @torch.no_grad()
    def _evaluate(self, model: nn.Module, task: str,
                  data: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]) -> float:
        """Weighted mean loss over a whole set, in eval mode (no dropout), in large batches."""
        x, y, w = data[:3]
        extra = data[3] if len(data) > 3 else None
        model.eval()
        total = torch.zeros((), device=x.device, dtype=torch.float64)
        bs = max(self.batch_size, _EVAL_BATCH)
        for s in range(0, x.shape[0], bs):
            xb, wb = x[s:s + bs], w[s:s + bs]
            if task == "custom":
                per_event = model.event_losses(xb, None if y is None else y[s:s + bs],
                                               None if extra is None else extra[s:s + bs])
            elif task == "classifier":
                per_event = cross_entropy_per_event(model(xb), y[s:s + bs])
            else:
                per_event = mse_per_event(model(xb), xb)
            total += torch.dot(per_event, wb).double()
        model.train()
        den = w.double().sum()
        return float((total / den).item()) if den.item() != 0 else float("nan")
