"""``np.random.seed(...)`` makes a book-style script repeatable (xpnet's unseeded streams
take their seed from NumPy's global generator); ``seed=`` keeps its own stream."""

import numpy as np
import pytest

from xpnet import backend
from xpnet.layers import Dropout
from xpnet.nets import MultiLayerNetExtend
from xpnet.trainer import Trainer
from xpnet.util import shuffle_dataset


@pytest.fixture(autouse=True)
def _keep_numpy_global_state():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def script(device):
    """What a book script does after seeding NumPy: data, a net, a shuffle, Dropout, training."""
    x = np.random.rand(12, 4)
    t = np.random.randint(0, 3, size=12)
    net = MultiLayerNetExtend(4, [5], 3, use_dropout=True, dropout_ration=0.3, device=device)
    xd, td = shuffle_dataset(device.asarray(x), device.asarray(t))
    masks = Dropout(0.5).forward(device.asarray(np.ones((2, 6)), dtype="float32"))
    trainer = Trainer(net, x, t, x, t, epochs=1, mini_batch_size=4, verbose=False, device=device,
                      sampling="replacement")
    trainer.train()
    numbers = [backend.to_numpy(v).ravel() for v in (*net.params.values(), xd, td, masks)]
    return np.concatenate([np.asarray(v, dtype=np.float64) for v in numbers] + [trainer.train_loss_list])


def test_numpy_seed_makes_a_script_repeat(device):
    np.random.seed(0)
    first = script(device)
    np.random.seed(0)
    second = script(device)
    np.testing.assert_array_equal(first, second)
    np.random.seed(1)
    third = script(device)
    assert not np.array_equal(first, third)


def test_without_numpy_seed_runs_differ():
    np.random.seed(None)  # fresh entropy, as a script that seeds nothing
    a = backend.Generator().normal((6,), dtype="float64")
    b = backend.Generator().normal((6,), dtype="float64")
    assert not np.array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_explicit_seed_ignores_numpy_global_state():
    np.random.seed(0)
    a = backend.to_numpy(backend.Generator(5).normal((6,), dtype="float64"))
    np.random.seed(123)
    np.random.rand(10)
    b = backend.to_numpy(backend.Generator(5).normal((6,), dtype="float64"))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.random.default_rng(5).normal(0.0, 1.0, size=6))
