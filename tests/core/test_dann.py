"""Gradient reversal, the lambda schedule, the domain-adversarial models and the generic ``data.domain`` path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from hepml_core.exceptions import ConfigError, DataError
from hepml_core.models._gradient_reversal import grad_reverse, lambda_at
from hepml_core.models._multimodal_branches import N_NODES, TrackerGNN, tracker_graph
from hepml_core.models.registry import build_model
from hepml_core.pipeline import train_from_config
from hepml_core.runs import RunStore
from hepml_core.studies.ams_nuclei import domain_probe_accuracy, model_layout


def test_gradient_reversal_is_identity_forward_and_negates_backward():
    x = torch.randn(5, 3, requires_grad=True)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -0.7 * np.tile(np.arange(3.0), (5, 1)))


def test_lambda_schedules():
    assert lambda_at(0.0) == 0.0
    assert lambda_at(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert lambda_at(0.25, lambda_max=0.5) == pytest.approx(0.5 * (2 / (1 + math.exp(-2.5)) - 1))
    assert lambda_at(0.3, schedule="linear", lambda_max=2.0) == pytest.approx(0.6)
    assert lambda_at(0.0, schedule="constant", lambda_max=0.4) == pytest.approx(0.4)
    assert lambda_at(7.0) == lambda_at(1.0)  # progress is clipped to [0, 1]


def test_dann_loss_uses_labels_of_mc_rows_only():
    model = build_model("dann_classifier", 4, 2, seed=0, layers=[4, 8, 2], domain_weight=0.5,
                        dropout=0.0)
    model.lambda_ = 0.3
    x = torch.randn(6, 4)
    extra = torch.tensor([[0, 1], [0, 0], [1, float("nan")], [1, float("nan")], [0, 1], [1, float("nan")]])
    losses = model.event_losses(x, None, extra)
    feats = model.features(x)
    ce = F.cross_entropy(model.classifier(feats), torch.nan_to_num(extra[:, 1]).long(), reduction="none")
    bce = F.binary_cross_entropy_with_logits(model.domain_head(feats).squeeze(-1), extra[:, 0], reduction="none")
    expected = torch.where(torch.isnan(extra[:, 1]), torch.zeros(6), ce) + 0.5 * bce
    torch.testing.assert_close(losses, expected)
    # validation (eval mode): class loss + lambda_max w (ln 2 - binary entropy of the domain output)
    model.eval()
    p = torch.sigmoid(model.domain_head(feats).squeeze(-1)).detach().numpy().astype(np.float64)
    entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    want = torch.where(torch.isnan(extra[:, 1]), torch.zeros(6), ce).detach().numpy() + 0.5 * (math.log(2) - entropy)
    np.testing.assert_allclose(model.event_losses(x, None, extra).detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_domain_loss_gives_each_domain_half_the_weight():
    """In a batch of 1 MC and 3 data events each MC event weighs 3x a data event in the domain term."""
    model = build_model("dann_classifier", 4, 2, seed=0, layers=[4, 8, 2], dropout=0.0)
    x = torch.randn(4, 4)
    extra = torch.tensor([[0, 1], [1, float("nan")], [1, float("nan")], [1, float("nan")]])
    losses = model.event_losses(x, None, extra)
    bce = F.binary_cross_entropy_with_logits(model.domain_logits(x), extra[:, 0], reduction="none")
    ce = F.cross_entropy(model(x)[:1], torch.tensor([1]), reduction="none")
    want = torch.cat([ce + 2.0 * bce[:1], (2.0 / 3.0) * bce[1:]])
    torch.testing.assert_close(losses, want)


def test_domain_head_accuracy_is_balanced():
    """A head that always answers "MC" scores 0.5 on an 80 % MC sample, not 0.8."""
    model = build_model("dann_classifier", 3, 2, seed=0, layers=[3, 8, 2])
    last = model.domain_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-5.0)
    x = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    domain = np.r_[np.zeros(80), np.ones(20)]
    assert model.domain_accuracy(x, domain) == pytest.approx(0.5)
    assert model.domain_accuracy(x, domain, balanced=False) == pytest.approx(0.8)
    # weights count too: giving the data events 4x the weight balances the raw accuracy
    assert model.domain_accuracy(x, domain, np.r_[np.ones(80), 4 * np.ones(20)], balanced=False) == pytest.approx(0.5)


def test_reversed_domain_gradient_reaches_every_branch_and_the_fusion():
    """The domain term's gradient on every branch, the fusion and the head equals -lambda (head: +1) times
    the gradient of the same loss without reversal, and is non-zero everywhere."""
    model = build_model("multimodal_dann", 87, 2, seed=1, layout=model_layout(), branch_dim=8, heads=2,
                        fused_dim=8, gnn_hidden=8, gnn_rounds=1, dropout=0.0)
    model.lambda_ = 0.7
    x = torch.randn(16, 87)
    extra = torch.stack([torch.cat([torch.zeros(8), torch.ones(8)]), torch.full((16,), float("nan"))], dim=1)
    model.event_losses(x, None, extra).sum().backward()  # no labels: only the domain term
    reversed_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    F.binary_cross_entropy_with_logits(model.domain_logits(x), extra[:, 0], reduction="sum").backward()
    for branch in ("tracker_gnn", "cluster_cnn", "rigidity_mlp", "tof_mlp", "fusion", "domain_head"):
        names = [n for n, _ in model.named_parameters() if n.startswith(branch + ".")]
        assert names, branch
        sign = 1.0 if branch == "domain_head" else -0.7
        total = 0.0
        for n in names:
            plain = dict(model.named_parameters())[n].grad
            torch.testing.assert_close(reversed_grads[n], sign * plain, rtol=1e-4, atol=1e-7)
            total += float(plain.abs().sum())
        assert total > 0, f"no domain gradient reaches {branch}"
    # without labels the class head learns nothing from these events
    assert all(float(g.abs().sum()) == 0 for n, g in reversed_grads.items() if n.startswith("classifier."))


def test_extra_domain_head_steps_train_the_head_only():
    model = build_model("dann_classifier", 3, 2, seed=0, layers=[3, 8, 2], dropout=0.0, domain_steps=20,
                        domain_lr=1e-2)
    rng = np.random.default_rng(1)
    domain = torch.from_numpy(np.r_[np.zeros(64), np.ones(64)].astype(np.float32))
    x = torch.from_numpy(rng.normal(size=(128, 3)).astype(np.float32)) + 2.0 * domain[:, None]
    extra = torch.stack([domain, torch.full((128,), float("nan"))], dim=1)
    model.train()
    model.event_losses(x, None, extra)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        loss_before = F.binary_cross_entropy_with_logits(model.domain_logits(x), domain).item()
    model.train_domain_head()
    for n, p in model.named_parameters():
        changed = not torch.equal(p.detach(), before[n])
        assert changed == n.startswith("domain_head."), n
        assert p.grad is None  # nothing left behind for the Trainer's optimiser
    with torch.no_grad():
        assert F.binary_cross_entropy_with_logits(model.domain_logits(x), domain).item() < loss_before - 0.05
    with pytest.raises(ConfigError, match="domain_steps"):
        build_model("dann_classifier", 3, 2, layers=[3, 8, 2], domain_steps=-1)
    with pytest.raises(ConfigError, match="domain_lr"):
        build_model("multimodal_dann", 87, 2, layout=model_layout(), domain_lr=0.0)


def test_dann_settings_are_checked():
    with pytest.raises(ConfigError, match="schedule"):
        build_model("dann_classifier", 4, 2, layers=[4, 8, 2], schedule="cosine")
    with pytest.raises(ConfigError, match="hidden layer"):
        build_model("dann_classifier", 4, 2, layers=[4, 2])
    with pytest.raises(ConfigError, match="lambda_max"):
        build_model("dann_classifier", 4, 2, layers=[4, 8, 2], lambda_max=-1)
    with pytest.raises(ConfigError, match="layout"):
        build_model("multimodal_dann", 87, 2)


def test_tracker_gnn_matches_an_explicit_loop():
    """Message passing against a per-node Python loop over the edge list (independent reference)."""
    src, dst, kind = tracker_graph()
    assert len(src) == 88 and int((kind == 1).sum()) == 32  # 56 along-track + 32 cross-track edges
    torch.manual_seed(0)
    gnn = TrackerGNN(node_features=2, hidden=6, rounds=2, out=5).eval()
    nodes = torch.randn(3, N_NODES, 2)
    available = (torch.rand(N_NODES, 2) > 0.2).float()
    with torch.no_grad():
        got = gnn(nodes, available)
        h = torch.relu(gnn.embed(torch.cat([nodes, available.expand(3, -1, -1)], -1)) + gnn.place)
        for r in range(2):
            agg = torch.zeros_like(h)
            for node in range(N_NODES):
                incoming = [e for e in range(len(dst)) if dst[e] == node]
                msgs = [torch.relu(gnn.receive[r](h[:, node]) + gnn.send[r](h[:, src[e]])
                                   + gnn.edge_bias[r][kind[e]]) for e in incoming]
                agg[:, node] = torch.stack(msgs).mean(dim=0)
            h = h + torch.relu(gnn.updates[r](torch.cat([h, agg], -1)))
        want = gnn.readout(torch.cat([h.mean(1), h.amax(1)], -1))
    torch.testing.assert_close(got, want)


def test_multimodal_attention_weights_and_layout():
    model = build_model("multimodal_dann", 87, 2, seed=1, layout=model_layout(), branch_dim=16, heads=2,
                        fused_dim=16, gnn_hidden=8, gnn_rounds=1)
    x = torch.randn(10, 87)
    w = model.branch_weights(x)
    assert w.shape == (10, 4)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(10))
    assert model(x).shape == (10, 2) and model.domain_logits(x).shape == (10,)
    bad = dict(model_layout(), tracker_slots=[0, 0, 1])
    with pytest.raises(ConfigError, match="distinct"):
        build_model("multimodal_classifier", 27, 2, layout=bad)


def _toy_frame(n_mc=2000, n_data=2000, seed=0) -> pd.DataFrame:
    """x0 separates the classes in both domains; x1 separates them too but is shifted by +1.5 in data."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_mc + n_data)
    domain = np.r_[np.zeros(n_mc), np.ones(n_data)]
    x0 = y * 1.5 + rng.normal(size=y.size)
    x1 = y * 1.5 + rng.normal(size=y.size) + 1.5 * domain
    x2 = rng.normal(size=y.size)
    label = np.where(y == 1, "signal", "background").astype(object)
    label[domain == 1] = None  # an analyst's data: no labels
    return pd.DataFrame({"x0": x0, "x1": x1, "x2": x2, "label": label,
                         "sample": np.where(domain == 1, "data", "MC"), "truth": y})


