"""The second book's datasets: the spiral's exact points, PTB (downloads, cache, offline
error) and the bundled text corpus."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.datasets import spiral


def _book_spiral(seed):
    """The book's published algorithm, point after point (written here from its
    description: radius i/100, angle 4j + 4 i/100 + 0.2 randn(), legacy seeding)."""
    rs = np.random.RandomState(seed)
    x = np.zeros((300, 2))
    t = np.zeros((300, 3), dtype=int)
    for j in range(3):
        for i in range(100):
            rate = i / 100
            theta = j * 4.0 + 4.0 * rate + rs.randn() * 0.2
            x[100 * j + i] = [rate * np.sin(theta), rate * np.cos(theta)]
            t[100 * j + i, j] = 1
    return x, t


@pytest.mark.parametrize("seed", [1984, 7])
def test_spiral_is_the_books_bit_for_bit(seed):
    expected_x, expected_t = _book_spiral(seed)
    x, t = spiral.load_data(seed, dtype="float64")
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(t, expected_t)
    x32, _ = spiral.load_data(seed)
    np.testing.assert_array_equal(x32, expected_x.astype(np.float32))


def test_spiral_default_is_seed_1984_and_leaves_numpy_global_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    x, _ = spiral.load_data(dtype="float64")
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(x, _book_spiral(1984)[0])
    np.testing.assert_allclose(x[[1, 150]], [[-0.000976986, 0.00995216], [-0.13912046, 0.48025566]], rtol=1e-6)


def test_spiral_seed_checked():
    with pytest.raises(ValueError, match="seed"):
        spiral.load_data(seed=-1)
    a, _ = spiral.load_data(seed=None)
    b, _ = spiral.load_data(seed=None)
    assert not np.array_equal(a, b)
