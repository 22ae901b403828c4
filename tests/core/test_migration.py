"""Migration matrices against sklearn's confusion_matrix and brute-force sums."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from hepml_core.exceptions import DataError
from hepml_core.metrics.migration import (
    migration_matrix,
    migration_uncertainty,
    normalise_columns,
    normalise_rows,
)


def _codes(seed, n=1000, k=4):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, n))
    w = rng.normal(1.0, 0.5, n)  # some negative weights, as from NLO generators
    return y_true, y_pred, w


@pytest.mark.parametrize("weighted", [False, True])
def test_matches_sklearn_confusion_matrix(weighted):
    y_true, y_pred, w = _codes(1)
    w = w if weighted else None
    ours = migration_matrix(y_true, y_pred, 4, sample_weight=w)
    ref = confusion_matrix(y_true, y_pred, labels=range(4), sample_weight=w)
    assert ours.shape == (4, 4) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_rows_are_true_class_and_absent_classes_are_zero():
    m = migration_matrix([0, 0, 1], [1, 1, 1], 3, sample_weight=[2.0, 0.5, 1.0])
    np.testing.assert_array_equal(m, [[0, 2.5, 0], [0, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("weighted", [False, True])
def test_uncertainty_is_sqrt_of_sum_of_squared_weights(weighted):
    y_true, y_pred, w = _codes(2)
    w = w if weighted else np.ones_like(w)
    ours = migration_uncertainty(y_true, y_pred, 4, sample_weight=w if weighted else None)
    expected = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            cell = (y_true == i) & (y_pred == j)
            expected[i, j] = np.sqrt((w[cell] ** 2).sum())
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_normalise_rows_and_columns():
    m = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 2.0]])
    rows = normalise_rows(m)
    np.testing.assert_allclose(rows, [[0.75, 0.25, 0], [0, 0, 0], [0.25, 0.25, 0.5]])
    cols = normalise_columns(m)
    np.testing.assert_allclose(cols, [[0.75, 0.5, 0], [0, 0, 0], [0.25, 0.5, 1.0]])
    assert not np.isnan(rows).any() and not np.isnan(cols).any()
    np.testing.assert_allclose(normalise_rows(m).sum(axis=1), [1, 0, 1])


def test_errors():
    with pytest.raises(DataError, match="codes from 0 to 3"):
        migration_matrix([0, 3], [0, 1], 3)
    with pytest.raises(DataError, match="y_pred .* 1 entries but y_true has 2"):
        migration_matrix([0, 1], [0], 2)
    with pytest.raises(DataError, match="sample_weight .* 1 entries"):
        migration_matrix([0, 1], [0, 1], 2, sample_weight=[1.0])
    with pytest.raises(DataError, match="integer class codes"):
        migration_matrix([0.5, 1.0], [0, 1], 2)
    with pytest.raises(DataError, match="n_classes"):
        migration_matrix([0, 1], [0, 1], 0)
    with pytest.raises(DataError, match="rows \\[0\\]"):
        normalise_rows(np.array([[-2.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(DataError, match="2-D"):
        normalise_columns(np.ones(3))


def test_an_empty_selection_gives_zero_matrices():
    keep = np.zeros(5, dtype=bool)
    y, w = np.arange(5) % 2, np.ones(5)
    np.testing.assert_array_equal(migration_matrix(y[keep], y[keep], 2, sample_weight=w[keep]), 0.0)
    np.testing.assert_array_equal(migration_uncertainty([], [], 2), 0.0)