def _config(path, kind, **model):
    return {"data": {"source": str(path), "features": ["x0", "x1", "x2"], "label": "label", "domain": "sample",
                     "classes": ["background", "signal"], "split": {"validation": 0.2, "test": 0.3}},
            "model": {"kind": kind, **model},
            "train": {"epochs": 8, "batch_size": 256, "lr": 3e-3, "early_stopping": False}}


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dann")
    path = root / "toy.parquet"
    _toy_frame().to_parquet(path)
    store = RunStore(root / "runs")
    adversarial = train_from_config(_config(path, "dann_classifier", layers=[3, 16, 8, 2]), store)
    plain = train_from_config(_config(path, "dann_classifier", layers=[3, 16, 8, 2], lambda_max=0.0), store)
    return path, store, adversarial, plain


def _features(run, frame):
    model = run.model()
    x = run.preprocessor.transform(frame[["x0", "x1", "x2"]].to_numpy(np.float32))
    with torch.no_grad():
        return model.features(torch.from_numpy(x)).numpy()


def test_generic_domain_config_trains_and_saves(toy_runs):
    path, store, adversarial, _ = toy_runs
    scores = adversarial.scores
    assert set(scores["domain"]) == {"mc", "data"}
    assert scores.loc[scores["domain"] == "data", "label"].isna().all()
    assert scores.loc[scores["domain"] == "mc", "label"].notna().all()
    assert 0.0 <= adversarial.metrics["domain_accuracy"] <= 1.0
    hist = adversarial.history
    for col in ("lambda", "class_loss", "domain_accuracy", "val_domain_accuracy"):
        assert col in hist and hist[col].notna().all()
    assert hist["lambda"].is_monotonic_increasing and hist["lambda"].iloc[-1] > 0.99
    # the saved run rebuilds to the same predictions (safetensors weights, no pickles)
    reloaded = store.load(adversarial.id).model()
    x = adversarial.preprocessor.transform(pd.read_parquet(path)[["x0", "x1", "x2"]].to_numpy(np.float32))
    with torch.no_grad():
        p = torch.softmax(reloaded(torch.from_numpy(x)), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(p, scores["p_signal"].to_numpy(), atol=1e-5)


def test_adversary_makes_the_domains_harder_to_tell_apart(toy_runs):
    path, _, adversarial, plain = toy_runs
    frame = pd.read_parquet(path)
    is_data = (frame["sample"] == "data").to_numpy()
    acc = {}
    for name, run in (("adversarial", adversarial), ("plain", plain)):
        feats = _features(run, frame)
        acc[name] = domain_probe_accuracy(feats[~is_data], feats[is_data], seed=2, epochs=8)
    print(acc)
    assert acc["plain"] > 0.6  # x1's shift is visible in features learned without the adversary
    assert acc["adversarial"] < acc["plain"] - 0.04


def test_domain_path_errors(tmp_path):
    frame = _toy_frame(200, 100)
    path = tmp_path / "toy.parquet"
    frame.to_parquet(path)
    store = RunStore(tmp_path / "runs")
    cfg = _config(path, "dann_classifier")
    cfg["data"].pop("domain")
    with pytest.raises(ConfigError, match="data.domain"):
        train_from_config(cfg, store)
    frame.assign(sample=np.where(frame["sample"] == "data", "real", "MC")).to_parquet(path)
    with pytest.raises(DataError, match="'mc'.*'data'"):
        train_from_config(_config(path, "dann_classifier"), store)


def test_plain_classifier_with_domain_learns_from_mc_rows_only(tmp_path):
    path = tmp_path / "toy.parquet"
    _toy_frame(600, 400).to_parquet(path)
    cfg = _config(path, "mlp_classifier")
    cfg["train"]["epochs"] = 2
    run = train_from_config(cfg, RunStore(tmp_path / "runs"))
    assert run.metrics["n_train"] > 0 and "domain_accuracy" not in run.metrics
    assert run.scores.loc[run.scores["domain"] == "data", "label"].isna().all()


def test_label_shift_weights_each_mc_class_by_the_data_share_over_the_mc_share():
    from hepml_core.models._label_shift import ClassMixEstimate

    plain = build_model("dann_classifier", 3, 2, seed=0, layers=[3, 8, 2], dropout=0.0)
    shifted = build_model("dann_classifier", 3, 2, seed=0, layers=[3, 8, 2], dropout=0.0, label_shift=True)
    shifted.load_state_dict(plain.state_dict())
    # a settled estimate: a perfect classifier, MC 50/50, data 70/30 (momentum 1: batches do not move it)
    shifted._mix = ClassMixEstimate(2, momentum=1.0)
    shifted._mix._confusion, shifted._mix._mc_share = torch.eye(2), torch.tensor([0.5, 0.5])
    shifted._mix._data_mean = torch.tensor([0.7, 0.3])
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(8, 3)).astype(np.float32))
    domain = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1], dtype=torch.float32)
    label = torch.tensor([0, 0, 1, 1] + [float("nan")] * 4)
    extra = torch.stack([domain, label], dim=1)
    plain.train(), shifted.train()
    base, weighted = plain.event_losses(x, None, extra), shifted.event_losses(x, None, extra)
    with torch.no_grad():
        ce = F.cross_entropy(plain(x[:4]), label[:4].long(), reduction="none")
    dom_base, dom_weighted = base[:4] - ce, weighted[:4] - ce
    # class 0 is 70 % of data and 50 % of MC: weight 1.4; class 1: 0.6 (mean 1 over the MC rows)
    torch.testing.assert_close(dom_weighted / dom_base, torch.tensor([1.4, 1.4, 0.6, 0.6]), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(weighted[4:], base[4:])  # data rows unchanged
    assert shifted.pop_stats()["data_share_1"] == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="label_shift"):
        build_model("dann_classifier", 3, 2, layers=[3, 8, 2], label_shift="yes")
