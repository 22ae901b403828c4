"""Preprocessor: train-only statistics, NaN filling, indicators, JSON round trip, unfitted use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepml_core.data.preprocessing import Preprocessor
from hepml_core.exceptions import ConfigError, DataError, NotFittedError


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    train = rng.normal([5.0, -2.0, 100.0], [2.0, 0.5, 30.0], size=(500, 3))
    train[rng.random(500) < 0.2, 1] = np.nan  # feature 1 is sometimes undefined
    test = rng.normal([50.0, 3.0, 0.0], 1.0, size=(200, 3))  # very different: must not leak into fit
    return train, test


def test_statistics_come_from_training_events_only(data) -> None:
    train, test = data
    pre = Preprocessor().fit(train)
    np.testing.assert_allclose(pre.mean_[[0, 2]], train[:, [0, 2]].mean(axis=0))
    np.testing.assert_allclose(pre.fill_[1], np.nanmean(train[:, 1]))
    out = pre.transform(train)
    np.testing.assert_allclose(out[:, :3].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:, [0, 2]].std(axis=0), 1.0, atol=1e-5)
    assert abs(pre.transform(test)[:, 0].mean()) > 10  # the test set is far from the training mean


def test_nan_is_filled_and_indicated(data) -> None:
    train, _ = data
    pre = Preprocessor().fit(train)
    assert pre.indicator_columns_.tolist() == [1] and pre.n_outputs_ == 4
    x = np.array([[5.0, np.nan, 100.0], [np.nan, -2.0, 100.0]])
    out = pre.transform(x)
    assert out.dtype == np.float32 and out.shape == (2, 4) and np.isfinite(out).all()
    assert out[0, 1] == pytest.approx((pre.fill_[1] - pre.mean_[1]) / pre.scale_[1], abs=1e-6)
    assert out[:, 3].tolist() == [1.0, 0.0]  # indicator of feature 1
    # NaN in feature 0 (never missing in training): filled with its training mean, no indicator
    assert out[1, 0] == pytest.approx(0.0, abs=1e-6)


def test_minmax_and_weights() -> None:
    x = np.array([[0.0, 1.0], [10.0, 1.0], [5.0, 1.0]])
    out = Preprocessor("minmax").fit_transform(x)
    np.testing.assert_allclose(out[:, 0], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(out[:, 1], 0.0)  # a constant column is left unscaled, not divided by 0
    pre = Preprocessor().fit(np.array([[0.0], [10.0]]), sample_weight=np.array([3.0, 1.0]))
    assert pre.mean_[0] == pytest.approx(2.5)


def test_json_round_trip_gives_identical_output(data) -> None:
    train, test = data
    for method in ("standard", "minmax"):
        pre = Preprocessor(method).fit(train)
        back = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
        np.testing.assert_array_equal(back.transform(test), pre.transform(test))
        assert back.n_outputs_ == pre.n_outputs_
    with pytest.raises(ConfigError, match="lacks"):
        Preprocessor.from_dict({"format": 1, "method": "standard"})


def test_unfitted_use_says_what_to_call(data) -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(X\) first"):
        Preprocessor().transform(data[0])
    with pytest.raises(NotFittedError, match=r"call fit\(X\) first"):
        Preprocessor().to_dict()


def test_bad_inputs(data) -> None:
    train, _ = data
    with pytest.raises(ConfigError, match="method 'robust' is not accepted"):
        Preprocessor("robust").fit(train)
    with pytest.raises(DataError, match=r"NaN in feature columns \[1\]"):
        Preprocessor(impute_missing=False).fit(train)
    with pytest.raises(DataError, match=r"inf in feature columns \[0\]"):
        Preprocessor().fit(np.array([[np.inf, 1.0], [0.0, 1.0]]))
    with pytest.raises(DataError, match="fitted on 3"):
        Preprocessor().fit(train).transform(train[:, :2])
