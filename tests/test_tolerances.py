"""tests/_checks.xp_assert_close: the cross-backend tolerance is as tight as its dtype allows."""

import numpy as np
import pytest
from _checks import xp_assert_close, dtype_eps


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_differences_within_n_ulps_pass_and_larger_ones_fail(dtype):
    eps = dtype_eps(dtype)
    expected = np.array([1.0, -2.0, 0.5])
    xp_assert_close(expected * (1 + 3 * eps), expected, dtype)
    xp_assert_close(expected * (1 + 30 * eps), expected, dtype, n=10)
    with pytest.raises(AssertionError):
        xp_assert_close(expected * (1 + 30 * eps), expected, dtype)
    with pytest.raises(AssertionError):
        xp_assert_close(expected * (1 + 1e-3), expected, dtype, n=100)


def test_entries_that_cancel_are_held_to_the_absolute_bound():
    eps = dtype_eps("float64")
    expected = np.array([100.0, 0.0])
    xp_assert_close(np.array([100.0, 300 * eps]), expected, "float64")  # 3 ulps of 100, absolute
    with pytest.raises(AssertionError):
        xp_assert_close(np.array([100.0, 3000 * eps]), expected, "float64")


def test_dtype_eps_reads_any_backend_dtype():
    torch = pytest.importorskip("torch")
    assert dtype_eps(torch.float32) == dtype_eps(np.float32) == dtype_eps("float32") == np.finfo(np.float32).eps
    strict = pytest.importorskip("array_api_strict")
    assert dtype_eps(strict.float64) == np.finfo(np.float64).eps
