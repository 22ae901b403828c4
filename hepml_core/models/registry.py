"""Build models by name: a registry from a config's ``kind`` string to an ``nn.Module`` class.

A config names a model (``kind: mlp_classifier``) and its settings (``layers: [37, 15, 10, 4]``);
:func:`build_model` checks both against what the model accepts and against the data it will see, so a
typo or a wrong layer width fails before training with a message that says what to write instead.
"""

from __future__ import annotations

import importlib
import pkgutil
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

from hepml_core.exceptions import ConfigError, closest_names

__all__ = [
    "model_class",
    "ACTIVATIONS",
    "activation_layer",
    "build_model",
    "model_kinds",
    "register",
    "validate_layers",
]

_M = TypeVar("_M", bound=type[nn.Module])

_REGISTRY: dict[str, type[nn.Module]] = {}

# Built-in models register themselves when their module is imported; every public module of this
# package is imported lazily here (not at the top: that would be the cycle model -> registry -> model),
# so a study adds a model by adding a file, without touching this one.
_PACKAGE = "hepml_core.models"

# "custom" models define event_losses(x, y, extra) for the Trainer (VAE, domain-adversarial, ...).
_TASKS = ("classifier", "autoencoder", "custom")

#: Activation names accepted by the built-in models, mapped to their ``torch.nn`` class.
ACTIVATIONS: Mapping[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def register(kind: str) -> Callable[[_M], _M]:
    """Class decorator that makes a model buildable as ``build_model(kind, ...)``.

    The class must define ``task`` ("classifier" or "autoencoder") and set ``self.hparams`` in its
    constructor. The decorator also sets ``cls.kind = kind`` so a run can record what to rebuild.

    Args:
        kind: the name used in configs, e.g. ``"mlp_classifier"``.

    Returns:
        The decorator, which returns the class unchanged apart from ``kind``.

    Raises:
        ConfigError: if ``kind`` is already taken by another class or ``task`` is missing/unknown.
    """

    def decorator(cls: _M) -> _M:
        task = getattr(cls, "task", None)
        if task not in _TASKS:
            raise ConfigError(
                f"model class {cls.__name__} registered as {kind!r} has task={task!r}; "
                f"set the class attribute task to one of {', '.join(map(repr, _TASKS))}"
            )
        existing = _REGISTRY.get(kind)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ConfigError(
                f"model kind {kind!r} is already registered by {existing.__module__}."
                f"{existing.__qualname__}; choose another name for {cls.__name__}"
            )
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return decorator


def _did_you_mean(name: str, candidates) -> str:
    close = closest_names(name, candidates) or [c for c in sorted(candidates) if name and name in c]
    return f"; did you mean {close[0]!r}?" if close else ""


def _load_builtins() -> None:
    package = importlib.import_module(_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"{_PACKAGE}.{info.name}")


def model_class(kind: str) -> type[nn.Module] | None:
    """The registered class of ``kind`` (None when no model has that kind)."""
    _load_builtins()
    return _REGISTRY.get(kind)


def model_kinds() -> list[str]:
    """Return the sorted names of every registered model kind (built-ins included)."""
    _load_builtins()
    return sorted(_REGISTRY)


def _constructor_params(cls: type[nn.Module]) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(cls.__init__)
    return {
        name: p
        for name, p in sig.parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _layer_mismatch(kind: str, layers: list[int], want: list[int], n_inputs: int, n_outputs: int,
                    task: str) -> ConfigError:
    what = []
    if layers[0] != want[0]:
        what.append(f"layers[0] is {layers[0]} but the data has {n_inputs} input features")
    if layers[-1] != want[-1]:
        if task == "autoencoder":
            what.append(f"layers[-1] is {layers[-1]} but an autoencoder must reproduce its "
                        f"{n_inputs} input features")
        else:
            what.append(f"layers[-1] is {layers[-1]} but the data has {n_outputs} classes")
    fixed = ", ".join(str(v) for v in want)
    return ConfigError(
        f"model {kind!r}: {'; '.join(what)}; write 'layers: [{fixed}]' in the model section of "
        f"the config (first = number of input features, last = "
        f"{'number of input features' if task == 'autoencoder' else 'number of classes'})"
    )


def build_model(kind: str, n_inputs: int, n_outputs: int, *, seed: int | None = None,
                **params: Any) -> nn.Module:
    """Build a registered model for data with ``n_inputs`` features and ``n_outputs`` outputs.

    If ``layers`` is not given, the model's default hidden layers are kept and its first/last widths
    are set from the data; if it is given, its ends must match the data.

    Args:
        kind: a registered kind (see :func:`model_kinds`), e.g. ``"mlp_classifier"``.
        n_inputs: number of input features of the data (after preprocessing).
        n_outputs: number of classes for a classifier; ignored for an autoencoder, whose output
            width is always ``n_inputs``.
        seed: if given, the initial weights are drawn from ``torch.manual_seed(seed)`` inside a
            forked RNG (repeatable, and the caller's random state is left alone); ``None`` draws
            them from torch's global generator.
        **params: constructor settings of the model (``layers``, ``dropout``, ``activation``...).

    Returns:
        The model, freshly initialised, on the CPU, in training mode.

    Raises:
        ConfigError: unknown kind or parameter (the message lists the accepted ones and the closest
            match), a bad parameter value, or ``layers`` that do not fit the data.
    """
    _load_builtins()
    cls = _REGISTRY.get(kind)
    if cls is None:
        hint = _did_you_mean(str(kind), _REGISTRY)
        raise ConfigError(
            f"unknown model kind {kind!r}{hint}; accepted kinds: {', '.join(sorted(_REGISTRY))}"
        )
    accepted = _constructor_params(cls)
    for name in params:
        if name not in accepted:
            hint = _did_you_mean(name, accepted)
            raise ConfigError(
                f"unknown parameter {name!r} for model {kind!r}{hint}; accepted parameters: "
                f"{', '.join(accepted)}"
            )
    for label, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"build_model({kind!r}): {label} must be a positive int, got {value!r}")

    if "layers" in accepted:
        out = n_inputs if cls.task == "autoencoder" else n_outputs
        if "layers" in params:
            layers = validate_layers(params["layers"], kind=kind)
            want = [n_inputs, *layers[1:-1], out]
            if layers != want:
                raise _layer_mismatch(kind, layers, want, n_inputs, n_outputs, cls.task)
        else:
            default = validate_layers(accepted["layers"].default, kind=kind)
            params["layers"] = [n_inputs, *default[1:-1], out]
    if seed is None:
        return cls(**params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**params)


def validate_layers(layers: Any, *, kind: str) -> list[int]:
    """Check a ``layers`` setting: a list of at least two positive ints.

    Args:
        layers: the value from the config.
        kind: the model kind, for the message.

    Returns:
        The widths as a list of Python ints.

    Raises:
        ConfigError: if it is not a sequence of >= 2 positive integers.
    """
    bad = ConfigError(
        f"model {kind!r}: layers must be a list of at least two positive integers "
        f"(input width, hidden widths..., output width), e.g. [37, 15, 10, 4]; got {layers!r}"
    )
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or len(layers) < 2:
        raise bad
    out = []
    for width in layers:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            # Accept integral numpy scalars and floats like 15.0 from YAML, nothing fractional.
            try:
                as_int = int(width)
            except (TypeError, ValueError):
                raise bad from None
            if isinstance(width, bool) or as_int != width or as_int < 1:
                raise bad
            width = as_int
        out.append(int(width))
    return out


def activation_layer(name: str, *, kind: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (see :data:`ACTIVATIONS`).

    Raises:
        ConfigError: if ``name`` is not a known activation.
    """
    cls = ACTIVATIONS.get(str(name).lower()) if isinstance(name, str) else None
    if cls is None:
        hint = _did_you_mean(str(name), ACTIVATIONS)
        raise ConfigError(
            f"model {kind!r}: unknown activation {name!r}{hint}; accepted: {', '.join(ACTIVATIONS)}"
        )
    return cls()
