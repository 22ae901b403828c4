"""Gradient reversal (Ganin et al., arXiv:1505.07818), its lambda schedule, and the domain-adversarial loss.

A domain-adversarial network is one feature extractor with two heads: the label classifier (trained on
labelled MC only) and a domain classifier (MC vs data) behind a gradient-reversal layer. The layer is
the identity going forward and multiplies the gradient by ``-lambda`` going back, so one minimisation
trains the domain head to tell the domains apart while pushing the features to make that impossible.
``lambda`` rises from 0 with the training progress p in [0, 1] as ``2 / (1 + exp(-gamma p)) - 1``
(the paper's schedule, gamma = 10), so the classifier first learns something worth protecting.

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


def check_adversarial_settings(kind: str, lambda_max, gamma, schedule, domain_weight) -> None:
    """Raise a ConfigError naming the bad setting of a domain-adversarial model."""
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

    def _init_adversarial(self) -> None:
        self.lambda_ = 0.0
        self._stats: dict[str, torch.Tensor] = {}

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
                        batch_size: int = 65536) -> float:
        """Weighted accuracy of the domain head on preprocessed inputs (0.5 = the domains look alike).

        Args:
            x: (n, n_inputs) preprocessed features.
            domain: (n,) 0 for MC, 1 for data.
            sample_weight: per-event weights (default: ones).
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
        correct = (torch.cat(logits).numpy() > 0).astype(np.int64) == np.asarray(domain).astype(np.int64)
        w = np.ones(len(correct)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
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
        domain_loss = F.binary_cross_entropy_with_logits(dom, domain, reduction="none")
        self._accumulate("train" if self.training else "val", class_loss, known, domain_loss,
                         (dom > 0).float() == domain)
        if self.training:
            return class_loss + self.domain_weight * domain_loss
        # Validation (model selection) asks for a good classifier whose features hide the domain: the
        # class loss plus lambda_max x domain_weight x (ln 2 - H(p_domain)), H the binary entropy of the
        # domain head's output. The penalty is 0 only where the head is unsure (p = 0.5); a head that is
        # confidently wrong (features that flip the domains instead of merging them) is penalised too,
        # unlike with the training objective L_y - lambda L_d.
        p = torch.sigmoid(dom)
        entropy = -(p * torch.log(p.clamp_min(1e-7)) + (1 - p) * torch.log((1 - p).clamp_min(1e-7)))
        return class_loss + self.lambda_max * self.domain_weight * (_LN2 - entropy)

    def _accumulate(self, part: str, class_loss, known, domain_loss, correct) -> None:
        # Device-side sums read once per epoch by LambdaSchedule: no per-batch host sync.
        vals = torch.stack([class_loss.detach().sum(), known.sum().float(), domain_loss.detach().sum(),
                            correct.sum().float(), torch.tensor(float(correct.numel()), device=correct.device)])
        prev = self._stats.get(part)
        self._stats[part] = vals if prev is None else prev + vals

    def pop_stats(self) -> dict[str, float]:
        """Head diagnostics since the last call: class loss, domain loss and domain accuracy per part."""
        out: dict[str, float] = {}
        for part, vals in self._stats.items():
            cl, nk, dl, corr, n = vals.tolist()
            prefix = "" if part == "train" else "val_"
            out[f"{prefix}class_loss"] = cl / nk if nk else float("nan")
            out[f"{prefix}domain_loss"] = dl / n if n else float("nan")
            out[f"{prefix}domain_accuracy"] = corr / n if n else float("nan")
        self._stats = {}
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

    def on_batch_end(self, state) -> None:
        self.model.set_progress(self._progress(state))

    def on_epoch_end(self, state) -> None:
        row = state.history[-1]
        row["lambda"] = float(self.model.lambda_)
        row.update(self.model.pop_stats())

