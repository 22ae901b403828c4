"""Gradient reversal (Ganin et al., arXiv:1505.07818), its lambda schedule, and the domain-adversarial loss.

A domain-adversarial network is one feature extractor with two heads: the label classifier (trained on
labelled MC only) and a domain classifier (MC vs data) behind a gradient-reversal layer. The layer is
the identity going forward and multiplies the gradient by ``-lambda`` going back, so one minimisation
trains the domain head to tell the domains apart while pushing the features to make that impossible.
``lambda`` rises from 0 with the training progress p in [0, 1] as ``2 / (1 + exp(-gamma p)) - 1``
(the paper's schedule, gamma = 10), so the classifier first learns something worth protecting. MC and
data weigh the same in the domain loss and in the reported domain accuracy (0.5 = chance whatever the
mix); optionally the head gets extra updates of its own after every batch (``domain_steps``), which keeps
it close to the best MC-vs-data classifier of the current features, and (``label_shift``) each MC class
is weighted in the domain loss by the data's estimated share of it over its MC share
(``_label_shift.ClassMixEstimate``), so that a different class mix in data is not "adapted" away.

:class:`DomainAdversarialMixin` gives a model with ``features(x)``, ``classifier`` and ``domain_head``
the Trainer's ``task = "custom"`` interface; :class:`LambdaSchedule` is the Trainer callback that moves
lambda and adds each epoch's head diagnostics to the Trainer history.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from hepml_core.exceptions import ConfigError
from hepml_core.models._label_shift import ClassMixEstimate

__all__ = ["grad_reverse", "lambda_at", "SCHEDULES", "DomainAdversarialMixin", "LambdaSchedule",
           "check_adversarial_settings"]

SCHEDULES = ("ganin", "linear", "constant")
_LN2 = math.log(2.0)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lambda_ * grad, None


def grad_reverse(x: torch.Tensor, lambda_: float) -> torch.Tensor:
    """Identity in the forward pass; the gradient is multiplied by ``-lambda_`` in the backward pass."""
    return _GradReverse.apply(x, float(lambda_))


def lambda_at(progress: float, *, lambda_max: float = 1.0, gamma: float = 10.0, schedule: str = "ganin") -> float:
    """The reversal strength at training progress ``progress`` in [0, 1].

    Args:
        progress: share of the planned optimiser steps done.
        lambda_max: the value reached at the end of training.
        gamma: steepness of the "ganin" schedule (the paper: 10).
        schedule: "ganin" (``2/(1+exp(-gamma p)) - 1``), "linear" (``p``) or "constant" (1).

    Returns:
        ``lambda_max`` times the schedule's value.
    """
    p = min(max(float(progress), 0.0), 1.0)
    if schedule == "ganin":
        shape = 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
    elif schedule == "linear":
        shape = p
    else:
        shape = 1.0
    return float(lambda_max) * shape


def check_adversarial_settings(kind: str, lambda_max, gamma, schedule, domain_weight, domain_steps=0,
                               domain_lr=1e-3, label_shift=False) -> None:
    """Raise a ConfigError naming the bad setting of a domain-adversarial model."""
    if not isinstance(label_shift, bool):
        raise ConfigError(f"model {kind!r}: label_shift must be true or false (weight the MC classes in the "
                          f"domain loss by the data's estimated class mix), got {label_shift!r}")
    if isinstance(domain_steps, bool) or not isinstance(domain_steps, int) or domain_steps < 0:
        raise ConfigError(f"model {kind!r}: domain_steps must be an int >= 0 (extra domain-head updates per "
                          f"batch), got {domain_steps!r}")
    if (isinstance(domain_lr, bool) or not isinstance(domain_lr, (int, float)) or not domain_lr > 0
            or math.isinf(domain_lr)):
        raise ConfigError(f"model {kind!r}: domain_lr must be a finite number > 0, got {domain_lr!r}")
    for name, value in (("lambda_max", lambda_max), ("gamma", gamma), ("domain_weight", domain_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
            raise ConfigError(f"model {kind!r}: {name} must be a finite number >= 0, got {value!r}")
    if schedule not in SCHEDULES:
        raise ConfigError(f"model {kind!r}: schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")


class DomainAdversarialMixin:
    """Loss, lambda and diagnostics shared by the domain-adversarial models.

    The host ``nn.Module`` defines ``features(x)``, ``classifier`` (features -> class logits) and
    ``domain_head`` (features -> one logit, > 0 = data), and sets ``lambda_max``, ``gamma``,
    ``schedule`` and ``domain_weight``. ``extra`` targets per event: column 0 the domain (0 = MC,
    1 = data), column 1 the class code (NaN where unknown, i.e. for data).
    """

    task = "custom"
    uses_domain = True  # the pipeline feeds (domain, label) as extra targets and keeps unlabelled rows

    def _init_adversarial(self, domain_steps: int = 0, domain_lr: float = 1e-3, *, label_shift: bool = False,
                          n_classes: int = 2) -> None:
        self.lambda_ = 0.0
        self.label_shift = bool(label_shift)
        self._mix = ClassMixEstimate(n_classes) if self.label_shift else None
        self._stats: dict[str, torch.Tensor] = {}
        self.domain_steps, self.domain_lr = int(domain_steps), float(domain_lr)
        self._head_batch: tuple[torch.Tensor, ...] | None = None
        self._head_optimizer: torch.optim.Optimizer | None = None

    def train_domain_head(self) -> None:
        """``domain_steps`` extra updates of the domain head alone on the last training batch's features.

        The adversary is only useful while its head is close to the best MC-vs-data classifier of the
        current features: a head that lags behind is fooled by features that still carry the domain (a
        fresh probe then finds it). These updates (their own Adam, ``domain_lr``) keep the head caught
        up; the features are detached, so only the head learns from them. Called by
        :class:`LambdaSchedule` after every optimiser step of the Trainer.
        """
        if not self.domain_steps or self._head_batch is None:
            return
        feats, domain, balance = self._head_batch
        self._head_batch = None
        if self._head_optimizer is None:
            self._head_optimizer = torch.optim.Adam(self.domain_head.parameters(), lr=self.domain_lr)
        with torch.enable_grad():
            for _ in range(self.domain_steps):
                logits = self.domain_head(feats).squeeze(-1)
                loss = (balance * F.binary_cross_entropy_with_logits(logits, domain, reduction="none")).mean()
                self._head_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self._head_optimizer.step()
        # The Trainer clears gradients before its next backward pass; clear the head's now so that
        # nothing of these steps can leak into it.
        self._head_optimizer.zero_grad(set_to_none=True)

    def set_progress(self, progress: float) -> None:
        """Set lambda for training progress ``progress`` in [0, 1] (called by :class:`LambdaSchedule`)."""
        self.lambda_ = lambda_at(progress, lambda_max=self.lambda_max, gamma=self.gamma, schedule=self.schedule)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, n_classes)``."""
        return self.classifier(self.features(x))

    def domain_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Domain head output ``(n,)``: > 0 means "looks like data"."""
        return self.domain_head(self.features(x)).squeeze(-1)

    @torch.no_grad()
    def domain_accuracy(self, x: np.ndarray, domain: np.ndarray, sample_weight: np.ndarray | None = None, *,
                        balanced: bool = True, batch_size: int = 65536) -> float:
        """Weighted accuracy of the domain head on preprocessed inputs (0.5 = the domains look alike).

        Args:
            x: (n, n_inputs) preprocessed features.
            domain: (n,) 0 for MC, 1 for data.
            sample_weight: per-event weights (default: ones).
            balanced: rescale the weights so that MC and data weigh the same; otherwise a head that
                always answers the larger domain would score its share (e.g. 0.56) instead of 0.5.
            batch_size: events per forward pass.

        Returns:
            The weighted share of events whose domain the head gets right (NaN without events).
        """
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            logits = [self.domain_logits(torch.from_numpy(np.ascontiguousarray(x[s:s + batch_size],
                                                                                dtype=np.float32)).to(device)).cpu()
                      for s in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        if not logits:
            return float("nan")
        is_data = np.asarray(domain).astype(np.int64)
        correct = (torch.cat(logits).numpy() > 0).astype(np.int64) == is_data
        w = np.ones(len(correct)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if balanced:
            w = w.copy()
            for d in (0, 1):
                total = w[is_data == d].sum()
                if total > 0:
                    w[is_data == d] /= total
        return float(np.sum(w * correct) / np.sum(w)) if np.sum(w) > 0 else float("nan")

    def event_losses(self, x: torch.Tensor, y: torch.Tensor | None, extra: torch.Tensor) -> torch.Tensor:
        """Per-event loss: cross entropy where the class is known + domain_weight x domain BCE.

        In eval mode (the Trainer's validation) the domain term is reversed instead, see below.
        """
        feats = self.features(x)
        logits = self.classifier(feats)
        dom = self.domain_head(grad_reverse(feats, self.lambda_)).squeeze(-1)
        domain = extra[:, 0]
        label = extra[:, 1]
        known = ~torch.isnan(label)
        codes = torch.nan_to_num(label, nan=0.0).long()
        ce = F.cross_entropy(logits, codes, reduction="none")
        class_loss = torch.where(known, ce, torch.zeros_like(ce))
        # Each domain carries half of the domain loss whatever the MC/data mix of the batch, so the head
        # cannot win by leaning towards the larger sample and the reversed gradient pulls both ways alike.
        is_data = domain > 0.5
        n_data = is_data.sum()
        n_mc = domain.numel() - n_data
        balance = torch.where(is_data, domain.numel() / (2.0 * n_data.clamp_min(1)),
                              domain.numel() / (2.0 * n_mc.clamp_min(1)))
        if self._mix is not None and self.training:
            # MC classes weighted to the data's estimated mix (their mean over the batch's MC rows stays 1,
            # so MC still carries half of the domain loss).
            self._mix.update(logits, codes, known, is_data)
            w = self._mix.mc_weights(codes)
            is_mc = ~is_data
            mean_w = (w * is_mc).sum() / is_mc.sum().clamp_min(1)
            balance = balance * torch.where(is_mc, w / mean_w.clamp_min(1e-6), torch.ones_like(w))
        domain_loss = balance * F.binary_cross_entropy_with_logits(dom, domain, reduction="none")
        self._accumulate("train" if self.training else "val", class_loss, known, domain_loss,
                         (dom > 0) == is_data, is_data)
        if self.training:
            if self.domain_steps:
                self._head_batch = (feats.detach(), domain, balance.detach())
            return class_loss + self.domain_weight * domain_loss
        # Validation (model selection) asks for a good classifier whose features hide the domain: the
        # class loss plus lambda_max x domain_weight x (ln 2 - H(p_domain)), H the binary entropy of the
        # domain head's output. The penalty is 0 only where the head is unsure (p = 0.5); a head that is
        # confidently wrong (features that flip the domains instead of merging them) is penalised too,
        # unlike with the training objective L_y - lambda L_d.
        p = torch.sigmoid(dom)
        entropy = -(p * torch.log(p.clamp_min(1e-7)) + (1 - p) * torch.log((1 - p).clamp_min(1e-7)))
        return class_loss + self.lambda_max * self.domain_weight * (_LN2 - entropy)

    def _accumulate(self, part: str, class_loss, known, domain_loss, correct, is_data) -> None:
        # Device-side sums read once per epoch by LambdaSchedule: no per-batch host sync.
        correct, is_data = correct.float(), is_data.float()
        vals = torch.stack([class_loss.detach().sum(), known.sum().float(), domain_loss.detach().sum(),
                            (correct * (1 - is_data)).sum(), (1 - is_data).sum(), (correct * is_data).sum(),
                            is_data.sum()])
        prev = self._stats.get(part)
        self._stats[part] = vals if prev is None else prev + vals

    def pop_stats(self) -> dict[str, float]:
        """Head diagnostics since the last call: class loss, domain loss and balanced domain accuracy per part.

        The accuracy is the mean of the MC and the data accuracies, so 0.5 means "no better than a coin"
        whatever the MC/data mix.
        """
        out: dict[str, float] = {}
        for part, vals in self._stats.items():
            cl, nk, dl, c_mc, n_mc, c_data, n_data = vals.tolist()
            n = n_mc + n_data
            prefix = "" if part == "train" else "val_"
            out[f"{prefix}class_loss"] = cl / nk if nk else float("nan")
            out[f"{prefix}domain_loss"] = dl / n if n else float("nan")
            out[f"{prefix}domain_accuracy"] = (0.5 * (c_mc / n_mc + c_data / n_data) if n_mc and n_data
                                               else (c_mc + c_data) / n if n else float("nan"))
        self._stats = {}
        shares = self._mix.data_shares() if self._mix is not None else None
        if shares is not None:  # the running estimate of the data's class mix (the MC weights follow it)
            out.update({f"data_share_{k}": float(v) for k, v in enumerate(shares.tolist())})
        return out

    def training_callbacks(self) -> list:
        """Callbacks the Trainer must run for this model (the pipeline adds them first)."""
        return [LambdaSchedule(self)]


class LambdaSchedule:
    """Trainer callback: move the model's lambda every batch; log head diagnostics every epoch.

    The epoch row of the Trainer history gains ``lambda`` (value at the end of the epoch),
    ``class_loss``, ``domain_loss``, ``domain_accuracy`` (training batches) and the ``val_`` versions
    (validation set). Put it before other callbacks so that they see the extended row.

    Args:
        model: a :class:`DomainAdversarialMixin` model.
    """

    def __init__(self, model: DomainAdversarialMixin):
        self.model = model

    def _progress(self, state) -> float:
        total = max(state.n_epochs * max(state.n_batches, 1), 1)
        return ((state.epoch - 1) * state.n_batches + state.batch) / total

    def on_fit_start(self, state) -> None:
        self.model.set_progress(0.0)
        self.model.pop_stats()
        self.model._head_batch, self.model._head_optimizer = None, None  # a new fit starts a fresh head optimiser
        if self.model._mix is not None:
            self.model._mix.reset()

    def on_batch_end(self, state) -> None:
        self.model.train_domain_head()
        self.model.set_progress(self._progress(state))

    def on_epoch_end(self, state) -> None:
        row = state.history[-1]
        row["lambda"] = float(self.model.lambda_)
        row.update(self.model.pop_stats())

