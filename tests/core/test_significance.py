"""Significance formulas against hand-computed values."""

import math

import numpy as np
import pytest

from hepml_core.exceptions import DataError
from hepml_core.metrics.significance import ams, asimov_significance, s_over_sqrt_b


def test_asimov_against_hand_computation_and_small_signal_limit():
    s, b = 10.0, 100.0
    expected = math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s))
    assert asimov_significance(s, b) == pytest.approx(expected)
    # For s << b the Asimov Z tends to s / sqrt(b).
    assert asimov_significance(0.01, 1e4) == pytest.approx(s_over_sqrt_b(0.01, 1e4), rel=1e-4)


def test_ams_is_the_challenge_formula_with_b_reg_10():
    s, b = 300.0, 4000.0
    expected = math.sqrt(2 * ((s + b + 10) * math.log(1 + s / (b + 10)) - s))
    assert ams(s, b) == pytest.approx(expected)
    assert ams(s, b, b_reg=0) == pytest.approx(asimov_significance(s, b))


def test_zero_background_and_vectors():
    z = asimov_significance(np.array([0.0, 1.0, 5.0]), np.array([1.0, 0.0, 4.0]))
    assert z[0] == 0 and z[1] == 0 and z[2] > 0
    with pytest.raises(DataError):
        s_over_sqrt_b(-1, 2)
