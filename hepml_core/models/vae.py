"""Variational autoencoder with a Gaussian decoder of learned variance (seed talk 004's VAE).

Encoder -> (mu, log sigma^2) of a small latent space; decoder -> (mu_D, log sigma_D^2) per input.
Per event, the loss is -ELBO = -log N(x | mu_D, sigma_D^2) + beta * KL(q(z|x) || N(0, 1)), summed over
inputs and latent dimensions (the talk's ELBO with a beta weight on the KL term).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from hepml_core.exceptions import ConfigError
from hepml_core.models.registry import activation_layer, register, validate_layers

__all__ = ["VAE"]

_LOG_2PI = math.log(2 * math.pi)


def _mlp(widths: Sequence[int], activation: str) -> nn.Sequential:
    modules: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        modules += [nn.Linear(n_in, n_out), activation_layer(activation, kind="vae")]
    return nn.Sequential(*modules)


@register("vae")
class VAE(nn.Module):
    """Dense VAE; ``task = "custom"``: the Trainer minimises :meth:`event_losses` (per-event -ELBO).

    Args:
        layers: encoder widths from the inputs to the latent dimension, e.g. ``(93, 64, 32, 4)``; the
            decoder mirrors them. ``build_model("vae", n_inputs, latent_dim)`` checks both ends.
        beta: weight of the KL term.
        activation: hidden activation name.
        logvar_min: lower bound of the decoder's log-variance (inputs that are almost constant would
            otherwise drive the variance, and -ELBO, to -inf).
        logvar_max: upper bound of the decoder's log-variance.

    Raises:
        ConfigError: fewer than 2 layers, beta < 0, or logvar_min >= logvar_max.
    """

    task = "custom"
    kind: str  # set by @register

    def __init__(self, layers: Sequence[int] = (93, 64, 32, 4), beta: float = 1.0, activation: str = "relu",
                 logvar_min: float = -6.0, logvar_max: float = 4.0) -> None:
        super().__init__()
        widths = validate_layers(layers, kind="vae")
        if len(widths) < 2:
            raise ConfigError(f"model 'vae': layers needs at least [n_inputs, latent_dim], got {widths}")
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise ConfigError(f"model 'vae': beta must be a number >= 0, got {beta!r}")
        if not logvar_min < logvar_max:
            raise ConfigError(f"model 'vae': need logvar_min < logvar_max, got {logvar_min} >= {logvar_max}")
        hidden = widths[1:-1]
        latent = widths[-1]
        self.encoder = _mlp(widths[:-1], activation)
        last_enc = widths[-2]
        self.enc_mu = nn.Linear(last_enc, latent)
        self.enc_logvar = nn.Linear(last_enc, latent)
        dec_widths = [latent, *reversed(hidden)]
        self.decoder = _mlp(dec_widths, activation)
        self.dec_mu = nn.Linear(dec_widths[-1], widths[0])
        self.dec_logvar = nn.Linear(dec_widths[-1], widths[0])
        self.beta = float(beta)
        self.logvar_min, self.logvar_max = float(logvar_min), float(logvar_max)
        self.hparams = {"layers": widths, "beta": float(beta), "activation": str(activation),
                        "logvar_min": float(logvar_min), "logvar_max": float(logvar_max)}
        self.n_inputs = widths[0]
        self.n_outputs = latent

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance of q(z|x), each ``(n, latent_dim)``."""
        h = self.encoder(x)
        return self.enc_mu(h), self.enc_logvar(h).clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder mean and (bounded) log-variance of p(x|z), each ``(n, n_inputs)``."""
        h = self.decoder(z)
        span = self.logvar_max - self.logvar_min
        return self.dec_mu(h), self.logvar_min + span * torch.sigmoid(self.dec_logvar(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The latent mean of each event (what latent-space plots show)."""
        return self.encode(x)[0]

    def _terms(self, x: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        mu_d, logvar_d = self.decode(z)
        nll = 0.5 * (_LOG_2PI + logvar_d + (x - mu_d) ** 2 * torch.exp(-logvar_d)).sum(dim=1)
        kl = -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=1)
        return nll, kl

    def event_losses(self, x: torch.Tensor, y: torch.Tensor | None = None, extra: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """Per-event -ELBO with one reparameterised latent draw (``y`` and ``extra`` are unused)."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        nll, kl = self._terms(x, z, mu, logvar)
        return nll + self.beta * kl

    def neg_elbo(self, x: torch.Tensor, n_samples: int = 0, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Per-event -ELBO for scoring.

        Args:
            x: preprocessed inputs ``(n, n_inputs)``.
            n_samples: 0 evaluates the reconstruction term at the latent mean (deterministic, what the
                study's TS uses); k > 0 averages k reparameterised draws (an unbiased estimate).
            generator: torch Generator for the draws.

        Returns:
            ``(n,)`` tensor of -ELBO values (nats).
        """
        mu, logvar = self.encode(x)
        if n_samples <= 0:
            nll, kl = self._terms(x, mu, mu, logvar)
            return nll + self.beta * kl
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for _ in range(n_samples):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            nll, kl = self._terms(x, mu + torch.exp(0.5 * logvar) * eps, mu, logvar)
            total += nll + self.beta * kl
        return total / n_samples

    def posterior_predictive(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw x' ~ p(x | z), z ~ q(z | x) per event (for posterior predictive checks)."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        mu_d, logvar_d = self.decode(z)
        return mu_d + torch.exp(0.5 * logvar_d) * torch.randn(mu_d.shape, generator=generator, device=mu_d.device,
                                                        dtype=mu_d.dtype)

    def extra_repr(self) -> str:
        return f"kind='vae', hparams={self.hparams}"
