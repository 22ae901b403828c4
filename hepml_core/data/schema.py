"""Schema: which columns of an event table are features, label, weight, domain and parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from hepml_core.exceptions import ConfigError

__all__ = ["Schema"]


def _names(value: Any, what: str) -> tuple[str, ...]:
    # A bare string would otherwise become a tuple of its characters.
    if isinstance(value, str):
        raise ConfigError(
            f"{what} must be a list of column names, got the string {value!r}; write [{value!r}]"
        )
    try:
        return tuple(str(v) for v in value)
    except TypeError:
        raise ConfigError(f"{what} must be a list of column names, got {type(value).__name__}") from None


@dataclass(frozen=True)
class Schema:
    """The roles of an event table's columns.

    Attributes:
        features: model inputs, in order.
        label: the truth column (class names or integer codes), None for unlabelled data.
        classes: class names in code order; None derives them from the label values.
        weight: per-event weight column, None for unit weights.
        domain: column telling MC from data (or other domains), if any.
        parameters: physics parameters carried along (mass hypothesis, channel...), not features.
        groups: modality name -> the features it holds (tracker hits, calorimeter image...).
        missing_value: sentinel that marks an undefined feature (e.g. -999.0); becomes NaN on load.
    """

    features: tuple[str, ...]
    label: str | None = None
    classes: tuple[str, ...] | None = None
    weight: str | None = None
    domain: str | None = None
    parameters: tuple[str, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    missing_value: float | None = None

    def __post_init__(self) -> None:
        # frozen: normalise through object.__setattr__ so lists from YAML/JSON become tuples.
        set_ = object.__setattr__
        set_(self, "features", _names(self.features, "features"))
        set_(self, "parameters", _names(self.parameters, "parameters"))
        if self.classes is not None:
            set_(self, "classes", _names(self.classes, "classes"))
            if len(set(self.classes)) != len(self.classes):
                raise ConfigError(f"classes {list(self.classes)} repeat a name; each class once")
        groups = {str(k): _names(v, f"group {k!r}") for k, v in dict(self.groups or {}).items()}
        set_(self, "groups", groups)
        if self.missing_value is not None:
            set_(self, "missing_value", float(self.missing_value))
            if math.isnan(self.missing_value):
                raise ConfigError("missing_value cannot be NaN (NaN already means missing); use None")
        dup = sorted({f for f in self.features if self.features.count(f) > 1})
        if dup:
            raise ConfigError(f"features list {dup} more than once; list each feature once")
        if self.label is not None and self.label in self.features:
            raise ConfigError(f"label column {self.label!r} is also a feature; remove it from features")
        for name, members in groups.items():
            stray = [m for m in members if m not in self.features]
            if stray:
                raise ConfigError(
                    f"group {name!r} lists {stray}, which are not features; add them to features"
                )

    def __hash__(self) -> int:  # groups is a dict, so the generated hash would fail
        return hash((self.features, self.label, self.classes, self.weight, self.domain,
                     self.parameters, tuple(sorted(self.groups.items())), self.missing_value))  # fmt: skip

    def columns(self) -> list[str]:
        """Every column the schema names (features, label, weight, domain, parameters), each once.

        Returns:
            Column names in that order.
        """
        named = [*self.features, self.label, self.weight, self.domain, *self.parameters]
        out: list[str] = []
        for name in named:
            if name is not None and name not in out:
                out.append(name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (lists, strings, numbers) that :meth:`from_dict` turns back into a Schema."""
        return {
            "features": list(self.features),
            "label": self.label,
            "classes": None if self.classes is None else list(self.classes),
            "weight": self.weight,
            "domain": self.domain,
            "parameters": list(self.parameters),
            "groups": {k: list(v) for k, v in self.groups.items()},
            "missing_value": self.missing_value,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """Build a Schema from :meth:`to_dict` output or a config section.

        Args:
            d: mapping with at least ``features``; other keys as the dataclass fields.

        Returns:
            The Schema.

        Raises:
            ConfigError: an unknown key, no ``features``, or inconsistent roles.
        """
        accepted = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in accepted]
        if unknown:
            raise ConfigError(f"unknown schema key {unknown[0]!r}; accepted keys: {', '.join(accepted)}")
        if "features" not in d:
            raise ConfigError("schema needs 'features': the list of input columns")
        return cls(**dict(d))
