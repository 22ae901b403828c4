"""Transfer-learning models: drop-in wiring, the regression loss, freezing and loading the trunk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepml_core.exceptions import ConfigError
from hepml_core.models.registry import build_model
from hepml_core.models.transfer import regression_losses
from hepml_core.studies._hnl_transfer import UnfreezeAt, _OneFit, pretrain_regressor
from hepml_core.simulate.hnl import HnlKinematicsGenerator, simulate_hnl
from hepml_core.training.callbacks import History
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer


def test_drop_in_reinjects_the_raw_inputs_every_k_layers():
    reg = build_model("kinematic_regressor", 14, 66, seed=1, layers=[14, 32, 32, 32, 32, 32, 32, 66],
                      drop_in_every=3)
    widths = [lin.in_features for lin in reg.trunk.linears]
    # hidden layers 3 (0-based) take [h, x]: 32 + 14 inputs
    assert widths == [14, 32, 32, 46, 32, 32]
    plain = build_model("kinematic_regressor", 14, 66, seed=1, layers=[14, 32, 32, 32, 32, 32, 32, 66],
                        drop_in_every=0)
    assert [lin.in_features for lin in plain.trunk.linears] == [14, 32, 32, 32, 32, 32]
    assert reg(torch.zeros(5, 14)).shape == (5, 66)
    with pytest.raises(ConfigError, match="drop_in_every"):
        build_model("kinematic_regressor", 14, 66, drop_in_every=-1)


def test_regression_loss_by_hand():
    pred = torch.tensor([[2.2, 1.0, 0.0]])
    target = torch.tensor([[2.0, 0.5, 1.0]])
    # relative MSE of E_tot: (0.2 / 2)^2 = 0.01; MSE of the others: 0.25 + 1; mean over 3 columns
    assert regression_losses(pred, target).item() == pytest.approx((0.01 + 0.25 + 1.0) / 3)


def test_frozen_trunk_gets_no_update_until_unfrozen():
    reg = build_model("kinematic_regressor", 4, 3, seed=1, layers=[4, 16, 16, 3], drop_in_every=0)
    clf = build_model("transfer_classifier", 7, 2, seed=2, layers=[7, 8, 2], trunk_layers=[4, 16, 16, 3],
                      drop_in_every=0, dropout=0.5)
    clf.load_trunk(reg.state_dict())
    for a, b in zip(clf.trunk.parameters(), reg.trunk.parameters()):
        assert torch.equal(a, b)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 7)).astype(np.float32)
    y = (x[:, 0] + x[:, 5] > 0).astype(np.int64)
    before = [p.detach().clone() for p in clf.trunk.parameters()]
    head_before = [p.detach().clone() for p in clf.head.parameters()]
    hist = History()
    unfreeze = UnfreezeAt(clf, epoch=3)
    seen = []

    class Spy:
        def on_epoch_end(self, state):
            seen.append((state.epoch, clf.frozen, clf.trunk.dropout.p))

    Trainer(epochs=2, batch_size=50, lr=1e-2, seed=1, early_stopping=None, callbacks=[unfreeze, hist, Spy()]).fit(
        clf, TensorData(x, y))
    assert all(torch.equal(a, b) for a, b in zip(before, clf.trunk.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(head_before, clf.head.parameters()))
    assert seen == [(1, True, 0.0), (2, True, 0.0)]
    Trainer(epochs=3, batch_size=50, lr=1e-2, seed=1, early_stopping=None, callbacks=[unfreeze, Spy()]).fit(
        clf, TensorData(x, y))
    assert seen[-1] == (3, False, 0.5)  # unfrozen in epoch 3, with the talk's dropout
    assert not all(torch.equal(a, b) for a, b in zip(before, clf.trunk.parameters()))
    other = build_model("kinematic_regressor", 4, 3, layers=[4, 8, 3], drop_in_every=0)
    with pytest.raises(ConfigError, match="does not fit"):
        clf.load_trunk(other.state_dict())


def test_pretraining_learns_and_reports_one_continuous_fit():
    events = simulate_hnl(3000, seed=1)
    gen = HnlKinematicsGenerator(seed=2).fit(events)
    hist = History()
    starts = []

    class Count:
        def on_fit_start(self, state):
            starts.append(state.n_epochs)

    model, history, _ = pretrain_regressor(
        gen, lambda x: (x - x.mean(0)) / (x.std(0) + 1e-6), width=32, depth=3, drop_in_every=3, epochs=4,
        events_per_epoch=3000, batch_size=256, lr=3e-3, lr_decay=0.8, seed=1, validation_events=2000,
        callbacks=[hist, Count()])
    assert starts == [4]  # one fit of 4 epochs as far as the callbacks know
    assert [r["epoch"] for r in hist.snapshot()] == [1, 2, 3, 4]
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    lrs = [r["lr"] for r in history]
    np.testing.assert_allclose(lrs, [3e-3 * 0.8 ** k for k in range(4)])
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert isinstance(_OneFit([], 1).state.history, list)


def test_full_size_pretraining_option_builds_the_talks_network():
    """The talk's 1024 x 25 regressor (~25M weights) and its transfer classifier build and run (not trained)."""
    from hepml_core.simulate._hnl_features import REGRESSION_INPUTS, REGRESSION_TARGETS
    from hepml_core.studies._hnl_transfer import build_regressor
    from hepml_core.studies.hnl import FULL_SIZE_REGRESSION, SIDE_COLUMNS, HnlSettings, _check, transfer_classifier

    settings = HnlSettings().full_size_pretraining()
    assert (settings.regression_width, settings.regression_depth) == FULL_SIZE_REGRESSION == (1024, 25)
    assert settings.events == HnlSettings().events and settings.drop_in_every == 3  # only the network changes
    _check(settings)
    reg = build_regressor(len(REGRESSION_INPUTS), len(REGRESSION_TARGETS), width=settings.regression_width,
                          depth=settings.regression_depth, drop_in_every=settings.drop_in_every, seed=1)
    n_params = sum(p.numel() for p in reg.parameters() if p.requires_grad)
    assert 24e6 < n_params < 27e6, n_params  # "about 25 million trainable parameters"
    assert len(reg.trunk.linears) == 25
    # drop-in: every third hidden layer also takes the 14 raw inputs
    assert sum(lin.in_features == 1024 + len(REGRESSION_INPUTS) for lin in reg.trunk.linears) == 8
    n_in = len(REGRESSION_INPUTS) + len(SIDE_COLUMNS)
    clf = transfer_classifier(settings, n_in, reg)
    assert clf.frozen and torch.equal(clf.trunk.linears[-1].weight, reg.trunk.linears[-1].weight)
    with torch.no_grad():
        assert reg(torch.zeros(3, len(REGRESSION_INPUTS))).shape == (3, len(REGRESSION_TARGETS))
        assert clf(torch.zeros(3, n_in)).shape == (3, 2)
