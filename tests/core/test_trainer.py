"""The Trainer: it learns, honours event weights, stops early on the best epoch, cancels, repeats."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

from hepml_core.exceptions import ConfigError, DataError, HepmlError, TrainingCancelled
from hepml_core.models.registry import build_model
from hepml_core.training.callbacks import Callback, CancelToken
from hepml_core.training.data import BatchIterator, TensorData
from hepml_core.training.losses import (
    balanced_class_weights,
    resolve_class_weight,
    weighted_cross_entropy,
    weighted_mse,
)
from hepml_core.training.trainer import Trainer


def blobs(n=600, seed=0, n_classes=3, shift=3.0):
    """Gaussian blobs, one per class, far enough apart to be separable."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = shift * np.eye(n_classes, 4)
    x = (rng.normal(size=(n, 4)) + centres[y]).astype(np.float32)
    return x, y


def mlp(n_in=4, n_out=3, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return build_model("mlp_classifier", n_in, n_out, layers=[n_in, 16, n_out], dropout=dropout)


def params_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


class Snapshots(Callback):
    """Keep a copy of the weights at the end of every epoch."""

    def __init__(self, model):
        self.model, self.by_epoch = model, {}

    def on_epoch_end(self, state):
        self.by_epoch[state.epoch] = copy.deepcopy(self.model.state_dict())


def test_separable_problem_is_learned():
    x, y = blobs(900)
    model = mlp()
    result = Trainer(epochs=15, batch_size=64, lr=1e-2, early_stopping=None).fit(
        model, TensorData(x[:600], y[:600]), TensorData(x[600:], y[600:]))
    with torch.no_grad():
        pred = model.eval()(torch.from_numpy(x[600:])).argmax(dim=1).numpy()
    assert (pred == y[600:]).mean() > 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss", "seconds", "lr"}
    assert result.device == "cpu" and result.seconds > 0


def test_autoencoder_loss_decreases():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(400, 6)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model("autoencoder", 6, 6, layers=[6, 4, 6])
    result = Trainer(epochs=8, batch_size=50, lr=1e-2).fit(model, TensorData(x), TensorData(x[:100]))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_weighted_losses_use_weights_and_ignore_zero_weight_events():
    torch.manual_seed(0)
    logits, y = torch.randn(10, 3), torch.randint(0, 3, (10,))
    w = torch.rand(10) + 0.1
    assert not torch.isclose(weighted_cross_entropy(logits, y, w), weighted_cross_entropy(logits, y))
    manual = (torch.nn.functional.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()
    torch.testing.assert_close(weighted_cross_entropy(logits, y, w), manual)
    # appending zero-weight events (with garbage targets) changes nothing
    junk_logits, junk_y = torch.randn(5, 3) * 100, torch.randint(0, 3, (5,))
    both = weighted_cross_entropy(torch.cat([logits, junk_logits]), torch.cat([y, junk_y]),
                                  torch.cat([w, torch.zeros(5)]))
    torch.testing.assert_close(both, weighted_cross_entropy(logits, y, w))
    recon, x = torch.rand(10, 4), torch.rand(10, 4)
    torch.testing.assert_close(weighted_mse(recon, x, w), (((recon - x) ** 2).mean(1) * w).sum() / w.sum())
    # a batch of only zero weights gives 0, not NaN (no NaN gradients)
    assert weighted_mse(recon, x, torch.zeros(10)).item() == 0.0


def test_trainer_weights_change_training_and_zero_weight_validation_events_are_ignored():
    x, y = blobs(300)
    w = np.random.default_rng(3).uniform(0.1, 3.0, 300)
    unweighted, weighted = mlp(), mlp()
    trainer = Trainer(epochs=2, batch_size=50, lr=1e-2, early_stopping=None)
    trainer.fit(unweighted, TensorData(x, y))
    trainer.fit(weighted, TensorData(x, y, w))
    assert not params_equal(unweighted, weighted)

    xv, yv = x[:100], y[:100]
    junk_x = np.full((50, 4), 25.0, dtype=np.float32)  # would dominate the loss if counted
    a = trainer.fit(mlp(), TensorData(x, y), TensorData(xv, yv))
    b = trainer.fit(mlp(), TensorData(x, y), TensorData(np.vstack([xv, junk_x]), np.r_[yv, np.zeros(50, int)],
                                                        np.r_[np.ones(100), np.zeros(50)]))
    assert [r["val_loss"] for r in a.history] == pytest.approx([r["val_loss"] for r in b.history], rel=1e-6)


def test_balanced_class_weights_match_scikit_learn():
    sklearn_utils = pytest.importorskip("sklearn.utils")
    y = np.array([0, 0, 0, 1, 2, 2])
    expected = sklearn_utils.compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(balanced_class_weights(y, None, 3), expected)
    # with event weights the class frequencies are weighted: W / (k * W_c)
    w = np.array([1.0, 1.0, 2.0, 4.0, 1.0, 1.0])
    np.testing.assert_allclose(balanced_class_weights(y, w, 3), [10 / 12, 10 / 12, 10 / 6])
    with pytest.raises(ConfigError, match="'balanced'"):
        resolve_class_weight("balance", y, None, 3)
    with pytest.raises(ConfigError, match="3 classes"):
        resolve_class_weight([1.0, 2.0], y, None, 3)


def test_early_stopping_stops_and_restores_the_best_epoch():
    # validation labels are the training labels permuted: the more it learns, the worse validation gets
    x, y = blobs(300)
    model = mlp()
    snaps = Snapshots(model)
    result = Trainer(epochs=30, batch_size=50, lr=1e-2, early_stopping=2, callbacks=[snaps]).fit(
        model, TensorData(x, y), TensorData(x, (y + 1) % 3))
    losses = [r["val_loss"] for r in result.history]
    assert result.stopped_early and len(losses) == result.best_epoch + 2
    assert result.best_epoch == int(np.argmin(losses)) + 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, snaps.by_epoch[result.best_epoch][name])
        assert torch.equal(value, result.best_state[name])


def test_exponential_lr_decay_trains_epoch_k_with_lr0_gamma_to_the_k_minus_1():
    # one full batch per epoch, so each epoch is one Adam step; the reference loop sets the rate by hand
    x, y = blobs(120)
    lr0, gamma, epochs = 0.05, 0.5, 4
    model, reference = mlp(seed=3), mlp(seed=3)
    snaps = Snapshots(model)
    result = Trainer(epochs=epochs, batch_size=len(x), lr=lr0, lr_decay=gamma, early_stopping=None,
                     callbacks=[snaps], device="cpu").fit(model, TensorData(x, y))
    assert [r["lr"] for r in result.history] == pytest.approx([lr0 * gamma ** k for k in range(epochs)])
    optimizer = torch.optim.Adam(reference.parameters(), lr=lr0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for epoch in range(1, epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr0 * gamma ** (epoch - 1)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(reference(xt), yt).backward()
        optimizer.step()
        for name, value in reference.state_dict().items():
            torch.testing.assert_close(snaps.by_epoch[epoch][name], value, rtol=1e-5, atol=1e-6)
    # the same fit at a constant rate ends elsewhere: the schedule really reached the optimizer
    constant = mlp(seed=3)
    flat = Trainer(epochs=epochs, batch_size=len(x), lr=lr0, early_stopping=None, device="cpu").fit(
        constant, TensorData(x, y))
    assert [r["lr"] for r in flat.history] == [lr0] * epochs
    assert not params_equal(constant, model)


def test_cancel_raises_promptly_and_keeps_the_best_weights():
    x, y = blobs(300)
    token, model = CancelToken(), mlp()
    snaps = Snapshots(model)
    seen = []

    class CancelInEpoch2(Callback):
        def on_batch_end(self, state):
            seen.append((state.epoch, state.batch))
            if state.epoch == 2 and state.batch == 3:
                token.cancel()

    trainer = Trainer(epochs=5, batch_size=50, lr=1e-2, callbacks=[CancelInEpoch2(), snaps], cancel=token)
    with pytest.raises(TrainingCancelled, match="epoch 2/5 after batch 3/6.*epoch 1.*nothing was saved"):
        trainer.fit(model, TensorData(x, y), TensorData(x, y))
    assert seen[-1] == (2, 3)  # no batch ran after the cancel
    for name, value in model.state_dict().items():
        assert torch.equal(value, snaps.by_epoch[1][name])


def test_cancel_from_another_thread_stops_a_long_fit():
    x, y = blobs(2000)
    token, errors = CancelToken(), []

    def work():
        try:
            Trainer(epochs=10_000, batch_size=10, early_stopping=None, cancel=token).fit(mlp(), TensorData(x, y))
        except TrainingCancelled as err:
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    threading.Event().wait(0.3)
    token.cancel()
    thread.join(timeout=5)
    assert not thread.is_alive() and len(errors) == 1


def test_same_seed_same_weights_and_the_callers_rng_is_untouched():
    x, y = blobs(300)
    a, b, c = mlp(dropout=0.3), mlp(dropout=0.3), mlp(dropout=0.3)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    ra = Trainer(epochs=3, batch_size=32, seed=7).fit(a, TensorData(x, y), TensorData(x[:50], y[:50]))
    assert torch.equal(torch.rand(3), expected_next)
    rb = Trainer(epochs=3, batch_size=32, seed=7).fit(b, TensorData(x, y), TensorData(x[:50], y[:50]))
    Trainer(epochs=3, batch_size=32, seed=8).fit(c, TensorData(x, y), TensorData(x[:50], y[:50]))
    assert params_equal(a, b)
    assert [r["train_loss"] for r in ra.history] == [r["train_loss"] for r in rb.history]
    assert not params_equal(a, c)


def test_model_keeps_its_mode_and_device():
    x, y = blobs(100)
    model = mlp().eval()
    Trainer(epochs=1, batch_size=50).fit(model, TensorData(x, y))
    assert not model.training and next(model.parameters()).device.type == "cpu"


def test_batch_iterator_covers_every_event_once_per_epoch_in_a_new_order():
    x = torch.arange(10)
    it = BatchIterator((x, x * 10), batch_size=4, generator=torch.Generator().manual_seed(0))
    assert len(it) == 3
    epochs = []
    for _ in range(2):
        batches = list(it)
        assert [len(b[0]) for b in batches] == [4, 4, 2]
        assert all(torch.equal(b[1], b[0] * 10) for b in batches)
        order = torch.cat([b[0] for b in batches])
        assert sorted(order.tolist()) == list(range(10))
        epochs.append(order)
    assert not torch.equal(epochs[0], epochs[1])


@pytest.mark.parametrize(
    "kwargs, data, error, match",
    [
        ({}, "no_labels", DataError, "needs labels"),
        ({}, "wrong_features", DataError, "5 features but the model expects 4"),
        ({}, "too_many_classes", DataError, "set layers\\[-1\\] = 5"),
        ({"epochs": 0}, "ok", ConfigError, "epochs must be an int >= 1"),
        ({"lr": -1.0}, "ok", ConfigError, "lr must be a positive number"),
        ({"lr_decay": 1.5}, "ok", ConfigError, "lr_decay must be None \\(constant lr\\) or a factor in"),
        ({"lr_decay": 0.0}, "ok", ConfigError, "lr_decay must be None"),
        ({"device": "tpu9"}, "ok", ConfigError, "not a torch device"),
    ],
)
def test_bad_input_is_refused_before_training(kwargs, data, error, match):
    x, y = blobs(60)
    train = {
        "ok": TensorData(x, y),
        "no_labels": TensorData(x),
        "wrong_features": TensorData(np.hstack([x, x[:, :1]]), y),
        "too_many_classes": TensorData(x, np.r_[y[:-1], 4]),
    }[data]
    with pytest.raises(error, match=match):
        Trainer(**kwargs).fit(mlp(), train)


def test_class_weight_is_for_classifiers_only():
    x = np.random.default_rng(0).uniform(size=(20, 3)).astype(np.float32)
    with pytest.raises(ConfigError, match="classifiers only"):
        Trainer(epochs=1).fit(build_model("autoencoder", 3, 3, layers=[3, 2, 3]), TensorData(x),
                              class_weight="balanced")


def test_balanced_class_weight_trains():
    x, y = blobs(200)
    result = Trainer(epochs=2, batch_size=50).fit(mlp(), TensorData(x, y), class_weight="balanced")
    assert len(result.history) == 2


def test_tensor_data_refuses_nan_and_bad_labels():
    x = np.zeros((4, 3), dtype=np.float32)
    x[1, 2] = np.nan
    with pytest.raises(DataError, match=r"column\(s\) \[2\].*impute"):
        TensorData(x)
    with pytest.raises(DataError, match="integer class codes"):
        TensorData(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="sum to 0"):
        TensorData(np.zeros((2, 3)), np.array([0, 1]), np.zeros(2))


def test_divergence_is_reported_not_returned_as_nan():
    x = np.full((64, 4), 3e38, dtype=np.float32)  # overflows to inf inside the first layer
    with pytest.raises(HepmlError, match="diverged"):
        Trainer(epochs=2, batch_size=32).fit(mlp(), TensorData(x, np.zeros(64, int)))
