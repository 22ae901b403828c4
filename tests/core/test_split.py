"""split_indices: deterministic, disjoint, covering, with the asked fractions, per class when stratified."""

from __future__ import annotations

import numpy as np
import pytest

from hepml_core.data.split import split_indices
from hepml_core.exceptions import ConfigError, DataError


def test_same_seed_same_split_other_seed_other_split() -> None:
    a, b = split_indices(1000, seed=7), split_indices(1000, seed=7)
    for part in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.test, split_indices(1000, seed=8).test)


def test_disjoint_sorted_and_covering() -> None:
    s = split_indices(1001, validation=0.2, test=0.3, seed=3)
    parts = [s.train, s.validation, s.test]
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(1001))
    with pytest.raises(ValueError):
        s.train[0] = 5  # read-only: a split saved with a run is not edited in place


@pytest.mark.parametrize(("n", "val", "test"), [(1000, 0.25, 0.25), (999, 0.1, 0.3), (10, 0.0, 0.5)])
def test_fractions(n: int, val: float, test: float) -> None:
    s = split_indices(n, validation=val, test=test)
    assert len(s.test) == int(np.floor(n * test + 0.5))
    assert len(s.validation) == int(np.floor(n * val + 0.5))
    assert len(s.train) == n - len(s.test) - len(s.validation)


def test_stratified_keeps_class_fractions() -> None:
    rng = np.random.default_rng(0)
    y = np.where(rng.random(2000) < 0.05, "signal", "background")  # rare class
    s = split_indices(len(y), validation=0.2, test=0.2, seed=1, stratify=y)
    for cls in ("signal", "background"):
        n_cls = (y == cls).sum()
        for part, frac in ((s.test, 0.2), (s.validation, 0.2)):
            assert abs((y[part] == cls).sum() - n_cls * frac) <= 0.5
    again = split_indices(len(y), validation=0.2, test=0.2, seed=1, stratify=y)
    np.testing.assert_array_equal(again.test, s.test)  # deterministic when stratified too


def test_generator_seed_and_bad_settings() -> None:
    s = split_indices(50, seed=np.random.default_rng(4))
    assert sum(s.sizes().values()) == 50
    assert split_indices(0).sizes() == {"train": 0, "validation": 0, "test": 0}
    with pytest.raises(ConfigError, match="leaves no training events"):
        split_indices(10, validation=0.5, test=0.5)
    with pytest.raises(ConfigError, match="test fraction"):
        split_indices(10, test=-0.1)
    with pytest.raises(DataError, match=r"stratify has shape \(3,\) but there are 10 events"):
        split_indices(10, stratify=[0, 1, 0])
